"""Dead letters of the Service Bus queues in Azure: list them (never their bodies), replay them,
and take an erased person out of them.

The same commands as the embedded queues' (shared/ops/dead_letters.py), on each queue's
dead-letter sub-queue. Listing peeks, so it locks and changes nothing. A replay receives
the dead letters (peek-lock), sends a copy of each chosen one to its queue under a fresh
message id (the original id would be dropped by duplicate detection: ``ORIGINAL#replay-N``, the
Nth replay of the original, shared/ops/dead_letters.py ``replay_id``), keeping its
session (the crime reference: one crime at a time, in order), application properties
(the trace context, not the reason Service Bus added when it set the message aside) and
content type, and only then completes the dead letter. A crash in between leaves the dead
letter to be replayed again, which the idempotent steps absorb. Dead letters received but
not chosen are abandoned: they stay where they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue

from shared.adapters.servicebus import CONTENT_TYPE, PAGE, settle_dead_letters
from shared.ops.context import OpsError
from shared.ops.dead_letters import Replayed, replay_id

# What Service Bus adds to a message's application properties as it dead-letters it: not the
# message's own, and the description may quote what the failing step said.
DEAD_LETTER_PROPERTIES = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})


class ServiceBusClientLike(Protocol):
    """What is used of azure.servicebus.ServiceBusClient (a fake stands in for it in tests)."""

    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> Any: ...

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _body(message: Any) -> bytes | str:
    body = message.body
    if isinstance(body, bytes | str):
        return body
    return b"".join(part if isinstance(part, bytes) else bytes(part) for part in body)


def _properties(message: Any) -> dict[str | bytes, Any]:
    """The message's own application properties (the trace context), as it was sent."""
    found: Mapping[Any, Any] = message.application_properties or {}
    return {_text(key): value for key, value in found.items() if _text(key) not in DEAD_LETTER_PROPERTIES}


@dataclass(frozen=True)
class PeekedDeadLetter:
    """What is listed of a dead letter: never its body."""

    queue: str
    message_id: str
    session_id: str | None
    reason: str
    description: str


@dataclass(frozen=True)
class ServiceBusDeadLetters:
    """The dead-letter sub-queues of the pipeline's queues (name -> sessions on)."""

    client: ServiceBusClientLike
    queues: Mapping[str, bool]

    def _chosen(self, queue: str | None) -> list[str]:
        if queue is not None and queue not in self.queues:
            raise OpsError(f"unknown queue {queue!r}: one of {', '.join(sorted(self.queues))}")
        return [queue] if queue is not None else sorted(self.queues)

    def _receiver(self, queue: str, **kwargs: Any) -> Any:
        return self.client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER, **kwargs)

    def peek(self, queue: str | None) -> list[PeekedDeadLetter]:
        """Every dead letter, peeked (nothing is locked or changed), without its body."""
        found: list[PeekedDeadLetter] = []
        for name in self._chosen(queue):
            with self._receiver(name) as receiver:
                after = 0
                while page := receiver.peek_messages(max_message_count=PAGE, sequence_number=after):
                    for message in page:
                        found.append(
                            PeekedDeadLetter(
                                queue=name,
                                message_id=_text(message.message_id),
                                session_id=message.session_id,
                                reason=message.dead_letter_reason or "",
                                description=message.dead_letter_error_description or "",
                            )
                        )
                    after = max(message.sequence_number for message in page) + 1
        return found

    def replay(self, queue: str | None, message_id: str | None) -> list[Replayed]:
        """Resubmit dead letters to their queues (one id, or all), completing each once it is sent."""
        done: list[Replayed] = []
        for name in self._chosen(queue):
            done.extend(self._replay_queue(name, message_id))
        if message_id is not None and not done:
            where = f" on queue {queue}" if queue else ""
            raise OpsError(f"no dead letter with message id {message_id!r}{where}")
        return done

    def _replay_queue(self, name: str, message_id: str | None) -> list[Replayed]:
        done: list[Replayed] = []

        def chosen(message: Any) -> bool:
            if message_id is not None and _text(message.message_id) != message_id:
                return False  # abandoned at the end, untouched
            done.append(self._resend(name, message, sender))
            return True

        with self.client.get_queue_sender(name) as sender:
            settle_dead_letters(self.client, name, chosen)
        return done

    def rewrite(self, change: Callable[[str], str | None]) -> tuple[int, int]:
        """Pass every queue's dead letters through ``change``, as the embedded queues' ``rewrite``
        (``ops erase``): a dead letter cannot be changed where it is, so one given a new body is
        replaced by a copy sent to its queue as ``replay`` sends it (a fresh id, its session and
        properties) with that body, then completed: the idempotent steps absorb it, and if it
        fails again it comes back to the dead letters as it is now. One given None is completed;
        one left as it was is abandoned, untouched. Returns (rewritten, removed)."""
        rewritten = removed = 0
        for name in sorted(self.queues):
            done = self._rewrite_queue(name, change)
            rewritten, removed = rewritten + done[0], removed + done[1]
        return rewritten, removed

    def _rewrite_queue(self, name: str, change: Callable[[str], str | None]) -> tuple[int, int]:
        rewritten = removed = 0

        def changed(message: Any) -> bool:
            nonlocal rewritten, removed
            text = _text(_body(message))
            body = change(text)
            if body == text:
                return False  # abandoned at the end, untouched
            if body is None:
                removed += 1
            else:
                self._resend(name, message, sender, body)
                rewritten += 1
            return True

        with self.client.get_queue_sender(name) as sender:
            settle_dead_letters(self.client, name, changed)
        return rewritten, removed

    def _resend(self, name: str, message: Any, sender: Any, body: str | None = None) -> Replayed:
        """A copy of the dead letter (with ``body`` instead of its own, if given) sent to its queue."""
        fresh = replay_id(_text(message.message_id))
        copy = ServiceBusMessage(
            _body(message) if body is None else body,
            message_id=fresh,
            session_id=message.session_id if self.queues[name] else None,
            application_properties=_properties(message) or None,
            content_type=message.content_type or CONTENT_TYPE,
        )
        sender.send_messages(copy)
        return Replayed(name, _text(message.message_id), fresh)


def from_settings(settings: Any, queues: Iterable[tuple[str, bool]]) -> ServiceBusDeadLetters:
    """The namespace the settings name: a connection string (emulator), else the managed identity."""
    from azure.servicebus import ServiceBusClient

    if settings.ServiceBusConnection:
        client = ServiceBusClient.from_connection_string(settings.ServiceBusConnection)
    else:
        from azure.identity import DefaultAzureCredential

        client = ServiceBusClient(
            settings.ServiceBusConnection__fullyQualifiedNamespace, DefaultAzureCredential()
        )
    return ServiceBusDeadLetters(client, dict(queues))
