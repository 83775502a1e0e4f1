"""The SQLite table store keeps the Table Storage contract."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.adapters.sqlite_tables import SqliteTableStore
from shared.ports import Entity, EntityExists
from tests.table_contract import TableStoreContract


class TestSqliteTableStore(TableStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteTableStore]:
        store = SqliteTableStore(tmp_path / "state.db")
        yield store
        store.close()


def test_state_survives_reopening(tmp_path: Path) -> None:
    first = SqliteTableStore(tmp_path / "state.db")
    first.create("T", Entity("p", "r", {"v": 1}))
    first.close()
    second = SqliteTableStore(tmp_path / "state.db")
    read = second.get("T", "p", "r")
    assert read is not None and read.properties["v"] == 1


def test_keys_may_not_hide_in_properties(tmp_path: Path) -> None:
    store = SqliteTableStore(tmp_path / "state.db")
    with pytest.raises(ValueError, match="PartitionKey"):
        store.create("T", Entity("p", "r", {"PartitionKey": "x"}))


def test_a_database_in_the_without_rowid_layout_opens_with_its_rows(tmp_path: Path) -> None:
    # The layout written before entities became a rowid table (journey rows overflowed pages).
    path = tmp_path / "state.db"
    old = sqlite3.connect(str(path))
    old.executescript(
        "CREATE TABLE entities (tbl TEXT NOT NULL, pk TEXT NOT NULL, rk TEXT NOT NULL, etag TEXT NOT NULL, "
        "props TEXT NOT NULL, PRIMARY KEY (tbl, pk, rk)) WITHOUT ROWID;"
    )
    old.execute(
        "INSERT INTO entities VALUES ('T', 'p', 'r', 'etag-1', ?)",
        ('{"s":"{\\"a\\":1}","n":3,"at":{"$dt":"2026-01-02T03:04:05+00:00"},"b":{"$b":"AAE="}}',),
    )
    old.commit()
    old.close()
    store = SqliteTableStore(path)
    read = store.get("T", "p", "r")
    assert read is not None and read.etag == "etag-1"
    assert read.properties == {
        "s": '{"a":1}',
        "n": 3,
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "b": b"\x00\x01",
    }
    with pytest.raises(EntityExists):
        store.create("T", Entity("p", "r", {}))
    store.update("T", Entity("p", "r", {"n": 4}), etag="etag-1")
    store.close()
    reopened = SqliteTableStore(path)
    again = reopened.get("T", "p", "r")
    assert again is not None and again.properties == {"n": 4}
    reopened.close()
    check = sqlite3.connect(str(path))
    (sql,) = check.execute("SELECT sql FROM sqlite_master WHERE name='entities'").fetchone()
    check.close()
    assert "WITHOUT ROWID" not in sql.upper()


def test_upsert_many_is_all_or_nothing_when_a_row_fails_partway(tmp_path: Path) -> None:
    store = SqliteTableStore(tmp_path / "state.db")
    store.upsert("T", Entity("p", "a", {"v": "before"}))
    # A row the database refuses, after the first has been written: none of the batch may stay.
    store._db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON entities WHEN NEW.rk = 'c' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.upsert_many("T", [Entity("p", "a", {"v": "after"}), Entity("p", "b", {}), Entity("p", "c", {})])
    assert [(e.row_key, e.properties) for e in store.query_partition("T", "p")] == [("a", {"v": "before"})]
    store.close()
