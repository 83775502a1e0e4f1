"""The local host: timer schedules, dispatch semantics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from croniter import croniter

from shared.adapters.sqlite_queue import ReceivedMessage, SqliteQueueBroker
from shared.local.host import LocalHost, Schedule, SimulatedClock


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


@pytest.fixture
def simulated(tmp_path: Path) -> Iterator[tuple[LocalHost, SqliteQueueBroker, SimulatedClock]]:
    """The app's function objects on the local host, over embedded services on a simulated clock."""
    import function_app
    from shared import bootstrap
    from shared.settings import load_settings
    from tests.builders import embedded

    settings = load_settings(LOCAL_DATA_DIR=tmp_path)
    clock = SimulatedClock(datetime(2026, 11, 20, 10, tzinfo=UTC))
    services, broker = embedded(settings, clock)
    bootstrap.install(services)
    try:
        yield LocalHost(function_app.app, broker, settings, clock.now), broker, clock
    finally:
        bootstrap.install(None)
        broker.close()


def _deadline_checks(broker: SqliteQueueBroker, crime: str, *event_ids: str) -> None:
    """Deadline checks of a journey no one has: evaluate_journey takes them and sends nothing."""
    from shared.contracts.messages import DeadlineCheck
    from shared.ports import OutgoingMessage

    checks = [
        DeadlineCheck(event_id=e, crime_reference=crime, person_id="P-1", duty="ack") for e in event_ids
    ]
    broker.send(
        "journey-events", [OutgoingMessage(c.model_dump_json(), c.event_id, session_id=crime) for c in checks]
    )


def test_a_functions_cpu_is_its_own_and_settling_the_message_is_the_hosts(
    simulated: tuple[LocalHost, SqliteQueueBroker, SimulatedClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step CPU the host reports is the function object's call only; completing the message
    or abandoning it, with its session released in the same broker call, are counted apart, as the host's work (a fake process clock advanced by known amounts inside
    each, so nothing here is timed)."""
    from shared.local import host as host_module

    host, broker, _ = simulated
    ticks = [0.0]
    monkeypatch.setattr(host_module.time, "process_time", lambda: ticks[0])
    target = next(f for f in host.queues if f.name == "evaluate_journey")
    call = target.function

    def spending(**arguments: object) -> None:
        ticks[0] += 3.0  # the step
        call(**arguments)

    complete, abandon, release = broker.complete, broker.abandon, broker.release_session

    def completing(*args: object, **kwargs: object) -> None:
        ticks[0] += 5.0  # the host settling the message
        complete(*args, **kwargs)  # type: ignore[arg-type]

    def abandoning(*args: object, **kwargs: object) -> None:
        ticks[0] += 11.0
        abandon(*args, **kwargs)  # type: ignore[arg-type]

    def releasing(*args: object, **kwargs: object) -> None:
        ticks[0] += 7.0
        release(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(target, "function", spending)
    monkeypatch.setattr(broker, "complete", completing)
    monkeypatch.setattr(broker, "abandon", abandoning)
    monkeypatch.setattr(broker, "release_session", releasing)
    _deadline_checks(broker, "HU/1/26", "e0", "e1")
    assert host.drain() == 2
    assert host.stats.invocations["evaluate_journey"] == 2
    assert host.stats.cpu_seconds["evaluate_journey"] == 2 * 3.0
    # Completed with the session released in the same call: no release_session of its own.
    assert host.stats.settle_cpu_seconds == 2 * 5.0
    assert broker._db.execute("SELECT count(*) FROM sessions WHERE owner IS NOT NULL").fetchone() == (0,)

    def failing(**arguments: object) -> None:
        ticks[0] += 3.0
        raise RuntimeError("step failed")

    monkeypatch.setattr(target, "function", failing)
    _deadline_checks(broker, "HU/1/26", "e2")
    assert host.drain(limit=1) == 1
    assert host.stats.failures["evaluate_journey"] == 1
    # Abandoned with the session released in the same call: no release_session of its own.
    assert host.stats.settle_cpu_seconds == 2 * 5.0 + 11.0
    assert broker._db.execute("SELECT count(*) FROM sessions WHERE owner IS NOT NULL").fetchone() == (0,)


def test_a_completion_that_lost_its_lock_still_gives_up_the_session(
    simulated: tuple[LocalHost, SqliteQueueBroker, SimulatedClock],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """complete releases the session only when it settles the message: when it raises LockLost
    (the function outran the lock), nothing was settled or released, and the host releases the
    session itself and carries on, as the Functions host does, so that the message can be taken
    again when Service Bus delivers it again."""
    from shared.adapters.sqlite_queue import LockLost

    host, broker, _ = simulated

    def lost(message: ReceivedMessage, **_: object) -> None:
        raise LockLost.of(message)

    monkeypatch.setattr(broker, "complete", lost)
    _deadline_checks(broker, "HU/1/26", "e0")
    with caplog.at_level(logging.WARNING, logger="victim_updates.local_host"):
        assert host.drain() == 1
    assert host.stats.failures.get("evaluate_journey", 0) == 0  # the function itself succeeded
    assert "lapsed before it was completed" in caplog.text and "e0" in caplog.text
    assert broker._db.execute("SELECT owner FROM sessions WHERE session_id='HU/1/26'").fetchall() == [(None,)]
    assert broker._db.execute("SELECT count(*) FROM messages").fetchone() == (1,)  # to be delivered again


def test_a_drain_asks_a_queue_found_empty_again_only_once_something_came_to_it(
    simulated: tuple[LocalHost, SqliteQueueBroker, SimulatedClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two checks of one crime on journey-events, which send nothing: every other queue is asked
    once, and journey-events once for each check. A receive that takes fewer than it asked for
    leaves the queue empty at that moment; settling the first check frees the second (its
    session's next), settling the second frees nothing. The broker's ``changes_of`` and
    ``next_visible_by_queue`` say when to ask again (tests/integration/test_queue_changes.py holds
    them to that)."""
    host, broker, clock = simulated
    asked: dict[str, int] = {}
    receive_many = broker.receive_many

    def counting(queue: str, **kwargs: object) -> object:
        asked[queue] = asked.get(queue, 0) + 1
        return receive_many(queue, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(broker, "receive_many", counting)
    _deadline_checks(broker, "HU/1/26", "e0", "e1")
    assert host.drain() == 2
    queues = {target.queue for target in host.queues}
    assert len(queues) >= 4 and "journey-events" in queues
    assert asked == {queue: 2 if queue == "journey-events" else 1 for queue in queues}
    # Nothing is due on any queue: the next event is a timer's.
    assert host.next_event_at() == min(timer.next_fire for timer in host.timers)
    # A later drain, at a later moment, asks only the queue something came to: the others have
    # nothing scheduled or locked, so they stay empty until something comes to them.
    clock.advance_to(clock.now() + timedelta(minutes=5))
    asked.clear()
    _deadline_checks(broker, "HU/2/26", "e9")
    _deadline_checks(broker, "HU/3/26", "e10")
    assert host.next_event_at() == clock.now()  # something came to journey-events: ask it now
    assert host.drain() == 2
    assert asked == {"journey-events": 1}  # both crimes' checks in one receive


def test_the_host_takes_as_many_sessions_at_once_as_host_json_allows_and_no_more_than_its_limit(
    simulated: tuple[LocalHost, SqliteQueueBroker, SimulatedClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """journey-events is a session queue: one receive takes the heads of up to eight sessions
    (maxConcurrentSessions), each is run and settled, and the rest wait for the next receive. A
    drain with a limit takes no more than the limit, so nothing is left locked behind it."""
    from shared.local import host as host_module

    host, broker, _ = simulated
    batches: list[int] = []
    receive_many = broker.receive_many

    def counting(queue: str, **kwargs: Any) -> list[ReceivedMessage]:
        got = receive_many(queue, **kwargs)
        if queue == "journey-events":
            batches.append(len(got))
        return got

    monkeypatch.setattr(broker, "receive_many", counting)
    for n in range(11):
        _deadline_checks(broker, f"HU/{n}/26", f"e{n}")
    assert host.drain(limit=3) == 3
    assert batches == [3]
    assert broker._db.execute("SELECT count(*) FROM messages WHERE locked_until IS NOT NULL").fetchone() == (
        0,
    )
    assert broker.pending("journey-events") == 8
    batches.clear()
    assert host.drain() == 8
    assert batches == [host_module.MAX_CONCURRENT_SESSIONS, 0]
    assert host.stats.invocations["evaluate_journey"] == 11
    assert broker.pending("journey-events") == 0
    assert broker._db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


@pytest.mark.parametrize("first_call", ["returns", "raises"])
def test_on_the_wall_clock_a_batch_outlasting_its_locks_loses_nothing_and_stops_nothing(
    simulated: tuple[LocalHost, SqliteQueueBroker, SimulatedClock],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    first_call: str,
) -> None:
    """Three crimes' checks taken in one receive; the first call takes longer than a lock (the
    clock is moved on inside it, as the wall clock would move). The first message's settling
    finds its lock gone, and the two waiting their turn are not run on lapsed locks. The host
    carries on; the next receive takes all three again and runs them."""
    host, broker, clock = simulated
    target = next(f for f in host.queues if f.name == "evaluate_journey")
    lock = broker.queues[target.queue].lock_duration
    call, ran = target.function, []

    def slow_first(**arguments: Any) -> None:
        ran.append(next(iter(arguments.values())).message_id)
        if len(ran) == 1:
            clock.advance_to(clock.now() + lock + timedelta(seconds=1))
            if first_call == "raises":
                raise RuntimeError("a transient failure")
        call(**arguments)

    monkeypatch.setattr(target, "function", slow_first)
    for n in range(3):
        _deadline_checks(broker, f"HU/{n}/26", f"e{n}")
    with caplog.at_level(logging.WARNING, logger="victim_updates.local_host"):
        assert host.drain() == 4
    assert ran == ["e0", "e0", "e1", "e2"]
    verb = "abandoned" if first_call == "raises" else "completed"
    assert f"the lock on message e0 lapsed before it was {verb}" in caplog.text
    assert "the lock on message e1 lapsed before its turn" in caplog.text
    assert "the lock on message e2 lapsed before its turn" in caplog.text
    assert broker.pending("journey-events") == 0 and list(broker.dead_letters()) == []
    assert broker._db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


def test_a_drain_with_no_room_left_takes_nothing(
    simulated: tuple[LocalHost, SqliteQueueBroker, SimulatedClock],
) -> None:
    host, broker, _ = simulated
    _deadline_checks(broker, "HU/1/26", "e0")
    assert host.drain(limit=0) == 0
    assert broker._db.execute("SELECT count(*) FROM messages WHERE locked_until IS NOT NULL").fetchone() == (
        0,
    )
    assert host.drain(limit=1) == 1
