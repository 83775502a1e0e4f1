"""Steps under concurrency: a stale ETag is re-read and re-applied; a never-recorded message is not sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.adapters.table_layout import JOURNEYS, MESSAGES, journey_from
from shared.bootstrap import Services
from shared.contracts.feeds import NicheOccurrence
from shared.contracts.messages import CaseChange, Change, ChangeKind, OutboundMessage, ResolvedCaseChange
from shared.local.host import SimulatedClock
from shared.ports import Entity
from shared.settings import load_settings
from shared.steps.evaluate_journey import evaluate_journey
from shared.steps.send_message import send_message
from tests.builders import embedded, milestone, occurrence

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


class _RacingStore:
    """Another worker updates the journey between our read and our write, once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.raced = False
        self.updates = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
        self.updates += table == JOURNEYS
        if table == JOURNEYS and not self.raced:
            self.raced = True
            current = self.inner.get(table, entity.partition_key, entity.row_key)
            self.inner.upsert(table, Entity(current.partition_key, current.row_key, current.properties))
        result: Entity = self.inner.update(table, entity, etag=etag)
        return result


def _services(tmp_path: Path) -> Services:
    services, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(NOW))
    return services


def _event(record: dict[str, Any], change: Change, n: int) -> str:
    niche = NicheOccurrence.model_validate(record)
    case = CaseChange(
        change_id=f"c{n}",
        feed="niche",
        crime_reference=niche.crime_reference,
        detected_at=NOW,
        changes=[change],
        niche=niche,
    )
    return ResolvedCaseChange(event_id=f"c{n}", case=case).model_dump_json(by_alias=True)


def test_a_stale_etag_is_answered_by_reading_again_and_reapplying(tmp_path: Path) -> None:
    services = _services(tmp_path)
    first = occurrence("2026-11-20T10:00:00Z")
    evaluate_journey(_event(first, Change(kind=ChangeKind.VICTIM_ADDED, key="P-1", at=NOW), 1), services)
    racing = _RacingStore(services.tables)
    services.tables = racing
    arrested = milestone("M-1", "suspect_arrested", "2026-11-20T10:20:00Z")
    second = occurrence("2026-11-20T10:25:00Z", milestones=[arrested])
    evaluate_journey(_event(second, Change(kind=ChangeKind.MILESTONE_ADDED, key="M-1", at=NOW), 2), services)
    assert racing.raced and racing.updates == 2
    stored = racing.inner.get(JOURNEYS, "HU/000001/26", "P-1")
    assert set(journey_from(stored).duties) == {"ack", "m:M-1"}


def _orphan() -> str:
    return OutboundMessage(
        message_key="never-recorded",
        crime_reference="HU/000001/26",
        person_id="P-1",
        duties=["ack"],
        template="acknowledgement",
        channel="email",
        decided_at=NOW - timedelta(minutes=1),
    ).model_dump_json()


def test_a_message_its_journey_has_not_recorded_yet_is_looked_at_again_shortly(tmp_path: Path) -> None:
    services = _services(tmp_path)
    result = send_message(_orphan(), services)
    [again] = result.emit
    assert again.queue == "outbound_messages"
    assert again.message.scheduled_at == NOW + timedelta(seconds=30)
    assert services.tables.get(MESSAGES, "HU/000001/26", "never-recorded") is None


def test_a_message_its_journey_never_recorded_is_not_sent(tmp_path: Path) -> None:
    services = _services(tmp_path)
    clock = services.clock
    assert isinstance(clock, SimulatedClock)
    clock.advance_to(NOW + timedelta(minutes=15))
    result = send_message(_orphan(), services)
    assert result.emit == []
    ledger = services.tables.get(MESSAGES, "HU/000001/26", "never-recorded")
    assert ledger is not None and ledger.properties["status"] == "suppressed"
    assert ledger.properties["reason"] == "not_recorded_by_journey"
    assert not (tmp_path / "outbox.jsonl").exists() or (tmp_path / "outbox.jsonl").read_text() == ""


def _first_message(services: Services) -> tuple[str, Any]:
    """Evaluate a new victim's case change until the acknowledgement is handed to send_message."""
    first = occurrence("2026-11-20T10:00:00Z")
    result = evaluate_journey(
        _event(first, Change(kind=ChangeKind.VICTIM_ADDED, key="P-1", at=NOW), 1), services
    )
    clock = services.clock
    assert isinstance(clock, SimulatedClock)
    for _ in range(3):
        outbound = [e.message for e in result.emit if e.queue == "outbound_messages"]
        if outbound:
            return outbound[0].body, result
        wake = next(e.message for e in result.emit if '"send_window"' in e.message.body)
        assert wake.scheduled_at is not None
        clock.advance_to(wake.scheduled_at)
        result = evaluate_journey(wake.body, services)
    raise AssertionError("no message was decided")


class _AlwaysRacingStore(_RacingStore):
    """Another worker changes the journey before every one of our writes."""

    def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
        self.raced = False
        return super().update(table, entity, etag=etag)


def _ack(tables: Any) -> Any:
    stored = tables.get(JOURNEYS, "HU/000001/26", "P-1")
    return journey_from(stored).duties["ack"]


def test_send_message_records_what_it_sent_in_the_journey_without_a_further_event(tmp_path: Path) -> None:
    services = _services(tmp_path)
    body, _ = _first_message(services)
    result = send_message(body, services)
    assert [e for e in result.emit if e.queue == "journey_events"] == []
    ack = _ack(services.tables)
    assert ack.status.value == "sent" and ack.handed_at is not None
    assert ack.compliance.value == "met"
    ledger = services.tables.get(MESSAGES, "HU/000001/26", ack.message_keys[0])
    assert ledger is not None and ledger.properties["status"] == "sent"
    # A redelivery sends nothing again and changes nothing.
    again = send_message(body, services)
    assert again.emit == [] and again.writes == []
    assert len((tmp_path / "outbox.jsonl").read_text().splitlines()) == 1


def test_a_journey_changed_under_send_message_is_read_again(tmp_path: Path) -> None:
    services = _services(tmp_path)
    body, _ = _first_message(services)
    racing = _RacingStore(services.tables)
    services.tables = racing
    result = send_message(body, services)
    assert racing.raced and racing.updates == 2
    assert [e for e in result.emit if e.queue == "journey_events"] == []
    assert _ack(racing.inner).compliance.value == "met"


def test_a_journey_that_keeps_changing_gets_the_outcome_as_an_event(tmp_path: Path) -> None:
    services = _services(tmp_path)
    body, _ = _first_message(services)
    racing = _AlwaysRacingStore(services.tables)
    services.tables = racing
    result = send_message(body, services)
    [outcome] = [e.message for e in result.emit if e.queue == "journey_events"]
    assert json.loads(outcome.body)["type"] == "message_outcome"
    assert _ack(racing.inner).compliance.value == "pending"  # not yet: evaluate_journey applies it
    services.tables = racing.inner
    evaluate_journey(outcome.body, services)
    assert _ack(services.tables).compliance.value == "met"
    assert len((tmp_path / "outbox.jsonl").read_text().splitlines()) == 1
