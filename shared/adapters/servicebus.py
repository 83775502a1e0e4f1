"""Azure Service Bus behind the QueuePublisher port (azure-servicebus).

One client per worker, one sender per queue, both reused. Every message carries
the ``message_id`` (duplicate detection drops a redelivered step's re-sends), the
``session_id`` (the crime reference: one crime at a time, in order), a
``scheduled_enqueue_time_utc`` when it is a deferral, check-in or deadline check,
and application properties (the trace context).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageLockLostError, MessageSizeExceededError

from shared.ports import OutgoingMessage

CONTENT_TYPE = "application/json"
PAGE = 100  # dead letters per receive
WAIT_SECONDS = 5.0  # how long a receive waits for more before the sub-queue counts as drained


def settle_dead_letters(client: Any, queue: str, take: Callable[[Any], bool]) -> None:
    """Receive each dead letter of ``queue`` (peek-lock) and complete those ``take`` says yes to (it
    may send something first); the others are held, and abandoned at the end, untouched, so none is
    received twice. One whose lock lapses while it is held (the queue's lock duration) is free
    again: it comes round once more and is judged again, and abandoning its lapsed lock is a no-op."""
    held: list[Any] = []
    with client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver:
        try:
            while batch := receiver.receive_messages(max_message_count=PAGE, max_wait_time=WAIT_SECONDS):
                for message in batch:
                    if take(message):
                        receiver.complete_message(message)
                    else:
                        held.append(message)
        finally:
            for message in held:
                with contextlib.suppress(MessageLockLostError):
                    receiver.abandon_message(message)


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
    """A QueuePublisher on a Service Bus namespace."""

    def __init__(self, client: ServiceBusClient) -> None:
        self._client = client
        self._senders: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_connection_string(cls, connection_string: str) -> ServiceBusPublisher:
        return cls(ServiceBusClient.from_connection_string(connection_string))

    @classmethod
    def from_namespace(cls, fully_qualified_namespace: str) -> ServiceBusPublisher:
        """In Azure: the namespace host name and the function's managed identity."""
        from azure.identity import DefaultAzureCredential

        return cls(ServiceBusClient(fully_qualified_namespace, DefaultAzureCredential()))

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

    def close(self) -> None:
        with self._lock:
            for sender in self._senders.values():
                sender.close()
            self._senders.clear()
        self._client.close()
