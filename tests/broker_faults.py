"""Stand-ins for the embedded broker's settling calls, as Service Bus can behave: a completion lost
(the message delivered again), a redelivery held back (a slow retry). Patched onto
SqliteQueueBroker by the end-to-end tests; each keeps the real call's signature, release included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from shared.adapters.sqlite_queue import ReceivedMessage, SqliteQueueBroker

_COMPLETE = SqliteQueueBroker.complete
_ABANDON = SqliteQueueBroker.abandon


def completion_lost_once(counter: Counter[str]) -> Callable[..., None]:
    """complete: each message's first completion is lost (counted by queue), so it comes again."""

    def complete_then_redeliver(
        self: SqliteQueueBroker, message: ReceivedMessage, *, now: Any, release: str | None = None
    ) -> None:
        if message.delivery_count == 1:
            # The function ran to the end but the completion was lost: Service Bus delivers again.
            counter[message.queue] += 1
            self.abandon(message, now=now, error="completion lost", release=release)
        else:
            _COMPLETE(self, message, now=now, release=release)

    return complete_then_redeliver


def retry_after(delay: timedelta) -> Callable[..., None]:
    """abandon: an abandoned outbound message is delivered again only after ``delay``."""

    def later(
        self: SqliteQueueBroker,
        message: ReceivedMessage,
        *,
        now: Any,
        error: str = "",
        release: str | None = None,
    ) -> None:
        _ABANDON(self, message, now=now, error=error, release=release)
        if message.queue == "outbound-messages":
            self._db.execute(
                "UPDATE messages SET available_at = available_at + ? WHERE message_id = ?",
                (int(delay.total_seconds() * 1_000_000), message.message_id),
            )

    return later
