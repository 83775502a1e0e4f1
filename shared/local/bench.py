"""The benchmark: a force-year of crimes through the local host, with the figures that matter.

  python -m shared.local.bench [--sizes 10000,30000,110000] [--out out/bench] [--seed 11]
                               [--compare REF [--repeat N] [--jobs 2]]

Each size runs in its own process (so peak memory is its own) on a sample with
the density of a force-year: 110,000 crimes over 365 days, fewer crimes over
proportionally fewer days. Figures are ratios measured in one run on one
machine; they are never asserted by a test (machines are shared and noisy).
Writes ``report.json`` and ``report.md`` under ``--out``.

``--compare REF`` checks a git ref's code out into a temporary folder (``git archive``; removed
afterwards, also on failure or Ctrl-C), generates each size's sample once with this code's
generator, and runs it under REF's code and under this code, one child at a time (``--jobs 2``:
both at once, one on each core), each through bench_driver.py with that code's ``shared``
package: the report has both, side by side. ``--repeat N`` with it runs each code N times,
alternated, and reports medians and every run's CPU.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import json
import math
import multiprocessing
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: measure_run may be running an older commit's ``shared``
    from shared.bootstrap import Services
    from shared.local.run import Progress
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


def measure_one(
    crimes: int, out: Path, seed: int, on_progress: Progress | None = None, processes: int = 1
) -> dict[str, Any]:
    """Generate one sample and run it, counting what the Azure bill and the victims would see."""
    from shared.local.generate import generate

    feeds = out / "feeds"
    started = time.perf_counter()
    # In a process of its own, so that this process's peak memory is the run's, not the generator's.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        generated = pool.submit(generate, feeds, crimes=crimes, days=days_for(crimes), seed=seed).result()
    generate_seconds = time.perf_counter() - started
    figures = measure_run(feeds, out / "run", on_progress, processes)
    return {
        "crimes": crimes,
        "days": days_for(crimes),
        **figures,
        "malformed_generated": generated.malformed,
        "generate_seconds": round(generate_seconds, 2),
    }


STATES = ("sqlite", "azurite")
STATE_STORAGE = "StateStorage"  # the app setting with the state's connection string, which run reads
# The settings that would put a run's state anywhere but where --state says.
_STATE_SETTINGS = (
    "StateStorage",
    "StateStorage__tableServiceUri",
    "StateStorage__blobServiceUri",
    "STATE_TABLE_PREFIX",
)


def measure_state(feeds: Path, out: Path, state: str, on_progress: Progress | None = None) -> dict[str, Any]:
    """measure_run on a generated sample with the state in SQLite or in a fresh Azurite (its Table
    and Blob services, through the Azure SDK clients over HTTP), started for this run and stopped
    after it, also on an error. The queues are the embedded SQLite queues either way."""
    for name in _STATE_SETTINGS:  # this process only: the run reads its settings from here
        os.environ.pop(name, None)
    if state == "sqlite":
        figures = measure_run(feeds, out / "run", on_progress)
        with_emulator = figures["run_cpu_ms_per_feed_record"]  # no emulator: the run's CPU is all of it
        return {**figures, "state": "sqlite", "cpu_ms_per_feed_record_with_emulator": with_emulator}
    if state != "azurite":
        raise ValueError(f"unknown state {state!r}")
    from shared.local import azurite

    previous = signal.signal(signal.SIGTERM, _terminated)  # a kill stops Azurite, as Ctrl-C does
    try:
        with azurite.started(out / "azurite") as emulator:
            os.environ[STATE_STORAGE] = emulator.connection_string
            started = emulator.cpu_seconds()
            try:
                figures = measure_run(feeds, out / "run", on_progress)
            finally:
                del os.environ[STATE_STORAGE]
            ended = emulator.cpu_seconds()
    finally:
        signal.signal(signal.SIGTERM, previous)
    cpu = round(ended - started, 2) if started is not None and ended is not None else None
    return {
        **figures,
        "state": "azurite",
        # Azurite is a Node.js process of its own on the same machine: not in the run's CPU figures.
        # From the run's start to after its reports were read from the tables.
        "azurite_cpu_seconds": cpu,
        "azurite_cpu_ms_per_feed_record": _per(
            1000 * cpu if cpu is not None else None, figures["feed_records"], 3
        ),
        # The run's CPU and Azurite's together: what the machine spent on the run.
        "cpu_ms_per_feed_record_with_emulator": _per(
            1000 * (figures["run_cpu_seconds"] + cpu) if cpu is not None else None, figures["feed_records"], 3
        ),
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


def measure_run(
    feeds: Path, run_dir: Path, on_progress: Progress | None = None, processes: int = 1
) -> dict[str, Any]:
    """Run a generated sample through the local host of whichever ``shared`` package is importable.

    Counted through the run's ``prepare`` hook (wrappers around the table store and the queue
    broker). ``--compare`` runs this, from this code, against an older commit's ``shared``: a
    figure whose hook that code lacks is None ("n/a"), never an error. ``processes``: the run in
    that many processes (``run --processes``), each counting its own part, added up here; code
    before it runs in one (``processes`` in the result says which).
    """
    from shared.adapters.sqlite_queue import SqliteQueueBroker
    from shared.adapters.sqlite_tables import SqliteTableStore
    from shared.local.run import RunRequest, run

    sent_by_queue: Counter[str] = Counter()
    cancelled = [0]  # scheduled messages cancelled before they fell due (each one a Service Bus operation)
    # The same by queue: deadline checks (journey-events), reminders (officer-tasks).
    cancelled_by_queue: Counter[str] = Counter()
    stores: list[Any] = []  # the run's table store: SQLite, or Table Storage when StateStorage is set

    adapter_cpu = [0.0]  # CPU the steps spent inside the table store and the embedded queues
    # The local host's receives: their CPU (the host's work, not a step's: in Azure, the Functions
    # host's and Service Bus's), how many, how many found nothing, and the messages they took.
    receives = [0.0, 0, 0, 0]
    in_tables = [0.0, 0.0]  # CPU and wall the steps spent inside the table store alone

    def timed(
        call: Any, materialise: bool = False, table: bool = False, into: list[Any] = adapter_cpu
    ) -> Any:
        """``call`` with its CPU added to ``into[0]`` (the steps' adapter time unless told)."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started, wall = time.process_time(), time.perf_counter()
            try:
                value = call(*args, **kwargs)
                return iter(list(value)) if materialise else value
            finally:
                spent = time.process_time() - started
                into[0] += spent
                if table:
                    in_tables[0] += spent
                    in_tables[1] += time.perf_counter() - wall

        return wrapper

    def prepare(services: Services, broker: SqliteQueueBroker) -> None:
        store = services.tables
        stores.append(store)
        for name in ("get", "create", "update", "upsert", "upsert_many", "delete"):
            setattr(store, name, timed(getattr(store, name), table=True))
        store.query_partition = timed(store.query_partition, materialise=True, table=True)  # type: ignore[method-assign]
        original = broker.send

        def counting(queue: str, messages: Sequence[OutgoingMessage]) -> None:
            sent_by_queue[queue] += len(messages)
            original(queue, messages)

        broker.send = timed(counting)  # type: ignore[method-assign]
        receive = timed(broker.receive, into=receives)

        def took(messages: int) -> None:
            """One receive by the host, and how many messages it took (none: it found nothing)."""
            receives[1] += 1
            receives[2] += messages == 0
            receives[3] += messages

        def receiving(queue: str, *, receiver: str, now: Any) -> Any:
            got = receive(queue, receiver=receiver, now=now)
            took(0 if got is None else 1)
            return got

        broker.receive = receiving  # type: ignore[method-assign]
        if hasattr(broker, "receive_many"):  # the host takes several messages at once, since 5565381
            receive_many = timed(broker.receive_many, into=receives)

            def receiving_many(queue: str, *, receiver: str, now: Any, max_messages: int) -> Any:
                got = receive_many(queue, receiver=receiver, now=now, max_messages=max_messages)
                took(len(got))
                return got

            broker.receive_many = receiving_many  # type: ignore[method-assign]
        if hasattr(broker, "schedule"):  # cancellable scheduled messages (deadline checks), since 9f96cc1
            schedule, cancel = broker.schedule, broker.cancel_scheduled

            def scheduling(queue: str, messages: Sequence[OutgoingMessage]) -> list[int]:
                sent_by_queue[queue] += len(messages)  # a message sent, even if cancelled later
                return schedule(queue, messages)

            def cancelling(queue: str, sequence_number: int) -> None:
                cancelled[0] += 1
                cancelled_by_queue[queue] += 1
                cancel(queue, sequence_number)

            broker.schedule = timed(scheduling)  # type: ignore[method-assign]
            broker.cancel_scheduled = timed(cancelling)  # type: ignore[method-assign]

    def counted_here() -> dict[str, Any]:
        """What this process counted (in a run in several processes, one part's)."""
        store = stores[0] if stores else None
        by_kind = getattr(store, "operations_by", None)  # since d2a84ce
        return {
            "operations": getattr(store, "operations", None),
            "operations_by": Counter(by_kind) if by_kind is not None else None,
            "sent_by_queue": Counter(sent_by_queue),
            "cancelled": cancelled[0],
            "cancelled_by_queue": Counter(cancelled_by_queue),
            "adapter_cpu": adapter_cpu[0],
            "receives": list(receives),
            "in_tables": list(in_tables),
            "peak_memory_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }

    try:
        request = RunRequest(feeds, feeds / "officers.json", run_dir, prepare=prepare)
    except TypeError:  # code before the prepare hook (9c608f5): no counts from inside the run
        request = RunRequest(feeds, feeds / "officers.json", run_dir)
    if processes > 1 and hasattr(request, "processes"):  # code before run --processes runs in one
        request = dataclasses.replace(request, processes=processes, part_result=counted_here)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    # Progress only from this code's run (an older commit's takes a callback of another shape).
    if getattr(request, "processes", 1) > 1:
        from shared.local.run import run_with_parts

        summary, parts = run_with_parts(request, on_progress)
    else:
        summary, parts = (run(request) if on_progress is None else run(request, on_progress)), []
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if parts:  # the parts' CPU (their processes, reaped by the run) and their counts, added up
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu += (children.ru_utime - children0.ru_utime) + (children.ru_stime - children0.ru_stime)
    tally = counted_here()
    for part in parts:
        for key in ("sent_by_queue", "cancelled_by_queue"):
            tally[key].update(part[key])
        for key in ("operations", "cancelled", "adapter_cpu"):
            tally[key] = (tally[key] or 0) + part[key]
        if part["operations_by"] is not None:
            tally["operations_by"] = (tally["operations_by"] or Counter()) + part["operations_by"]
        tally["receives"] = [a + b for a, b in zip(tally["receives"], part["receives"], strict=True)]
        tally["in_tables"] = [a + b for a, b in zip(tally["in_tables"], part["in_tables"], strict=True)]
        tally["peak_memory_kib"] = max(tally["peak_memory_kib"], part["peak_memory_kib"])
    sent_by_queue, cancelled_by_queue = tally["sent_by_queue"], tally["cancelled_by_queue"]
    cancelled[0], adapter_cpu[0] = tally["cancelled"], tally["adapter_cpu"]
    receives[:], in_tables[:] = tally["receives"], tally["in_tables"]
    counted = tally["operations"] is not None
    table_ops: int | None = tally["operations"] if counted else None
    by_kind = tally["operations_by"] if counted else None
    table_ops_by = dict(by_kind.most_common()) if by_kind is not None else None
    embedded = not stores or isinstance(stores[0], SqliteTableStore)
    http_requests: int | None = None if embedded else getattr(stores[0], "http_requests", None)

    # The SQLite file read afresh (as code before this read it); Table Storage through the run's store.
    latencies = _latencies(SqliteTableStore(run_dir / "state.db") if embedded else stores[0])

    records = summary["records"]["niche"] + summary["records"]["storm"]
    messages = summary["messages"]["email"] + summary["messages"]["sms"]
    timed_steps = "step_cpu_seconds" in summary  # the run's summary has them since d2a84ce
    step_cpu = {name: summary.get("step_cpu_seconds", {}).get(name, 0.0) for name in STEPS}
    step_wall = {name: summary.get("step_wall_seconds", {}).get(name, 0.0) for name in STEPS}
    queue_messages = sum(sent_by_queue.values()) if counted else None
    step_records = records if timed_steps else None  # without step times, no per-record step figures
    return {
        "state": "sqlite" if embedded else "table storage",
        # Processes the run replayed the feeds in (run --processes); 1 for code before it.
        "processes": summary.get("processes", {}).get("count", 1),
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
        # Every function object, the five steps above and the others (delivery reports, officer
        # mail, retention); and the host's own work settling each message (n/a before it was kept).
        "every_function_cpu_ms_per_feed_record": _per(
            1000 * sum(summary.get("step_cpu_seconds", {}).values()), step_records, 3
        ),
        "host_settle_cpu_ms_per_feed_record": _per(
            1000 * summary["host_settle_cpu_seconds"] if "host_settle_cpu_seconds" in summary else None,
            records,
            3,
        ),
        "host_receives": receives[1] if counted else None,
        "host_receives_empty": receives[2] if counted else None,
        "host_messages_received": receives[3] if counted else None,
        "host_receive_cpu_ms_per_feed_record": _per(1000 * receives[0] if counted else None, records, 3),
        "run_wall_ms_per_feed_record": _per(1000 * wall, records, 3),
        "run_cpu_ms_per_feed_record": _per(1000 * cpu, records, 3),
        "step_wall_ms_per_feed_record": _per(1000 * sum(step_wall.values()), step_records, 3),
        # Inside the table store alone (SQLite, or the Table Storage SDK and its HTTP round trips),
        # from every function (the five steps above, and the timers, officer mail, delivery reports).
        "table_store_cpu_ms_per_feed_record": _per(1000 * in_tables[0] if counted else None, step_records, 3),
        "table_store_wall_ms_per_feed_record": _per(
            1000 * in_tables[1] if counted else None, step_records, 3
        ),
        # The largest of the run's processes (each part's, in several).
        "peak_memory_mib": round(tally["peak_memory_kib"] / 1024, 1),
        "table_operations": table_ops,
        "table_operations_by": table_ops_by,
        "table_operations_per_feed_record": _per(table_ops, records, 2),
        "table_operations_per_message_sent": _per(table_ops, messages, 2),
        # Requests the Table Storage SDK sent during the run (transactions, pages, table creation).
        "http_requests": http_requests,
        "http_requests_per_feed_record": _per(http_requests, records, 2),
        "queue_messages": dict(sent_by_queue) if counted else None,
        "queue_messages_per_feed_record": _per(queue_messages, records, 2),
        "queue_messages_per_message_sent": _per(queue_messages, messages, 2),
        "scheduled_messages_cancelled": cancelled[0] if counted else None,
        "scheduled_messages_cancelled_per_feed_record": _per(cancelled[0] if counted else None, records, 2),
        "scheduled_messages_cancelled_by_queue": dict(cancelled_by_queue) if counted else None,
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


# Import function_app and build the services (the figure the bare app is compared with), then, in
# the same process, one case change through resolve_officer -> evaluate_journey -> send_message: the
# function objects called as the local host calls them, on the embedded default, the clock at a
# Tuesday noon (no quiet hours) and moved to each message's time. Prints one JSON line: the seconds
# to the services built and to the end of the first send_message. (An older commit's snippet
# prints one number, the first figure: see _figures.)
_APP_IMPORT = """
import time, tempfile
t = time.perf_counter()
import function_app
from datetime import UTC, datetime, timedelta
from shared.bootstrap import bootstrap
from shared.settings import load_settings
class Clock:
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    def now(self):
        return self.at
clock = Clock()
services = bootstrap(load_settings(LOCAL_DATA_DIR=tempfile.mkdtemp()), clock=clock)
built = time.perf_counter() - t
import json
from azure.functions.servicebus import ServiceBusMessage
from shared import bootstrap as composition
composition.install(services)
functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
at = clock.at.isoformat()
victim = {
    "person_id": "P-1", "name": {"forename": "Alex", "surname": "Smith"}, "date_of_birth": "1990-01-01",
    "contact": {"email": "alex@example.org", "mobile": "07700 900123"},
    "preferences": {"channel": "email", "frequency_days": 28, "language": "en", "opted_out": False},
    "safe_contact": {"sms": True, "email": True}, "enhanced_rights": [], "guardian": None,
}
record = {
    "schema": "niche.occurrence/1", "occurrence_id": "HU-26-000001", "crime_reference": "HU/000001/26",
    "modified_at": at, "recorded_at": at, "incident_numbers": [], "flags": [], "outcome": None,
    "offence": {"code": "105/01", "description": "Assault occasioning actual bodily harm", "category": "violence"},
    "status": "under_investigation", "oic": {"employee_id": "104233", "collar_number": "PC 1234"},
    "milestones": [], "victims": [victim],
}
change = {
    "type": "case_change", "change_id": "niche:HU/000001/26:" + at, "feed": "niche",
    "crime_reference": "HU/000001/26", "detected_at": at, "niche": record,
    "changes": [{"kind": "victim_added", "key": "P-1", "at": at}],
}
def deliver(function, body, properties, session_id):
    message = ServiceBusMessage(
        body=body.encode("utf-8"), application_properties=dict(properties),
        user_properties=dict(properties), content_type="application/json", message_id="bench",
        session_id=session_id, delivery_count=1,
    )
    functions[function](msg=message)
deliver("resolve_officer", json.dumps(change), {}, "HU/000001/26")
settings, broker, sent = services.settings, services.publisher, None
for _ in range(10):
    for function, queue in (("send_message", settings.OUTBOUND_MESSAGES_QUEUE),
                            ("evaluate_journey", settings.JOURNEY_EVENTS_QUEUE)):
        got = broker.receive(queue, receiver="bench", now=clock.at + timedelta(hours=1))
        if got is not None:
            break
    if got is None:
        break
    clock.at = max(clock.at, got.scheduled_at or clock.at)
    deliver(function, got.body, got.application_properties, got.session_id)
    broker.complete(got, now=clock.at)
    if got.session_id is not None:
        broker.release_session(queue, got.session_id, receiver="bench")
    if function == "send_message":
        sent = time.perf_counter() - t
        break
assert sent is not None, "no message reached send_message"
print(json.dumps({"app": built, "first_message": sent}))
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


def _figures(stdout: str) -> tuple[float, float | None]:
    """A cold-start snippet's figures in seconds: to the services built, and to the end of the first
    send_message (None from a snippet that prints only the first: an older commit's, or the bare app's)."""
    last = json.loads(stdout.strip().splitlines()[-1])
    if isinstance(last, dict):
        return float(last["app"]), float(last["first_message"])
    return float(last), None


def _median_ms(seconds: Sequence[float]) -> float | None:
    return round(1000 * statistics.median(seconds), 1) if seconds else None


def _cold_start_figures(
    repeats: int,
    app: float | None,
    first: float | None,
    bare: float | None,
    with_pyc: float | None = None,
) -> dict[str, Any]:
    """cold_start's report: the medians (ms), and each over the bare app's."""
    figures = {
        "repeats": repeats,
        "app_median_ms": app,
        "bare_median_ms": bare,
        "overhead_median_ms": _difference(app, bare),
        "first_message_median_ms": first,
        "first_message_over_bare_median_ms": _difference(first, bare),
    }
    if with_pyc is not None:
        figures["app_with_pyc_median_ms"] = with_pyc
        figures["overhead_with_pyc_median_ms"] = _difference(with_pyc, bare)
    return figures


# What a worker would run if the published package carried the app's own bytecode: the files
# `func azure functionapp publish` uploads of the app's code (tests/publish_list.py), compiled with
# checked-hash .pyc, which stay valid whatever a zip does to file times. The package does not carry
# them today (.funcignore leaves every .pyc out), and this checkout has none (PYTHONDONTWRITEBYTECODE).
_APP_FILES = ("function_app.py", "host.json")
_APP_FOLDERS = ("shared", "policy")


def compiled_app(into: Path, root: Path | None = None) -> Path:
    """A copy of the app's code under ``into`` (from ``root``, this checkout by default), every
    module compiled to a checked-hash .pyc beside it; the copy's folder."""
    source = root or _ROOT
    app = into / "app"
    app.mkdir(parents=True)
    for name in _APP_FILES:
        shutil.copy2(source / name, app / name)
    for folder in _APP_FOLDERS:
        shutil.copytree(source / folder, app / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "checked-hash",
            "shared",
            "function_app.py",
        ],
        cwd=app,
        check=True,
    )
    return app


def cold_start(repeats: int = 7) -> dict[str, Any]:
    """Import-and-bootstrap time, and the time to the first message sent, against a bare app importing
    the same SDKs, alternated in one run; and the start again from a copy of the app with its own
    checked-hash .pyc (compiled_app), to show what shipping them would save."""
    ours: list[float] = []
    first: list[float] = []
    bare: list[float] = []
    with_pyc: list[float] = []
    here = Path.cwd()  # the checkout make bench runs from: the same code compiled and not
    with tempfile.TemporaryDirectory(prefix="bench-pyc-") as folder:
        compiled = compiled_app(Path(folder), here)
        runs = ((_APP_IMPORT, ours, here), (_APP_IMPORT, with_pyc, compiled), (_BARE_IMPORT, bare, here))
        for _ in range(repeats):
            for code, into, cwd in runs:
                done = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd
                )
                built, sent = _figures(done.stdout)
                into.append(built)
                if into is ours and sent is not None:
                    first.append(sent)
    return _cold_start_figures(
        repeats, _median_ms(ours), _median_ms(first), _median_ms(bare), _median_ms(with_pyc)
    )


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

    # A folder of its own, as each measured size has: a run into an earlier profile's state would
    # resume it and read nothing new (the same sample), and profile nothing.
    sample = Path(tempfile.mkdtemp(prefix=f"profile-{crimes}-", dir=out))
    feeds = sample / "feeds"
    generate(feeds, crimes=crimes, days=days_for(crimes), seed=seed)
    profiler = cProfile.Profile()
    summary = run(RunRequest(feeds, feeds / "officers.json", sample / "run", profiler=profiler))
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
        "invocations": summary["invocations"],  # this run's, by function
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


# The step CPU figures, in both reports (one run's, and --compare's side by side).
_STEP_CPU_ROWS = (
    ("step CPU per feed record (ms)", "step_cpu_ms_per_feed_record"),
    (
        "… of which in the embedded SQLite tables and queues (ms)",
        "step_cpu_ms_per_feed_record_in_embedded_adapters",
    ),
    ("… step code without them (ms)", "step_cpu_ms_per_feed_record_excluding_embedded_adapters"),
    ("every function's CPU per feed record (ms)", "every_function_cpu_ms_per_feed_record"),
    ("the host settling messages, CPU per feed record (ms)", "host_settle_cpu_ms_per_feed_record"),
    ("the host receiving messages, CPU per feed record (ms)", "host_receive_cpu_ms_per_feed_record"),
)


def _markdown(report: dict[str, Any]) -> str:
    sizes = report["sizes"]
    rows = [
        ("crimes", "crimes"),
        ("days", "days"),
        ("feed records", "feed_records"),
        ("messages sent", "messages_sent"),
        ("run wall (s)", "run_wall_seconds"),
        ("feed records / s, end to end", "records_per_second_end_to_end"),
        *_STEP_CPU_ROWS,
        ("run CPU (s)", "run_cpu_seconds"),
        ("peak memory (MiB)", "peak_memory_mib"),
        ("table operations per feed record", "table_operations_per_feed_record"),
        ("table operations per message sent", "table_operations_per_message_sent"),
        ("queue messages", "queue_messages"),
        ("queue messages per feed record", "queue_messages_per_feed_record"),
        ("scheduled messages cancelled per feed record", "scheduled_messages_cancelled_per_feed_record"),
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
    lines += ["", _cold_start_sentence(report["cold_start"]), ""]
    return "\n".join(lines)


def _cold_start_sentence(cold: dict[str, Any]) -> str:
    """The cold start in words (report.md): both figures (the second when measured), each against
    the bare app."""
    start = (
        f"Cold start (median of {cold['repeats']}, alternated): import `function_app` and build the services "
        f"{cold['app_median_ms']} ms; a bare azure-functions app importing the same SDKs {cold['bare_median_ms']} ms; "
        f"overhead {cold['overhead_median_ms']} ms."
    )
    if cold.get("app_with_pyc_median_ms") is not None:
        start += (
            " With the app's own bytecode (a copy compiled to checked-hash .pyc, which the published package"
            f" does not carry today) the start took {cold['app_with_pyc_median_ms']} ms, overhead"
            f" {cold['overhead_with_pyc_median_ms']} ms."
        )
    if cold.get("first_message_median_ms") is None:
        return start
    return (
        f"{start} To the end of the first message sent (the same process on: one case change through "
        "resolve_officer, evaluate_journey for the change and for its coalescing window's end, and "
        f"send_message, on the embedded default) {cold['first_message_median_ms']} ms, "
        f"{cold['first_message_over_bare_median_ms']} ms over the bare app."
    )


# --compare REF: a git ref's code on the same samples, in the same run. -----------------------

COMPARE_COLD_START_REPEATS = 7
_ROOT = Path(__file__).resolve().parents[2]  # the checkout this code runs from
_DRIVER = Path(__file__).with_name("bench_driver.py")
_ORDER = (
    "one child at a time: for each size REF's code then this code, the next size this code first "
    "(alternating), so both see similar machine load"
)
_ORDER_REPEATED = (
    "one child at a time, each size run {repeats} times by each code, alternated (REF then this "
    "code, then this code then REF, and so on; the next size starts with the other code), so both "
    "see similar machine load; each figure is the median of a code's {repeats} runs"
)
_ORDER_AT_ONCE = (
    "both codes at once, one child each on the machine's cores, each size run {repeats} time(s) by "
    "each (medians): each child's CPU is its own, though a process's CPU time rises somewhat while "
    "the other core is busy, so the faster child, busy beside the other throughout, is slowed more "
    "than the slower one, which finishes alone: a difference in CPU is understated, not made up; "
    "wall times contend"
)
# The figures a run of the same code on the same sample must reproduce exactly (the clock is
# simulated): a repeat that differs in one of them is reported, not folded into a median.
_EXACT = (
    "feed_records",
    "records_by_feed",
    "quarantined",
    "messages_sent",
    "tasks",
    "dead_letters",
    "compliance",
    "table_operations",
    "table_operations_by",
    "queue_messages",
    "scheduled_messages_cancelled",
    "feed_change_to_provider_seconds",
    "host_receives",
    "host_receives_empty",
    "host_messages_received",
    "invocations",
)
# The CPU figures whose run-to-run spread the report shows, so a change can be read against it.
_SPREAD = (
    ("run CPU, in the child (s)", "run_cpu_seconds"),
    ("the five steps' CPU per feed record (ms)", "step_cpu_ms_per_feed_record"),
    ("the host settling messages, CPU per feed record (ms)", "host_settle_cpu_ms_per_feed_record"),
    ("the host receiving messages, CPU per feed record (ms)", "host_receive_cpu_ms_per_feed_record"),
    ("child process CPU, seen by the parent (s)", "measured_from_parent.child_cpu_seconds"),
)


def _median_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs of the same code on the same sample: each number the median
    of the runs' (a count they agree on is itself), anything else the first run's."""

    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            keys = list(dict.fromkeys(key for value in values if isinstance(value, dict) for key in value))
            return {key: merge([v.get(key) for v in values if isinstance(v, dict)]) for key in keys}
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(values):
            if all(v == first for v in numbers):
                return first
            return round(statistics.median(numbers), 4)
        return first

    return dict(merge(list(runs)))


def _varied(runs: Sequence[dict[str, Any]]) -> list[str]:
    """The exact figures (_EXACT) on which the runs do not all agree."""
    return [name for name in _EXACT if any(run.get(name) != runs[0].get(name) for run in runs[1:])]


def _spread(runs: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Each _SPREAD figure as every run gave it, in the order they ran."""
    return {path: [_dig(run, path) for run in runs] for _, path in _SPREAD}


_SAMPLE = (
    "each size generated once, by this code's generator (shared.local.generate), and the same "
    "files run by both codes (the feed contract is stable)"
)


class CompareError(Exception):
    """What --compare cannot do, in one line for the user, with the exit status to leave with."""

    def __init__(self, line: str, status: int = 2) -> None:
        super().__init__(line)
        self.status = status


def _git(root: Path, *args: str) -> str | None:
    """git's output in root, or None when git fails (or is missing)."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _resolve(ref: str, root: Path) -> dict[str, Any]:
    """REF's commit, this code's commit and whether its worktree is dirty (one-line complaints)."""
    if _git(root, "rev-parse", "--show-toplevel") is None:
        raise CompareError(f"bench: --compare: not a git checkout: {root}")
    commit = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if not commit:
        raise CompareError(f"bench: --compare: unknown git ref {ref!r}")
    return {
        "ref": ref,
        "commit": commit,
        "this_commit": _git(root, "rev-parse", "HEAD"),
        "this_dirty": bool(_git(root, "status", "--porcelain")),
    }


def _check_out(commit: str, root: Path, into: Path) -> None:
    """The commit's tracked files (git archive) into a folder: no worktree to unregister afterwards."""
    archive = subprocess.Popen(["git", "archive", "--format=tar", commit], cwd=root, stdout=subprocess.PIPE)
    assert archive.stdout is not None
    try:
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            tar.extractall(into, filter="tar")  # our own commit; old ones tracked venv symlinks
    finally:
        archive.stdout.close()
        status = archive.wait()
    if status != 0:
        raise CompareError(f"bench: --compare: git archive {commit[:10]} failed", 1)


def _child_env() -> dict[str, str]:
    # No PYTHONPATH: each child imports the shared package of its own code's folder, nothing else.
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


# A compare child's line saying it goes on (bench_driver's heartbeat, the run's own progress):
# never the line that explains a failure.
_PROGRESS_LINE = re.compile(r"\[[^\]]*\] progress: ")


def _run_under(
    code: Path,
    feeds: Path,
    out: Path,
    label: str | None = None,
    children: list[subprocess.Popen[str]] | None = None,
    stop: threading.Event | None = None,
    processes: int = 1,
) -> tuple[dict[str, Any] | None, str]:
    """The driver under one code's folder on the sample; its wall, CPU and peak memory seen from here.

    ``label``: the child says every few seconds that it goes on (``[label] progress: …``).
    ``children``: the child is added to it as it starts, for a caller that must stop it; one
    started once ``stop`` is set is stopped at once. Returns (the figures, None on failure; the
    child's last line on stderr other than its progress lines, with its exit status).
    """
    command = [
        sys.executable,
        "-P",
        str(_DRIVER),
        "--code",
        str(code),
        "--feeds",
        str(feeds),
        "--out",
        str(out),
        *(["--label", label] if label else []),
        *(["--processes", str(processes)] if processes > 1 else []),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=code, env=_child_env(), stderr=subprocess.PIPE, text=True)
    if children is not None:
        children.append(process)
        if stop is not None and stop.is_set():  # the round was stopped while this one started
            process.kill()
    last = ""
    try:
        assert process.stderr is not None
        for line in process.stderr:  # passed through as it comes; the last line explains a failure
            progress = _PROGRESS_LINE.match(line) is not None
            # Labelled, so two children at once can be told apart (their progress lines already are).
            sys.stderr.write(line if progress or not label else f"[{label}] {line}")
            if not progress:
                last = line.strip() or last
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:  # Ctrl-C, or the terminal gone: the child goes with us
        process.kill()
        process.wait()
        raise
    finally:
        if process.stderr is not None:
            process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0 or not (out / "result.json").is_file():
        status_words = f"exit status {process.returncode}"
        return None, f"{last} ({status_words})" if last else status_words
    result: dict[str, Any] = json.loads((out / "result.json").read_text(encoding="utf-8"))
    result["measured_from_parent"] = {
        "child_wall_seconds": round(wall, 2),
        "child_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "child_peak_memory_mib": round(usage.ru_maxrss / 1024, 1),
    }
    return result, last


def _app_import_of(code: Path) -> str:
    """The code's own cold-start snippet (its bench.py's _APP_IMPORT: how that commit builds its
    services), read without importing it; this code's when it has none."""
    try:
        tree = ast.parse((code / "shared" / "local" / "bench.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return _APP_IMPORT
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == "_APP_IMPORT" for target in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    return _APP_IMPORT


def _cold_start_of(cold: dict[str, Any] | None, side: str) -> dict[str, Any] | None:
    """One side's cold start (``this`` or ``ref``), in the shape ``cold_start`` reports it."""
    if cold is None:
        return None
    return _cold_start_figures(
        cold["repeats"],
        cold[f"{side}_median_ms"],
        cold.get(f"{side}_first_message_median_ms"),
        cold["bare_median_ms"],
    )


def _cold_start_side_by_side(ref_code: Path, repeats: int) -> dict[str, Any] | None:
    """cold_start's measurement for both codes and the bare app, alternated; None if not measured."""
    if repeats < 1:
        return None
    sides = {
        "ref": (_app_import_of(ref_code), ref_code),
        "this": (_APP_IMPORT, _ROOT),
        "bare": (_BARE_IMPORT, _ROOT),
    }
    times: dict[str, list[float]] = {side: [] for side in sides}
    first: dict[str, list[float]] = {side: [] for side in sides}
    failed: set[str] = set()  # an older commit whose bootstrap reads differently: n/a, not an error
    for _ in range(repeats):
        for side, (code, cwd) in sides.items():
            if side in failed:
                continue
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=_child_env()
            )
            if done.returncode != 0:
                failed.add(side)
                continue
            built, sent = _figures(done.stdout)
            times[side].append(built)
            if sent is not None:
                first[side].append(sent)

    def median_ms(figures: dict[str, list[float]], side: str) -> float | None:
        return _median_ms(figures[side]) if side not in failed else None

    return {
        "repeats": repeats,
        **{f"{side}_median_ms": median_ms(times, side) for side in sides},
        **{f"{side}_first_message_median_ms": median_ms(first, side) for side in ("ref", "this")},
    }


def _generate_once(feeds: Path, crimes: int, seed: int) -> tuple[int, float]:
    """This code's generator, in a process of its own: (malformed records, seconds)."""
    from shared.local.generate import generate

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        generated = pool.submit(generate, feeds, crimes=crimes, days=days_for(crimes), seed=seed).result()
    return generated.malformed, round(time.perf_counter() - started, 2)


def _run_round(
    runs: Sequence[tuple[str, Path, Path]], feeds: Path, crimes: int, *, at_once: bool, processes: int = 1
) -> list[tuple[str, tuple[dict[str, Any] | None, str]]]:
    """Each (side, code, out) on the sample: one after another, or all at once (each child on a
    thread of its own that reads its stderr), in the order given.

    The first failure ends the round: it is returned last, and nothing after it runs (at once,
    the others are stopped). Ctrl-C or a kill stops every child started.
    """
    if not at_once:
        done: list[tuple[str, tuple[dict[str, Any] | None, str]]] = []
        for side, code, into in runs:
            done.append((side, _run_under(code, feeds, into, f"{crimes} {side}", processes=processes)))
            if done[-1][1][0] is None:
                break
        return done
    children: list[subprocess.Popen[str]] = []
    stop = threading.Event()

    def stop_all() -> None:
        stop.set()  # first: a child starting after the loop below stops itself
        for child in list(children):
            child.kill()

    order = [side for side, _, _ in runs]
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {
            pool.submit(_run_under, code, feeds, into, f"{crimes} {side}", children, stop, processes): side
            for side, code, into in runs
        }
        finished: dict[str, tuple[dict[str, Any] | None, str]] = {}
        try:
            pending = set(futures)
            while pending:
                ended, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in ended:
                    side, outcome = futures[future], future.result()
                    if outcome[0] is None:
                        stop_all()
                        return [*((s, finished[s]) for s in order if s in finished), (side, outcome)]
                    finished[side] = outcome
        except BaseException:
            stop_all()
            raise
    return [(side, finished[side]) for side in order]


def _order(repeats: int, jobs: int) -> str:
    if jobs == 2:
        return _ORDER_AT_ONCE.format(repeats=repeats)
    return _ORDER if repeats == 1 else _ORDER_REPEATED.format(repeats=repeats)


def compare(
    ref: str, sizes: Sequence[int], out: Path, seed: int, repeats: int = 1, jobs: int = 1, processes: int = 1
) -> dict[str, Any]:
    """Each size's sample, generated once, run by REF's code and by this code (``repeats`` times
    each, alternated, reporting medians; ``jobs`` 2: the two codes' runs of a round at once, one on
    each core); writes both reports."""
    resolved = _resolve(ref, _ROOT)
    short = resolved["commit"][:10]
    out = out.resolve()  # the children run in their code's folder
    out.mkdir(parents=True, exist_ok=True)
    checkout = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    previous = signal.signal(signal.SIGTERM, _terminated)  # a kill cleans up like Ctrl-C
    try:
        ref_code = checkout / "code"
        _check_out(resolved["commit"], _ROOT, ref_code)
        if not (ref_code / "shared" / "local" / "run.py").is_file():
            raise CompareError(f"bench: --compare: {ref} ({short}) has no local host (shared/local/run.py)")
        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        for index, crimes in enumerate(sizes):
            folder = Path(tempfile.mkdtemp(prefix=f"bench-{crimes}-", dir=out))
            print(f"benchmark: {crimes} crimes over {days_for(crimes)} days, {ref} ({short}) and this code …")
            malformed, generate_seconds = _generate_once(folder / "feeds", crimes, seed)
            sample = {"crimes": crimes, "days": days_for(crimes), "malformed_generated": malformed}
            sides = [("ref", ref_code), ("this", _ROOT)]
            runs: dict[str, list[dict[str, Any]]] = {"ref": [], "this": []}
            for round_ in range(repeats):
                order = sides if (index + round_) % 2 == 0 else sides[::-1]
                ran = _run_round(
                    [
                        (side, code, folder / (side if repeats == 1 else f"{side}-{round_ + 1}"))
                        for side, code in order
                    ],
                    folder / "feeds",
                    crimes,
                    at_once=jobs == 2,
                    processes=processes,
                )
                for side, (result, last) in ran:
                    if result is None and side == "ref":
                        raise CompareError(
                            f"bench: --compare: {ref} ({short}) could not run the {crimes}-crime sample "
                            f"this code generated: {last}",
                            1,
                        )
                    if result is None:
                        raise CompareError(f"bench: this code failed on the {crimes}-crime sample: {last}", 1)
                    runs[side].append(result)
            figures: dict[str, dict[str, Any]] = {}
            for side, results in runs.items():
                figures[side] = {**sample, **_median_of(results)}
                if repeats > 1:
                    figures[side]["repeats"] = {
                        "runs": repeats,
                        "varied": _varied(results),
                        **_spread(results),
                    }
            ours.append({**figures["this"], "generate_seconds": generate_seconds})
            theirs.append(figures["ref"])
        cold = _cold_start_side_by_side(ref_code, COMPARE_COLD_START_REPEATS)
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(checkout, ignore_errors=True)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "jobs": jobs},
        "code": {"commit": resolved["this_commit"], "dirty": resolved["this_dirty"]},
        "sizes": ours,
        "cold_start": _cold_start_of(cold, "this"),
        "compare": {
            "ref": ref,
            "commit": resolved["commit"],
            "sample": _SAMPLE,
            "order": _order(repeats, jobs),
            "repeats": repeats,
            "sizes": theirs,
            "cold_start": _cold_start_of(cold, "ref"),
        },
    }
    markdown = _compare_markdown(report)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return report


# --state sqlite,azurite: the same sample with the state in each, side by side. -----------------

_STATE_ORDER = (
    "one child at a time: for each size the states in the order given, the next size in reverse "
    "(alternating), so both see similar machine load"
)
_QUEUES = "the embedded SQLite queues (queues.db) in every state: only the tables and blobs move"

_BY_STATE = (
    ("feed records", "feed_records"),
    ("messages sent", "messages_sent"),
    ("tasks", "tasks"),
    ("dead letters", "dead_letters"),
    ("compliance", "compliance"),
    ("table operations", "table_operations"),
    ("table operations per feed record", "table_operations_per_feed_record"),
    ("HTTP requests to Table Storage per feed record", "http_requests_per_feed_record"),
    ("queue messages per feed record", "queue_messages_per_feed_record"),
    ("scheduled messages cancelled per feed record", "scheduled_messages_cancelled_per_feed_record"),
    ("run wall (s)", "run_wall_seconds"),
    ("run wall per feed record (ms)", "run_wall_ms_per_feed_record"),
    ("the five steps' wall per feed record (ms)", "step_wall_ms_per_feed_record"),
    ("the five steps' CPU per feed record (ms)", "step_cpu_ms_per_feed_record"),
    (
        "inside the table store, every function: wall per feed record (ms)",
        "table_store_wall_ms_per_feed_record",
    ),
    (
        "inside the table store, every function: CPU per feed record (ms)",
        "table_store_cpu_ms_per_feed_record",
    ),
    (
        "inside the table store and the queues, every function: CPU per feed record (ms)",
        "step_cpu_ms_per_feed_record_in_embedded_adapters",
    ),
    ("run CPU, in the child (s)", "run_cpu_seconds"),
    ("run CPU per feed record (ms)", "run_cpu_ms_per_feed_record"),
    ("Azurite's own CPU (s)", "azurite_cpu_seconds"),
    ("Azurite's own CPU per feed record (ms)", "azurite_cpu_ms_per_feed_record"),
    ("CPU per feed record, the run's and Azurite's (ms)", "cpu_ms_per_feed_record_with_emulator"),
    ("child peak memory (MiB)", "peak_memory_mib"),
)


def _ratio(base: Any, other: Any) -> str:
    """other / base as ×N.NN, or nothing when either is not a number (or base is 0)."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (base, other))
    return f"×{other / base:.2f}" if numbers and base else ""


def ratios(by_state: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per size, azurite / sqlite of the per-feed-record figures (when both states ran)."""
    if not {"sqlite", "azurite"} <= by_state.keys():
        return []
    keys = (
        "run_wall_ms_per_feed_record",
        "step_wall_ms_per_feed_record",
        "step_cpu_ms_per_feed_record",
        "run_cpu_ms_per_feed_record",
        "cpu_ms_per_feed_record_with_emulator",
        "table_operations_per_feed_record",
    )
    return [
        {
            "crimes": sqlite["crimes"],
            **{
                key: round(azure[key] / sqlite[key], 2) if azure[key] and sqlite[key] else None
                for key in keys
            },
        }
        for sqlite, azure in zip(by_state["sqlite"], by_state["azurite"], strict=True)
    ]


def _states_markdown(report: dict[str, Any]) -> str:
    states: list[str] = report["states"]
    both = {"sqlite", "azurite"} <= set(states)
    lines = [
        "# Benchmark: one sample, the state in " + " and in ".join(states),
        "",
        f"Machine: {report['machine']['cpus']} CPUs; Python {report['machine']['python']}. Simulated clock.",
        "",
        f"Sample: {report['sample']}. Order: {report['order']}. Queues: {report['queues']}. "
        "Table operations are the store's calls, counted alike in both (an upsert of several rows of "
        "one partition is one); HTTP requests are what the Azure SDK sent. Azurite runs fresh and in "
        "memory for each run, a Node.js process of its own on the same machine: its CPU is not in the "
        "run's." + (" Ratio is azurite / sqlite." if both else ""),
    ]
    for index, size in enumerate(report["by_state"][states[0]]):
        sides = [report["by_state"][state][index] for state in states]
        lines += [
            "",
            f"## {size['crimes']} crimes over {size['days']} days",
            "",
            "| figure | " + " | ".join(states) + (" | azurite / sqlite |" if both else " |"),
            "|---|" + "---|" * (len(states) + (1 if both else 0)),
        ]
        for label, key in _BY_STATE:
            values = [side.get(key) for side in sides]
            row = f"| {label} | " + " | ".join(_shown(value) for value in values) + " |"
            if both:
                by = dict(zip(states, values, strict=True))
                row += f" {_ratio(by['sqlite'], by['azurite'])} |"
            lines.append(row)
    cold = report.get("cold_start")
    if cold is not None:
        lines += ["", _cold_start_sentence(cold)]
    lines.append("")
    return "\n".join(lines)


def by_states(states: Sequence[str], sizes: Sequence[int], out: Path, seed: int) -> dict[str, Any]:
    """Each size's sample, generated once, run with the state in each of ``states``, one child at a
    time; writes report.json and report.md under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    by_state: dict[str, list[dict[str, Any]]] = {state: [] for state in states}
    for index, crimes in enumerate(sizes):
        folder = Path(tempfile.mkdtemp(prefix=f"bench-{crimes}-", dir=out))
        print(f"benchmark: {crimes} crimes over {days_for(crimes)} days, state in {', '.join(states)} …")
        malformed, generate_seconds = _generate_once(folder / "feeds", crimes, seed)
        sample = {"crimes": crimes, "days": days_for(crimes), "malformed_generated": malformed}
        for state in states if index % 2 == 0 else list(states)[::-1]:
            command = [sys.executable, "-m", "shared.local.bench", "--one", str(crimes), "--seed", str(seed)]
            command += ["--out", str(folder / state), "--state", state, "--feeds", str(folder / "feeds")]
            _wait_or_stop(subprocess.Popen(command))
            result = json.loads((folder / state / "result.json").read_text(encoding="utf-8"))
            by_state[state].append({**sample, **result, "generate_seconds": generate_seconds})
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "jobs": 1},
        "states": list(states),
        "sample": _SAMPLE.replace("both codes", "every state"),
        "order": _STATE_ORDER,
        "queues": _QUEUES,
        "sizes": by_state[states[0]],  # where a run without --state puts its figures
        "by_state": by_state,
        "ratios": ratios(by_state),
        "cold_start": cold_start(),
    }
    markdown = _states_markdown(report)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return report


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _difference(a: float | None, b: float | None) -> float | None:
    return round(a - b, 1) if a is not None and b is not None else None


def _dig(size: dict[str, Any], path: str) -> Any:
    value: Any = size
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, dict):  # a count by name (queue messages by queue): its total
        return sum(value.values())
    return value


_COMPARED = (
    ("processes the run took", "processes"),
    ("feed records", "feed_records"),
    ("quarantined", "quarantined"),
    ("messages sent", "messages_sent"),
    ("tasks", "tasks"),
    ("dead letters", "dead_letters"),
    ("compliance", "compliance"),
    ("feed change → provider p50 (simulated s)", "feed_change_to_provider_seconds.p50"),
    ("feed change → provider p95 (simulated s)", "feed_change_to_provider_seconds.p95"),
    ("table operations", "table_operations"),
    ("table operations per feed record", "table_operations_per_feed_record"),
    ("table operations per message sent", "table_operations_per_message_sent"),
    ("queue messages", "queue_messages"),
    ("queue messages per feed record", "queue_messages_per_feed_record"),
    ("scheduled messages cancelled per feed record", "scheduled_messages_cancelled_per_feed_record"),
    ("queue messages per message sent", "queue_messages_per_message_sent"),
    ("SMS segments per SMS", "sms_segments_per_sms"),
    ("receives by the local host", "host_receives"),
    ("… of which found nothing", "host_receives_empty"),
    ("messages they took", "host_messages_received"),
    *_STEP_CPU_ROWS,
    *((f"{step}: CPU (s)", f"step_cpu_seconds.{step}") for step in STEPS),
    ("run CPU, in the child (s)", "run_cpu_seconds"),
    ("run wall, in the child (s)", "run_wall_seconds"),
    ("feed records / s, end to end", "records_per_second_end_to_end"),
    ("child process CPU, seen by the parent (s)", "measured_from_parent.child_cpu_seconds"),
    ("child process wall, seen by the parent (s)", "measured_from_parent.child_wall_seconds"),
    ("child peak memory, seen by the parent (MiB)", "measured_from_parent.child_peak_memory_mib"),
)


def _shown(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _change(before: Any, after: Any) -> str:
    """after against before: 'same', a signed percentage, or nothing when either is not a number."""
    if before is None or after is None:
        return ""
    if before == after:
        return "same"
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after)) or not before:
        return ""
    return f"{100 * (after - before) / before:+.1f}%"


def _compare_markdown(report: dict[str, Any]) -> str:
    compare = report["compare"]
    ref = f"{compare['ref']} ({compare['commit'][:10]})"
    code = report["code"]
    this = f"{(code['commit'] or 'unknown')[:10]}{', dirty worktree' if code['dirty'] else ''}"
    lines = [
        f"# Benchmark: `{compare['ref']}` side by side with this code",
        "",
        f"REF `{ref}`; this code `{this}`. Machine: {report['machine']['cpus']} CPUs; "
        f"Python {report['machine']['python']}, the same interpreter for both. Simulated clock.",
        "",
        f"Sample: {compare['sample']}. Order: {compare['order']}. Counts come from inside each run "
        "through the local host's prepare hook, by this code's bench.py in both children "
        "(n/a: that code has no hook for it); child CPU, wall and peak memory are measured by the "
        "parent. Change is this code against REF.",
    ]
    for theirs, ours in zip(compare["sizes"], report["sizes"], strict=True):
        lines += [
            "",
            f"## {ours['crimes']} crimes over {ours['days']} days",
            "",
            f"| figure | {compare['ref']} | this code | change |",
            "|---|---|---|---|",
        ]
        for label, path in _COMPARED:
            before, after = _dig(theirs, path), _dig(ours, path)
            lines.append(f"| {label} | {_shown(before)} | {_shown(after)} | {_change(before, after)} |")
        if "repeats" in ours and "repeats" in theirs:
            lines += _spread_markdown(compare["ref"], theirs["repeats"], ours["repeats"])
    theirs_cold, ours_cold = compare["cold_start"], report["cold_start"]
    lines.append("")
    if ours_cold is None:
        lines.append("Cold start: not measured.")
    else:
        lines += [
            f"## Cold start (median of {ours_cold['repeats']}, alternated)",
            "",
            f"| figure | {compare['ref']} | this code | change |",
            "|---|---|---|---|",
        ]
        for label, key in (
            ("import and bootstrap (ms)", "app_median_ms"),
            ("over a bare app (ms)", "overhead_median_ms"),
            ("to the end of the first message sent (ms)", "first_message_median_ms"),
            ("first message sent, over a bare app (ms)", "first_message_over_bare_median_ms"),
        ):
            before, after = theirs_cold.get(key), ours_cold.get(key)
            lines.append(f"| {label} | {_shown(before)} | {_shown(after)} | {_change(before, after)} |")
        lines += [
            "",
            "Each code's own cold-start snippet (REF's from its bench.py, when it has one; n/a: that "
            "snippet does not send a first message); a bare azure-functions app importing the same SDKs: "
            f"{ours_cold['bare_median_ms']} ms. The first message: in the same process after the "
            "bootstrap, one case change through resolve_officer, evaluate_journey (twice: the change, "
            "then its coalescing window's end) and send_message on the embedded default.",
        ]
    lines.append("")
    return "\n".join(lines)


def _overlap(before: Sequence[Any], after: Sequence[Any]) -> str:
    """Whether two codes' runs of one figure overlap: if they do, the difference between their
    medians is no larger than what running the same code again can give."""
    if any(not isinstance(v, int | float) or isinstance(v, bool) for v in (*before, *after)) or not before:
        return ""
    if max(before) < min(after) or max(after) < min(before):
        # Were the codes the same, every order of the runs would be as likely: this one (or its
        # mirror) comes up 2 in C(m+n, n) of them.
        chance = math.comb(len(before) + len(after), len(after)) // 2
        return f"apart: every run of one code beat every run of the other (1 in {chance} by chance alone)"
    return "overlap: within the run-to-run spread"


def _spread_markdown(ref: str, theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """Each code's runs of the CPU figures, in the order they ran, and whether they overlap."""
    lines = [
        "",
        f"Run to run ({ours['runs']} runs of each code, in the order they ran; the table above "
        "gives their medians):",
        "",
        f"| figure | {ref}, each run | this code, each run | |",
        "|---|---|---|---|",
    ]
    for label, path in _SPREAD:
        before, after = theirs.get(path, []), ours.get(path, [])
        shown = [", ".join(_shown(v) for v in runs) for runs in (before, after)]
        lines.append(f"| {label} | {shown[0]} | {shown[1]} | {_overlap(before, after)} |")
    for side, repeats in ((ref, theirs), ("this code", ours)):
        if repeats["varied"]:
            lines += [
                "",
                f"**{side}'s runs did not agree** on {', '.join(repeats['varied'])}: a run of the same "
                "code on the same sample should count exactly the same; the medians above hide it.",
            ]
    return lines


def _compare_main(
    parser: argparse.ArgumentParser,
    ref: str,
    sizes: list[int],
    out: Path,
    seed: int,
    jobs: int,
    repeats: int,
    processes: int = 1,
) -> int:
    if jobs > 2:
        parser.exit(2, "bench: --compare runs at most two children at once, one per code: --jobs 1 or 2\n")
    try:
        compare(ref, sizes, out, seed, repeats, jobs, processes)
    except CompareError as error:
        parser.exit(error.status, f"{error}\n")
    return 0


def _wait_or_stop(process: subprocess.Popen[bytes]) -> None:
    """_wait, and on Ctrl-C or a kill of this process, the child stopped first (it stops its Azurite)."""
    from shared.local.azurite import stop

    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        _wait(process)
    except BaseException:
        stop(process)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


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
        help="sizes run at once, or with --compare 2: both codes at once (CPU figures stay "
        "comparable; wall times contend)",
    )
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="also run a git ref's code on the same samples (one child at a time, or both at once "
        "with --jobs 2); report side by side",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="with --compare: run each code N times on each sample, alternated, and report medians "
        "and every run's CPU (one pair of runs cannot show a CPU change smaller than its noise)",
    )
    parser.add_argument(
        "--state",
        default="sqlite",
        help="where the state is kept: sqlite, azurite (a fresh Azurite per run, over HTTP), or both "
        "comma-separated (sqlite,azurite): the same sample in each, side by side; queues stay SQLite",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="replay each sample in N processes at once (run --processes N); with --compare, a ref "
        "without it runs in one",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size in this process
    parser.add_argument("--feeds", type=Path, help=argparse.SUPPRESS)  # internal: --one on this sample
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
        if args.feeds is not None:  # a sample generated by the parent, run with the state in --state
            with progress(prefix=f"[{args.one} {args.state}] ", lines=True) as on_progress:
                result = measure_state(args.feeds, args.out, args.state, on_progress)
        else:
            with progress(prefix=f"[{args.one}] ", lines=True) as on_progress:
                print(
                    f"[{args.one}] progress: generating the sample, then the run", file=sys.stderr, flush=True
                )
                result = measure_one(args.one, args.out, args.seed, on_progress, args.processes)
        args.out.mkdir(parents=True, exist_ok=True)
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
    if args.repeat < 1:
        parser.exit(2, "python -m shared.local.bench: error: --repeat must be at least 1\n")
    if args.processes < 1:
        parser.exit(2, "python -m shared.local.bench: error: --processes must be at least 1\n")
    if args.repeat != 1 and args.compare is None:
        parser.exit(2, "python -m shared.local.bench: error: --repeat goes with --compare REF\n")
    states = [part.strip() for part in args.state.split(",") if part.strip()]
    if not states or any(state not in STATES for state in states) or len(set(states)) < len(states):
        parser.exit(
            2,
            f"python -m shared.local.bench: error: --state takes sqlite, azurite or both (sqlite,azurite): "
            f"{args.state!r}\n",
        )
    if states != ["sqlite"]:
        if args.processes != 1:
            parser.exit(2, "python -m shared.local.bench: error: --processes runs the SQLite state only\n")
        if args.compare is not None:
            parser.exit(2, "python -m shared.local.bench: error: --compare runs the SQLite state only\n")
        if args.jobs != 1:
            parser.exit(
                2, "python -m shared.local.bench: error: --state runs one child at a time: leave out --jobs\n"
            )
        if "azurite" in states:
            from shared.local import azurite

            why = azurite.missing()
            if why is not None:
                parser.exit(2, f"python -m shared.local.bench: error: --state azurite: {why}\n")
        by_states(states, sizes, args.out, args.seed)
        return 0
    if args.compare is not None:
        return _compare_main(
            parser, args.compare, sizes, args.out, args.seed, args.jobs, args.repeat, args.processes
        )
    args.out.mkdir(parents=True, exist_ok=True)
    folders: dict[int, Path] = {}
    running: list[subprocess.Popen[bytes]] = []
    for crimes in sizes:
        folder = Path(tempfile.mkdtemp(prefix=f"bench-{crimes}-", dir=args.out))
        folders[crimes] = folder
        print(f"benchmark: {crimes} crimes over {days_for(crimes)} days …", flush=True)
        command = [sys.executable, "-m", "shared.local.bench", "--one", str(crimes), "--out", str(folder)]
        command += ["--processes", str(args.processes)]
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
