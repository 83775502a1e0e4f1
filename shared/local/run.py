"""A whole local run: feeds in, the functions (all but the victim's page) on a simulated clock, files out."""

from __future__ import annotations

import cProfile
import heapq
import importlib
import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from azure.core.exceptions import AzureError

from shared import bootstrap
from shared.adapters.delivery_report_stub import DeliveryPlan
from shared.adapters.jsonl_feed import JsonlFeedReader, record_time
from shared.adapters.policy_file import load_policy
from shared.adapters.repositories import TableLinks
from shared.adapters.sqlite_queue import SqliteQueueBroker
from shared.adapters.table_layout import (
    AUDIT,
    CURSORS,
    JOURNEYS,
    MESSAGES,
    QUARANTINE,
    TASKS,
    journey_from,
    ledger_from,
)
from shared.bootstrap import Services
from shared.cli import file_in_the_way
from shared.contracts.feeds import accepts
from shared.domain.journey import Journey
from shared.domain.journey.tasks import DELIVERY_FAILED
from shared.domain.ledger import LedgerStatus
from shared.domain.links import link_url
from shared.domain.policy import Policy
from shared.local.host import HostStats, LocalHost, SimulatedClock
from shared.ports import ExportableStore
from shared.settings import Settings, load_settings
from shared.steps.ingest import FeedSourceMismatch, stored_cursor

FEEDS = ("niche", "storm")
_T = TypeVar("_T")
SETTLE = timedelta(days=35)


@dataclass(frozen=True)
class RunCounts:
    """What a run has done so far, cheap to count at any point: counts only, nobody's data."""

    feed_records: int = 0  # records read from the feeds (quarantined ones too)
    messages: int = 0  # messages handed to the provider (outbox.jsonl lines)


# Called after each simulated step (and once before the first): the run's start, the simulated
# now, its end, and how to count what the run has done, to call only when it is to be shown.
Progress = Callable[[datetime, datetime, datetime, Callable[[], RunCounts]], None]


class _Counting:
    """RunCounts from what the run keeps anyway: the feed cursors the ingest steps hold in
    memory, and the new lines of outbox.jsonl since the last count (read in chunks, never again)."""

    def __init__(self, services: Services, outbox: Path) -> None:
        self.services, self.outbox = services, outbox
        self.offset = 0
        self.messages = 0

    def __call__(self) -> RunCounts:
        cursors = self.services.memory.cursors
        records = sum(int(cursors[feed].properties.get("records", 0)) for feed in FEEDS if feed in cursors)
        if self.outbox.is_file():
            with self.outbox.open("rb") as handle:
                handle.seek(self.offset)
                while chunk := handle.read(1 << 20):
                    self.messages += chunk.count(b"\n")
                    self.offset += len(chunk)
        return RunCounts(records, self.messages)


class RunError(Exception):
    """Arguments or inputs the run cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class RunRequest:
    feeds: Path
    officers: Path
    out: Path
    start: datetime | None = None
    end: datetime | None = None
    policy: Path | None = None
    # The embedded provider's delivery reports (address -> status and delay); None: all delivered.
    delivery_reports: Path | None = None
    # Tests and the benchmark may wrap the adapters (fault injection, counters) before the run.
    prepare: Callable[[Services, SqliteQueueBroker], None] | None = None
    # The benchmark's profiler: enabled only while a function object runs (not the host's own work).
    profiler: cProfile.Profile | None = None
    # How many processes replay the feeds at once, each taking whole crime groups (a crime and the
    # incidents linked to it): shared/local/parts.py. More than one needs a new --out folder.
    processes: int = 1
    # With processes: called in each process after its part of the run; what it returns comes back
    # in run_with_parts' second value (the benchmark's counts, made inside each process).
    part_result: Callable[[], Any] | None = None


def feed_span(feeds: Path) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest modified_at in the feed files among the lines their contract
    accepts (streamed, not loaded)."""
    span = SpanFinder()
    for name, raw, stamp in _timed_lines(feeds):
        span.see(name, raw, stamp, epoch_micros(stamp))
    return span.result(feeds)


def _timed_lines(feeds: Path) -> Iterator[tuple[str, bytes, datetime]]:
    """Each feed's lines that record_time finds a time in, with it, streamed."""
    for name in FEEDS:
        path = feeds / f"{name}.jsonl"
        if path.exists():
            with path.open("rb") as handle:
                for raw in handle:
                    if (stamp := record_time(raw)) is not None:
                        yield name, raw, stamp


# How many of the feeds' earliest and latest timed lines SpanFinder keeps to check against their
# contract. A line the contract rejects says nothing about when the feed runs, and a whole line is
# checked only here, so the span costs a reading of each line's time, not a check of every line.
SPAN_CANDIDATES = 16
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def epoch_micros(stamp: datetime) -> int:
    """A time as whole microseconds since 1970 (UTC): one instant, one number, whatever its offset."""
    return (stamp - EPOCH) // MICROSECOND


class SpanFinder:
    """feed_span in one pass over lines read elsewhere too (shared/local/parts.py): ``see`` each
    line whose time record_time read, then ``result``. Only the SPAN_CANDIDATES earliest and latest
    are checked against their feed's contract, earliest (latest) first; if every one of an end's is
    rejected, and there were more lines, that end is found again by reading the files through."""

    def __init__(self) -> None:
        self.seen = 0
        # Heaps of (order, feed, line, time), each heap's first entry the one to give way: the latest
        # lines by time, then the earlier line first; the earliest by time negated, the same.
        self._late: list[tuple[tuple[int, int], str, bytes, datetime]] = []
        self._early: list[tuple[tuple[int, int], str, bytes, datetime]] = []

    def see(self, feed: str, raw: bytes, stamp: datetime, micros: int) -> None:
        """One line, its time and that time's epoch_micros (the caller's, which may keep it too)."""
        self.seen += 1
        # Of lines at one instant, the first in the files wins at either end, as in the one-line-at-a-
        # time reading (which moved an end only for a strictly later or earlier time): the same
        # instant may be written with another UTC offset, and the run's clock shows the one it was.
        late, early = (micros, -self.seen), (-micros, -self.seen)
        for heap, key in ((self._late, late), (self._early, early)):
            if len(heap) < SPAN_CANDIDATES:
                heapq.heappush(heap, (key, feed, raw, stamp))
            elif key > heap[0][0]:
                heapq.heapreplace(heap, (key, feed, raw, stamp))

    def result(self, feeds: Path) -> tuple[datetime | None, datetime | None]:
        ends: list[datetime | None] = []
        for heap in (self._early, self._late):
            found = next(
                (stamp for _, feed, raw, stamp in sorted(heap, reverse=True) if accepts(feed, raw)), None
            )
            if found is None and self.seen > len(heap):  # more lines than were kept: read them all
                return _span_checking_every_line(feeds)
            ends.append(found)
        return ends[0], ends[1]


def _span_checking_every_line(feeds: Path) -> tuple[datetime | None, datetime | None]:
    """feed_span checking each line that would move an end against its contract: slow where the
    feeds are in time order (nearly every line moves the latest), but only needed where SpanFinder's
    candidates at one end were every one rejected."""
    first: datetime | None = None
    last: datetime | None = None
    for name, raw, stamp in _timed_lines(feeds):
        if last is not None and first is not None and first <= stamp <= last:
            continue
        if not accepts(name, raw):
            continue  # a line the contract rejects says nothing about when the feed runs
        first = stamp if first is None or stamp < first else first
        last = stamp if last is None or stamp > last else last
    return first, last


def _file(path: Path, what: str) -> None:
    if path.is_dir():
        raise RunError(f"{what} is a folder, not a file: {path}")
    if not path.is_file():
        raise RunError(f"{what} file not found: {path}")


def check_inputs(request: RunRequest) -> None:
    if request.feeds.exists() and not request.feeds.is_dir():
        raise RunError(f"--feeds is a file, not a folder: {request.feeds}")
    if not request.feeds.is_dir():
        raise RunError(f"feeds folder not found: {request.feeds}")
    files = [request.feeds / f"{name}.jsonl" for name in FEEDS]
    for path in files:
        if path.exists() and not path.is_file():
            raise RunError(f"feed is not a file: {path}")
    if not any(path.is_file() for path in files):
        # Nothing to replay, and no feed time to start the clock at: not a feeds folder.
        raise RunError(f"no feed files in {request.feeds}: expected niche.jsonl and/or storm.jsonl")
    _file(request.officers, "officer directory")
    if request.policy is not None:
        _file(request.policy, "policy")
    if request.delivery_reports is not None:
        _file(request.delivery_reports, "delivery reports")
    if request.out.exists() and not request.out.is_dir():
        raise RunError(f"output path exists and is not a folder: {request.out}")
    if (above := file_in_the_way(request.out)) is not None:
        raise RunError(f"output folder cannot be made under a file: {request.out} ({above} is a file)")


class _Made:
    """What a run adds to its --out folder, to be taken away again if the run fails: a rerun into
    the same folder must not start from a failed run's state (state.db, queues.db) as if it were
    a finished one's. What was there before (an earlier run's state, which a later run continues
    on purpose) is left where it is."""

    def __init__(self, out: Path) -> None:
        self.out = out.absolute()
        missing = [folder for folder in (self.out, *self.out.parents) if not folder.exists()]
        self.top = missing[-1] if missing else None  # the highest folder the run will make
        self.before = set() if self.top is not None else {entry.name for entry in self.out.iterdir()}

    def undo(self) -> None:
        if self.top is not None:
            shutil.rmtree(self.top, ignore_errors=True)
            return
        for entry in self.out.iterdir():
            if entry.name in self.before:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def run(request: RunRequest, on_progress: Progress | None = None) -> dict[str, Any]:
    """Replay the feeds through the local host and write the seven output files; returns the summary.

    A run that fails (unusable inputs, or an error part-way) takes away what it added to the out
    folder (state.db, queues.db and any output file), so that nothing of it is mistaken for a
    run's state later; what was in the folder before it is left."""
    return run_with_parts(request, on_progress)[0]


def run_with_parts(
    request: RunRequest, on_progress: Progress | None = None
) -> tuple[dict[str, Any], list[Any]]:
    """``run``, and what ``request.part_result`` returned in each process (none in one process)."""
    check_inputs(request)
    made = _Made(request.out)
    try:
        if request.start and request.end:
            run_span(request, (None, None))  # an --end before --start is said before any reading
        if request.processes > 1:  # the span comes from the parting's reading of the feeds
            from shared.local.parts import run_in_parts

            return run_in_parts(request, on_progress)
        start, end = run_span(request, feed_span(request.feeds))
        return _run(request, start, end, on_progress), []
    except BaseException:
        made.undo()
        raise


def run_span(request: RunRequest, span: tuple[datetime | None, datetime | None]) -> tuple[datetime, datetime]:
    """The run's start and end: the request's, else from the feeds' span (feed_span's)."""
    first, last = span
    start = request.start or first or datetime.now(UTC)
    end = request.end or ((last or start) + SETTLE)
    if end < start:
        raise RunError(f"--end {end.isoformat()} is before --start {start.isoformat()}")
    return start, end


def settings_of(request: RunRequest) -> Settings:
    """The app settings of a local run (the environment's, and what the request says)."""
    # --policy wins over the JOURNEY_POLICY_PATH app setting; without either, the shipped policy.
    policy = {} if request.policy is None else {"JOURNEY_POLICY_PATH": request.policy}
    return load_settings(
        LOCAL_DATA_DIR=request.out,
        LOCAL_FEEDS_DIR=request.feeds,
        LOCAL_OFFICERS_FILE=request.officers,
        **policy,
    )


def _run(request: RunRequest, start: datetime, end: datetime, on_progress: Progress | None) -> dict[str, Any]:
    def outputs(services: Services, broker: SqliteQueueBroker, stats: HostStats) -> dict[str, Any]:
        return write_outputs(
            request.out, cast(ExportableStore, services.tables), broker, stats, services.policy
        )

    summary, resumed = replay(request, start, end, on_progress, outputs)
    summary["clock"] = {"start": start.isoformat(), "end": end.isoformat()}
    summary["resumed"] = resumed  # feed -> records its cursor had read before this run
    (request.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def replay(
    request: RunRequest,
    start: datetime,
    end: datetime,
    on_progress: Progress | None,
    finish: Callable[[Services, SqliteQueueBroker, HostStats], _T],
    give: Callable[[str, JsonlFeedReader], None] | None = None,
    number_from: int | None = None,
) -> tuple[_T, dict[str, int]]:
    """The feeds through the local host from ``start`` to ``end``, then ``finish`` with the run's
    state still open; its result, and what the feeds' cursors had read before (``_resumed``).
    ``give`` (feed, its reader): sets up which lines are this process's to read; ``number_from``:
    the first sequence number of a new queue file (both for a part of a run in several processes)."""
    try:
        settings = settings_of(request)
        clock = SimulatedClock(start)
        policy_read = load_policy(settings.JOURNEY_POLICY_PATH)  # first: a bad policy opens nothing
        plan = DeliveryPlan.read(request.delivery_reports) if request.delivery_reports else None
        broker = bootstrap.embedded_queues(settings, clock)
        services = bootstrap.bootstrap(
            settings, clock=clock, policy=policy_read, publisher=broker, files_only=True, delivery_plan=plan
        )
    except ValueError as exc:
        raise RunError(str(exc).splitlines()[0]) from exc
    try:
        resumed = _resumed(services)  # before anything runs: a cursor left by another feed file
    except (FeedSourceMismatch, AzureError) as exc:
        broker.close()
        raise RunError(_cannot_start(request, settings, exc)) from exc
    if number_from is not None:
        broker.number_from(number_from)
    if give is not None:
        for feed, reader in services.feeds.items():
            if not isinstance(reader, JsonlFeedReader):
                broker.close()
                raise RunError(f"a run in several processes reads feed files, not {type(reader).__name__}")
            give(feed, reader)
    if request.prepare is not None:
        request.prepare(services, broker)
    bootstrap.install(services)
    try:
        app = importlib.import_module("function_app").app
        host = LocalHost(app, broker, settings, clock.now)
        host.profiler = request.profiler
        advanced: Callable[[datetime], None] | None = None
        if on_progress is not None:
            counts = _Counting(services, request.out / "outbox.jsonl")
            on_progress(start, start, end, counts)
            advanced = lambda t: on_progress(start, t, end, counts)  # noqa: E731
        stats = host.run_simulated(clock, end, advanced)
        result = finish(services, broker, stats)
    finally:
        bootstrap.install(None)
        broker.close()
    return result, resumed


def _resumed(services: Services) -> dict[str, int]:
    """Feed -> the records its cursor had read: the feed files this state read before (only what
    is new in them is read now); FeedSourceMismatch if a cursor was left by another feed file."""
    cursors = {feed: stored_cursor(feed, services) for feed in FEEDS}
    return {feed: int(cursor.properties.get("records", 0)) for feed, cursor in cursors.items() if cursor}


def _cannot_start(request: RunRequest, settings: Settings, error: FeedSourceMismatch | AzureError) -> str:
    if isinstance(error, AzureError):  # the first use of Table Storage: the account is not there
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"cannot reach the state in Table Storage (StateStorage): {reason}"
    feed = error.feed
    if settings.uses_table_storage():
        where = f"Table Storage (STATE_TABLE_PREFIX {settings.STATE_TABLE_PREFIX!r})"
        way_out = "set STATE_TABLE_PREFIX to a new name (letters and digits)"
    else:
        where = str(request.out / "state.db")
        way_out = "give --out a new folder"
    return (
        f"the state in {where} holds a {feed} cursor left by another {feed} feed file (after "
        f"{error.records:,} of its records); replaying {request.feeds / f'{feed}.jsonl'} from it "
        f"would skip records, so nothing was run. To replay into state of its own, {way_out}"
    )


def _shows_a_page(journey: Journey) -> bool:
    """A victim still hearing from us about an open case, who was sent something: their page is
    the one to show a test team first."""
    victim = journey.victim
    return (
        journey.role == "victim"
        and victim is not None
        and not victim.preferences.opted_out
        and journey.case_status != "finalised"
        and any(duty.handed_at is not None for duty in journey.duties.values())
    )


def _jsonl(path: Path, rows: Any) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def _as_json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _tasks(tables: ExportableStore) -> Iterator[dict[str, Any]]:
    """tasks.jsonl: the officer tasks, with what a person wrote to their officer."""
    for entity in tables.export(TASKS):
        yield json.loads(entity.properties["task"])


def _quarantined(tables: ExportableStore) -> Iterator[dict[str, Any]]:
    """quarantine.jsonl: the rejected feed records, each with its row key (what the ops commands
    name it by: quarantine list, quarantine reingest --row)."""
    for e in tables.export(QUARANTINE):
        yield {
            "feed": e.partition_key,
            "row_key": e.row_key,
            "record": e.properties["record"],
            "error": e.properties["error"],
            # A line too large to keep whole is kept by reference (its size and digest).
            **{k: e.properties[k] for k in ("record_bytes", "record_sha256") if k in e.properties},
        }


def _dead_letters(broker: Any) -> Iterator[dict[str, Any]]:
    """dead-letter.jsonl: the dead-lettered messages, bodies and all."""
    for d in broker.dead_letters():
        yield {
            "queue": d.queue,
            "message": _as_json(d.body),
            "reason": f"{d.reason}: {d.description}".rstrip(": "),
        }


def _page_to_show(tables: ExportableStore, policy: Policy | None) -> dict[str, str] | None:
    """summary.json's ``page``: one victim's own page that opens now (``make demo`` prints it)."""
    links = TableLinks(tables)
    for entity in tables.export(JOURNEYS):
        journey = journey_from(entity)
        if _shows_a_page(journey):
            found = links.find(journey.crime_reference, journey.person_id)
            if found is not None:
                return {"link_id": found, "link": link_url(policy or Policy(), found)}
    return None


def rewrite_outputs_after_erasure(
    out: Path, tables: ExportableStore, broker: Any, policy: Policy | None
) -> list[str]:
    """A run folder's output files that can hold a person's data, written again from the state
    as ``run`` writes them, once a person is erased from it (``python -m shared.ops erase``):
    tasks.jsonl (what they wrote to their officer), quarantine.jsonl (feed records),
    dead-letter.jsonl (message bodies), and in summary.json the page to show (a personal link)
    and those files' counts. audit.jsonl and deliveries.jsonl hold ids, codes and times;
    outbox.jsonl and officer-mail.jsonl stand for what the providers received and are not our
    store. Only files a run wrote are written; returns their names."""
    rows: dict[str, Callable[[], Iterator[dict[str, Any]]]] = {
        "tasks.jsonl": lambda: _tasks(tables),
        "quarantine.jsonl": lambda: _quarantined(tables),
        "dead-letter.jsonl": lambda: _dead_letters(broker),
    }
    counts = {name: _jsonl(out / name, read()) for name, read in rows.items() if (out / name).is_file()}
    written = list(counts)
    path = out / "summary.json"
    if path.is_file():
        summary = json.loads(path.read_text(encoding="utf-8"))
        if "tasks.jsonl" in counts:
            summary["tasks"] = counts["tasks.jsonl"]
        if "quarantine.jsonl" in counts:
            summary["records"]["quarantined"] = counts["quarantine.jsonl"]
        if "dead-letter.jsonl" in counts:
            summary["dead_letters"] = counts["dead-letter.jsonl"]
        summary["page"] = _page_to_show(tables, policy)
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        written.append(path.name)
    return written


def write_outputs(
    out: Path, tables: ExportableStore, broker: Any, stats: HostStats, policy: Policy | None = None
) -> dict[str, Any]:
    """Export tasks, audit, quarantine and dead letters, count what was sent, and build the summary."""
    task_reasons: Counter[str] = Counter()

    def tasks() -> Any:
        for task in _tasks(tables):
            task_reasons[task["reason"].split(":")[0]] += 1
            yield task

    task_count = _jsonl(out / "tasks.jsonl", tasks())
    # Messages sent again on the other channel after a delivery failure: one audit row per duty
    # the new message carries, so counted once per recipient and decision time.
    fallbacks: set[tuple[str, str, str]] = set()

    def audit() -> Any:
        for e in tables.export(AUDIT):
            row = {
                "at": e.properties["at"].isoformat(),
                "crime_reference": e.partition_key,
                "person_id": e.properties["person_id"],
                "duty": e.properties["duty"],
                "decision": e.properties["decision"],
                "reason": e.properties["reason"],
            }
            if row["decision"] == "fallback" and row["reason"] == DELIVERY_FAILED:
                fallbacks.add((row["crime_reference"], row["person_id"], row["at"]))
            yield row

    _jsonl(out / "audit.jsonl", audit())
    quarantined = _jsonl(out / "quarantine.jsonl", _quarantined(tables))
    dead = _jsonl(out / "dead-letter.jsonl", _dead_letters(broker))
    outbox = out / "outbox.jsonl"
    if not outbox.exists():
        outbox.touch()
    channels: Counter[str] = Counter()
    templates: Counter[str] = Counter()
    segments = 0
    with outbox.open(encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            channels[entry["channel"]] += 1
            templates[entry["template"]] += 1
            segments += int(entry.get("segments") or 0)

    officer_mail = out / "officer-mail.jsonl"
    if not officer_mail.exists():
        officer_mail.touch()
    mail_kinds: Counter[str] = Counter()
    with officer_mail.open(encoding="utf-8") as handle:
        for line in handle:
            mail_kinds[json.loads(line)["kind"]] += 1

    delivery: Counter[str] = Counter()

    def deliveries() -> Any:
        # What the provider reported of each message handed over (the ledger's final statuses).
        for entity in tables.export(MESSAGES):
            entry = ledger_from(entity)
            if entry.status == LedgerStatus.DELIVERED:
                delivery["delivered"] += 1
            elif entry.status == LedgerStatus.UNDELIVERED:
                delivery["failed"] += 1
            elif entry.status == LedgerStatus.SENT:
                delivery["pending"] += 1
            if entry.delivery_status is not None and entry.reported_at is not None:
                yield {
                    "message_id": entry.message_key,
                    "channel": entry.channel,
                    "status": entry.delivery_status,
                    "at": entry.reported_at.isoformat(),
                }

    _jsonl(out / "deliveries.jsonl", deliveries())

    duties = Counter[str]()
    for entity in tables.export(JOURNEYS):
        journey = journey_from(entity)
        for duty in journey.duties.values():
            if duty.due_by is not None:
                duties["due"] += 1
            duties[duty.compliance.value] += 1
            duties["status:" + duty.status.value] += 1
    met, breached = duties["met"], duties["breached"]
    records = {feed: 0 for feed in FEEDS}
    for feed in FEEDS:
        cursor = tables.get(CURSORS, feed, "cursor")
        records[feed] = int(cursor.properties.get("records", 0)) if cursor else 0
    return {
        "records": {**records, "quarantined": quarantined},
        "messages": {"email": channels["email"], "sms": channels["sms"]},
        "tasks": task_count,
        "officer_mail": {"task": mail_kinds["task"], "reminder": mail_kinds["reminder"]},
        "delivery": {
            **{key: delivery[key] for key in ("delivered", "failed", "pending")},
            "fallbacks": len(fallbacks),
            "tasks": task_reasons[DELIVERY_FAILED],
        },
        "duties": {"due": duties["due"], "met": met, "breached": breached},
        "compliance": round(met / (met + breached), 4) if met + breached else None,
        "dead_letters": dead,
        "messages_by_template": dict(sorted(templates.items())),
        "tasks_by_reason": dict(sorted(task_reasons.items())),
        "duties_pending": duties["pending"],
        "duties_by_status": {
            k.split(":")[1]: v for k, v in sorted(duties.items()) if k.startswith("status:")
        },
        "sms_segments": segments,
        "page": _page_to_show(tables, policy),
        "invocations": dict(sorted(stats.invocations.items())),
        "failures": dict(sorted(stats.failures.items())),
        "step_cpu_seconds": {k: round(v, 3) for k, v in sorted(stats.cpu_seconds.items())},
        "step_wall_seconds": {k: round(v, 3) for k, v in sorted(stats.wall_seconds.items())},
        "host_settle_cpu_seconds": round(stats.settle_cpu_seconds, 3),
    }
