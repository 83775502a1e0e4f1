"""evaluate_journey and the coalescing window's message (journey-rules.md §8, issue 16).

The window's message goes to the queue when the window opens, scheduled for its close and
numbered; the journey keeps its sequence number; a duty that joins sends the window again and
cancels the earlier message once the journey is written. No wake is scheduled for it.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.table_layout import JOURNEYS, MESSAGES, journey_from
from shared.bootstrap import Services
from shared.contracts.feeds import NicheOccurrence
from shared.contracts.messages import (
    CaseChange,
    Change,
    ChangeKind,
    DeadlineCheck,
    OutboundMessage,
    ResolvedCaseChange,
)
from shared.domain import sending
from shared.local.host import SimulatedClock
from shared.settings import load_settings
from shared.steps.evaluate_journey import evaluate_journey
from shared.steps.send_message import send_message
from tests.builders import embedded, milestone, occurrence

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)  # a Friday morning
CLOSE = NOW + timedelta(minutes=10)


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


def _stored(services: Services) -> Any:
    entity = services.tables.get(JOURNEYS, "HU/000001/26", "P-1")
    assert entity is not None
    return journey_from(entity)


def test_the_window_message_is_scheduled_numbered_and_cancelled_when_a_duty_joins(tmp_path: Path) -> None:
    services, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(NOW))
    clock = services.clock
    assert isinstance(clock, SimulatedClock)
    first = occurrence("2026-11-20T10:30:00Z")
    result = evaluate_journey(
        _event(first, Change(kind=ChangeKind.VICTIM_ADDED, key="P-1", at=NOW), 1), services
    )
    outbound = [e for e in result.emit if e.queue == "outbound_messages"]
    assert len(outbound) == 1 and outbound[0].message.scheduled_at == CLOSE and outbound[0].numbered
    assert not any('"send_window"' in e.message.body for e in result.emit)
    journey = _stored(services)
    (window,) = journey.window_messages
    assert window.message_key == outbound[0].message.message_id and window.sequence_number is not None
    assert journey.window_closes_at == CLOSE

    clock.advance_to(NOW + timedelta(minutes=4))
    second = occurrence(
        "2026-11-20T10:34:00Z", milestones=[milestone("M-1", "suspect_arrested", "2026-11-20T10:33:00Z")]
    )
    change = Change(kind=ChangeKind.MILESTONE_ADDED, key="M-1", at=NOW + timedelta(minutes=3))
    joined = evaluate_journey(_event(second, change, 2), services)
    again = [e for e in joined.emit if e.queue == "outbound_messages"]
    assert len(again) == 1 and again[0].message.scheduled_at == CLOSE
    assert [(c.queue, c.sequence_number) for c in joined.cancel] == [
        ("outbound_messages", window.sequence_number)
    ]
    journey = _stored(services)
    assert [(m.message_key, m.replaced) for m in journey.window_messages] == [
        (window.message_key, True),
        (again[0].message.message_id, False),
    ]
    assert journey.window_messages[1].sequence_number is not None
    assert {k: d.message_keys for k, d in journey.duties.items()} == {
        "ack": [again[0].message.message_id],
        "m:M-1": [again[0].message.message_id],
    }


class _DiesBeforeTheProvider:
    """A worker that dies after its ledger claim, before the provider is called."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def send_email(self, **_: Any) -> Any:
        raise RuntimeError("the worker died before the provider was called")


@pytest.mark.parametrize("retried_first", [False, True], ids=["replacement-first", "retry-first"])
def test_a_window_message_claimed_as_a_join_replaces_it_still_tells_its_duties_once(
    tmp_path: Path, retried_first: bool
) -> None:
    """The join is decided a moment before the close (one worker's clock) while the window's
    message is being sent at the close (another's): that message claims its ledger row and its
    worker dies before the provider. The replacing message leaves its duty out; the replaced
    one, delivered again, must still tell it: each duty goes once, none is left queued."""
    early, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(NOW))
    late, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(CLOSE))
    opened = evaluate_journey(
        _event(
            occurrence("2026-11-20T10:30:00Z"), Change(kind=ChangeKind.VICTIM_ADDED, key="P-1", at=NOW), 1
        ),
        early,
    )
    (first,) = [e.message for e in opened.emit if e.queue == "outbound_messages"]
    dying = dataclasses.replace(late, provider=_DiesBeforeTheProvider(late.provider))
    with pytest.raises(RuntimeError):
        send_message(first.body, dying)
    claimed = late.tables.get(MESSAGES, "HU/000001/26", first.message_id)
    assert claimed is not None and claimed.properties["status"] == "pending"

    clock = early.clock
    assert isinstance(clock, SimulatedClock)
    clock.advance_to(CLOSE - timedelta(seconds=20))
    second = occurrence(
        "2026-11-20T10:39:00Z", milestones=[milestone("M-1", "suspect_arrested", "2026-11-20T10:38:00Z")]
    )
    change = Change(kind=ChangeKind.MILESTONE_ADDED, key="M-1", at=CLOSE - timedelta(minutes=1))
    joined = evaluate_journey(_event(second, change, 2), early)
    (replacing,) = [e.message for e in joined.emit if e.queue == "outbound_messages"]
    assert _stored(late).window_messages[0].replaced

    later_clock = late.clock
    assert isinstance(later_clock, SimulatedClock)
    later_clock.advance_to(CLOSE + timedelta(seconds=30))  # the lock expired: delivered again
    if not retried_first:
        # The replacing message waits for the end of the replaced one's attempt.
        waits = send_message(replacing.body, late)
        assert [(e.queue, e.message.scheduled_at) for e in waits.emit] == [
            ("outbound_messages", CLOSE + timedelta(seconds=60))
        ]
        assert not (tmp_path / "outbox.jsonl").exists()
    send_message(first.body, late)
    later_clock.advance_to(CLOSE + timedelta(seconds=60))
    send_message(replacing.body, late)
    sent = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    told = sorted((m["message_id"], tuple(m["duties"])) for m in sent)
    assert told == sorted([(first.message_id, ("ack",)), (replacing.message_id, ("m:M-1",))])
    journey = _stored(late)
    assert {k: (d.status.value, d.message_keys) for k, d in journey.duties.items()} == {
        "ack": ("sent", [first.message_id]),
        "m:M-1": ("sent", [replacing.message_id]),
    }
    # Delivered once more, neither is handed over again.
    for body in (first.body, replacing.body):
        send_message(body, late)
    assert len((tmp_path / "outbox.jsonl").read_text().splitlines()) == 2


def test_a_replaced_message_that_never_ends_is_waited_for_an_hour_and_its_duty_is_not_met_by_the_other(
    tmp_path: Path,
) -> None:
    """The replaced message's worker died after its claim and it was dead-lettered: the replacing
    message goes an hour after the close without its duty (it may have reached the person), and
    that duty's deadline is not met by a message that did not carry it. Replayed, it tells it."""
    early, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(NOW))
    late, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(CLOSE))
    opened = evaluate_journey(
        _event(
            occurrence("2026-11-20T10:30:00Z"), Change(kind=ChangeKind.VICTIM_ADDED, key="P-1", at=NOW), 1
        ),
        early,
    )
    (first,) = [e.message for e in opened.emit if e.queue == "outbound_messages"]
    with pytest.raises(RuntimeError):
        send_message(first.body, dataclasses.replace(late, provider=_DiesBeforeTheProvider(late.provider)))
    clock = early.clock
    assert isinstance(clock, SimulatedClock)
    clock.advance_to(CLOSE - timedelta(seconds=20))
    second = occurrence(
        "2026-11-20T10:39:00Z", milestones=[milestone("M-1", "suspect_arrested", "2026-11-20T10:38:00Z")]
    )
    change = Change(kind=ChangeKind.MILESTONE_ADDED, key="M-1", at=CLOSE - timedelta(minutes=1))
    (replacing,) = [
        e.message
        for e in evaluate_journey(_event(second, change, 2), early).emit
        if e.queue == "outbound_messages"
    ]
    late_clock = late.clock
    assert isinstance(late_clock, SimulatedClock)
    late_clock.advance_to(CLOSE + sending.REPLACED_WAIT)
    send_message(replacing.body, late)
    sent = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert [(m["message_id"], m["duties"]) for m in sent] == [(replacing.message_id, ["m:M-1"])]
    ack = _stored(late).duties["ack"]
    assert ack.status.value == "queued" and ack.due_by is not None
    late_clock.advance_to(ack.due_by + timedelta(minutes=1))
    check = DeadlineCheck(event_id="d-ack", crime_reference="HU/000001/26", person_id="P-1", duty="ack")
    evaluate_journey(check.model_dump_json(), late)
    ack = _stored(late).duties["ack"]
    assert ack.compliance.value == "breached" and ack.handed_at is None
    send_message(first.body, late)  # replayed from the dead letters
    sent = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert [(m["message_id"], m["duties"]) for m in sent][1:] == [(first.message_id, ["ack"])]
    assert _stored(late).duties["ack"].status.value == "sent"


def test_a_window_message_not_recorded_at_its_close_is_waited_for_from_its_close(tmp_path: Path) -> None:
    """Scheduled when the window opened, it comes ten minutes after it was decided: the journey
    write it waits for (an evaluate_journey retried all that time) gets the usual ten minutes
    from the close, not none."""
    services, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(CLOSE))
    message = OutboundMessage(
        message_key="not-recorded-yet",
        crime_reference="HU/000001/26",
        person_id="P-1",
        duties=["ack"],
        template="acknowledgement",
        channel="email",
        decided_at=NOW,
        not_before=CLOSE,
    )
    result = send_message(message.model_dump_json(), services)
    [again] = result.emit
    assert again.queue == "outbound_messages" and again.message.scheduled_at == CLOSE + timedelta(seconds=30)
    assert services.tables.get(MESSAGES, "HU/000001/26", "not-recorded-yet") is None


def test_the_compliance_report_does_not_count_a_replaced_window_message_as_not_sent(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from shared.adapters.table_layout import ledger_entity
    from shared.domain.ledger import LedgerEntry, LedgerStatus
    from shared.ops.compliance import message_counts

    services, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(CLOSE))
    for key, reason in (("replaced-one", "replaced"), ("stopped-one", "opted_out")):
        entry = LedgerEntry.begin(
            "HU/000001/26", key, LedgerStatus.SUPPRESSED, channel="email", reason=reason, decided_at=CLOSE
        )
        services.tables.create(MESSAGES, ledger_entity(entry))
    counts = message_counts(services.tables, CLOSE.date(), CLOSE.date(), ZoneInfo("Europe/London"))  # type: ignore[arg-type]
    assert counts["email"]["not_sent"] == 1 and counts["total"]["not_sent"] == 1
