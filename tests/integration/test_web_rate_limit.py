"""The per-link rate limit on both table stores: SQLite and Table Storage (Azurite)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from shared.adapters.azure_tables import AzureTableStore
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.ports import Entity, TableStore
from shared.web.rate_limit import PAGE, TABLE, Limit, RateLimiter, RateLimits
from tests.azurite import azurite_tables  # noqa: F401  (fixture)
from tests.web_example import LINK, NOW, OTHER_LINK


@pytest.fixture(params=["sqlite", "table_storage"])
def tables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TableStore]:
    if request.param == "sqlite":
        store = SqliteTableStore(tmp_path / "state.db")
        yield store
        store.close()
    else:
        connection = request.getfixturevalue("azurite_tables")
        yield AzureTableStore.from_connection_string(connection, prefix="w" + uuid.uuid4().hex[:10])


LIMITS = RateLimits(page=Limit(5, timedelta(minutes=10)), named={"message": Limit(2, timedelta(days=1))})


def test_uses_are_counted_to_the_limit_then_refused_without_writing(tables: TableStore) -> None:
    limiter = RateLimiter(tables, LIMITS)
    assert [limiter.use(LINK, PAGE, NOW) for _ in range(7)] == [True] * 5 + [False] * 2
    (row,) = list(tables.query_partition(TABLE, LINK))
    assert row.properties["count"] == 5


def test_the_window_is_fixed_and_the_next_one_starts_at_zero(tables: TableStore) -> None:
    limiter = RateLimiter(tables, LIMITS)
    start = NOW.replace(minute=0, second=0)
    assert all(limiter.use(LINK, PAGE, start + timedelta(minutes=9)) for _ in range(5))
    assert not limiter.use(LINK, PAGE, start + timedelta(minutes=9, seconds=59))
    assert limiter.use(LINK, PAGE, start + timedelta(minutes=10))


def test_links_and_counters_count_apart(tables: TableStore) -> None:
    limiter = RateLimiter(tables, LIMITS)
    assert [limiter.use(LINK, "message", NOW) for _ in range(3)] == [True, True, False]
    assert limiter.use(LINK, PAGE, NOW)
    assert limiter.use(OTHER_LINK, "message", NOW)
    with pytest.raises(KeyError):
        limiter.use(LINK, "nonesuch", NOW)


def test_concurrent_uses_are_each_counted_once(tables: TableStore, tmp_path: Path) -> None:
    """Six workers at once, each with its own store (SQLite: its own connection to the one file,
    as separate processes would have; one connection is not for concurrent threads)."""
    limits = RateLimits(page=Limit(25, timedelta(minutes=10)))

    def store() -> TableStore:
        return SqliteTableStore(tmp_path / "state.db") if isinstance(tables, SqliteTableStore) else tables

    def use(_: int) -> bool:
        return RateLimiter(store(), limits).use(LINK, PAGE, NOW)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(use, range(30)))
    (row,) = list(tables.query_partition(TABLE, LINK))
    assert row.properties["count"] == answers.count(True)
    assert 0 < answers.count(True) <= 25


class ConflictingOnce:
    """A table store whose first conditional update loses to another writer (who counted one use)."""

    def __init__(self, tables: TableStore) -> None:
        self._tables = tables
        self.conflicts = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._tables, name)

    def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
        if self.conflicts == 0:  # the other writer counts first; our ETag is then stale
            self.conflicts += 1
            stored = self._tables.get(table, entity.partition_key, entity.row_key)
            assert stored is not None and stored.etag is not None
            counted = {**stored.properties, "count": int(stored.properties["count"]) + 1}
            self._tables.update(
                table, Entity(entity.partition_key, entity.row_key, counted), etag=stored.etag
            )
        return self._tables.update(table, entity, etag=etag)


def test_a_lost_conditional_write_reads_again_and_counts_on_top(tables: TableStore) -> None:
    store = ConflictingOnce(tables)
    limiter = RateLimiter(store, LIMITS)  # type: ignore[arg-type]
    assert limiter.use(LINK, PAGE, NOW)  # creates the row: count 1
    assert limiter.use(LINK, PAGE, NOW)  # loses to the other writer (count 2), reads again, writes 3
    assert store.conflicts == 1
    (row,) = list(tables.query_partition(TABLE, LINK))
    assert row.properties["count"] == 3


def _rows(tables: TableStore, link: str) -> dict[str, int]:
    return {row.row_key: int(row.properties["count"]) for row in tables.query_partition(TABLE, link)}


def test_a_link_keeps_only_its_latest_window_of_each_counter_and_never_loses_a_current_count(
    tables: TableStore,
) -> None:
    """Uses at random moments over three days, of two counters on two links: after each, a link
    holds at most one row per counter, and the row of every window still running holds every use
    let through in it (ended windows go when the link starts a new one; they limit nothing)."""
    limiter = RateLimiter(tables, LIMITS)
    draw = random.Random(20261130)
    moment = NOW
    accepted: dict[tuple[str, str, int], int] = {}  # (link, counter, window start) -> uses let through
    deleted_by_a_new_window = 0
    for _ in range(60):
        moment += timedelta(minutes=draw.choice([0, 1, 4, 11, 25, 90, 600]))
        link, counter = draw.choice([LINK, OTHER_LINK]), draw.choice([PAGE, "message"])
        before = _rows(tables, link)
        window = int(LIMITS.limit(counter).window.total_seconds())
        start = int(moment.timestamp()) // window * window
        if limiter.use(link, counter, moment):
            accepted[(link, counter, start)] = accepted.get((link, counter, start), 0) + 1
        after = _rows(tables, link)
        deleted_by_a_new_window += len(set(before) - set(after))
        for name in (PAGE, "message"):
            assert sum(1 for row in after if row.startswith(f"{name}-")) <= 1, after
        now = int(moment.timestamp())
        for (each, name, begun), uses in accepted.items():
            if each == link and begun + int(LIMITS.limit(name).window.total_seconds()) > now:
                assert after.get(f"{name}-{begun}") == uses, (name, begun, after)
    # The walk went through many windows, and their rows were deleted, not just never made.
    assert len({key[1:] for key in accepted}) >= 10
    assert deleted_by_a_new_window >= 10


def test_a_use_from_a_worker_whose_window_was_deleted_as_ended_counts_again_without_failing(
    tables: TableStore,
) -> None:
    """A worker whose clock is behind reads its window's row; a worker already in the next window
    deletes it as ended before the first writes: the first reads again and counts, no error."""
    limiter = RateLimiter(tables, LIMITS)
    assert limiter.use(LINK, PAGE, NOW)

    class DeletedBeforeUpdate:
        def __init__(self, inner: TableStore) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

        def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
            RateLimiter(self._inner, LIMITS).use(LINK, PAGE, NOW + timedelta(minutes=10))
            return self._inner.update(table, entity, etag=etag)

    behind = RateLimiter(DeletedBeforeUpdate(tables), LIMITS)  # type: ignore[arg-type]
    assert behind.use(LINK, PAGE, NOW)
    start = int(NOW.timestamp()) // 600 * 600
    assert _rows(tables, LINK) == {f"{PAGE}-{start}": 1, f"{PAGE}-{start + 600}": 1}
