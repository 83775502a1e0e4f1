"""The TableStore contract: Table Storage semantics every adapter must keep.

Adapter test modules subclass ``TableStoreContract`` and provide a ``store``
fixture; the same tests then run against SQLite and (with Azurite) Table Storage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.ports import Entity, EntityExists, EntityNotFound, EtagMismatch, TableStore


class TableStoreContract:
    table = "Contract"

    def test_point_read_of_absent_entity_is_none(self, store: TableStore) -> None:
        assert store.get(self.table, "p", "missing") is None

    def test_create_then_read_returns_properties_and_etag(self, store: TableStore) -> None:
        when = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
        created = store.create(
            self.table, Entity("p", "r", {"text": "hello", "n": 7, "ok": True, "at": when})
        )
        read = store.get(self.table, "p", "r")
        assert read is not None
        assert dict(read.properties) == {"text": "hello", "n": 7, "ok": True, "at": when}
        assert read.etag == created.etag and read.etag

    def test_create_fails_when_the_entity_exists(self, store: TableStore) -> None:
        store.create(self.table, Entity("p", "r", {"v": 1}))
        with pytest.raises(EntityExists):
            store.create(self.table, Entity("p", "r", {"v": 2}))
        read = store.get(self.table, "p", "r")
        assert read is not None and read.properties["v"] == 1

    def test_conditional_update_with_current_etag_succeeds_and_changes_etag(self, store: TableStore) -> None:
        created = store.create(self.table, Entity("p", "r", {"v": 1}))
        assert created.etag is not None
        updated = store.update(self.table, Entity("p", "r", {"v": 2}), etag=created.etag)
        assert updated.etag != created.etag
        read = store.get(self.table, "p", "r")
        assert read is not None and read.properties["v"] == 2

    def test_conditional_update_with_stale_etag_fails_and_keeps_the_newer_value(
        self, store: TableStore
    ) -> None:
        created = store.create(self.table, Entity("p", "r", {"v": 1}))
        assert created.etag is not None
        store.update(self.table, Entity("p", "r", {"v": 2}), etag=created.etag)
        with pytest.raises(EtagMismatch):
            store.update(self.table, Entity("p", "r", {"v": 3}), etag=created.etag)
        read = store.get(self.table, "p", "r")
        assert read is not None and read.properties["v"] == 2

    def test_update_of_absent_entity_fails(self, store: TableStore) -> None:
        with pytest.raises((EntityNotFound, EtagMismatch)):
            store.update(
                self.table, Entity("p", "nobody", {"v": 1}), etag="W/\"datetime'2026-01-01T00%3A00%3A00Z'\""
            )

    def test_upsert_replaces_all_properties(self, store: TableStore) -> None:
        store.upsert(self.table, Entity("p", "r", {"a": 1, "b": 2}))
        store.upsert(self.table, Entity("p", "r", {"a": 3}))
        read = store.get(self.table, "p", "r")
        assert read is not None and dict(read.properties) == {"a": 3}

    def test_partition_query_returns_only_that_partition_in_row_key_order(self, store: TableStore) -> None:
        for pk, rk in [("A", "2"), ("A", "1"), ("B", "1"), ("A", "3")]:
            store.create(self.table, Entity(pk, rk, {"pk": pk}))
        rows = list(store.query_partition(self.table, "A"))
        assert [e.row_key for e in rows] == ["1", "2", "3"]
        assert all(e.properties["pk"] == "A" for e in rows)

    def test_delete_removes_and_is_quiet_when_absent(self, store: TableStore) -> None:
        store.create(self.table, Entity("p", "r", {"v": 1}))
        store.delete(self.table, "p", "r")
        store.delete(self.table, "p", "r")
        assert store.get(self.table, "p", "r") is None

    def test_tables_are_separate(self, store: TableStore) -> None:
        store.create(self.table, Entity("p", "r", {"v": 1}))
        store.create(self.table + "Other", Entity("p", "r", {"v": 2}))
        first: Any = store.get(self.table, "p", "r")
        assert first.properties["v"] == 1

    def test_none_means_no_such_property(self, store: TableStore) -> None:
        store.create(self.table, Entity("p", "r", {"kept": 1, "cleared": None}))
        read: Any = store.get(self.table, "p", "r")
        assert dict(read.properties) == {"kept": 1}
        store.update(self.table, Entity("p", "r", {"kept": None, "other": "x"}), etag=read.etag)
        again: Any = store.get(self.table, "p", "r")
        assert dict(again.properties) == {"other": "x"}

    def test_integers_beyond_int32_round_trip(self, store: TableStore) -> None:
        values = {"small": 7, "big": 2**31, "huge": 2**53 + 1, "negative": -(2**40)}
        store.create(self.table, Entity("p", "r", values))
        read: Any = store.get(self.table, "p", "r")
        assert dict(read.properties) == values

    def test_strings_beyond_the_service_limit_round_trip(self, store: TableStore) -> None:
        import random

        rng = random.Random(5)
        # Hard to compress, so it must be split as well as compressed.
        huge = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789éø") for _ in range(200_000))
        store.upsert(self.table, Entity("p", "r", {"snapshot": huge, "n": 1}))
        read: Any = store.get(self.table, "p", "r")
        assert read.properties["snapshot"] == huge and read.properties["n"] == 1

    def test_keys_with_slashes_and_hashes_round_trip(self, store: TableStore) -> None:
        keys = [("HU/000101/26", "P-1"), ("HU/000101/26", "a#b?c\\d%e")]
        for pk, rk in keys:
            store.create(self.table, Entity(pk, rk, {"v": rk}))
        assert [
            (e.partition_key, e.row_key) for e in store.query_partition(self.table, "HU/000101/26")
        ] == sorted(keys)
        read: Any = store.get(self.table, "HU/000101/26", "a#b?c\\d%e")
        assert read.properties["v"] == "a#b?c\\d%e"

    def test_upsert_many_writes_a_whole_partition_beyond_one_batch(self, store: TableStore) -> None:
        entities = [Entity("HU/1/26", f"{n:04d}", {"n": n}) for n in range(250)]
        store.upsert_many(self.table, entities)
        store.upsert_many(self.table, [Entity("HU/1/26", "0007", {"n": -7})])
        rows = list(store.query_partition(self.table, "HU/1/26"))
        assert len(rows) == 250
        assert rows[7].properties["n"] == -7 and rows[249].properties["n"] == 249

    def test_upsert_many_refuses_several_partitions(self, store: TableStore) -> None:
        with pytest.raises(ValueError, match="one partition"):
            store.upsert_many(self.table, [Entity("a", "1", {}), Entity("b", "1", {})])
