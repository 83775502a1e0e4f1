"""SQLite table store with Azure Table Storage semantics (the embedded default).

Entities are PartitionKey/RowKey rows with a JSON property bag and an ETag that
changes on every write. Create fails when the keys are taken; a conditional
update fails on a stale ETag, as Table Storage answers 409 and 412.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.ports import Entity, EntityExists, EntityNotFound, EtagMismatch

# A rowid table keyed by a unique index, not a WITHOUT ROWID table: an index b-tree keeps at
# most about a quarter of a page in place, so a journey row (2-10 KB of JSON) spilled into
# overflow pages on every read and every rewrite; a table b-tree keeps a whole page's worth.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    tbl TEXT NOT NULL,
    pk TEXT NOT NULL,
    rk TEXT NOT NULL,
    etag TEXT NOT NULL,
    props TEXT NOT NULL,
    PRIMARY KEY (tbl, pk, rk)
);
"""

# Databases written before that change keep their rows: copied into the new layout on open.
_MIGRATE_WITHOUT_ROWID = (
    _SCHEMA.replace("IF NOT EXISTS entities", "entities_rowid")
    + """
INSERT INTO entities_rowid (tbl, pk, rk, etag, props) SELECT tbl, pk, rk, etag, props FROM entities;
DROP TABLE entities;
ALTER TABLE entities_rowid RENAME TO entities;
"""
)


def _encode(value: Any) -> Any:
    # Keep the value's type across the JSON round trip, as Table Storage does.
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode("ascii")}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$dt" in value:
            return datetime.fromisoformat(value["$dt"])
        if "$b" in value:
            return base64.b64decode(value["$b"])
    return value


# One encoder for every row: ``json.dumps`` with any option set builds a new one at each call.
_ROW_JSON = json.JSONEncoder(separators=(",", ":"))


def _new_etag() -> str:
    return os.urandom(12).hex()  # unique per write, like a Table Storage ETag (and cheaper than a UUID)


def _present(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if v is not None}


class SqliteTableStore:
    """A TableStore on one SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        # Deleted and replaced content is overwritten, not left in free pages: erased personal
        # data must not stay readable in the file (journey-rules.md §16).
        self._db.execute("PRAGMA secure_delete=ON")
        self._migrate()
        self._db.executescript(_SCHEMA)
        self.operations = 0  # table operations performed: the Azure cost driver
        self.operations_by: Counter[str] = Counter()  # "Table.op" -> count, for the benchmark

    def _migrate(self) -> None:
        def old_layout() -> bool:
            row = self._db.execute(
                "SELECT sql FROM sqlite_master WHERE type='table' AND name='entities'"
            ).fetchone()
            return row is not None and "WITHOUT ROWID" in row[0].upper()

        if not old_layout():
            return
        with self._tx():
            if not old_layout():  # another process opening the same file migrated it first
                return
            for statement in _MIGRATE_WITHOUT_ROWID.split(";"):
                if statement.strip():
                    self._db.execute(statement)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One write transaction: all or nothing (``isolation_level=None`` opens none by itself).

        The store is used one thread at a time (the local host; the page server serves one
        request at a time); the lock keeps it so for the few statements a transaction spans.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        # Fold the write-ahead log into the file, so no earlier version of a row stays in it.
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    @staticmethod
    def _props(entity: Entity) -> str:
        for key in ("PartitionKey", "RowKey"):
            if key in entity.properties:
                raise ValueError(f"{key} belongs in the entity keys, not its properties")
        # None means "no such property", as in Table Storage, which cannot store a null.
        values = {k: _encode(v) for k, v in entity.properties.items() if v is not None}
        return _ROW_JSON.encode(values)

    @staticmethod
    def _entity(pk: str, rk: str, etag: str, props: str) -> Entity:
        return Entity(pk, rk, {k: _decode(v) for k, v in json.loads(props).items()}, etag)

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        self.operations += 1
        self.operations_by[f"{table}.get"] += 1
        row = self._db.execute(
            "SELECT etag, props FROM entities WHERE tbl=? AND pk=? AND rk=?", (table, partition_key, row_key)
        ).fetchone()
        return None if row is None else self._entity(partition_key, row_key, row[0], row[1])

    def create(self, table: str, entity: Entity) -> Entity:
        self.operations += 1
        self.operations_by[f"{table}.create"] += 1
        etag = _new_etag()
        try:
            self._db.execute(
                "INSERT INTO entities (tbl, pk, rk, etag, props) VALUES (?, ?, ?, ?, ?)",
                (table, entity.partition_key, entity.row_key, etag, self._props(entity)),
            )
        except sqlite3.IntegrityError as exc:
            raise EntityExists(
                f"{table}({entity.partition_key!r}, {entity.row_key!r}) already exists"
            ) from exc
        return Entity(entity.partition_key, entity.row_key, _present(entity.properties), etag)

    def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
        self.operations += 1
        self.operations_by[f"{table}.update"] += 1
        new_etag = _new_etag()
        cursor = self._db.execute(
            "UPDATE entities SET etag=?, props=? WHERE tbl=? AND pk=? AND rk=? AND etag=?",
            (new_etag, self._props(entity), table, entity.partition_key, entity.row_key, etag),
        )
        if cursor.rowcount == 0:
            exists = self._db.execute(
                "SELECT 1 FROM entities WHERE tbl=? AND pk=? AND rk=?",
                (table, entity.partition_key, entity.row_key),
            ).fetchone()
            keys = f"{table}({entity.partition_key!r}, {entity.row_key!r})"
            if exists:
                raise EtagMismatch(f"{keys} changed since it was read")
            raise EntityNotFound(f"{keys} does not exist")
        return Entity(entity.partition_key, entity.row_key, _present(entity.properties), new_etag)

    def upsert(self, table: str, entity: Entity) -> Entity:
        self.operations += 1
        self.operations_by[f"{table}.upsert"] += 1
        etag = _new_etag()
        self._db.execute(
            "INSERT INTO entities (tbl, pk, rk, etag, props) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (tbl, pk, rk) DO UPDATE SET etag=excluded.etag, props=excluded.props",
            (table, entity.partition_key, entity.row_key, etag, self._props(entity)),
        )
        return Entity(entity.partition_key, entity.row_key, _present(entity.properties), etag)

    def upsert_many(self, table: str, entities: Sequence[Entity]) -> None:
        if not entities:
            return
        if len({entity.partition_key for entity in entities}) != 1:
            raise ValueError("upsert_many takes the entities of one partition")
        self.operations += 1
        self.operations_by[f"{table}.upsert_many"] += 1
        rows = [(table, e.partition_key, e.row_key, _new_etag(), self._props(e)) for e in entities]
        # One transaction: all or nothing, as a Table Storage batch (and one commit, not one a row).
        with self._tx():
            self._db.executemany(
                "INSERT INTO entities (tbl, pk, rk, etag, props) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (tbl, pk, rk) DO UPDATE SET etag=excluded.etag, props=excluded.props",
                rows,
            )

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        self.operations += 1
        self.operations_by[f"{table}.delete"] += 1
        self._db.execute(
            "DELETE FROM entities WHERE tbl=? AND pk=? AND rk=?", (table, partition_key, row_key)
        )

    def query_partition(self, table: str, partition_key: str) -> Iterator[Entity]:
        self.operations += 1
        self.operations_by[f"{table}.query_partition"] += 1
        rows = self._db.execute(
            "SELECT rk, etag, props FROM entities WHERE tbl=? AND pk=? ORDER BY rk", (table, partition_key)
        ).fetchall()
        for rk, etag, props in rows:
            yield self._entity(partition_key, rk, etag, props)

    def query_through(self, table: str, last_partition: str) -> Iterator[Entity]:
        self.operations += 1
        self.operations_by[f"{table}.query_through"] += 1
        rows = self._db.execute(
            "SELECT pk, rk, etag, props FROM entities WHERE tbl=? AND pk<=? ORDER BY pk, rk",
            (table, last_partition),
        ).fetchall()
        for pk, rk, etag, props in rows:
            yield self._entity(pk, rk, etag, props)

    def with_row_key(self, table: str, row_key: str) -> Iterator[Entity]:
        """Every entity of a table with this RowKey, for erasure only (never used by a step)."""
        rows = self._db.execute(
            "SELECT pk, rk, etag, props FROM entities WHERE tbl=? AND rk=? ORDER BY pk", (table, row_key)
        ).fetchall()
        for pk, rk, etag, props in rows:
            yield self._entity(pk, rk, etag, props)

    def export(self, table: str) -> Iterator[Entity]:
        """Every entity of a table, for the local run's reports only (never used by a step)."""
        cursor = self._db.execute(
            "SELECT pk, rk, etag, props FROM entities WHERE tbl=? ORDER BY pk, rk", (table,)
        )
        for pk, rk, etag, props in cursor:
            yield self._entity(pk, rk, etag, props)
