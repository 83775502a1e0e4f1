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

if TYPE_CHECKING:
    from shared.local.run import Progress

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


def measure_one(crimes: int, out: Path, seed: int, on_progress: Progress | None = None) -> dict[str, Any]:
    """Generate one sample and run it, counting what the Azure bill and the victims would see."""
    from shared.adapters.sqlite_queue import SqliteQueueBroker
    from shared.adapters.sqlite_tables import SqliteTableStore
    from shared.adapters.table_layout import JOURNEYS, journey_from
    from shared.bootstrap import Services
    from shared.local.generate import generate
    from shared.local.run import RunRequest, run
    from shared.ports import OutgoingMessage

    feeds = out / "feeds"
    started = time.perf_counter()
    # In a process of its own, so that this process's peak memory is the run's, not the generator's.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        generated = pool.submit(generate, feeds, crimes=crimes, days=days_for(crimes), seed=seed).result()
    generate_seconds = time.perf_counter() - started

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

    run_dir = out / "run"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    summary = run(RunRequest(feeds, feeds / "officers.json", run_dir, prepare=prepare), on_progress)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    table_ops = stores[0].operations
    table_ops_by = dict(stores[0].operations_by.most_common())

    latencies = array("d")  # compact: a force-year has ~600,000
    export = SqliteTableStore(run_dir / "state.db")
    for entity in export.export(JOURNEYS):
        for duty in journey_from(entity).duties.values():
            if duty.handed_at is not None and duty.noticed_at is not None:
                latencies.append((duty.handed_at - duty.noticed_at).total_seconds())
    export.close()

    records = summary["records"]["niche"] + summary["records"]["storm"]
    messages = summary["messages"]["email"] + summary["messages"]["sms"]
    step_cpu = {name: summary["step_cpu_seconds"].get(name, 0.0) for name in STEPS}
    step_wall = {name: summary["step_wall_seconds"].get(name, 0.0) for name in STEPS}
    queue_messages = sum(sent_by_queue.values())
    return {
        "crimes": crimes,
        "days": days_for(crimes),
        "feed_records": records,
        "records_by_feed": {"niche": summary["records"]["niche"], "storm": summary["records"]["storm"]},
        "malformed_generated": generated.malformed,
        "quarantined": summary["records"]["quarantined"],
        "messages_sent": messages,
        "tasks": summary["tasks"],
        "dead_letters": summary["dead_letters"],
        "compliance": summary["compliance"],
        "generate_seconds": round(generate_seconds, 2),
        "run_wall_seconds": round(wall, 2),
        "run_cpu_seconds": round(cpu, 2),
        "records_per_second_end_to_end": round(records / wall, 1) if wall else None,
        "invocations": summary["invocations"],
        "step_cpu_seconds": {k: round(v, 2) for k, v in step_cpu.items()},
        "step_invocations_per_second": {
            name: round(summary["invocations"].get(name, 0) / step_wall[name], 1) if step_wall[name] else None
            for name in STEPS
        },
        "step_cpu_ms_per_feed_record": round(1000 * sum(step_cpu.values()) / records, 3) if records else None,
        # The embedded SQLite adapters stand in for Table Storage and Service Bus calls over the network.
        "step_cpu_ms_per_feed_record_in_embedded_adapters": round(1000 * adapter_cpu[0] / records, 3)
        if records
        else None,
        "step_cpu_ms_per_feed_record_excluding_embedded_adapters": round(
            1000 * (sum(step_cpu.values()) - adapter_cpu[0]) / records, 3
        )
        if records
        else None,
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "table_operations": table_ops,
        "table_operations_by": table_ops_by,
        "table_operations_per_feed_record": round(table_ops / records, 2) if records else None,
        "table_operations_per_message_sent": round(table_ops / messages, 2) if messages else None,
        "queue_messages": dict(sent_by_queue),
        "queue_messages_per_feed_record": round(queue_messages / records, 2) if records else None,
        "queue_messages_per_message_sent": round(queue_messages / messages, 2) if messages else None,
        "sms_segments_per_sms": round(summary["sms_segments"] / summary["messages"]["sms"], 3)
        if summary["messages"]["sms"]
        else None,
        "feed_change_to_provider_seconds": {
            "p50": _percentile(latencies, 0.50),
            "p95": _percentile(latencies, 0.95),
            "samples": len(latencies),
        },
    }


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
        from shared.local.report import progress

        # Progress lines on stderr, which the parent's child inherits: each line says its size, and
        # lines, never a bar, even on a terminal, since sizes may run at once (--jobs) and bars of
        # several processes on one terminal overwrite each other.
        with progress(prefix=f"[{args.one}] ", lines=True) as on_progress:
            print(f"[{args.one}] progress: generating the sample, then the run", file=sys.stderr, flush=True)
            result = measure_one(args.one, args.out, args.seed, on_progress)
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
