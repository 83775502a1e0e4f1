"""A feed read from a JSON Lines file, resuming from a byte-offset cursor.

The file is the force's extract of one feed, ordered by ``modified_at``. A record
becomes visible at its ``modified_at`` (so a simulated clock can replay a quarter
of a year in seconds); reading stops at the first record still in the future and
resumes there on the next tick, never re-reading what it has read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from shared.ports import FeedLine

_MODIFIED_AT = re.compile(rb'"modified_at"\s*:\s*"([^"]{1,64})"')


def record_time(raw: bytes) -> datetime | None:
    """The record's modified_at, or None when it has none we can read (it is visible now)."""
    match = _MODIFIED_AT.search(raw)
    if match is None:
        return None
    try:
        stamp = datetime.fromisoformat(match.group(1).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return stamp if stamp.tzinfo is not None else None


class JsonlFeedReader:
    """A FeedReader over one JSON Lines file; the cursor is the byte offset reached."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Where the last read stopped at a record still in the future, and when it shows: the
        # file only grows, so until then a tick need not open it (a simulated year has ~100k ticks).
        self._waiting: tuple[int, datetime] | None = None

    def read(self, cursor: str | None, now: datetime, limit: int) -> Iterator[FeedLine]:
        offset = int(cursor) if cursor else 0
        if self._waiting is not None and self._waiting[0] == offset and now < self._waiting[1]:
            return
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            handle.seek(offset)
            produced = 0
            while produced < limit:
                raw = handle.readline()
                if not raw:
                    return
                visible_from = record_time(raw)
                if visible_from is not None and visible_from > now:
                    self._waiting = (offset, visible_from)
                    return
                offset += len(raw)
                text = raw.decode("utf-8", errors="replace").strip()
                if not text:
                    continue
                produced += 1
                yield FeedLine(raw=text, position=str(offset))
