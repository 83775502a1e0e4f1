"""evaluate_journey and the coalescing window's message (journey-rules.md §8, issue 16).

The window's message goes to the queue when the window opens, scheduled for its close and
numbered; the journey keeps its sequence number; a duty that joins sends the window again and
cancels the earlier message once the journey is written. No wake is scheduled for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.adapters.table_layout import JOURNEYS, journey_from
from shared.bootstrap import Services
from shared.contracts.feeds import NicheOccurrence
from shared.contracts.messages import CaseChange, Change, ChangeKind, ResolvedCaseChange
from shared.local.host import SimulatedClock
from shared.settings import load_settings
from shared.steps.evaluate_journey import evaluate_journey
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
