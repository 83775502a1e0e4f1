"""A visit booked after the officer attended (a follow-up) is told, whatever comes before it goes.

Every later record of the incident still carries the attendance, and each change of such a
record discharged every visit duty not yet told, the follow-up included: a booking made at
night, held for the morning (no texts at night), was lost to any update of the incident in the
hours between. The rule: an attendance makes moot the visits booked before it, not after.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.journey import DutyStatus, Journey, evaluate_case_change
from shared.domain.policy import Policy
from tests.builders import incident, storm_change

POLICY = Policy()
INCIDENT = "HU-20261120-0123"
FIRST = f"attend:{INCIDENT}:2026-11-20T16:00:00+00:00"
FOLLOW_UP = f"attend:{INCIDENT}:2026-11-22T10:00:00+00:00"


def _record(modified_at: str, booked: str, attended: str | None = None, **fields: Any) -> dict[str, Any]:
    record = incident(modified_at, scheduled_for=booked, **fields)
    record["attendance"]["attended_at"] = attended
    return record


def test_a_follow_up_visit_outlives_every_later_change_that_carries_the_attendance() -> None:
    records = [
        _record("2026-11-20T09:30:00Z", "2026-11-20T16:00:00+00:00"),
        _record("2026-11-20T13:45:00Z", "2026-11-20T16:00:00+00:00", "2026-11-20T13:30:00+00:00"),
        # At night a follow-up is booked; before it goes (in its window, or held for the morning
        # for a text) the incident changes again, twice.
        _record("2026-11-20T21:00:00Z", "2026-11-22T10:00:00+00:00", "2026-11-20T13:30:00+00:00"),
        _record(
            "2026-11-20T23:00:00Z",
            "2026-11-22T10:00:00+00:00",
            "2026-11-20T13:30:00+00:00",
            closing_category="Violence",
        ),
        _record(
            "2026-11-21T02:00:00Z",
            "2026-11-22T10:00:00+00:00",
            "2026-11-20T13:30:00+00:00",
            closing_category="Violence",
            mobile="+447700900456",
        ),
    ]
    journey: Journey | None = None
    seen = []
    for n, record in enumerate(records):
        at = datetime.fromisoformat(record["modified_at"].replace("Z", "+00:00"))
        change = storm_change(record, records[n - 1] if n else None)
        journey = evaluate_case_change(journey, change, "C-77", "caller", POLICY, at).journey
        seen.append({key: duty.status for key, duty in journey.duties.items()})
    assert journey is not None
    # The visit booked before the attendance is moot once it is recorded.
    assert seen[1][FIRST] == DutyStatus.DISCHARGED
    # The follow-up, booked after it, waits to be told through every later change.
    assert [statuses.get(FOLLOW_UP) for statuses in seen[2:]] == [DutyStatus.WAITING] * 3
