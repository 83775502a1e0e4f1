"""A stand-in for azure.servicebus.ServiceBusClient's dead-letter sub-queues and scheduled messages (no
emulator here: it needs Docker).

It follows the SDK where the commands and the retention timer rely on it, and is no kinder:

- a receive (peek-lock) returns at most ``batch`` messages however many are asked for (the
  SDK returns as soon as there is a gap), and an empty list once nothing is free;
- each receive of a message is a new delivery with its own lock: settling it completes or
  abandons the message only while that lock holds; a lock that lapsed (``lapse_locks``, or
  ``lapse_after`` receives) raises MessageLockLostError, and the message is free again;
- closing a receiver does not release what it locked (the locks lapse in their own time);
- a peek sees every message, locked or not, and locks nothing;
- a dead letter's application properties are what the SDK gives: its own (keys and string
  values as bytes) with ``DeadLetterReason`` and ``DeadLetterErrorDescription`` added;
- a scheduled message gets a sequence number (a duplicate id too, one that names nothing), and
  cancelling a number no message is still scheduled under (fallen due, cancelled, or never kept)
  raises MessageNotFoundError.

One ``FakeNamespace`` holds the queues; each ``client()`` is a client on it, as each
ServiceBusClient on one namespace is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageLockLostError, MessageNotFoundError

TRACE = {b"traceparent": b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"}
ENQUEUED = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)


@dataclass
class DeadLetter:
    """A message on a dead-letter sub-queue."""

    message_id: str
    sequence_number: int
    body_text: str = '{"type":"wake"}'
    session_id: str | None = None
    reason: str | None = "MaxDeliveryCountExceeded"
    description: str | None = "Message could not be consumed after 10 delivery attempts."
    enqueued_time_utc: datetime | None = ENQUEUED
    content_type: str | None = "application/json"
    own_properties: dict[bytes, Any] = field(default_factory=lambda: dict(TRACE))
    lock: object | None = None  # the lock token of the delivery that holds it

    @property
    def application_properties(self) -> dict[bytes, Any]:
        found = dict(self.own_properties)
        if self.reason is not None:
            found[b"DeadLetterReason"] = self.reason.encode()
        if self.description is not None:
            found[b"DeadLetterErrorDescription"] = self.description.encode()
        return found

    @property
    def dead_letter_reason(self) -> str | None:
        return self.reason

    @property
    def dead_letter_error_description(self) -> str | None:
        return self.description

    @property
    def body(self) -> Iterator[bytes]:
        yield self.body_text.encode()


class _Delivery:
    """One receive of a dead letter: its attributes, and the lock this receive took."""

    def __init__(self, message: DeadLetter, receiver: FakeReceiver) -> None:
        self.message = message
        self.receiver = receiver
        self.token = object()
        message.lock = self.token

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)


class FakeReceiver:
    def __init__(self, namespace: FakeNamespace, queue: str) -> None:
        self.namespace = namespace
        self.queue = queue
        self.dead = namespace.dead[queue]
        self.open = True
        self.receives = 0

    def __enter__(self) -> FakeReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.open = False  # what it locked stays locked until the lock lapses

    def peek_messages(self, max_message_count: int = 1, *, sequence_number: int = 0) -> list[DeadLetter]:
        assert self.open
        found = sorted(
            (m for m in self.dead if m.sequence_number >= sequence_number), key=lambda m: m.sequence_number
        )
        return found[:max_message_count]

    def receive_messages(
        self, max_message_count: int = 1, max_wait_time: float | None = None
    ) -> list[_Delivery]:
        assert self.open
        assert max_message_count > 0 and (max_wait_time is None or max_wait_time > 0)
        self.receives += 1
        self.namespace.receives[self.queue] = self.namespace.receives.get(self.queue, 0) + 1
        if self.namespace.lapse_after is not None and self.receives == self.namespace.lapse_after + 1:
            self.namespace.lapse_locks()
        free = sorted((m for m in self.dead if m.lock is None), key=lambda m: m.sequence_number)
        return [_Delivery(m, self) for m in free[: min(max_message_count, self.namespace.batch)]]

    def _settle(self, delivery: _Delivery) -> DeadLetter:
        assert self.open, "settled on a closed receiver"
        assert delivery.receiver is self, "settled on another receiver"
        message = delivery.message
        if message not in self.dead or message.lock is not delivery.token:
            raise MessageLockLostError(message="The lock on the message lock has expired.")
        return message

    def complete_message(self, delivery: _Delivery) -> None:
        self.dead.remove(self._settle(delivery))

    def abandon_message(self, delivery: _Delivery) -> None:
        self._settle(delivery).lock = None


class FakeSender:
    def __init__(self, namespace: FakeNamespace | None = None, queue: str = "") -> None:
        self.namespace = namespace
        self.queue = queue
        self.sent: list[ServiceBusMessage] = []
        self.open = True

    def __enter__(self) -> FakeSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.open = False

    def send_messages(self, message: ServiceBusMessage) -> None:
        assert self.open, "sent on a closed sender"
        self.sent.append(message)

    def schedule_messages(
        self, messages: ServiceBusMessage | list[ServiceBusMessage], schedule_time_utc: datetime
    ) -> list[int]:
        """As Service Bus: each message a new sequence number; a duplicate id is dropped, and the
        number it is given names nothing."""
        assert self.open and self.namespace is not None, "scheduled on a closed sender"
        assert schedule_time_utc.tzinfo is not None
        namespace = self.namespace
        numbers = []
        for message in messages if isinstance(messages, list) else [messages]:
            namespace.sequence += 1
            numbers.append(namespace.sequence)
            seen = namespace.message_ids.setdefault(self.queue, set())
            if message.message_id in seen:
                continue
            seen.add(message.message_id)
            message.scheduled_enqueue_time_utc = schedule_time_utc
            namespace.scheduled.setdefault(self.queue, {})[namespace.sequence] = message
        return numbers

    def cancel_scheduled_messages(self, sequence_numbers: int | list[int]) -> None:
        """As Service Bus: message-not-found for a number no scheduled message has (and then none is
        cancelled)."""
        assert self.open and self.namespace is not None, "cancelled on a closed sender"
        numbers = sequence_numbers if isinstance(sequence_numbers, list) else [sequence_numbers]
        scheduled = self.namespace.scheduled.setdefault(self.queue, {})
        if any(number not in scheduled for number in numbers):
            raise MessageNotFoundError(message="The scheduled message was not found.")
        for number in numbers:
            del scheduled[number]


class FakeNamespace:
    """The queues (name -> dead letters) and what was sent to each."""

    def __init__(
        self, dead: dict[str, list[DeadLetter]], batch: int = 3, lapse_after: int | None = None
    ) -> None:
        self.dead = dead
        self.sent: dict[str, list[ServiceBusMessage]] = {name: [] for name in dead}
        self.batch = batch
        self.lapse_after = lapse_after  # receives on one receiver before every lock lapses
        self.receives: dict[str, int] = {}
        self.clients: list[FakeServiceBusClient] = []
        # Scheduled messages (queue -> sequence number -> message) until they fall due.
        self.scheduled: dict[str, dict[int, ServiceBusMessage]] = {}
        self.sequence = 0
        self.message_ids: dict[str, set[str]] = {}  # what duplicate detection has seen, per queue

    def client(self) -> FakeServiceBusClient:
        made = FakeServiceBusClient(self)
        self.clients.append(made)
        return made

    def lapse_locks(self) -> None:
        for messages in self.dead.values():
            for message in messages:
                message.lock = None

    def fall_due(self, queue: str, now: datetime) -> list[ServiceBusMessage]:
        """The scheduled messages due by ``now`` are enqueued (on ``sent``): cancelling them fails."""
        scheduled = self.scheduled.setdefault(queue, {})
        due = [n for n, m in scheduled.items() if m.scheduled_enqueue_time_utc <= now]
        enqueued = [scheduled.pop(n) for n in sorted(due)]
        self.sent.setdefault(queue, []).extend(enqueued)
        return enqueued

    def left(self, queue: str) -> list[str]:
        return [m.message_id for m in self.dead[queue]]


class FakeServiceBusClient:
    def __init__(self, namespace: FakeNamespace) -> None:
        self.namespace = namespace
        self.closed = False

    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> FakeReceiver:
        assert not self.closed
        assert kwargs.get("sub_queue") == ServiceBusSubQueue.DEAD_LETTER
        assert "session_id" not in kwargs  # a dead-letter sub-queue has no sessions
        return FakeReceiver(self.namespace, queue_name)

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> FakeSender:
        assert not self.closed
        sender = FakeSender(self.namespace, queue_name)
        sender.sent = self.namespace.sent.setdefault(queue_name, [])
        return sender

    def close(self) -> None:
        self.closed = True


def sent_body(message: ServiceBusMessage) -> str:
    """The body of a message the fake was sent, as text."""
    body = message.body
    return body.decode() if isinstance(body, bytes) else b"".join(body).decode()
