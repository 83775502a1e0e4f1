"""Azure Service Bus behind the QueuePublisher port (azure-servicebus).

One client per worker, one sender per queue, both reused. Every message carries
the ``message_id`` (duplicate detection drops a redelivered step's re-sends), the
``session_id`` (the crime reference: one crime at a time, in order), a
``scheduled_enqueue_time_utc`` when it is a deferral, check-in or deadline check,
and application properties (the trace context). A deadline check is scheduled with
``schedule_messages``, which gives its sequence number, so that it can be cancelled
(``cancel_scheduled_messages``) once its duty is decided.

The publisher also purges the queues' dead letters for the retention timer
(journey-rules.md §16), on a client of its own: the SDK's clients are not to be
shared between threads, and the triggers' steps send on the publisher's meanwhile.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageLockLostError, MessageNotFoundError, MessageSizeExceededError

from shared.ports import OutgoingMessage, ScheduledMessageGone

CONTENT_TYPE = "application/json"
PAGE = 100  # dead letters per receive
WAIT_SECONDS = 5.0  # how long a receive waits for more before the sub-queue counts as drained


def settle_dead_letters(client: Any, queue: str, take: Callable[[Any], bool]) -> None:
    """Receive each dead letter of ``queue`` (peek-lock) and complete those ``take`` says yes to (it
    may send something first); the others are held, and abandoned at the end, untouched, so none is
    received twice. One whose lock lapses while it is held (the queue's lock duration) is free
    again: it comes round once more and is judged again, held once (by its sequence number, its
    latest delivery), and abandoning a lapsed lock is a no-op. So is completing one: that dead
    letter comes round again and is judged again, rather than stopping the pass."""
    held: dict[int, Any] = {}
    with client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver:
        try:
            while batch := receiver.receive_messages(max_message_count=PAGE, max_wait_time=WAIT_SECONDS):
                for message in batch:
                    if take(message):
                        held.pop(message.sequence_number, None)
                        with contextlib.suppress(MessageLockLostError):
                            receiver.complete_message(message)
                    else:
                        held[message.sequence_number] = message
        finally:
            for message in held.values():
                with contextlib.suppress(MessageLockLostError):
                    receiver.abandon_message(message)


def purge_dead_letters(client: Any, queue: str, before: datetime) -> int:
    """Complete the dead letters of ``queue`` enqueued before ``before``; how many.

    The SDK gives no time of dead-lettering, so a dead letter is judged by when it was
    enqueued (for a scheduled message, when it fell due): the pipeline's messages are
    dead-lettered within minutes of that, after their deliveries fail, and one that
    expired unconsumed (its time to live) goes at the first run after it was set aside.
    """
    purged = 0

    def old(message: Any) -> bool:
        nonlocal purged
        at = message.enqueued_time_utc
        if at is None or at >= before:
            return False
        purged += 1
        return True

    settle_dead_letters(client, queue, old)
    return purged


def to_service_bus(message: OutgoingMessage) -> ServiceBusMessage:
    """The exact ServiceBusMessage the sender puts on the queue."""
    scheduled = message.scheduled_at.astimezone(UTC) if message.scheduled_at is not None else None
    return ServiceBusMessage(
        message.body,
        message_id=message.message_id,
        session_id=message.session_id,
        scheduled_enqueue_time_utc=scheduled,
        application_properties=dict(message.application_properties) or None,  # type: ignore[arg-type]
        content_type=CONTENT_TYPE,
    )


class ServiceBusPublisher:
    """A QueuePublisher on a Service Bus namespace; the purger of its queues' dead letters.

    ``queues`` are the queues whose dead letters ``purge_dead_letters`` goes through, and
    ``connect`` opens the client it does it on; without them (a test's publisher) there are none.
    """

    def __init__(
        self,
        client: ServiceBusClient,
        queues: Sequence[str] = (),
        connect: Callable[[], ServiceBusClient] | None = None,
    ) -> None:
        if queues and connect is None:
            raise ValueError("purging the queues' dead letters needs a way to connect")
        self._client = client
        self._queues = tuple(queues)
        self._connect = connect
        self._senders: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_connection_string(
        cls, connection_string: str, queues: Sequence[str] = ()
    ) -> ServiceBusPublisher:
        connect = partial(ServiceBusClient.from_connection_string, connection_string)
        return cls(connect(), queues, connect)

    @classmethod
    def from_namespace(
        cls, fully_qualified_namespace: str, queues: Sequence[str] = ()
    ) -> ServiceBusPublisher:
        """In Azure: the namespace host name and the function's managed identity."""
        from azure.identity import DefaultAzureCredential

        connect = partial(ServiceBusClient, fully_qualified_namespace, DefaultAzureCredential())
        return cls(connect(), queues, connect)

    def purge_dead_letters(self, before: datetime) -> int:
        """Complete every queue's dead letters enqueued before ``before``; how many (the retention timer)."""
        if self._connect is None or not self._queues:
            return 0
        client = self._connect()
        try:
            return sum(purge_dead_letters(client, queue, before) for queue in self._queues)
        finally:
            client.close()

    def _sender(self, queue: str) -> Any:
        with self._lock:
            if queue not in self._senders:
                self._senders[queue] = self._client.get_queue_sender(queue)
            return self._senders[queue]

    def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        sender = self._sender(queue)
        batch = sender.create_message_batch()
        for message in messages:
            converted = to_service_bus(message)
            try:
                batch.add_message(converted)
            except MessageSizeExceededError:  # this batch is full: send it and start another
                sender.send_messages(batch)
                batch = sender.create_message_batch()
                batch.add_message(converted)
        sender.send_messages(batch)

    def schedule(self, queue: str, messages: Sequence[OutgoingMessage]) -> list[int]:
        """Schedule the messages (``schedule_messages``, one call for each run of messages due at
        one time); the sequence numbers Service Bus gives them, in order, to cancel them by."""
        if any(message.scheduled_at is None for message in messages):
            raise ValueError("a message scheduled to be cancellable needs a scheduled_at")
        numbers: list[int] = []
        if not messages:
            return numbers
        sender = self._sender(queue)
        for at, run in itertools.groupby(messages, key=lambda message: message.scheduled_at):
            assert at is not None
            converted = [to_service_bus(message) for message in run]
            numbers.extend(sender.schedule_messages(converted, at.astimezone(UTC)))
        return numbers

    def cancel_scheduled(self, queue: str, sequence_number: int) -> None:
        """``cancel_scheduled_messages``: Service Bus says message-not-found when the message has
        fallen due, was cancelled, or was never kept (a duplicate's number)."""
        try:
            self._sender(queue).cancel_scheduled_messages(sequence_number)
        except MessageNotFoundError as error:
            raise ScheduledMessageGone(f"{queue}: no message {sequence_number} is still scheduled") from error

    def close(self) -> None:
        with self._lock:
            for sender in self._senders.values():
                sender.close()
            self._senders.clear()
        self._client.close()
