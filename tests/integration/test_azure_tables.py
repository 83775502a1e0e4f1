"""The Table Storage adapter keeps the same contract as the SQLite store, against Azurite."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.azure_tables import (
    BATCH_BYTES,
    AzureTableStore,
    _loopback_options,
    batch_bytes,
    batches,
    decode_properties,
    encode_properties,
)
from shared.ports import Entity
from tests.azurite import azurite_tables  # noqa: F401  (fixture)
from tests.builders import links_hidden
from tests.table_contract import TableStoreContract


class TestAzureTableStore(TableStoreContract):
    @pytest.fixture
    def store(self, azurite_tables: str) -> Iterator[AzureTableStore]:  # noqa: F811
        # A table prefix per test gives each one empty tables on the shared emulator.
        store = AzureTableStore.from_connection_string(azurite_tables, prefix="t" + uuid.uuid4().hex[:10])
        yield store
        store.close()


def test_big_integers_are_sent_as_int64() -> None:
    encoded = encode_properties({"n": 2**40, "m": 5})
    assert encoded["n"].edm_type.value == "Edm.Int64" and encoded["m"] == 5


def test_a_long_string_is_compressed_and_split_and_comes_back_whole() -> None:
    text = "x" * 100_000
    encoded = encode_properties({"record": text})
    assert "record" not in encoded and encoded["record__zn"] == 1
    assert decode_properties(encoded) == {"record": text}


def test_reserved_names_are_refused() -> None:
    with pytest.raises(ValueError, match="reserved"):
        encode_properties({"state__z0": "x"})


def test_snapshot_of_a_large_occurrence_survives_a_round_trip(azurite_tables: str) -> None:  # noqa: F811
    store = AzureTableStore.from_connection_string(azurite_tables, prefix="t" + uuid.uuid4().hex[:10])
    record = '{"milestones": [' + ",".join(f'{{"id": "M-{i}"}}' for i in range(10_000)) + "]}"
    store.upsert("Snapshots", Entity("HU/000001/26", "niche", {"record": record}))
    read = store.get("Snapshots", "HU/000001/26", "niche")
    assert read is not None and read.properties["record"] == record


def test_local_run_keeps_its_state_in_table_storage_when_state_storage_is_set(
    azurite_tables: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_scenario: Callable[..., dict[str, Any]],
) -> None:
    # Hourly polls: every idle tick is a cursor read over HTTP, and the scenario spans five weeks.
    monkeypatch.setenv("NICHE_POLL_SCHEDULE", "0 0 * * * *")
    monkeypatch.setenv("STORM_POLL_SCHEDULE", "0 0 * * * *")
    embedded = run_scenario("first_journey", out=tmp_path / "sqlite")
    prefix = "t" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("StateStorage", azurite_tables)
    monkeypatch.setenv("STATE_TABLE_PREFIX", prefix)
    in_azure = run_scenario("first_journey", out=tmp_path / "azurite")
    assert not (tmp_path / "azurite" / "state.db").exists()
    assert links_hidden(in_azure["outbox"]) == links_hidden(embedded["outbox"])
    assert in_azure["tasks"] == embedded["tasks"]
    assert in_azure["summary"]["duties"] == embedded["summary"]["duties"]
    store = AzureTableStore.from_connection_string(azurite_tables, prefix=prefix)
    journey = store.get("Journeys", "HU/000101/26", "P-1")
    assert journey is not None and "suspect_charged" in journey.properties["state"]


def _counted_store(azurite_tables: str) -> AzureTableStore:  # noqa: F811
    store = AzureTableStore.from_connection_string(azurite_tables, prefix="t" + uuid.uuid4().hex[:10])
    store.upsert("Batched", Entity("made", "first", {}))  # the table made, not counted below
    return store


def test_upserts_to_one_partition_go_as_one_request_per_100(azurite_tables: str) -> None:  # noqa: F811
    store = _counted_store(azurite_tables)
    before, operations = store.http_requests, store.operations
    store.upsert_many("Batched", [Entity("p", f"r{i:03}", {"n": i, "text": "x" * 50}) for i in range(250)])
    assert store.http_requests is not None and before is not None
    assert store.http_requests - before == 3  # 100 + 100 + 50
    assert store.operations - operations == 1 and store.operations_by["Batched.upsert_many"] == 1
    rows = list(store.query_partition("Batched", "p"))
    assert [row.properties["n"] for row in rows] == list(range(250))


def test_one_upsert_through_upsert_many_is_one_request(azurite_tables: str) -> None:  # noqa: F811
    store = _counted_store(azurite_tables)
    before = store.http_requests
    store.upsert_many("Batched", [Entity("p", "only", {"v": 1})])
    assert store.http_requests is not None and before is not None and store.http_requests - before == 1
    found = store.get("Batched", "p", "only")
    assert found is not None and found.properties["v"] == 1


def test_large_entities_are_split_below_four_mib_a_transaction(azurite_tables: str) -> None:  # noqa: F811
    store = _counted_store(azurite_tables)
    # Six entities of ~880 KB each on the wire (random text compresses little), over 4 MiB in all.
    texts = [base64.b64encode(os.urandom(650_000)).decode("ascii") for _ in range(6)]
    entities = [Entity("p", f"r{i}", {"record": text}) for i, text in enumerate(texts)]
    encoded = [encode_properties(entity.properties) for entity in entities]
    assert sum(batch_bytes(e) for e in encoded) > BATCH_BYTES
    before = store.http_requests
    store.upsert_many("Batched", entities)
    sent = (store.http_requests or 0) - (before or 0)
    assert sent == len(list(batches(encoded))) >= 2
    assert all(sum(batch_bytes(e) for e in chunk) <= BATCH_BYTES for chunk in batches(encoded))
    for i, text in enumerate(texts):
        found = store.get("Batched", "p", f"r{i}")
        assert found is not None and found.properties["record"] == text


def test_each_call_is_one_request_once_its_table_is_made(azurite_tables: str) -> None:  # noqa: F811
    store = _counted_store(azurite_tables)
    before = store.http_requests or 0
    created = store.create("Batched", Entity("p", "a", {"v": 1}))
    assert created.etag is not None
    store.update("Batched", Entity("p", "a", {"v": 2}), etag=created.etag)
    store.upsert("Batched", Entity("p", "b", {"v": 3}))
    store.get("Batched", "p", "a")
    assert len(list(store.query_partition("Batched", "p"))) == 2
    store.delete("Batched", "p", "b")
    assert (store.http_requests or 0) - before == 6


def test_an_emulator_on_this_machine_is_reached_without_the_environments_proxy_settings() -> None:
    local = "AccountName=a;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:10002/a;BlobEndpoint=http://127.0.0.1:10000/a"
    assert _loopback_options(local) == {"use_env_settings": False}
    assert _loopback_options(local.replace("127.0.0.1", "localhost")) == {"use_env_settings": False}
    remote = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;EndpointSuffix=core.windows.net"
    assert _loopback_options(remote) == {}
    assert _loopback_options("TableEndpoint=https://a.table.core.windows.net/") == {}
