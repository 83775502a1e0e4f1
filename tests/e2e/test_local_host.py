"""The local host: timer schedules, dispatch semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

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


def test_the_real_clock_host_dispatches_a_scheduled_message_when_its_time_comes(tmp_path: Path) -> None:
    import function_app
    from shared import bootstrap
    from shared.bootstrap import SystemClock
    from shared.contracts.messages import DeadlineCheck
    from shared.local.host import LocalHost
    from shared.ports import OutgoingMessage
    from shared.settings import load_settings
    from tests.builders import embedded

    settings = load_settings(LOCAL_DATA_DIR=tmp_path)
    clock = SystemClock()
    services, broker = embedded(settings, clock)
    bootstrap.install(services)
    try:
        due = clock.now() + timedelta(seconds=0.5)
        check = DeadlineCheck(event_id="e1", crime_reference="HU/1/26", person_id="P-1", duty="ack")
        broker.send(
            "journey-events",
            [OutgoingMessage(check.model_dump_json(), "e1", session_id="HU/1/26", scheduled_at=due)],
        )
        host = LocalHost(function_app.app, broker, settings, clock.now)
        assert host.drain() == 0  # not yet due
        stats = host.run_realtime(until=clock.now() + timedelta(seconds=2), poll_seconds=0.1)
        assert stats.invocations.get("evaluate_journey") == 1
        assert broker.pending("journey-events") == 0
    finally:
        bootstrap.install(None)
        broker.close()
