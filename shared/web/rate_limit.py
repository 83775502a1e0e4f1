"""Rate limits per link: a fixed-window counter in the PageUse table.

One entity per link, counter and window (PartitionKey: the link id; RowKey:
``<counter>-<window start, epoch seconds>``), incremented with an ETag check so two
instances counting at once never lose a count; a conflict reads again. A request
over the limit writes nothing. The rows of a link sit in its own partition: the
first use of a new window deletes the link's windows that have ended, so a link
keeps at most one row per counter (its latest window), and revoking the link or
erasing its person deletes them all (``TableLinks``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from shared.ports import Entity, EntityExists, EntityNotFound, EtagMismatch, TableStore

log = logging.getLogger("victim_updates.web")

TABLE = "PageUse"
PAGE = "page"  # every request to a link's pages counts against this one
ATTEMPTS = 10


@dataclass(frozen=True)
class Limit:
    """At most ``count`` uses in each fixed ``window``."""

    count: int
    window: timedelta


def _named() -> Mapping[str, Limit]:
    return MappingProxyType({"message": Limit(3, timedelta(days=1))})


@dataclass(frozen=True)
class RateLimits:
    """The page's limits: every request (``page``), and named ones a handler asks for."""

    page: Limit = Limit(60, timedelta(minutes=10))
    named: Mapping[str, Limit] = field(default_factory=_named)

    def limit(self, counter: str) -> Limit:
        if counter == PAGE:
            return self.page
        if counter not in self.named:
            raise KeyError(f"no rate limit named {counter!r}")
        return self.named[counter]


class RateLimiter:
    """Counts uses of a link in the PageUse table."""

    def __init__(self, tables: TableStore, limits: RateLimits | None = None) -> None:
        self._tables = tables
        self.limits = limits or RateLimits()

    def use(self, link_id: str, counter: str, now: datetime) -> bool:
        """Count one use of ``counter`` for ``link_id``; False (and nothing counted) when over the limit."""
        limit = self.limits.limit(counter)
        window = int(limit.window.total_seconds())
        start = int(now.timestamp()) // window * window
        row = f"{counter}-{start}"
        for _ in range(ATTEMPTS):
            found = self._tables.get(TABLE, link_id, row)
            try:
                if found is None:
                    self._tables.create(
                        TABLE, Entity(link_id, row, {"count": 1, "window_end": start + window})
                    )
                    forget_uses(self._tables, link_id, ended_by=now)
                    return True
                count = int(found.properties.get("count", 0))
                if count >= limit.count:
                    return False
                assert found.etag is not None
                properties = {**found.properties, "count": count + 1}
                self._tables.update(TABLE, Entity(link_id, row, properties), etag=found.etag)
                return True
            except (EntityExists, EtagMismatch, EntityNotFound):
                # Another request counted at the same moment, or (a worker whose clock is behind)
                # its window was deleted as ended by one already in the next: read again.
                continue
        # Still contended after every attempt: refuse rather than count nothing (fails closed).
        log.warning("rate limit counter %s stayed contended after %d attempts", counter, ATTEMPTS)
        return False


def forget_uses(tables: TableStore, link_id: str, *, ended_by: datetime | None = None) -> int:
    """Delete a link's counters: those whose window had ended by ``ended_by`` (they limit nothing
    now), or, without it, all of them (the link opens nothing now). How many rows went."""
    ended = None if ended_by is None else int(ended_by.timestamp())
    rows = [
        entity.row_key
        for entity in tables.query_partition(TABLE, link_id)
        if ended is None or int(entity.properties.get("window_end", 0)) <= ended
    ]
    for row in rows:
        tables.delete(TABLE, link_id, row)
    return len(rows)
