"""The benchmark: a force-year of crimes through the local host, with the figures that matter.

  python -m shared.local.bench [--sizes 10000,30000,110000] [--out out/bench] [--seed 11]

Each size runs in its own process (so peak memory is its own) on a sample with
the density of a force-year: 110,000 crimes over 365 days, fewer crimes over
proportionally fewer days. Figures are ratios measured in one run on one
machine; they are never asserted by a test (machines are shared and noisy).
Writes ``report.json`` and ``report.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: measure_run may be running an older commit's ``shared``
    from shared.bootstrap import Services
    from shared.ports import OutgoingMessage

FORCE_YEAR_CRIMES = 110_000
STEPS = ("ingest_niche", "ingest_storm", "resolve_officer", "evaluate_journey", "send_message")


def days_for(crimes: int) -> int:
    """Days of a sample with a force-year's density of crimes."""
    return max(10, round(365 * crimes / FORCE_YEAR_CRIMES))


def _percentile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def measure_one(crimes: int, out: Path, seed: int) -> dict[str, Any]:
    """Generate one sample and run it, counting what the Azure bill and the victims would see."""
    from shared.local.generate import generate

    feeds = out / "feeds"
    started = time.perf_counter()
    # In a process of its own, so that this process's peak memory is the run's, not the generator's.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        generated = pool.submit(generate, feeds, crimes=crimes, days=days_for(crimes), seed=seed).result()
    generate_seconds = time.perf_counter() - started
    figures = measure_run(feeds, out / "run")
    return {
        "crimes": crimes,
        "days": days_for(crimes),
        **figures,
        "malformed_generated": generated.malformed,
        "generate_seconds": round(generate_seconds, 2),
    }


def _journey_layout() -> tuple[str, Any] | None:
    """The journeys table and its row reader, wherever the code being measured keeps them."""
    for name in ("shared.adapters.table_layout", "shared.steps.records"):  # the latter before 98dc5f9
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.JOURNEYS, module.journey_from
    return None


def _latencies(export: Any) -> array[float] | None:
    """Seconds from a duty's feed change to its hand-over to a provider, from the journeys table;
    None when the measured code keeps no such times (before d2a84ce)."""
    layout = _journey_layout()
    latencies = array("d")  # compact: a force-year has ~600,000
    try:
        if layout is None:
            return None
        journeys, journey_from = layout
        for entity in export.export(journeys):
            for duty in journey_from(entity).duties.values():
                if duty.handed_at is not None and duty.noticed_at is not None:
                    latencies.append((duty.handed_at - duty.noticed_at).total_seconds())
    except AttributeError:
        return None
    finally:
        export.close()
    return latencies


def measure_run(feeds: Path, run_dir: Path) -> dict[str, Any]:
    """Run a generated sample through the local host of whichever ``shared`` package is importable.

    Counted through the run's ``prepare`` hook (wrappers around the table store and the queue
    broker). ``--compare`` runs this, from this code, against an older commit's ``shared``: a
    figure whose hook that code lacks is None ("n/a"), never an error.
    """
    from shared.adapters.sqlite_queue import SqliteQueueBroker
    from shared.adapters.sqlite_tables import SqliteTableStore
    from shared.local.run import RunRequest, run

    sent_by_queue: Counter[str] = Counter()
    stores: list[SqliteTableStore] = []

    adapter_cpu = [0.0]  # CPU the steps spent inside the embedded SQLite tables and queues

    def timed(call: Any, materialise: bool = False) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                value = call(*args, **kwargs)
                return iter(list(value)) if materialise else value
            finally:
                adapter_cpu[0] += time.process_time() - started

        return wrapper

    def prepare(services: Services, broker: SqliteQueueBroker) -> None:
        store = services.tables
        assert isinstance(store, SqliteTableStore)
        stores.append(store)
        for name in ("get", "create", "update", "upsert", "upsert_many", "delete"):
            setattr(store, name, timed(getattr(store, name)))
        store.query_partition = timed(store.query_partition, materialise=True)  # type: ignore[method-assign]
        original = broker.send

        def counting(queue: str, messages: Sequence[OutgoingMessage]) -> None:
            sent_by_queue[queue] += len(messages)
            original(queue, messages)

        broker.send = timed(counting)  # type: ignore[method-assign]

    try:
        request = RunRequest(feeds, feeds / "officers.json", run_dir, prepare=prepare)
    except TypeError:  # code before the prepare hook (9c608f5): no counts from inside the run
        request = RunRequest(feeds, feeds / "officers.json", run_dir)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    summary = run(request)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    counted = bool(stores) and hasattr(stores[0], "operations")
    table_ops: int | None = stores[0].operations if counted else None
    by_kind = getattr(stores[0], "operations_by", None) if counted else None  # since d2a84ce
    table_ops_by = dict(by_kind.most_common()) if by_kind is not None else None

    latencies = _latencies(SqliteTableStore(run_dir / "state.db"))

    records = summary["records"]["niche"] + summary["records"]["storm"]
    messages = summary["messages"]["email"] + summary["messages"]["sms"]
    timed_steps = "step_cpu_seconds" in summary  # the run's summary has them since d2a84ce
    step_cpu = {name: summary.get("step_cpu_seconds", {}).get(name, 0.0) for name in STEPS}
    step_wall = {name: summary.get("step_wall_seconds", {}).get(name, 0.0) for name in STEPS}
    queue_messages = sum(sent_by_queue.values()) if counted else None
    step_records = records if timed_steps else None  # without step times, no per-record step figures
    return {
        "feed_records": records,
        "records_by_feed": {"niche": summary["records"]["niche"], "storm": summary["records"]["storm"]},
        "quarantined": summary["records"]["quarantined"],
        "messages_sent": messages,
        "tasks": summary.get("tasks"),
        "dead_letters": summary.get("dead_letters"),
        "compliance": summary.get("compliance"),
        "run_wall_seconds": round(wall, 2),
        "run_cpu_seconds": round(cpu, 2),
        "records_per_second_end_to_end": round(records / wall, 1) if wall else None,
        "invocations": summary.get("invocations"),
        "step_cpu_seconds": {k: round(v, 2) for k, v in step_cpu.items()} if timed_steps else None,
        "step_invocations_per_second": {
            name: round(summary.get("invocations", {}).get(name, 0) / step_wall[name], 1)
            if step_wall[name]
            else None
            for name in STEPS
        },
        "step_cpu_ms_per_feed_record": _per(1000 * sum(step_cpu.values()), step_records, 3),
        # The embedded SQLite adapters stand in for Table Storage and Service Bus calls over the network.
        "step_cpu_ms_per_feed_record_in_embedded_adapters": _per(
            1000 * adapter_cpu[0] if counted else None, step_records, 3
        ),
        "step_cpu_ms_per_feed_record_excluding_embedded_adapters": _per(
            1000 * (sum(step_cpu.values()) - adapter_cpu[0]) if counted else None, step_records, 3
        ),
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "table_operations": table_ops,
        "table_operations_by": table_ops_by,
        "table_operations_per_feed_record": _per(table_ops, records, 2),
        "table_operations_per_message_sent": _per(table_ops, messages, 2),
        "queue_messages": dict(sent_by_queue) if counted else None,
        "queue_messages_per_feed_record": _per(queue_messages, records, 2),
        "queue_messages_per_message_sent": _per(queue_messages, messages, 2),
        "sms_segments_per_sms": _per(summary.get("sms_segments"), summary["messages"]["sms"], 3),
        "feed_change_to_provider_seconds": {
            "p50": _percentile(latencies or [], 0.50),
            "p95": _percentile(latencies or [], 0.95),
            "samples": len(latencies) if latencies is not None else None,
        },
    }


def _per(amount: float | None, per: float | None, digits: int) -> float | None:
    """amount / per rounded, or None when either is unknown (or nothing to divide by)."""
    return round(amount / per, digits) if amount is not None and per else None


_APP_IMPORT = """
import time, tempfile
t = time.perf_counter()
import function_app
from shared.bootstrap import bootstrap
from shared.settings import load_settings
bootstrap(load_settings(LOCAL_DATA_DIR=tempfile.mkdtemp()))
print(time.perf_counter() - t)
"""

_BARE_IMPORT = """
import time
t = time.perf_counter()
import azure.functions as func
import azure.servicebus, azure.data.tables, azure.communication.email, azure.communication.sms
import azure.identity, msal, pydantic, requests
app = func.FunctionApp()
print(time.perf_counter() - t)
"""


def cold_start(repeats: int = 7) -> dict[str, Any]:
    """Import-and-bootstrap time against a bare app importing the same SDKs, alternated in one run."""
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        for code, into in ((_APP_IMPORT, ours), (_BARE_IMPORT, bare)):
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd()
            )
            into.append(float(done.stdout.strip().splitlines()[-1]))
    return {
        "repeats": repeats,
        "app_median_ms": round(1000 * statistics.median(ours), 1),
        "bare_median_ms": round(1000 * statistics.median(bare), 1),
        "overhead_median_ms": round(1000 * (statistics.median(ours) - statistics.median(bare)), 1),
    }


# Where step CPU goes: each profiled function's own time, by what it belongs to.
_CATEGORIES = (
    ("embedded SQLite tables and queues", ("sqlite3", "shared/adapters/sqlite_")),
    ("pydantic and the contracts (validate, serialise)", ("pydantic", "shared/contracts/")),
    ("json", ("/json/", "json.")),
    ("rendering (Jinja2)", ("jinja2", "markupsafe", "shared/domain/render", "shared/domain/officer_mail")),
    ("journey rules and deadlines", ("shared/domain/", "holidays", "dateutil", "zoneinfo")),
    ("telemetry and logging", ("opentelemetry", "logging", "shared/telemetry", "shared/tracing")),
    (
        "feed reading and files",
        (
            "shared/adapters/jsonl_feed",
            "shared/adapters/file_outbox",
            "shared/adapters/file_officer",
            "io.",
            "posix",
        ),
    ),
    ("the steps' own code", ("shared/steps/",)),
    ("the function wrappers", ("function_app", "azure/functions", "shared/bootstrap")),
)


def profile_one(crimes: int, out: Path, seed: int) -> dict[str, Any]:
    """One size with a profiler on the function objects only: step CPU by category, per feed record."""
    import cProfile
    import pstats

    from shared.local.generate import generate
    from shared.local.run import RunRequest, run

    feeds = out / "feeds"
    generate(feeds, crimes=crimes, days=days_for(crimes), seed=seed)
    profiler = cProfile.Profile()
    summary = run(RunRequest(feeds, feeds / "officers.json", out / "run", profiler=profiler))
    records = summary["records"]["niche"] + summary["records"]["storm"]
    stats = pstats.Stats(profiler)
    totals: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for (filename, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        own = row[2]
        where = f"{filename}:{line}({name})"
        functions[where] += own
        text = (filename + " " + name).replace("\\", "/")
        category = next((label for label, marks in _CATEGORIES if any(m in text for m in marks)), "other")
        totals[category] += own
    total = sum(totals.values())
    stats.sort_stats("tottime").dump_stats(str(out / "steps.prof"))
    return {
        "crimes": crimes,
        "feed_records": records,
        "profiled_step_seconds": round(total, 2),
        "ms_per_feed_record_by_category": {k: round(1000 * v / records, 3) for k, v in totals.most_common()},
        "top_functions_ms_per_feed_record": {
            k: round(1000 * v / records, 3) for k, v in functions.most_common(25)
        },
        "note": "cProfile slows Python code more than C code: read shares, not absolute times",
    }


def _records_per_step_second(size: dict[str, Any], step: str) -> float | None:
    """Feed records over the wall time spent in one step: that step's throughput in feed records."""
    rate: float | None = size["step_invocations_per_second"].get(step)
    calls: int | None = size["invocations"].get(step)
    if not rate or not calls:
        return None
    records: int = size["feed_records"]
    return round(records / (calls / rate), 1)


def _markdown(report: dict[str, Any]) -> str:
    sizes = report["sizes"]
    rows = [
        ("crimes", "crimes"),
        ("days", "days"),
        ("feed records", "feed_records"),
        ("messages sent", "messages_sent"),
        ("run wall (s)", "run_wall_seconds"),
        ("feed records / s, end to end", "records_per_second_end_to_end"),
        ("step CPU per feed record (ms)", "step_cpu_ms_per_feed_record"),
        (
            "… of which in the embedded SQLite tables and queues (ms)",
            "step_cpu_ms_per_feed_record_in_embedded_adapters",
        ),
        ("… step code without them (ms)", "step_cpu_ms_per_feed_record_excluding_embedded_adapters"),
        ("run CPU (s)", "run_cpu_seconds"),
        ("peak memory (MiB)", "peak_memory_mib"),
        ("table operations per feed record", "table_operations_per_feed_record"),
        ("table operations per message sent", "table_operations_per_message_sent"),
        ("queue messages per feed record", "queue_messages_per_feed_record"),
        ("queue messages per message sent", "queue_messages_per_message_sent"),
        ("SMS segments per SMS", "sms_segments_per_sms"),
        ("dead letters", "dead_letters"),
        ("compliance", "compliance"),
    ]
    head = "| figure | " + " | ".join(str(s["crimes"]) for s in sizes) + " |"
    lines = [
        "# Benchmark",
        "",
        f"Machine: {report['machine']['cpus']} CPUs; Python {report['machine']['python']}. "
        f"Simulated clock; figures from one run of `make bench` ({report['machine'].get('jobs', 1)} size(s) at a time: CPU figures are per process, wall times contend).",
        "",
        head,
        "|" + "---|" * (len(sizes) + 1),
    ]
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(str(s.get(key)) for s in sizes) + " |")
    latency = " | ".join(
        f"{s['feed_change_to_provider_seconds']['p50']} / {s['feed_change_to_provider_seconds']['p95']}"
        for s in sizes
    )
    lines.append(f"| feed change → provider, p50 / p95 (simulated s) | {latency} |")
    for step in STEPS:
        lines.append(
            f"| {step}: invocations / s | "
            + " | ".join(str(s["step_invocations_per_second"][step]) for s in sizes)
            + " |"
        )
    for step in STEPS:
        lines.append(
            f"| {step}: feed records / s of its own time | "
            + " | ".join(str(_records_per_step_second(s, step)) for s in sizes)
            + " |"
        )
    cold = report["cold_start"]
    lines += [
        "",
        f"Cold start (median of {cold['repeats']}, alternated): import `function_app` and build the services "
        f"{cold['app_median_ms']} ms; a bare azure-functions app importing the same SDKs {cold['bare_median_ms']} ms; "
        f"overhead {cold['overhead_median_ms']} ms.",
        "",
    ]
    return "\n".join(lines)


def _wait(process: subprocess.Popen[bytes]) -> None:
    if process.wait() != 0:
        raise SystemExit(f"benchmark run failed: {' '.join(map(str, process.args))}")  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.local.bench")
    parser.add_argument("--sizes", default="10000,30000,110000", help="crimes per run, comma-separated")
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="sizes run at once (CPU figures stay comparable; wall times contend)",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size in this process
    parser.add_argument(
        "--profile", type=int, metavar="CRIMES", help="profile the steps on one size; write profile.json"
    )
    args = parser.parse_args(argv)
    if args.profile:
        args.out.mkdir(parents=True, exist_ok=True)
        profile = profile_one(args.profile, args.out, args.seed)
        (args.out / "profile.json").write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(profile, indent=2))
        return 0
    if args.one:
        result = measure_one(args.one, args.out, args.seed)
        (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return 0
    try:
        sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    except ValueError:
        parser.exit(
            2, f"python -m shared.local.bench: error: --sizes must be whole numbers: {args.sizes!r}\n"
        )
    if not sizes or min(sizes) < 1:
        parser.exit(2, "python -m shared.local.bench: error: --sizes needs at least one positive number\n")
    if args.jobs < 1:
        parser.exit(2, "python -m shared.local.bench: error: --jobs must be at least 1\n")
    args.out.mkdir(parents=True, exist_ok=True)
    folders: dict[int, Path] = {}
    running: list[subprocess.Popen[bytes]] = []
    for crimes in sizes:
        folder = Path(tempfile.mkdtemp(prefix=f"bench-{crimes}-", dir=args.out))
        folders[crimes] = folder
        print(f"benchmark: {crimes} crimes over {days_for(crimes)} days …", flush=True)
        command = [sys.executable, "-m", "shared.local.bench", "--one", str(crimes), "--out", str(folder)]
        running.append(subprocess.Popen([*command, "--seed", str(args.seed)]))
        if len(running) >= args.jobs:
            _wait(running.pop(0))
    for process in running:
        _wait(process)
    results = [json.loads((folders[c] / "result.json").read_text(encoding="utf-8")) for c in sizes]
    report = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "jobs": args.jobs},
        "sizes": results,
        "cold_start": cold_start(),
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "report.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
