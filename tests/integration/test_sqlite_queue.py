"""The SQLite broker behaves like Azure Service Bus: one test per semantic the pipeline relies on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.adapters.sqlite_queue import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    LockLost,
    QueueConfig,
    QueueNotFound,
    ReceivedMessage,
    SqliteQueueBroker,
)
from shared.ports import QUEUE_MESSAGE_MAX_BYTES, MessageTooLarge, OutgoingMessage, QueuePublisher

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
LOCK = timedelta(minutes=1)
WINDOW = timedelta(minutes=10)
QUEUES = [
    QueueConfig("plain", max_delivery_count=3, lock_duration=LOCK, duplicate_detection_window=WINDOW),
    QueueConfig("sess", sessions=True, max_delivery_count=3, lock_duration=LOCK),
]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker(clock: Clock) -> Iterator[SqliteQueueBroker]:
    b = SqliteQueueBroker(":memory:", QUEUES, clock)
    yield b
    b.close()


def msg(
    message_id: str,
    session: str | None = None,
    *,
    scheduled_at: datetime | None = None,
    application_properties: Mapping[str, str] | None = None,
) -> OutgoingMessage:
    return OutgoingMessage(
        body=f"body-{message_id}",
        message_id=message_id,
        session_id=session,
        scheduled_at=scheduled_at,
        application_properties=application_properties or {},
    )


def take(broker: SqliteQueueBroker, queue: str, now: datetime, receiver: str = "r1") -> ReceivedMessage:
    received = broker.receive(queue, receiver=receiver, now=now)
    assert received is not None, f"expected a message on {queue} at {now}"
    return received


def drain_ids(broker: SqliteQueueBroker, queue: str, now: datetime, receiver: str = "r1") -> list[str]:
    ids = []
    while (m := broker.receive(queue, receiver=receiver, now=now)) is not None:
        ids.append(m.message_id)
        broker.complete(m, now=now)
    return ids


# --- size: no kinder than Service Bus Standard --------------------------------------


def test_a_message_over_the_service_bus_limit_is_refused_with_its_batch(broker: SqliteQueueBroker) -> None:
    props = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
    room = QUEUE_MESSAGE_MAX_BYTES - sum(len(k) + len(v) for k, v in props.items())
    fits = OutgoingMessage(body="x" * room, message_id="fits", application_properties=props)
    assert fits.size() == QUEUE_MESSAGE_MAX_BYTES
    broker.send("plain", [fits])
    over = OutgoingMessage(body="é" * (room // 2 + 1), message_id="over", application_properties=props)
    with pytest.raises(MessageTooLarge, match=r"'over' for queue 'plain' is 262146 bytes"):
        broker.send("plain", [msg("small"), over])  # counted in UTF-8 bytes, not characters
    assert broker.pending("plain") == 1  # the whole batch refused: only the one that fit
    broker.send("plain", [msg("small")])
    assert broker.pending("plain") == 2  # its id was not taken by the refused batch


# --- duplicate detection ----------------------------------------------------------


def test_broker_is_a_queue_publisher(broker: SqliteQueueBroker) -> None:
    publisher: QueuePublisher = broker
    publisher.send("plain", [msg("a")])
    assert broker.pending("plain") == 1


def test_duplicate_message_id_within_window_is_dropped(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("plain", [msg("a")])
    clock.advance(WINDOW - timedelta(seconds=1))
    broker.send("plain", [OutgoingMessage(body="second copy", message_id="a")])
    assert broker.pending("plain") == 1
    assert take(broker, "plain", clock.now).body == "body-a"


def test_duplicate_within_one_batch_is_dropped(broker: SqliteQueueBroker) -> None:
    broker.send("plain", [msg("a"), msg("a"), msg("b")])
    assert broker.pending("plain") == 2


def test_duplicate_detection_is_per_queue(broker: SqliteQueueBroker) -> None:
    broker.send("plain", [msg("a")])
    broker.send("sess", [msg("a", "s1")])
    assert broker.pending("plain") == 1
    assert broker.pending("sess") == 1


def test_same_message_id_after_window_is_accepted(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("plain", [msg("a")])
    drain_ids(broker, "plain", clock.now)
    clock.advance(WINDOW)
    broker.send("plain", [msg("a")])
    assert drain_ids(broker, "plain", clock.now) == ["a"]


def test_duplicate_does_not_extend_the_window(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("plain", [msg("a")])
    clock.advance(WINDOW / 2)
    broker.send("plain", [msg("a")])  # dropped; the window still runs from the first send
    clock.advance(WINDOW / 2)
    broker.send("plain", [msg("a")])
    assert broker.pending("plain") == 2


def test_duplicate_detection_history_is_pruned(clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    broker = SqliteQueueBroker(path, QUEUES, clock)
    broker.send("plain", [msg(f"m{i}") for i in range(50)])
    clock.advance(WINDOW + timedelta(seconds=1))
    broker.send("plain", [msg("late")])
    broker.close()
    with sqlite3.connect(path) as db:
        remembered = [row[0] for row in db.execute("SELECT message_id FROM sent_ids")]
    assert remembered == ["late"]


def test_an_id_past_its_window_is_fresh_before_the_history_is_pruned(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    # The history is pruned once a window, not at every send: an id remembered from longer ago
    # than the window must count as new even while it is still stored.
    broker.send("plain", [msg("a")])
    clock.advance(WINDOW / 2)
    broker.send("plain", [msg("b")])
    clock.advance(WINDOW)  # pruned here: "a" goes, "b" (half a window younger) stays
    broker.send("plain", [msg("c")])
    clock.advance(WINDOW / 10)
    broker.send("plain", [msg("b")])  # more than a window after the first "b": accepted
    broker.send("plain", [msg("b")])  # and remembered again: this copy is a duplicate
    assert drain_ids(broker, "plain", clock.now) == ["a", "b", "c", "b"]


# --- sessions ----------------------------------------------------------------------


def test_session_queue_rejects_message_without_session_id(broker: SqliteQueueBroker) -> None:
    with pytest.raises(ValueError, match="session"):
        broker.send("sess", [msg("ok", "s1"), msg("no-session")])
    assert broker.pending("sess") == 0  # the batch is all or nothing


def test_session_messages_are_delivered_in_order(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("sess", [msg("a1", "A"), msg("b1", "B"), msg("a2", "A")])
    broker.send("sess", [msg("b2", "B"), msg("a3", "A")])
    received = drain_ids(broker, "sess", clock.now)
    assert sorted(received) == ["a1", "a2", "a3", "b1", "b2"]
    assert [m for m in received if m.startswith("a")] == ["a1", "a2", "a3"]
    assert [m for m in received if m.startswith("b")] == ["b1", "b2"]


def test_second_receiver_cannot_take_a_locked_session(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    first = take(broker, "sess", clock.now, receiver="r1")
    broker.complete(first, now=clock.now)
    # r1 still holds session A, so a2 is not for r2 ...
    assert broker.receive("sess", receiver="r2", now=clock.now) is None
    # ... but it is for r1.
    assert take(broker, "sess", clock.now, receiver="r1").message_id == "a2"


def test_other_sessions_stay_available_to_a_second_receiver(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A"), msg("b1", "B")])
    assert take(broker, "sess", clock.now, receiver="r1").session_id == "A"
    assert take(broker, "sess", clock.now, receiver="r2").message_id == "b1"


def test_released_session_can_be_taken_by_another_receiver(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    broker.complete(take(broker, "sess", clock.now, receiver="r1"), now=clock.now)
    broker.release_session("sess", "A", receiver="r2")  # not r2's to release: no effect
    assert broker.receive("sess", receiver="r2", now=clock.now) is None
    broker.release_session("sess", "A", receiver="r1")
    assert take(broker, "sess", clock.now, receiver="r2").message_id == "a2"


def test_session_lock_lapses_lock_duration_after_last_receive(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    broker.complete(take(broker, "sess", clock.now, receiver="r1"), now=clock.now)
    assert broker.receive("sess", receiver="r2", now=T0 + LOCK) is None
    assert take(broker, "sess", T0 + LOCK + timedelta(microseconds=1), receiver="r2").message_id == "a2"


def test_later_message_of_session_waits_while_earlier_is_in_flight(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    in_flight = take(broker, "sess", clock.now, receiver="r1")
    assert broker.receive("sess", receiver="r1", now=clock.now) is None
    assert broker.receive("sess", receiver="r2", now=clock.now) is None
    broker.complete(in_flight, now=clock.now)
    assert take(broker, "sess", clock.now, receiver="r1").message_id == "a2"


def test_releasing_a_session_does_not_release_its_in_flight_message(broker: SqliteQueueBroker) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    in_flight = take(broker, "sess", T0, receiver="r1")
    broker.release_session("sess", "A", receiver="r1")
    assert broker.receive("sess", receiver="r2", now=T0) is None
    broker.complete(in_flight, now=T0)
    assert take(broker, "sess", T0, receiver="r2").message_id == "a2"


def test_abandoned_session_message_is_redelivered_before_later_ones(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    broker.abandon(take(broker, "sess", clock.now), now=clock.now, error="boom")
    again = take(broker, "sess", clock.now)
    assert (again.message_id, again.delivery_count) == ("a1", 2)


def test_non_session_queue_is_fifo_and_shared_by_receivers(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("plain", [msg("m1"), msg("m2"), msg("m3")])
    assert take(broker, "plain", clock.now, receiver="r1").message_id == "m1"
    assert take(broker, "plain", clock.now, receiver="r2").message_id == "m2"
    assert take(broker, "plain", clock.now, receiver="r1").message_id == "m3"


# --- scheduling ----------------------------------------------------------------------


def test_scheduled_message_is_invisible_until_its_time(broker: SqliteQueueBroker, clock: Clock) -> None:
    due = T0 + timedelta(hours=2)
    broker.send("plain", [msg("later", scheduled_at=due), msg("now")])
    assert drain_ids(broker, "plain", due - timedelta(microseconds=1)) == ["now"]
    received = take(broker, "plain", due)
    assert (received.message_id, received.scheduled_at, received.enqueued_at) == ("later", due, T0)


def test_scheduled_message_in_the_past_is_available_at_enqueue_time(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    broker.send("plain", [msg("x", scheduled_at=T0 - timedelta(days=1))])
    assert take(broker, "plain", T0).message_id == "x"


def test_scheduled_session_message_lets_available_ones_go_first(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    due = T0 + timedelta(minutes=5)
    broker.send("sess", [msg("a-late", "A", scheduled_at=due), msg("a-now", "A")])
    assert drain_ids(broker, "sess", T0) == ["a-now"]
    assert drain_ids(broker, "sess", due) == ["a-late"]


def test_next_visible_at_reports_scheduled_time(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("plain", [msg("p", scheduled_at=T0 + timedelta(hours=3))])
    broker.send("sess", [msg("s", "A", scheduled_at=T0 + timedelta(hours=2))])
    assert broker.next_visible_at(T0) == T0 + timedelta(hours=2)
    drain_ids(broker, "sess", T0 + timedelta(hours=2))
    assert broker.next_visible_at(T0 + timedelta(hours=2)) == T0 + timedelta(hours=3)


def test_next_visible_at_reports_lock_expiry(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("plain", [msg("p")])
    locked = take(broker, "plain", T0)
    expiry = broker.next_visible_at(T0)
    assert expiry is not None and expiry > locked.locked_until
    assert broker.receive("plain", receiver="r1", now=locked.locked_until) is None
    assert take(broker, "plain", expiry).message_id == "p"


def test_next_visible_at_reports_when_a_held_session_frees_up(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    first = take(broker, "sess", T0, receiver="r1")
    broker.complete(first, now=T0)
    free_at = broker.next_visible_at(T0)
    assert free_at is not None and free_at > first.locked_until
    assert take(broker, "sess", free_at, receiver="r2").message_id == "a2"


def test_next_visible_at_ignores_messages_queued_behind_an_in_flight_one(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A", scheduled_at=T0 + timedelta(seconds=5))])
    in_flight = take(broker, "sess", T0)
    # a2's schedule passes while a1 is in flight; only a1's lock expiry can free the session.
    assert broker.next_visible_at(T0) == in_flight.locked_until + timedelta(microseconds=1)


def test_next_visible_at_is_none_when_nothing_pending(broker: SqliteQueueBroker, clock: Clock) -> None:
    assert broker.next_visible_at(T0) is None
    broker.send("plain", [msg("p")])
    assert broker.next_visible_at(T0) is None  # receivable now: nothing to wait for
    broker.complete(take(broker, "plain", T0), now=T0)
    assert broker.next_visible_at(T0) is None


# --- peek-lock ----------------------------------------------------------------------------


def test_completed_message_is_gone(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("plain", [msg("a")])
    received = take(broker, "plain", T0)
    broker.complete(received, now=T0)
    assert broker.pending("plain") == 0
    assert broker.receive("plain", receiver="r1", now=T0 + timedelta(days=1)) is None
    with pytest.raises(LockLost):
        broker.complete(received, now=T0)


def test_received_message_carries_its_metadata(broker: SqliteQueueBroker, clock: Clock) -> None:
    broker.send("plain", [msg("a", application_properties={"kind": "update"})])
    received = take(broker, "plain", T0 + timedelta(seconds=3))
    assert received.queue == "plain"
    assert received.body == "body-a"
    assert received.application_properties == {"kind": "update"}
    assert received.delivery_count == 1
    assert received.locked_until == T0 + timedelta(seconds=3) + LOCK
    assert received.enqueued_at.tzinfo is not None


def test_abandoned_message_is_redelivered_with_higher_delivery_count(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    broker.send("plain", [msg("a"), msg("b")])
    first = take(broker, "plain", T0)
    broker.abandon(first, now=T0, error="transient")
    again = take(broker, "plain", T0)
    assert (again.message_id, again.delivery_count) == ("a", 2)
    assert again.lock_token != first.lock_token
    with pytest.raises(LockLost):
        broker.complete(first, now=T0)


def test_expired_lock_makes_message_receivable_and_old_token_fails(
    broker: SqliteQueueBroker, clock: Clock
) -> None:
    broker.send("plain", [msg("a")])
    first = take(broker, "plain", T0, receiver="r1")
    assert broker.receive("plain", receiver="r2", now=first.locked_until) is None  # still held at the edge
    later = first.locked_until + timedelta(seconds=1)
    second = take(broker, "plain", later, receiver="r2")
    assert (second.message_id, second.delivery_count) == ("a", 2)
    with pytest.raises(LockLost):
        broker.complete(first, now=later)
    with pytest.raises(LockLost):
        broker.abandon(first, now=later)
    broker.complete(second, now=later)
    assert broker.pending("plain") == 0


def test_settling_after_lock_expiry_fails_even_before_redelivery(broker: SqliteQueueBroker) -> None:
    broker.send("plain", [msg("a")])
    received = take(broker, "plain", T0)
    with pytest.raises(LockLost):
        broker.complete(received, now=received.locked_until + timedelta(microseconds=1))
    assert broker.pending("plain") == 1


def test_expired_session_lock_lets_another_receiver_take_the_message(broker: SqliteQueueBroker) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    first = take(broker, "sess", T0, receiver="r1")
    later = first.locked_until + timedelta(seconds=1)
    second = take(broker, "sess", later, receiver="r2")
    assert (second.message_id, second.delivery_count) == ("a1", 2)
    with pytest.raises(LockLost):
        broker.complete(first, now=later)


# --- dead-lettering --------------------------------------------------------------------------


def test_message_dead_lettered_after_max_delivery_count_with_reason(broker: SqliteQueueBroker) -> None:
    broker.send("plain", [msg("poison", application_properties={"k": "v"}), msg("fine")])
    for attempt in range(1, 4):
        received = take(broker, "plain", T0)
        assert (received.message_id, received.delivery_count) == ("poison", attempt)
        broker.abandon(received, now=T0, error=f"failure {attempt}")
    assert take(broker, "plain", T0).message_id == "fine"
    [dead] = broker.dead_letters("plain")
    assert dead.message_id == "poison"
    assert dead.reason == MAX_DELIVERY_COUNT_EXCEEDED == "MaxDeliveryCountExceeded"
    assert "failure 3" in dead.description
    assert dead.delivery_count == 3
    assert dead.dead_lettered_at == T0
    assert dead.application_properties == {"k": "v"}
    assert broker.pending("plain") == 1


def test_lock_expiry_at_max_delivery_count_dead_letters(broker: SqliteQueueBroker) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    now = T0
    for _ in range(2):
        received = take(broker, "sess", now)
        broker.abandon(received, now=now, error="handler crashed")
    last = take(broker, "sess", now)
    assert last.delivery_count == 3
    later = last.locked_until + timedelta(seconds=1)
    # The handler never settles; the next receive finds the lapsed lock and dead-letters it.
    assert take(broker, "sess", later, receiver="r2").message_id == "a2"
    [dead] = broker.dead_letters("sess")
    assert (dead.message_id, dead.session_id, dead.reason) == ("a1", "A", MAX_DELIVERY_COUNT_EXCEEDED)
    assert "handler crashed" in dead.description


def test_explicit_dead_letter_keeps_reason(broker: SqliteQueueBroker) -> None:
    broker.send("sess", [msg("a1", "A"), msg("a2", "A")])
    received = take(broker, "sess", T0)
    broker.dead_letter(received, now=T0, reason="InvalidContract", description="missing crime number")
    [dead] = broker.dead_letters()
    assert (dead.queue, dead.message_id, dead.reason, dead.description) == (
        "sess",
        "a1",
        "InvalidContract",
        "missing crime number",
    )
    assert list(broker.dead_letters("plain")) == []
    # Dead letters are never delivered again; the session moves on.
    assert drain_ids(broker, "sess", T0 + timedelta(days=1)) == ["a2"]


def test_pending_counts_scheduled_but_not_dead_lettered(broker: SqliteQueueBroker) -> None:
    broker.send("plain", [msg("a"), msg("b", scheduled_at=T0 + timedelta(days=1))])
    broker.dead_letter(take(broker, "plain", T0), now=T0, reason="Bad")
    assert broker.pending("plain") == 1


# --- robustness -------------------------------------------------------------------------------


def test_unknown_queue_raises(broker: SqliteQueueBroker) -> None:
    with pytest.raises(QueueNotFound):
        broker.send("nope", [msg("a")])
    with pytest.raises(QueueNotFound):
        broker.receive("nope", receiver="r1", now=T0)


def test_naive_times_are_rejected(broker: SqliteQueueBroker) -> None:
    with pytest.raises(ValueError, match="naive"):
        broker.receive("plain", receiver="r1", now=datetime(2025, 1, 1))


def test_state_survives_reopening(clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / "queues.db"
    first = SqliteQueueBroker(path, QUEUES, clock)
    first.send("sess", [msg("a1", "A"), msg("a2", "A"), msg("b1", "B")])
    first.send("plain", [msg("p1"), msg("p2", scheduled_at=T0 + timedelta(hours=1))])
    in_flight = take(first, "sess", T0, receiver="r1")
    first.dead_letter(take(first, "plain", T0), now=T0, reason="Bad")
    first.close()

    second = SqliteQueueBroker(path, QUEUES, clock)
    assert second.pending("sess") == 3
    assert second.pending("plain") == 1
    assert [d.message_id for d in second.dead_letters()] == ["p1"]
    second.send("plain", [msg("p2")])  # still remembered as a duplicate
    assert second.pending("plain") == 1
    # The lock and session ownership survived too.
    assert take(second, "sess", T0, receiver="r2").message_id == "b1"
    second.complete(in_flight, now=T0)
    assert take(second, "sess", T0, receiver="r1").message_id == "a2"
    second.close()


def test_a_database_with_the_old_sent_at_index_opens_and_drops_it(clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / "queues.db"
    first = SqliteQueueBroker(path, QUEUES, clock)
    first.send("plain", [msg("a")])
    first.close()
    with sqlite3.connect(path) as db:  # the layout written before: an index on (queue, sent_at)
        db.execute("CREATE INDEX sent_ids_age ON sent_ids (queue, sent_at)")
    second = SqliteQueueBroker(path, QUEUES, clock)
    second.send("plain", [msg("a"), msg("b")])  # "a" still remembered
    assert second.pending("plain") == 2
    second.close()
    with sqlite3.connect(path) as db:
        indexes = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")]
    assert "sent_ids_age" not in indexes
