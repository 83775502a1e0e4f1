"""The per-link rate limit on both table stores: SQLite and Table Storage (Azurite)."""

from __future__ import annotations

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
