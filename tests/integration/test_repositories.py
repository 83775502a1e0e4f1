"""The journey repository and the Messages ledger: one contract, run on both table stores.

The same tests run against the embedded SQLite store and against Table Storage
(Azurite, started by the fixture): a journey saved and read back, a conditional
save that loses to another writer, a ledger claim that finds an earlier one, and
the ledger's status machine (a finished message never moves).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.adapters.azure_tables import AzureTableStore
from shared.adapters.repositories import TableJourneys, TableLedger
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.domain.journey import Duty, Journey
from shared.domain.ledger import TRANSITIONS, InvalidTransition, LedgerEntry, LedgerStatus
from shared.ports import EntityExists, EtagMismatch, TableStore, Write
from tests.azurite import azurite_tables  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "table_storage"])
def tables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TableStore]:
    if request.param == "sqlite":
        store = SqliteTableStore(tmp_path / "state.db")
        yield store
        store.close()
    else:
        connection = request.getfixturevalue("azurite_tables")
        yield AzureTableStore.from_connection_string(connection, prefix="r" + uuid.uuid4().hex[:10])


def _apply(tables: TableStore, write: Write | None) -> None:
    assert write is not None
    if write.mode == "insert":
        tables.create(write.table, write.entity)
    elif write.mode == "replace":
        assert write.etag is not None
        tables.update(write.table, write.entity, etag=write.etag)
    else:
        tables.upsert(write.table, write.entity)


def _journey(**changes: object) -> Journey:
    ack = Duty(key="ack", template="acknowledgement", event_at=NOW, change_id="c1")
    return Journey(
        crime_reference="HU/000001/26", person_id="P-1", role="victim", duties={"ack": ack}
    ).model_copy(update=changes)


def test_a_journey_saved_is_read_back_whole_with_its_etag(tables: TableStore) -> None:
    journeys = TableJourneys(tables)
    assert journeys.get("HU/000001/26", "P-1") is None
    _apply(tables, journeys.save(_journey(), None))
    read = journeys.get("HU/000001/26", "P-1")
    assert read is not None and read.journey == _journey() and read.etag
    assert [r.journey.person_id for r in journeys.in_partition("HU/000001/26")] == ["P-1"]


def test_an_unchanged_journey_is_not_written_again(tables: TableStore) -> None:
    journeys = TableJourneys(tables)
    _apply(tables, journeys.save(_journey(), None))
    read = journeys.get("HU/000001/26", "P-1")
    assert journeys.save(_journey(), read) is None


def test_a_journey_moved_on_by_another_writer_is_not_overwritten(tables: TableStore) -> None:
    journeys = TableJourneys(tables)
    _apply(tables, journeys.save(_journey(), None))
    read = journeys.get("HU/000001/26", "P-1")
    _apply(tables, journeys.save(_journey(checkins=1), read))  # the other worker wins
    with pytest.raises(EtagMismatch):
        _apply(tables, journeys.save(_journey(checkins=2), read))  # ours, read before theirs
    with pytest.raises(EntityExists):
        _apply(tables, journeys.save(_journey(checkins=3), None))  # a create where one exists
    now = journeys.get("HU/000001/26", "P-1")
    assert now is not None and now.journey.checkins == 1


def test_a_ledger_claim_finds_the_entry_an_earlier_delivery_left(tables: TableStore) -> None:
    ledger = TableLedger(tables)
    pending = LedgerEntry.begin(
        "HU/000001/26",
        "m1",
        LedgerStatus.PENDING,
        channel="sms",
        template="acknowledgement",
        duties=("ack",),
        first_attempt_at=NOW,
    )
    assert ledger.claim(pending) is None  # claimed now
    again = ledger.claim(pending.with_fields(first_attempt_at=datetime(2026, 11, 21, tzinfo=UTC)))
    assert again == pending  # the first claim stands, with its first attempt's time
    sent = pending.moved_to(LedgerStatus.SENT, provider_id="p-1", sent_at=NOW, segments=1)
    _apply(tables, ledger.record(sent))
    assert ledger.get("HU/000001/26", "m1") == sent


def test_an_entry_without_duties_or_times_reads_back_as_it_was_written(tables: TableStore) -> None:
    ledger = TableLedger(tables)
    orphan = LedgerEntry.begin(
        "HU/000001/26", "m2", LedgerStatus.SUPPRESSED, channel="email", reason="not_recorded", decided_at=NOW
    )
    _apply(tables, ledger.record(orphan))
    assert ledger.get("HU/000001/26", "m2") == orphan


REPORTED = frozenset({LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED})


def test_a_status_moves_only_forward_and_a_finished_message_never_moves() -> None:
    seen = 0
    for before, allowed in TRANSITIONS.items():
        for after in LedgerStatus:
            seen += 1
            if after in allowed:
                continue
            if before is None:
                with pytest.raises(InvalidTransition):
                    LedgerEntry.begin("HU/000001/26", "m", after)
            else:
                with pytest.raises(InvalidTransition):
                    LedgerEntry("HU/000001/26", "m", before).moved_to(after)
        if before is not None and before.finished:
            # Never handed over again: only a delivery report may move it, and only once.
            assert allowed <= REPORTED, f"{before} is finished but may move to {allowed - REPORTED}"
        if before in REPORTED | {LedgerStatus.SUPPRESSED, LedgerStatus.FAILED}:
            assert allowed == frozenset(), f"{before} is final but may move"
    assert seen == len(TRANSITIONS) * len(LedgerStatus)
