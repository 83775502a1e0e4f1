"""Check-ins: "no message and no logged contact for frequency_days" (docs/journey-rules.md, "Check-ins").

Called on the pure rules: a message already waiting to go (held for the morning,
or in its coalescing window) is the contact, so a check-in due at the same moment
is not created beside it, whichever of the two the queues deliver first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.policy_file import load_policy
from shared.contracts.messages import Wake
from shared.domain.journey import Duty, DutyStatus, Journey, evaluate_wake

POLICY = load_policy()
NOW = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)


def _journey(status: DutyStatus) -> Journey:
    update = Duty(
        key="m:M-1",
        template="suspect_bailed",
        event_at=NOW - timedelta(hours=10),
        change_id="c",
        status=status,
    )
    return Journey(
        crime_reference="HU/000001/26",
        person_id="P-1",
        role="victim",
        case_status="under_investigation",
        duties={
            "ack": Duty(
                key="ack",
                template="acknowledgement",
                event_at=NOW - timedelta(days=40),
                change_id="a",
                status=DutyStatus.SENT,
            ),
            "m:M-1": update,
        },
        last_contact_at=NOW - timedelta(days=30),
        next_checkin_at=NOW,
    )


def _wake() -> Wake:
    return Wake(event_id="w", crime_reference="HU/000001/26", person_id="P-1", purpose="checkin", at=NOW)


@pytest.mark.parametrize("status", [DutyStatus.QUEUED, DutyStatus.WAITING])
def test_a_check_in_due_while_an_update_waits_to_go_is_not_created_and_the_clock_restarts(
    status: DutyStatus,
) -> None:
    decision = evaluate_wake(_journey(status), _wake(), POLICY, NOW)
    assert not any(key.startswith("checkin:") for key in decision.journey.duties)
    assert decision.journey.next_checkin_at == NOW + timedelta(days=28)
    assert [s.at for s in decision.scheduled] == [NOW + timedelta(days=28)]


@pytest.mark.parametrize("status", [DutyStatus.SENT, DutyStatus.TASKED, DutyStatus.SUPERSEDED])
def test_a_check_in_is_created_when_nothing_waits_to_go(status: DutyStatus) -> None:
    decision = evaluate_wake(_journey(status), _wake(), POLICY, NOW)
    assert "checkin:1" in decision.journey.duties
