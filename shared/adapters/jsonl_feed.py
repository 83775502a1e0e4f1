"""A feed read from a JSON Lines file, resuming from a byte-offset cursor.

The file is the force's extract of one feed, ordered by ``modified_at``. A record
becomes visible at its ``modified_at`` (so a simulated clock can replay a quarter
of a year in seconds); reading stops at the first record still in the future and
resumes there on the next tick, never re-reading what it has read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from shared.contracts.feeds import EARLIEST_FEED_TIME, LATEST_FEED_TIME
from shared.ports import FeedLine

_CHUNK = 1 << 20


def record_time(raw: bytes) -> datetime | None:
    """The record's own (top-level) modified_at, or None when it has none we can read (it is visible now)."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return time_of(record)


def time_of(record: object) -> datetime | None:
    """record_time of a line already read as JSON (``json.loads`` of its bytes)."""
    stamp_text = record.get("modified_at") if isinstance(record, dict) else None
    if not isinstance(stamp_text, str):
        return None
    try:
        stamp = datetime.fromisoformat(stamp_text)
    except ValueError:
        return None
    if stamp.tzinfo is None or not EARLIEST_FEED_TIME <= stamp <= LATEST_FEED_TIME:
        return None  # the model will reject it: quarantine it now rather than wait for it
    return stamp


class KnownLines(Protocol):
    """A reading of the file made before (a local run in several processes: shared/local/parts.py)."""

    def at(self, offset: int) -> tuple[datetime | None, bool] | None:
        """For the non-blank line starting at ``offset``: its record_time, and whether this process
        reads it; None for a line not read then (the file has grown since)."""


class JsonlFeedReader:
    """A FeedReader over one JSON Lines file; the cursor is the byte offset reached."""

    def __init__(self, path: Path, accepts: Callable[[bytes], bool] | None = None) -> None:
        self.path = path
        # Whether the feed's model accepts a line: a line it rejects must not hold the feed back
        # until a future time it claims (it is quarantined at once instead).
        self._accepts = accepts
        # Where the last read stopped at a record still in the future, and when it shows: the
        # file only grows, so until then a tick need not open it (a simulated year has ~100k ticks).
        self._waiting: tuple[int, datetime] | None = None
        # The digest of the file's first bytes, to the offset beside it (see source), kept to go on from.
        self._prefix: tuple[int, hashlib.blake2b] | None = None
        # A local run in several processes (shared/local/parts.py): whether a line is this
        # process's to read. A line that is not is passed over as a blank line is, never yielded.
        self.keep: Callable[[str], bool] | None = None
        # The same, and each line's time, for the lines the parting read: looked up by position,
        # so that no line is read as JSON here but this process's own (keep is for the others).
        self.lines: KnownLines | None = None
        # Lines passed over after the last one yielded: (the cursor they follow, the offset after
        # them), so that the next read from that cursor starts after them, not at them again;
        # and the digest at that cursor (the cursor written next is there, behind _prefix).
        self._passed: tuple[int, int] | None = None
        self._mark: tuple[int, hashlib.blake2b] | None = None
        # The last tick (its ``now``) at which a line was passed over as another process's: the
        # feed was not silent then, though this process read nothing of it (ingest's FeedStale).
        self.passed_at: datetime | None = None

    def source(self, cursor: str) -> str:
        """A digest of every byte before ``cursor``: the same while the extract grows, different
        for any other extract (another sample, seed or start), or none if it is too short."""
        offset = int(cursor) if cursor.isdigit() else -1
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if not 0 < offset <= size:
            return "jsonl:none"
        start, digest = (0, _digest())
        for known in (self._mark, self._prefix):  # the one nearer the cursor wins
            if known is not None and start <= known[0] <= offset:
                start, digest = known[0], known[1].copy()
        if start < offset:  # not where read() left the digest: read the bytes between
            with self.path.open("rb") as handle:
                handle.seek(start)
                while start < offset:
                    chunk = handle.read(min(_CHUNK, offset - start))
                    if not chunk:
                        return "jsonl:none"
                    digest.update(chunk)
                    start += len(chunk)
        if self._prefix is None or self._prefix[0] <= offset:
            self._prefix = (offset, digest)
        else:  # read() has gone on past lines not this process's: its digest stays where it is
            self._mark = (offset, digest)
        return f"jsonl:{digest.hexdigest()}"

    def read(self, cursor: str | None, now: datetime, limit: int) -> Iterator[FeedLine]:
        offset = int(cursor) if cursor else 0
        last = offset  # where the last line yielded (or the cursor) ends
        if self._passed is not None and self._passed[0] == offset:
            offset = self._passed[1]
        if self._waiting is not None and self._waiting[0] == offset and now < self._waiting[1]:
            return
        if not self.path.exists():
            return
        if offset == 0 and self._prefix is None:
            self._prefix = (0, _digest())
        with self.path.open("rb") as handle:
            handle.seek(offset)
            produced = 0
            while produced < limit:
                raw = handle.readline()
                if not raw:
                    return
                known = self.lines.at(offset) if self.lines is not None else None
                visible_from = record_time(raw) if known is None else known[0]
                later = visible_from is not None and visible_from > now
                if later and (self._accepts is None or self._accepts(raw)):
                    assert visible_from is not None
                    self._waiting = (offset, visible_from)
                    return
                if self._prefix is not None and self._prefix[0] == offset:
                    # The digest of the bytes before the cursor goes on with what is read (source).
                    self._prefix[1].update(raw)
                    self._prefix = (offset + len(raw), self._prefix[1])
                offset += len(raw)
                # A line another process takes counts too: each reads, tick by tick, the lines one
                # process would, so a backlog is taken at the same simulated times either way.
                if known is not None and not known[1]:
                    produced += 1
                    self._passed, self.passed_at = (last, offset), now
                    continue
                text = line_text(raw)
                if not text:
                    continue
                produced += 1
                if known is None and self.keep is not None and not self.keep(text):
                    self._passed, self.passed_at = (last, offset), now
                    continue
                passing_over = self.keep is not None or self.lines is not None
                if passing_over and self._prefix is not None and self._prefix[0] == offset:
                    self._mark = (offset, self._prefix[1].copy())  # the digest at the next cursor
                last = offset
                yield FeedLine(raw=text, position=str(offset))


def line_text(raw: bytes) -> str:
    """A line as a record is read from it: decoded and stripped (of any Unicode white space)."""
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        # Keep the bytes visible but make the line invalid JSON, so it is quarantined, not altered.
        return raw.decode("utf-8", errors="backslashreplace").strip()


def _digest() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=16)
