"""Cancellable scheduled messages, one contract for both queue publishers (issue 16).

The embedded broker and the Service Bus publisher (on the SDK stand-in) alike: ``schedule``
gives each message a sequence number; ``cancel_scheduled`` removes a message still scheduled,
so it is never received; cancelling one that fell due, was cancelled already, or a number that
never named a message (a duplicate the broker dropped) raises ScheduledMessageGone, and
nothing else changes. Stated as a property over any schedule of messages and any interleaving
of cancels, repeats and the passing of time, with a model of what must arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.servicebus import ServiceBusPublisher
from shared.adapters.sqlite_queue import QueueConfig, SqliteQueueBroker
from shared.ports import OutgoingMessage, QueuePublisher, ScheduledMessageGone
from tests.servicebus_fake import FakeNamespace

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
QUEUE = "journey-events"
SESSION = "HU/000001/26"


class Side(Protocol):
    publisher: QueuePublisher

    def advance(self, to: datetime) -> None: ...

    @property
    def arrived(self) -> list[str]: ...

    def close(self) -> None: ...


class EmbeddedSide:
    """The SQLite broker: messages arrive by being received (and completed) once due."""

    def __init__(self) -> None:
        self.now = T0
        # A repeat is a duplicate for as long as any run here lasts (the stand-in has no window).
        config = QueueConfig(QUEUE, sessions=True, duplicate_detection_window=timedelta(days=2))
        self.broker = SqliteQueueBroker(":memory:", [config], lambda: self.now)
        self.publisher: QueuePublisher = self.broker
        self.arrived: list[str] = []

    def advance(self, to: datetime) -> None:
        self.now = to
        while (message := self.broker.receive(QUEUE, receiver="r", now=to)) is not None:
            self.arrived.append(message.message_id)
            self.broker.complete(message, now=to)

    def close(self) -> None:
        self.broker.close()


class ServiceBusSide:
    """The Service Bus publisher on the SDK stand-in: messages are enqueued once due."""

    def __init__(self) -> None:
        self.namespace = FakeNamespace({QUEUE: []})
        self.publisher: QueuePublisher = ServiceBusPublisher(
            self.namespace.client()
        )  # the stand-in for ServiceBusClient
        self.arrived: list[str] = []

    def advance(self, to: datetime) -> None:
        self.arrived.extend(str(m.message_id) for m in self.namespace.fall_due(QUEUE, to))

    def close(self) -> None:
        pass


SIDES = {"embedded": EmbeddedSide, "servicebus": ServiceBusSide}


@pytest.fixture(params=sorted(SIDES))
def side(request: pytest.FixtureRequest) -> Iterator[Any]:
    made = SIDES[request.param]()
    yield made
    made.close()


def scheduled(message_id: str, at: datetime) -> OutgoingMessage:
    return OutgoingMessage('{"type":"deadline_check"}', message_id, session_id=SESSION, scheduled_at=at)


def test_each_scheduled_message_gets_its_own_number(side: Any) -> None:
    numbers = side.publisher.schedule(
        QUEUE, [scheduled(f"m{n}", T0 + timedelta(hours=n + 1)) for n in range(3)]
    )
    assert len(numbers) == 3 and len(set(numbers)) == 3
    assert all(isinstance(number, int) for number in numbers)


def test_a_cancelled_message_is_never_received_and_the_others_are(side: Any) -> None:
    a, _ = side.publisher.schedule(
        QUEUE, [scheduled("a", T0 + timedelta(hours=1)), scheduled("b", T0 + timedelta(hours=2))]
    )
    side.publisher.cancel_scheduled(QUEUE, a)
    side.advance(T0 + timedelta(days=1))
    assert side.arrived == ["b"]  # the session's next message goes, its cancelled head gone


def test_cancelling_a_message_that_fell_due_fails_and_changes_nothing(side: Any) -> None:
    [number] = side.publisher.schedule(QUEUE, [scheduled("a", T0 + timedelta(hours=1))])
    side.advance(T0 + timedelta(hours=1))
    with pytest.raises(ScheduledMessageGone):
        side.publisher.cancel_scheduled(QUEUE, number)
    assert side.arrived == ["a"]


def test_cancelling_twice_or_an_unknown_number_fails(side: Any) -> None:
    [number] = side.publisher.schedule(QUEUE, [scheduled("a", T0 + timedelta(hours=1))])
    side.publisher.cancel_scheduled(QUEUE, number)
    with pytest.raises(ScheduledMessageGone):
        side.publisher.cancel_scheduled(QUEUE, number)
    with pytest.raises(ScheduledMessageGone):
        side.publisher.cancel_scheduled(QUEUE, number + 1000)


def test_a_duplicate_is_dropped_and_its_number_names_nothing(side: Any) -> None:
    [first] = side.publisher.schedule(QUEUE, [scheduled("a", T0 + timedelta(hours=1))])
    [again] = side.publisher.schedule(QUEUE, [scheduled("a", T0 + timedelta(hours=1))])
    assert again != first
    with pytest.raises(ScheduledMessageGone):
        side.publisher.cancel_scheduled(QUEUE, again)
    side.advance(T0 + timedelta(days=1))
    assert side.arrived == ["a"]  # once: the original, which the repeat's cancel did not touch


def test_a_message_to_schedule_for_cancelling_needs_a_time(side: Any) -> None:
    with pytest.raises(ValueError, match="scheduled_at"):
        side.publisher.schedule(QUEUE, [OutgoingMessage("{}", "a", session_id=SESSION)])


# One step of a run: let time pass (minutes), then cancel a message by its index, repeat one (a
# redelivered step), or cancel a number that never named anything.
Step = tuple[int, str, int]
STEPS = st.lists(
    st.tuples(st.integers(0, 90), st.sampled_from(["cancel", "repeat", "unknown"]), st.integers(0, 7)),
    max_size=12,
)
DUES = st.lists(st.integers(1, 240), min_size=1, max_size=8)  # minutes after T0


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(dues=DUES, steps=STEPS, which=st.sampled_from(sorted(SIDES)))
def test_what_arrives_is_what_was_scheduled_less_what_was_cancelled_in_time(
    dues: list[int], steps: list[Step], which: str
) -> None:
    side = SIDES[which]()
    try:
        ids = [f"m{n}" for n in range(len(dues))]
        due = {ids[n]: T0 + timedelta(minutes=minutes) for n, minutes in enumerate(dues)}
        numbers = dict(
            zip(ids, side.publisher.schedule(QUEUE, [scheduled(i, due[i]) for i in ids]), strict=True)
        )
        assert len(set(numbers.values())) == len(ids)
        given_out = set(numbers.values())
        now, cancelled = T0, set[str]()
        for minutes, action, index in steps:
            now += timedelta(minutes=minutes)
            side.advance(now)
            target = ids[index % len(ids)]
            if action == "repeat":
                [again] = side.publisher.schedule(QUEUE, [scheduled(target, due[target])])
                assert again not in given_out
                given_out.add(again)
                with pytest.raises(ScheduledMessageGone):
                    side.publisher.cancel_scheduled(QUEUE, again)
                continue
            if action == "unknown":
                with pytest.raises(ScheduledMessageGone):
                    side.publisher.cancel_scheduled(QUEUE, max(given_out) + 1000 + index)
                continue
            if target not in cancelled and due[target] > now:
                side.publisher.cancel_scheduled(QUEUE, numbers[target])
                cancelled.add(target)
            else:  # cancelled already, or fallen due (and received or on its way)
                with pytest.raises(ScheduledMessageGone):
                    side.publisher.cancel_scheduled(QUEUE, numbers[target])
        side.advance(T0 + timedelta(days=1))
        assert sorted(side.arrived) == sorted(set(ids) - cancelled)
        assert len(side.arrived) == len(set(side.arrived))  # none twice
    finally:
        side.close()
