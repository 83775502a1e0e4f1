"""Azure Table Storage behind the TableStore port (azure-data-tables).

It smooths over the SDK's traps so that the steps see the same semantics as the
SQLite store:
- a Python int outside Int32 is written as Int64 (the SDK refuses it otherwise);
- ``None`` means "no such property" (the service cannot store a null, and a merge
  would keep the old value): writes are full replaces, so the property is gone;
- a string longer than the service's 32K-character limit is compressed and, if
  still too big for one binary property (64 KiB), split across several;
- 409 on create, 412 on a stale ETag and 404 become the port's exceptions.

Several upserts to one partition go as entity group transactions: one request per 100
operations or 4 MiB of body, whichever comes first (one entity: a plain upsert, one request
too). ``operations`` counts the port's calls as the SQLite store does (``operations_by`` by
table and call, for the benchmark) and ``http_requests`` the requests the SDK sent (retries
and table creation too), when the store built its client.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, TableServiceClient, UpdateMode

from shared.ports import Entity, EntityExists, EntityNotFound, EtagMismatch

_INT32 = range(-(2**31), 2**31)
_MAX_STRING_CHARS = 32_000
_MAX_BINARY_BYTES = 64_000
_CHUNK = "__z"  # a long string `p` is stored as p__z0, p__z1, … and the count in p__zn
_RESERVED = ("PartitionKey", "RowKey", "Timestamp", "etag")
BATCH_LIMIT = 100  # operations in one entity group transaction
BATCH_BYTES = 4 * 1024 * 1024  # the largest body of one entity group transaction
_OPERATION_BYTES = 1024  # an operation's own part of a batch body (its boundary, request line, headers)
_KEY_UNSAFE = set("/\\#?%")


def encode_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Port properties to what the Table service can store."""
    stored: dict[str, Any] = {}
    for name, value in properties.items():
        if name in _RESERVED or _CHUNK in name:
            raise ValueError(f"property name {name!r} is reserved")
        if value is None:
            continue
        if isinstance(value, bool):
            stored[name] = value
        elif isinstance(value, int) and value not in _INT32:
            stored[name] = EntityProperty(value, EdmType.INT64)
        elif isinstance(value, str) and len(value) > _MAX_STRING_CHARS:
            packed = zlib.compress(value.encode("utf-8"), 6)
            chunks = [packed[i : i + _MAX_BINARY_BYTES] for i in range(0, len(packed), _MAX_BINARY_BYTES)]
            for index, chunk in enumerate(chunks):
                stored[f"{name}{_CHUNK}{index}"] = chunk
            stored[f"{name}{_CHUNK}n"] = len(chunks)
        else:
            stored[name] = value
    return stored


def decode_properties(stored: Mapping[str, Any]) -> dict[str, Any]:
    """What the Table service returned, as port properties."""
    properties: dict[str, Any] = {}
    for name, value in stored.items():
        if name in _RESERVED or _CHUNK in name:
            continue
        properties[name] = value.value if isinstance(value, EntityProperty) else value
    for name, count in stored.items():
        if name.endswith(f"{_CHUNK}n"):
            base = name[: -len(f"{_CHUNK}n")]
            packed = b"".join(bytes(stored[f"{base}{_CHUNK}{i}"]) for i in range(int(count)))
            properties[base] = zlib.decompress(packed).decode("utf-8")
    return properties


def _json_bytes(value: Any) -> int:
    """About how many bytes a property's value takes in a request's JSON body (a little over)."""
    if isinstance(value, EntityProperty):
        value = value.value
    if isinstance(value, bytes):
        return len(base64.b64encode(value)) + 64  # and its "@odata.type" annotation
    if isinstance(value, str):
        return len(json.dumps(value))
    if isinstance(value, datetime):
        return 96
    return 32


def batch_bytes(entity: Mapping[str, Any]) -> int:
    """About how many bytes an encoded entity takes in an entity group transaction (a little over)."""
    return _OPERATION_BYTES + sum(len(name) + 8 + _json_bytes(value) for name, value in entity.items())


def batches(entities: Sequence[Mapping[str, Any]]) -> Iterator[Sequence[Mapping[str, Any]]]:
    """Encoded entities in transactions: each at most BATCH_LIMIT operations and BATCH_BYTES."""
    chunk: list[Mapping[str, Any]] = []
    size = 0
    for entity in entities:
        weight = batch_bytes(entity)
        if chunk and (len(chunk) == BATCH_LIMIT or size + weight > BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entity)
        size += weight
    if chunk:
        yield chunk


class HttpRequests:
    """Counts the requests an SDK client sends (its ``raw_request_hook``: each retry too)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, request: Any) -> None:
        self.count += 1


def _loopback_options(connection_string: str) -> dict[str, Any]:
    """An emulator on this machine (Azurite) is reached directly: no proxy, netrc or CA bundle
    from the environment, which the HTTP library would otherwise read for every request (all of
    os.environ, twice). Any other endpoint keeps the environment's settings."""
    parts = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    host = urllib.parse.urlsplit(parts.get("TableEndpoint", "")).hostname
    return {"use_env_settings": False} if host in ("127.0.0.1", "localhost") else {}


def _key(value: str) -> str:
    """Table keys may not hold / \\ # ? or control characters; crime references have slashes."""
    return "".join(
        f"%{ord(ch):02X}" if ch in _KEY_UNSAFE or ord(ch) < 32 or 127 <= ord(ch) < 160 else ch for ch in value
    )


def _unkey(value: str) -> str:
    return urllib.parse.unquote(value) if "%" in value else value


def _present(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if v is not None}


def _etag(metadata: Mapping[str, Any]) -> str | None:
    value = metadata.get("etag")
    return str(value) if value is not None else None


class AzureTableStore:
    """A TableStore on Azure Table Storage (or Azurite)."""

    def __init__(
        self, service: TableServiceClient, prefix: str = "", requests: HttpRequests | None = None
    ) -> None:
        self._service = service
        self._prefix = prefix  # lets several deployments (or tests) share one account
        self._clients: dict[str, Any] = {}  # a table's client, made (and the table too) on first use
        self._lock = threading.Lock()
        self._requests = requests
        self.operations = 0  # table operations performed: the Azure cost driver
        self.operations_by: Counter[str] = Counter()  # "Table.op" -> count, for the benchmark

    @classmethod
    def from_connection_string(cls, connection_string: str, prefix: str = "") -> AzureTableStore:
        requests = HttpRequests()
        service = TableServiceClient.from_connection_string(
            connection_string, raw_request_hook=requests, **_loopback_options(connection_string)
        )
        return cls(service, prefix, requests)

    @classmethod
    def from_service_uri(cls, uri: str, credential: Any, prefix: str = "") -> AzureTableStore:
        requests = HttpRequests()
        return cls(
            TableServiceClient(uri, credential=credential, raw_request_hook=requests), prefix, requests
        )

    @property
    def http_requests(self) -> int | None:
        """The requests sent so far, or None when the store was given a client it cannot count."""
        return self._requests.count if self._requests is not None else None

    def _count(self, table: str, operation: str) -> None:
        self.operations += 1
        self.operations_by[f"{table}.{operation}"] += 1

    def _table(self, table: str) -> Any:
        client = self._clients.get(table)
        if client is None:
            with self._lock:
                client = self._clients.get(table)
                if client is None:
                    name = self._prefix + table
                    with contextlib.suppress(ResourceExistsError):  # another worker made it first
                        self._service.create_table(name)
                    client = self._clients[table] = self._service.get_table_client(name)
        return client

    def _entity(self, entity: Entity) -> dict[str, Any]:
        keys = {"PartitionKey": _key(entity.partition_key), "RowKey": _key(entity.row_key)}
        return {**keys, **encode_properties(entity.properties)}

    @staticmethod
    def _from(found: Mapping[str, Any]) -> Entity:
        metadata = getattr(found, "metadata", {})
        keys = _unkey(str(found["PartitionKey"])), _unkey(str(found["RowKey"]))
        return Entity(*keys, decode_properties(found), _etag(metadata))

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        self._count(table, "get")
        try:
            found = self._table(table).get_entity(_key(partition_key), _key(row_key))
        except ResourceNotFoundError:
            return None
        return self._from(found)

    def create(self, table: str, entity: Entity) -> Entity:
        self._count(table, "create")
        try:
            metadata = self._table(table).create_entity(self._entity(entity))
        except ResourceExistsError as exc:
            raise EntityExists(
                f"{table}({entity.partition_key!r}, {entity.row_key!r}) already exists"
            ) from exc
        return Entity(entity.partition_key, entity.row_key, _present(entity.properties), _etag(metadata))

    def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
        self._count(table, "update")
        keys = f"{table}({entity.partition_key!r}, {entity.row_key!r})"
        try:
            metadata = self._table(table).update_entity(
                self._entity(entity),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceNotFoundError as exc:
            raise EntityNotFound(f"{keys} does not exist") from exc
        except HttpResponseError as exc:
            if exc.status_code == 412:
                raise EtagMismatch(f"{keys} changed since it was read") from exc
            raise
        return Entity(entity.partition_key, entity.row_key, _present(entity.properties), _etag(metadata))

    def upsert(self, table: str, entity: Entity) -> Entity:
        self._count(table, "upsert")
        metadata = self._table(table).upsert_entity(self._entity(entity), mode=UpdateMode.REPLACE)
        return Entity(entity.partition_key, entity.row_key, _present(entity.properties), _etag(metadata))

    def upsert_many(self, table: str, entities: Sequence[Entity]) -> None:
        """Entity group transactions of one partition: one request per 100 operations or 4 MiB of
        body (BATCH_LIMIT, BATCH_BYTES), whichever comes first; one entity is a plain upsert.
        Counted as one operation, as the SQLite store counts it (``http_requests`` has the
        transactions)."""
        if not entities:
            return
        if len({entity.partition_key for entity in entities}) != 1:
            raise ValueError("upsert_many takes the entities of one partition")
        self._count(table, "upsert_many")
        client = self._table(table)
        encoded = [self._entity(entity) for entity in entities]
        if len(encoded) == 1:  # one request either way; a plain upsert has no multipart body to build
            client.upsert_entity(encoded[0], mode=UpdateMode.REPLACE)
            return
        for chunk in batches(encoded):
            client.submit_transaction([("upsert", entity, {"mode": UpdateMode.REPLACE}) for entity in chunk])

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        self._count(table, "delete")
        self._table(table).delete_entity(_key(partition_key), _key(row_key))

    def query_partition(self, table: str, partition_key: str) -> Iterator[Entity]:
        self._count(table, "query_partition")
        pages = self._table(table).query_entities(
            "PartitionKey eq @pk", parameters={"pk": _key(partition_key)}
        )
        for found in pages:
            yield self._from(found)

    def query_through(self, table: str, last_partition: str) -> Iterator[Entity]:
        self._count(table, "query_through")
        # Escaped keys keep their order for what this is used for (days, "2026-11-29").
        pages = self._table(table).query_entities(
            "PartitionKey le @pk", parameters={"pk": _key(last_partition)}
        )
        for found in pages:
            yield self._from(found)

    def with_row_key(self, table: str, row_key: str) -> Iterator[Entity]:
        """Every entity of a table with this RowKey, for erasure only (a scan the service filters)."""
        self._count(table, "with_row_key")
        for found in self._table(table).query_entities("RowKey eq @rk", parameters={"rk": _key(row_key)}):
            yield self._from(found)

    def export(self, table: str) -> Iterator[Entity]:
        """Every entity of a table, for reports only (never used by a step)."""
        name = self._prefix + table
        if name not in {t.name for t in self._service.list_tables()}:
            return
        for found in self._service.get_table_client(name).list_entities():
            yield self._from(found)

    def close(self) -> None:
        self._service.close()
