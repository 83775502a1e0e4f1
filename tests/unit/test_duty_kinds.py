"""Duty kinds know their keys and their deadline rule (docs/journey-rules.md §1, §2)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.policy_file import load_policy
from shared.domain.journey import Decision, Duty, DutyKind, Journey
from shared.domain.journey.deadlines import set_deadline

POLICY = load_policy()
NOW = datetime(2026, 12, 18, 10, tzinfo=UTC)  # a Friday before Christmas


@pytest.mark.parametrize(
    ("key", "kind", "deadline"),
    [
        ("ack", DutyKind.ACKNOWLEDGE, True),
        ("oic:104233", DutyKind.OFFICER, True),
        ("m:M-881", DutyKind.MILESTONE, True),
        ("outcome:16", DutyKind.OUTCOME, True),
        ("checkin:3", DutyKind.CHECKIN, False),
        ("attend:HU-20261218-0001:2026-12-18T16:00:00+00:00", DutyKind.ATTENDANCE, False),
    ],
)
def test_a_duty_kind_is_read_from_its_key_and_says_whether_the_code_sets_a_deadline(
    key: str, kind: DutyKind, deadline: bool
) -> None:
    assert DutyKind.of(key) is kind and kind.has_code_deadline is deadline
    duty = Duty(key=key, template="any template name at all", event_at=NOW, change_id="c")
    journey = Journey(crime_reference="HU/000001/26", person_id="P-1", role="victim")
    decision = Decision(journey)
    set_deadline(journey, duty, POLICY, NOW, decision)
    # Whether a duty has a deadline is its kind's rule, not its template's name.
    assert (duty.due_by is not None) is deadline
    assert bool(decision.scheduled) is deadline
    if deadline:
        assert duty.due_by == datetime.fromisoformat("2026-12-29T23:59:59+00:00")


def test_keys_are_built_by_kind() -> None:
    assert DutyKind.ACKNOWLEDGE.key() == "ack"
    assert DutyKind.MILESTONE.key("M-881") == "m:M-881"
    assert (
        DutyKind.ATTENDANCE.key("HU-1", "2026-12-18T16:00:00+00:00")
        == "attend:HU-1:2026-12-18T16:00:00+00:00"
    )
    with pytest.raises(ValueError):
        DutyKind.of("unheard-of:1")
