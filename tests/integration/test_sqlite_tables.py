"""The SQLite table store keeps the Table Storage contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.sqlite_tables import SqliteTableStore
from shared.ports import Entity
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
