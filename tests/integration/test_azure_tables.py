"""The Table Storage adapter keeps the same contract as the SQLite store, against Azurite."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.azure_tables import AzureTableStore, decode_properties, encode_properties
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
