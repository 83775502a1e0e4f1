"""The local host: timer schedules, dispatch semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter

from shared.local.host import Schedule


@pytest.mark.parametrize(
    "expression",
    ["0 */5 * * * *", "0 0 * * * *", "30 15 8-18 * * *", "*/20 * * * * *", "0 0 9 * * 1-5", "0 30 2 1 * *"],
)
def test_schedule_agrees_with_croniter_across_days(expression: str) -> None:
    schedule = Schedule(expression)
    moment = datetime(2026, 3, 27, 22, 58, 1, tzinfo=UTC)
    reference = croniter(expression, moment, second_at_beginning=True)
    for _ in range(400):
        expected = reference.get_next(datetime).astimezone(UTC)
        assert schedule.next_after(moment) == expected
        moment = expected


def test_schedule_fire_time_is_strictly_after_the_moment() -> None:
    schedule = Schedule("0 */5 * * * *")
    on_the_dot = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    assert schedule.next_after(on_the_dot) == on_the_dot + timedelta(minutes=5)
    assert schedule.next_after(on_the_dot - timedelta(microseconds=1)) == on_the_dot
