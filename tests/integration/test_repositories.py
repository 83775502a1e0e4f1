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
from shared.adapters.repositories import TableJourneys, TableLedger, TableLinks
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.domain.journey import Duty, Journey
from shared.domain.ledger import TRANSITIONS, InvalidTransition, LedgerEntry, LedgerStatus
from shared.domain.links import Link, is_link_id
from shared.ports import EntityExists, EtagMismatch, TableStore, Write
from shared.web.rate_limit import PAGE, RateLimiter
from shared.web.rate_limit import TABLE as PAGE_USE
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


# --- personal links (journey-rules.md §13) ------------------------------------------------------------


def test_a_person_keeps_one_link_and_each_person_has_their_own(tables: TableStore) -> None:
    links = TableLinks(tables)
    first = links.for_person("HU/000001/26", "P-1", NOW)
    assert is_link_id(first) and links.for_person("HU/000001/26", "P-1", NOW) == first
    others = {links.for_person("HU/000001/26", "P-2", NOW), links.for_person("HU/000002/26", "P-1", NOW)}
    assert len(others | {first}) == 3
    assert links.get(first) == Link(first, "HU/000001/26", "P-1", NOW)
    assert links.get("Zz9Zz9Zz9Zz") is None


def test_a_revoked_link_stays_revoked_and_the_next_message_gets_a_new_one(tables: TableStore) -> None:
    links = TableLinks(tables)
    old = links.for_person("HU/000001/26", "P-1", NOW)
    later = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert links.revoke("HU/000001/26", "P-1", later) == old
    revoked = links.get(old)
    assert revoked is not None and revoked.revoked_at == later
    new = links.for_person("HU/000001/26", "P-1", later)
    assert new != old and links.get(new) == Link(new, "HU/000001/26", "P-1", later)
    assert links.revoke("HU/000009/26", "P-9", later) is None  # nobody's link: nothing to revoke


def test_two_workers_making_one_persons_link_at_once_agree_on_one(tables: TableStore) -> None:
    # The other worker makes the person's link between this one's look-up and its own create.
    winner: list[str] = []

    def draw_after_the_other_worker() -> str:
        if not winner:
            winner.append(TableLinks(tables).for_person("HU/000001/26", "P-1", NOW))
        return "Lost0000000"

    assert (
        TableLinks(tables, new_id=draw_after_the_other_worker).for_person("HU/000001/26", "P-1", NOW)
        == winner[0]
    )
    assert TableLinks(tables).get("Lost0000000") is None  # the loser's link is not left to open anything
    assert TableLinks(tables).for_person("HU/000001/26", "P-1", NOW) == winner[0]


def test_revoking_or_forgetting_a_link_deletes_its_rate_limit_counters_and_no_other_link_s(
    tables: TableStore,
) -> None:
    links, limiter = TableLinks(tables), RateLimiter(tables)
    revoked, erased, other = (
        links.for_person("HU/000001/26", person, NOW) for person in ("P-1", "P-2", "P-3")
    )
    for link in (revoked, erased, other):
        assert limiter.use(link, PAGE, NOW) and limiter.use(link, "message", NOW)
    assert links.revoke("HU/000001/26", "P-1", NOW) == revoked
    assert links.forget("HU/000001/26", "P-2") == 2 + 2  # the link, its index, its two counters
    assert [list(tables.query_partition(PAGE_USE, link)) for link in (revoked, erased)] == [[], []]
    assert len(list(tables.query_partition(PAGE_USE, other))) == 2
