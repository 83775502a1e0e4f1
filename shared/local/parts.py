"""A local run in several processes at once (``run --processes N``).

Nothing a step does for one crime reads or writes another crime's state: a crime's journeys,
safety facts, ledger, tasks and queue sessions are keyed by the crime (README, ``--processes``).
So the feeds are split by crime group, a crime with every incident linked to it (by either
record, anywhere in the feeds), and each process replays its groups through the same functions
on its own state and queues, over the whole run's simulated span. Each reads the same feed
files, passing over the lines that are not its own, so a record's byte position, its quarantine
row and the feed cursor's digest are what one process would make. When all are done their
state, queues and files are merged into the run's folder, which then reads as one run's:
``serve``, the ops commands and a later one-process run go on from it.

What differs from one process: the timers (the feeds' ticks, retention) run in every process,
so their invocation counts add up; and two things falling due at the same simulated instant may
be taken in another order, which can change what follows from them (a supervisor's reminder).
"""

from __future__ import annotations

import bisect
import ctypes
import heapq
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import sys
import time
import traceback
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, cast

from shared import bootstrap
from shared.adapters.jsonl_feed import JsonlFeedReader, line_text, time_of
from shared.adapters.policy_file import load_policy
from shared.adapters.sqlite_queue import SqliteQueueBroker
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import CURSORS, OFFICERS
from shared.bootstrap import Services
from shared.contracts.feeds import FEED_MODELS
from shared.local.host import HostStats, SimulatedClock
from shared.local.run import (
    EPOCH,
    FEEDS,
    MICROSECOND,
    Progress,
    RunCounts,
    RunError,
    RunRequest,
    SpanFinder,
    epoch_micros,
    replay,
    run_span,
    settings_of,
    write_outputs,
)
from shared.ports import Entity, ExportableStore

# Part k's queue file numbers its messages from k * NUMBERS + 1: a sequence number kept in a
# journey (a deadline check to cancel) stays its message's once the files are merged.
NUMBERS = 1 << 40
# How often a part counts its feed records and messages for the progress lines (wall seconds).
COUNT_EVERY = 2.0
PARTS_FOLDER = "parts"
# A line's part is kept in a byte (FeedLines.parts).
MAX_PROCESSES = 255
# The files a part writes as it goes (the providers' stand-ins), merged in time order.
SENT_FILES = ("outbox.jsonl", "officer-mail.jsonl")


def _key(feed: str, record: Any) -> tuple[str | None, list[str]]:
    """A record's own key (a crime reference, an incident number) and the keys it links to."""
    if not isinstance(record, dict):
        return None, []
    if feed == "niche":
        own, linked = record.get("crime_reference"), record.get("incident_numbers")
        links = [n for n in linked if isinstance(n, str)] if isinstance(linked, list) else []
    else:
        own, crime = record.get("incident_number"), record.get("crime_reference")
        links = [crime] if isinstance(crime, str) else []
    return (f"{feed}:{own}" if isinstance(own, str) else None), [
        f"{'storm' if feed == 'niche' else 'niche'}:{n}" for n in links
    ]


def _parse(feed: str, text: str) -> Any:
    """A line's record as ingest will read it: JSON, or where the standard library refuses a line
    the feed's model might accept, the model's reading of it (rare: only then is it validated)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return FEED_MODELS[feed].model_validate_json(text).model_dump()
    except (ValueError, RecursionError):  # pydantic's ValidationError is a ValueError
        return None


# A line's time in FeedLines.times when record_time finds none (it shows at once).
NO_TIME = -(1 << 63)


@dataclass(frozen=True)
class FeedLines:
    """A feed file's non-blank lines as the parting read them, in file order: where each starts,
    its record_time (epoch microseconds, or NO_TIME) and the part that takes it."""

    starts: array[int]
    times: array[int]
    parts: bytes


@dataclass(frozen=True)
class Parting:
    """Which process takes each crime group: ``part[key]`` for every crime and incident key, and
    ``lines[feed]`` for every line; with the feeds' default span (run.feed_span's), from the same
    reading."""

    parts: int
    part: dict[str, int]
    records: tuple[int, ...]  # feed lines each part takes (with the unkeyed ones, by their bytes)
    lines: dict[str, FeedLines]
    span: tuple[datetime | None, datetime | None]

    @classmethod
    def of(cls, feeds: Path, parts: int) -> Parting:
        """Crime groups by union-find over both feed files, each group given whole to the part
        with the fewest lines so far, largest groups first (the same files, the same parting).
        Each line is read as JSON once, here: the parts look up its time and part by position."""
        if not 1 <= parts <= MAX_PROCESSES:
            raise ValueError(f"parts must be 1 to {MAX_PROCESSES}, not {parts}")
        parent: dict[str, str] = {}

        def find(key: str) -> str:
            parent.setdefault(key, key)
            root = key
            while parent[root] != root:
                root = parent[root]
            while parent[key] != root:  # path compression
                parent[key], key = root, parent[key]
            return root

        lines: dict[str, int] = {}
        unkeyed = [0] * parts
        span = SpanFinder()
        read: dict[str, tuple[array[int], array[int], list[str | int]]] = {}
        for feed, start, raw, text in _lines(feeds):
            starts, times, owners = read.setdefault(feed, (array("q"), array("q"), []))
            # A last line not yet ended counts for its crime group and the span, but is not indexed:
            # its writer may still be writing it, so the parts read it as they find it.
            ended = raw.endswith(b"\n")
            try:
                record = json.loads(raw)  # as record_time reads it
            except (ValueError, RecursionError):
                record, stamp = None, None
            else:
                stamp = time_of(record)
            if record is None or not raw.isascii():
                # Its key as ingest reads the line, from its text: bytes that are not ASCII may read
                # otherwise as bytes (json.loads takes a byte order mark, another encoding).
                record = _parse(feed, text)
            micros = NO_TIME if stamp is None else epoch_micros(stamp)
            if ended:
                starts.append(start)
                times.append(micros)
            if stamp is not None:
                span.see(feed, raw, stamp, micros)
            own, links = _key(feed, record)
            if own is None:
                spread = _unkeyed_part(text, parts)
                if ended:
                    owners.append(spread)
                unkeyed[spread] += 1
                continue
            own = sys.intern(own)
            if ended:
                owners.append(own)
            lines[own] = lines.get(own, 0) + 1
            root = find(own)
            for link in links:
                other = find(link)
                if other != root:  # the smaller key stays the root: the same files, the same roots
                    low, high = sorted((root, other))
                    parent[high] = low
                    root = low
        size: dict[str, int] = {}
        for key in parent:
            root = find(key)
            size[root] = size.get(root, 0) + lines.get(key, 0)
        load = list(unkeyed)
        part_of_root: dict[str, int] = {}
        for root in sorted(size, key=lambda r: (-size[r], r)):
            lightest = min(range(parts), key=lambda k: (load[k], k))
            part_of_root[root] = lightest
            load[lightest] += size[root]
        part = {key: part_of_root[find(key)] for key in parent}
        feed_lines = {
            feed: FeedLines(starts, times, bytes(o if isinstance(o, int) else part[o] for o in owners))
            for feed, (starts, times, owners) in read.items()
        }
        return cls(parts, part, tuple(load), feed_lines, span.result(feeds))

    def give(self, part: int) -> Callable[[str, JsonlFeedReader], None]:
        """How part ``part`` sets up each feed's reader: the lines the parting read, by position,
        and for a line added since, by its key."""

        def give(feed: str, reader: JsonlFeedReader) -> None:
            reader.keep = partial(_Keep(self, part), feed)
            if feed in self.lines:
                reader.lines = _Lines(self.lines[feed], part)

        return give


class _Keep:
    """Whether a feed line (its text, as the reader yields it) is part ``part``'s to read: for a
    line the parting did not read (the file grew since), by the crime group of its key."""

    def __init__(self, parting: Parting, part: int) -> None:
        self.parting, self.part = parting, part

    def __call__(self, feed: str, text: str) -> bool:
        own, _ = _key(feed, _parse(feed, text))
        if own is None:
            return _unkeyed_part(text, self.parting.parts) == self.part
        # A key the parting never saw: the first part takes it.
        return self.parting.part.get(own, 0) == self.part


class _Lines:
    """A feed's lines as the parting read them, for part ``part``'s reader (KnownLines)."""

    def __init__(self, lines: FeedLines, part: int) -> None:
        self.lines, self.part = lines, part
        self._next = 0  # the reader goes through the file in order: the next line is looked at first

    def at(self, offset: int) -> tuple[datetime | None, bool] | None:
        starts = self.lines.starts
        index = self._next
        if index >= len(starts) or starts[index] != offset:
            index = bisect.bisect_left(starts, offset)
            if index >= len(starts) or starts[index] != offset:
                return None  # a blank line, or one added since
        self._next = index + 1
        micros = self.lines.times[index]
        stamp = None if micros == NO_TIME else EPOCH + micros * MICROSECOND
        return stamp, self.lines.parts[index] == self.part


def _unkeyed_part(text: str, parts: int) -> int:
    """A line with no key to group by (it will be quarantined): spread by its text."""
    return zlib.crc32(text.encode("utf-8", errors="surrogatepass")) % parts


def _lines(feeds: Path) -> Iterator[tuple[str, int, bytes, str]]:
    """Each feed's lines, where each starts, and its text as the reader yields it (line_text); blank
    ones left out as it leaves them out."""
    for feed in FEEDS:
        path = feeds / f"{feed}.jsonl"
        if path.is_file():
            with path.open("rb") as handle:
                offset = 0
                for raw in handle:
                    if text := line_text(raw):
                        yield feed, offset, raw, text
                    offset += len(raw)


# --- the processes --------------------------------------------------------------------------


class _Board:
    """Each part's simulated now and, every COUNT_EVERY seconds, its counts, in shared memory."""

    def __init__(self, cells: Any, part: int) -> None:
        self.cells, self.base = cells, 3 * part
        self.due = 0.0

    def __call__(
        self, start: datetime, now: datetime, end: datetime, counts: Callable[[], RunCounts]
    ) -> None:
        at = time.monotonic()
        if at >= self.due or now >= end:
            self.due = at + COUNT_EVERY
            seen = counts()
            self.cells[self.base + 1] = seen.feed_records
            self.cells[self.base + 2] = seen.messages
        self.cells[self.base] = now.timestamp()


def _part(
    request: RunRequest,
    start: datetime,
    end: datetime,
    part: int,
    parting: Parting,
    cells: Any,
    conn: Connection,
    parent: int,
) -> None:
    """One part, in its own process: its result (or its error, one line) goes back on ``conn``."""
    _end_with(parent)
    try:

        def finish(services: Services, broker: SqliteQueueBroker, stats: HostStats) -> tuple[HostStats, Any]:
            extra = request.part_result() if request.part_result is not None else None
            close = getattr(services.tables, "close", None)
            if close is not None:
                close()
            return stats, extra

        folder = _folder(request.out, part)
        own = replace(request, out=folder, processes=1, part_result=None)
        (stats, extra), _ = replay(
            own,
            start,
            end,
            _Board(cells, part),
            finish,
            give=parting.give(part),
            number_from=part * NUMBERS + 1,
        )
        conn.send(("done", stats, extra))
    except RunError as exc:
        conn.send(("error", str(exc), None))
    except BaseException as exc:
        # Straight to the file descriptor, not through sys.stderr: a thread of the parent (the bench
        # driver's heartbeat) may have held its buffer's lock at the fork, which nothing releases here.
        os.write(2, traceback.format_exc().encode("utf-8", errors="replace"))
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", None))
    finally:
        conn.close()


def _end_with(parent: int) -> None:
    """This process ends when ``parent`` does, however it ends (a kill leaves no part running)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's own handling is all there is
        return
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def _folder(out: Path, part: int) -> Path:
    return out / PARTS_FOLDER / str(part + 1)


def run_in_parts(request: RunRequest, on_progress: Progress | None) -> tuple[dict[str, Any], list[Any]]:
    """The run in ``request.processes`` processes; its summary (as one process writes it, with
    ``processes``), and each part's ``part_result``."""
    processes = request.processes
    if processes > MAX_PROCESSES:
        raise RunError(f"--processes {processes}: at most {MAX_PROCESSES}")
    for name in ("state.db", "queues.db"):
        if (request.out / name).exists():
            raise RunError(
                f"--processes {processes} replays into new state only, and {request.out / name} is an "
                "earlier run's: give --out a new folder, or continue that run in one process"
            )
    try:
        settings = settings_of(request)
    except ValueError as exc:
        raise RunError(str(exc).splitlines()[0]) from exc
    if settings.uses_table_storage():
        raise RunError(f"--processes {processes} needs the embedded state (StateStorage is set)")
    # A parts folder here is a run in several processes stopped before it merged (killed): its
    # state cannot be gone on from, and holds personal data. It is taken away; so is this run's,
    # if this run fails.
    shutil.rmtree(request.out / PARTS_FOLDER, ignore_errors=True)
    try:
        parting = Parting.of(request.feeds, processes)
        start, end = run_span(request, parting.span)
        return _run_parts(request, start, end, parting, on_progress)
    except BaseException:
        shutil.rmtree(request.out / PARTS_FOLDER, ignore_errors=True)
        raise


def _run_parts(
    request: RunRequest, start: datetime, end: datetime, parting: Parting, on_progress: Progress | None
) -> tuple[dict[str, Any], list[Any]]:
    processes = request.processes
    context = multiprocessing.get_context("fork")  # a child takes the request as it is (its hooks too)
    cells = context.Array("d", 3 * processes, lock=False)
    for part in range(processes):
        cells[3 * part] = start.timestamp()
        _folder(request.out, part).mkdir(parents=True, exist_ok=True)
    running: list[tuple[Any, Connection]] = []
    results: dict[int, tuple[str, Any, Any]] = {}
    try:
        for part in range(processes):
            ours, theirs = context.Pipe(duplex=False)
            child = context.Process(
                target=_part,
                args=(request, start, end, part, parting, cells, theirs, os.getpid()),
                name=f"part-{part + 1}",
            )
            child.start()
            theirs.close()
            running.append((child, ours))
        _watch(running, results, cells, start, end, on_progress)
    finally:
        for child, _ in running:
            if child.is_alive():
                child.terminate()
            child.join()
    # The first part to fail says why (the others were stopped); one that died says nothing.
    for part, (status, value, _) in results.items():
        if status != "done":
            raise RunError(f"part {part + 1} of {processes} failed: {value}")
    for part in range(processes):
        if part not in results:
            raise RunError(f"part {part + 1} of {processes} failed: its process ended without a result")
    stats = [cast(HostStats, results[part][1]) for part in range(processes)]
    summary = merge(request, [_folder(request.out, part) for part in range(processes)], stats)
    summary["clock"] = {"start": start.isoformat(), "end": end.isoformat()}
    summary["resumed"] = {}
    summary["processes"] = {"count": processes, "feed_lines": list(parting.records)}
    (request.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(request.out / PARTS_FOLDER)
    return summary, [results[part][2] for part in range(processes)]


def _watch(
    running: Sequence[tuple[Any, Connection]],
    results: dict[int, tuple[str, Any, Any]],
    cells: Any,
    start: datetime,
    end: datetime,
    on_progress: Progress | None,
) -> None:
    """Until every part has sent its result (or one has failed): progress from the board."""
    parts = len(running)

    def counts() -> RunCounts:
        return RunCounts(
            int(sum(cells[3 * k + 1] for k in range(parts))), int(sum(cells[3 * k + 2] for k in range(parts)))
        )

    # A part's result comes on its pipe; a part that dies without one (killed) closes the pipe.
    waiting = {conn: part for part, (_, conn) in enumerate(running)}
    if on_progress is not None:
        on_progress(start, start, end, counts)
    while waiting:
        for ready in wait(list(waiting), timeout=1.0):
            part = waiting.pop(cast(Connection, ready))
            try:
                results[part] = cast(Connection, ready).recv()
            except EOFError:
                results[part] = ("error", "its process ended without a result", None)
            if results[part][0] != "done":
                return  # the others are stopped: the run has failed
        if on_progress is not None:
            now = min(cells[3 * k] for k in range(parts))
            on_progress(start, min(end, datetime.fromtimestamp(now, UTC)), end, counts)


# --- merging the parts ------------------------------------------------------------------------


def merge(request: RunRequest, folders: Sequence[Path], stats: Sequence[HostStats]) -> dict[str, Any]:
    """The parts' state, queues and files made one run's in ``request.out``; the run's summary."""
    out = request.out
    _merge_state(folders, out / "state.db")
    settings = settings_of(request)
    _merge_queues(folders, out / "queues.db")
    for name in SENT_FILES:
        _merge_in_time_order([folder / name for folder in folders], out / name)
    for folder in folders:
        if (folder / "blobs").is_dir():
            shutil.copytree(folder / "blobs", out / "blobs", dirs_exist_ok=True)
    tables = SqliteTableStore(out / "state.db")
    broker = bootstrap.embedded_queues(settings, SimulatedClock(datetime.now(UTC)))
    try:
        return write_outputs(
            out,
            cast(ExportableStore, tables),
            broker,
            _added(stats),
            load_policy(settings.JOURNEY_POLICY_PATH),
        )
    finally:
        broker.close()
        tables.close()


def _added(stats: Sequence[HostStats]) -> HostStats:
    total = HostStats()
    for one in stats:
        for mine, theirs in (
            (total.invocations, one.invocations),
            (total.failures, one.failures),
            (total.cpu_seconds, one.cpu_seconds),
            (total.wall_seconds, one.wall_seconds),
        ):
            for name, value in theirs.items():
                mine[name] = mine.get(name, 0) + value  # type: ignore[assignment]
        total.settle_cpu_seconds += one.settle_cpu_seconds
    return total


def _no_clashes(db: sqlite3.Connection, what: str, sql: str, *args: Any) -> None:
    """Fails the run if ``sql`` finds rows of the attached part already in the merged file (a
    crime group's state in two parts: a fault of the parting, never to be merged over)."""
    clashes = [tuple(row) for row in db.execute(sql, args).fetchall()]
    if clashes:
        raise RunError(f"the parts of the run share {what}: {clashes}")


def _merge_state(folders: Sequence[Path], into: Path) -> None:
    """Every part's rows in one state file. No row may be in two parts but a feed's cursor (each
    part's is where it stopped reading: the merged one is the furthest, its counts added up) and an
    officer's cached details (the same directory's). The first part's file becomes the run's
    (moved, not copied: a force-year's state is gigabytes), and the others' rows go into it."""
    cursors: dict[str, list[Entity]] = {}
    _move_database(folders[0] / "state.db", into)
    for path in (into, *(folder / "state.db" for folder in folders[1:])):
        part = SqliteTableStore(path)
        try:
            for entity in part.export(CURSORS):
                cursors.setdefault(entity.partition_key, []).append(entity)
        finally:
            part.close()
    db = _merging(into)
    try:
        for _ in _attached(db, folders[1:], "state.db"):
            _no_clashes(
                db,
                "rows they must not (table, rows)",
                "SELECT p.tbl, count(*) FROM part.entities p JOIN main.entities m "
                "ON m.tbl = p.tbl AND m.pk = p.pk AND m.rk = p.rk WHERE p.tbl NOT IN (?, ?) GROUP BY p.tbl",
                CURSORS,
                OFFICERS,
            )
            # Only an officer's row can be in both (checked above): the one fetched last is kept.
            db.execute(
                "INSERT INTO main.entities (tbl, pk, rk, etag, props) SELECT tbl, pk, rk, etag, props "
                "FROM part.entities WHERE tbl <> ? ORDER BY rowid ON CONFLICT (tbl, pk, rk) DO UPDATE "
                "SET etag = excluded.etag, props = excluded.props WHERE "
                "json_extract(excluded.props, '$.fetched_at.\"$dt\"') > json_extract(props, '$.fetched_at.\"$dt\"')",
                (CURSORS,),
            )
    finally:
        db.close()
    store = SqliteTableStore(into)
    try:
        for feed, entities in cursors.items():
            store.upsert(CURSORS, _furthest(feed, entities))
    finally:
        store.close()


def _furthest(feed: str, cursors: Sequence[Entity]) -> Entity:
    """The cursor of the part that read furthest into the feed file (its digest is of every byte
    before that position, whoever read them), with the records every part read added up."""
    furthest = max(cursors, key=lambda e: int(str(e.properties.get("position", 0))))
    properties = dict(furthest.properties)
    for counted in ("records", "quarantined"):
        properties[counted] = sum(int(e.properties.get(counted, 0)) for e in cursors)
    return Entity(feed, furthest.row_key, properties)


def _merge_queues(folders: Sequence[Path], into: Path) -> None:
    """Every part's messages still queued or scheduled, sessions, recent message ids and dead
    letters in one queue file (their numbers are apart: NUMBERS): the first part's file, moved,
    with the others' rows."""
    _move_database(folders[0] / "queues.db", into)
    db = _merging(into)
    try:
        for _ in _attached(db, folders[1:], "queues.db"):
            _no_clashes(
                db,
                "queue sessions (queue, sessions)",
                "SELECT p.queue, count(*) FROM part.sessions p JOIN main.sessions m "
                "ON m.queue = p.queue AND m.session_id = p.session_id GROUP BY p.queue",
            )
            for table in ("messages", "sessions", "dead_letters"):
                db.execute(f"INSERT INTO main.{table} SELECT * FROM part.{table}")
            db.execute(
                "INSERT INTO main.sent_ids SELECT * FROM part.sent_ids WHERE true "
                "ON CONFLICT (queue, message_id) DO UPDATE SET sent_at = max(sent_at, excluded.sent_at)"
            )
            # The numbers every part has handed out stay handed out (a number kept in a journey
            # may name a message since dropped), so a later run never hands one out again.
            db.execute(
                "UPDATE main.sqlite_sequence SET seq = max(seq, (SELECT p.seq FROM part.sqlite_sequence p "
                "WHERE p.name = main.sqlite_sequence.name)) WHERE name IN (SELECT name FROM part.sqlite_sequence)"
            )
        # Dead letters are listed by number: numbered again in the order they were dead-lettered.
        if len(folders) > 1 and db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]:
            columns = (
                "queue, seq, message_id, session_id, body, props, enqueued_at, delivery_count, reason, "
                "description, dead_lettered_at"
            )
            db.execute("BEGIN")
            db.execute(f"CREATE TEMP TABLE dead AS SELECT id, {columns} FROM main.dead_letters")
            db.execute("DELETE FROM main.dead_letters")
            db.execute(
                f"INSERT INTO main.dead_letters ({columns}) SELECT {columns} FROM dead "
                "ORDER BY dead_lettered_at, id"
            )
            db.execute("DROP TABLE dead")
            db.execute("COMMIT")
    finally:
        db.close()


def _merging(into: Path) -> sqlite3.Connection:
    db = sqlite3.connect(into, isolation_level=None)
    db.execute("PRAGMA secure_delete=ON")  # as the stores keep it: what is replaced is overwritten
    return db


def _attached(db: sqlite3.Connection, folders: Sequence[Path], name: str) -> Iterator[Path]:
    """Each folder's file ``name`` attached to ``db`` as ``part``, in a transaction of its own,
    committed and detached when the caller asks for the next (or for the end)."""
    for folder in folders:
        db.execute("ATTACH DATABASE ? AS part", (str(folder / name),))
        db.execute("BEGIN")
        yield folder
        db.execute("COMMIT")
        db.execute("DETACH DATABASE part")


def _move_database(path: Path, into: Path) -> None:
    """A closed SQLite file (and its write-ahead log and index, if left) to another name."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            Path(f"{path}{suffix}").replace(f"{into}{suffix}")


def _merge_in_time_order(files: Sequence[Path], into: Path) -> None:
    """JSON lines, each file in ``sent_at`` order, merged into one in that order (a tie: the
    earlier part's first)."""
    handles = [path.open(encoding="utf-8") for path in files if path.is_file()]
    try:

        def keyed(handle: Any, part: int) -> Iterator[tuple[datetime, int, str]]:
            for line in handle:
                yield datetime.fromisoformat(json.loads(line)["sent_at"]), part, line

        with into.open("w", encoding="utf-8") as merged:
            for _, _, line in heapq.merge(*(keyed(h, k) for k, h in enumerate(handles))):
                merged.write(line)
    finally:
        for handle in handles:
            handle.close()
