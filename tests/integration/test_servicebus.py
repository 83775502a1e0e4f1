"""The Service Bus publisher: the exact messages it builds, and (opt-in) a real namespace."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.exceptions import MessageSizeExceededError

from shared.adapters.servicebus import ServiceBusPublisher, to_service_bus
from shared.ports import OutgoingMessage


def test_message_carries_id_session_schedule_properties_and_content_type() -> None:
    at = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    built = to_service_bus(
        OutgoingMessage(
            '{"type":"wake"}',
            "m-1",
            session_id="HU/000101/26",
            scheduled_at=at,
            application_properties={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        )
    )
    assert isinstance(built, ServiceBusMessage)
    assert str(built) == '{"type":"wake"}'
    assert built.message_id == "m-1"
    assert built.session_id == "HU/000101/26"
    assert built.scheduled_enqueue_time_utc == at
    assert built.application_properties == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    }
    assert built.content_type == "application/json"


def test_schedule_is_given_in_utc_whatever_the_offset() -> None:
    from zoneinfo import ZoneInfo

    summer = datetime(2026, 7, 1, 8, 0, tzinfo=ZoneInfo("Europe/London"))
    built = to_service_bus(OutgoingMessage("{}", "m", scheduled_at=summer))
    assert built.scheduled_enqueue_time_utc == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert to_service_bus(OutgoingMessage("{}", "m")).scheduled_enqueue_time_utc is None


class _Batch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.messages: list[ServiceBusMessage] = []

    def add_message(self, message: ServiceBusMessage) -> None:
        if len(self.messages) >= self.capacity:
            raise MessageSizeExceededError(message="batch full")
        self.messages.append(message)


class _Sender:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.sent: list[list[ServiceBusMessage]] = []

    def create_message_batch(self) -> _Batch:
        return _Batch(self.capacity)

    def send_messages(self, batch: _Batch) -> None:
        self.sent.append(batch.messages)

    def close(self) -> None:
        pass


class _Client:
    def __init__(self, capacity: int = 100) -> None:
        self.senders: dict[str, _Sender] = {}
        self.capacity = capacity
        self.opened = 0

    def get_queue_sender(self, queue: str) -> _Sender:
        self.opened += 1
        return self.senders.setdefault(queue, _Sender(self.capacity))

    def close(self) -> None:
        pass


def test_one_sender_per_queue_is_reused_across_sends() -> None:
    client = _Client()
    publisher = ServiceBusPublisher(client)  # type: ignore[arg-type]
    for n in range(3):
        publisher.send("case-changes", [OutgoingMessage("{}", f"m{n}", session_id="S")])
    publisher.send("outbound-messages", [OutgoingMessage("{}", "x")])
    assert client.opened == 2
    assert [[m.message_id for m in batch] for batch in client.senders["case-changes"].sent] == [
        ["m0"],
        ["m1"],
        ["m2"],
    ]


def test_a_full_batch_is_sent_and_a_new_one_started_keeping_order() -> None:
    client = _Client(capacity=2)
    publisher = ServiceBusPublisher(client)  # type: ignore[arg-type]
    publisher.send("journey-events", [OutgoingMessage("{}", f"m{n}", session_id="S") for n in range(5)])
    sent = client.senders["journey-events"].sent
    assert [[m.message_id for m in batch] for batch in sent] == [["m0", "m1"], ["m2", "m3"], ["m4"]]


CONNECTION = os.environ.get("SERVICEBUS_TEST_CONNECTION")


@pytest.mark.skipif(
    not CONNECTION, reason="opt-in: set SERVICEBUS_TEST_CONNECTION to a namespace or the emulator"
)
def test_real_namespace_drops_duplicates_and_honours_sessions_and_schedules() -> None:
    """Runs against the emulator (infra/servicebus-emulator) or a real namespace with our queues."""
    assert CONNECTION is not None
    session = f"TEST/{uuid.uuid4().hex[:8]}"
    publisher = ServiceBusPublisher.from_connection_string(CONNECTION)
    later = datetime.now(UTC) + timedelta(seconds=5)
    publisher.send(
        "journey-events",
        [
            OutgoingMessage('{"n":1}', f"{session}-1", session_id=session),
            OutgoingMessage('{"n":1}', f"{session}-1", session_id=session),  # a duplicate
            OutgoingMessage('{"n":2}', f"{session}-2", session_id=session, scheduled_at=later),
            OutgoingMessage('{"n":3}', f"{session}-3", session_id=session),
        ],
    )
    received: list[Any] = []
    client = ServiceBusClient.from_connection_string(CONNECTION)
    with (
        client,
        client.get_queue_receiver("journey-events", session_id=session, max_wait_time=15) as receiver,
    ):
        deadline = time.monotonic() + 30
        while len(received) < 3 and time.monotonic() < deadline:
            for message in receiver.receive_messages(max_message_count=10, max_wait_time=5):
                received.append((message.message_id, message.enqueued_time_utc))
                receiver.complete_message(message)
    publisher.close()
    ids = [message_id for message_id, _ in received]
    assert ids == [f"{session}-1", f"{session}-3", f"{session}-2"]
    assert received[2][1] >= later - timedelta(seconds=1)


@pytest.mark.skipif(
    not CONNECTION, reason="opt-in: set SERVICEBUS_TEST_CONNECTION to a namespace or the emulator"
)
def test_real_namespace_cancels_a_scheduled_message_by_its_number_and_says_when_it_cannot() -> None:
    """What the stand-in in tests/servicebus_fake.py assumes of schedule_messages and
    cancel_scheduled_messages (tests/integration/test_scheduled_cancel.py runs on it)."""
    from shared.ports import ScheduledMessageGone

    assert CONNECTION is not None
    session = f"TEST/{uuid.uuid4().hex[:8]}"
    publisher = ServiceBusPublisher.from_connection_string(CONNECTION)
    later = datetime.now(UTC) + timedelta(seconds=5)
    cancelled, kept = publisher.schedule(
        "journey-events",
        [
            OutgoingMessage('{"n":1}', f"{session}-1", session_id=session, scheduled_at=later),
            OutgoingMessage('{"n":2}', f"{session}-2", session_id=session, scheduled_at=later),
        ],
    )
    publisher.cancel_scheduled("journey-events", cancelled)
    with pytest.raises(ScheduledMessageGone):
        publisher.cancel_scheduled("journey-events", cancelled)  # cancelled already
    client = ServiceBusClient.from_connection_string(CONNECTION)
    with (
        client,
        client.get_queue_receiver("journey-events", session_id=session, max_wait_time=15) as receiver,
    ):
        received = receiver.receive_messages(max_message_count=10, max_wait_time=15)
        for message in received:
            receiver.complete_message(message)
    assert [message.message_id for message in received] == [f"{session}-2"]
    with pytest.raises(ScheduledMessageGone):
        publisher.cancel_scheduled("journey-events", kept)  # fell due, and was received
    publisher.close()


def _dead_letter(client: ServiceBusClient, body: str, session: str) -> None:
    """Send ``body`` as ``<session>-dl`` into the journey-events session and dead-letter it."""
    assert CONNECTION is not None
    publisher = ServiceBusPublisher.from_connection_string(CONNECTION)
    publisher.send("journey-events", [OutgoingMessage(body, f"{session}-dl", session_id=session)])
    publisher.close()
    with client.get_queue_receiver("journey-events", session_id=session, max_wait_time=15) as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=15)
        receiver.dead_letter_message(message, reason="TestReason", error_description="from the test")


@pytest.mark.skipif(
    not CONNECTION, reason="opt-in: set SERVICEBUS_TEST_CONNECTION to a namespace or the emulator"
)
def test_real_namespace_dead_letters_are_listed_and_replayed_with_their_session() -> None:
    """`dead-letters list/replay` on the dead-letter sub-queue of a session queue."""
    from shared.ops.servicebus_dead_letters import ServiceBusDeadLetters

    assert CONNECTION is not None
    session = f"TEST/{uuid.uuid4().hex[:8]}"
    client = ServiceBusClient.from_connection_string(CONNECTION)
    with client:
        _dead_letter(client, '{"n":1}', session)
        dead = ServiceBusDeadLetters(client, {"journey-events": True})
        listed = [d for d in dead.peek("journey-events") if d.message_id == f"{session}-dl"]
        assert [(d.session_id, d.reason) for d in listed] == [(session, "TestReason")]
        (replayed,) = dead.replay("journey-events", f"{session}-dl")
        assert replayed.new_message_id.startswith(f"{session}-dl#replay-")
        with client.get_queue_receiver("journey-events", session_id=session, max_wait_time=15) as receiver:
            (again,) = receiver.receive_messages(max_message_count=1, max_wait_time=15)
            assert (again.message_id, again.session_id) == (replayed.new_message_id, session)
            receiver.complete_message(again)
        assert not [d for d in dead.peek("journey-events") if d.message_id == f"{session}-dl"]


@pytest.mark.skipif(
    not CONNECTION, reason="opt-in: set SERVICEBUS_TEST_CONNECTION to a namespace or the emulator"
)
def test_real_namespace_dead_letters_are_judged_by_enqueued_time_and_rewritten_by_erase() -> None:
    """What the retention purge and `ops erase` rely on, touching only this test's own dead letter
    (a purge would take every older dead letter of the queue, so it is not run here)."""
    from shared.adapters.servicebus import settle_dead_letters
    from shared.ops.servicebus_dead_letters import ServiceBusDeadLetters

    assert CONNECTION is not None
    session = f"TEST/{uuid.uuid4().hex[:8]}"
    mine = f'{{"victims":[{{"person_id":"{session}-P1"}},{{"person_id":"{session}-P2"}}]}}'
    sent_at = datetime.now(UTC)
    client = ServiceBusClient.from_connection_string(CONNECTION)
    with client:
        _dead_letter(client, mine, session)
        seen: list[Any] = []

        def look(dead: Any) -> bool:
            if dead.message_id == f"{session}-dl":
                seen.append(dead.enqueued_time_utc)
            return False  # every dead letter abandoned, untouched

        settle_dead_letters(client, "journey-events", look)
        assert len(seen) == 1 and sent_at - timedelta(minutes=5) <= seen[0] <= datetime.now(UTC)

        def erase_p1(body: str) -> str | None:
            return body.replace(f'{{"person_id":"{session}-P1"}},', "") if body == mine else body

        rewritten, removed = ServiceBusDeadLetters(client, {"journey-events": True}).rewrite(erase_p1)
        assert (rewritten, removed) == (1, 0)
        with client.get_queue_receiver("journey-events", session_id=session, max_wait_time=15) as receiver:
            (copy,) = receiver.receive_messages(max_message_count=1, max_wait_time=15)
            assert str(copy) == f'{{"victims":[{{"person_id":"{session}-P2"}}]}}'
            assert copy.message_id.startswith(f"{session}-dl#replay-") and copy.session_id == session
            assert b"DeadLetterReason" not in (copy.application_properties or {})
            receiver.complete_message(copy)
