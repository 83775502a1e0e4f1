"""What a step hands back: messages to emit, then table writes to apply.

Emitting before writing is what makes every step safe to repeat: message ids
are deterministic, so a redelivered step re-emits the same ids (dropped by
duplicate detection, ignored by idempotent consumers), and state only moves on
once everything that follows from it is on a queue.

A scheduled message that may be cancelled (a deadline check) is scheduled for its
sequence number, which a write made after the emissions (``Later``: the journey)
keeps. Cancellations come last, once the writes that made them pointless are done:
a cancellation that fails or never happens only lets its message arrive and find
nothing to do, so it is logged (ids only) and the step goes on.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from shared import telemetry
from shared.ports import (
    Entity,
    EntityExists,
    EntityNotFound,
    EtagMismatch,
    OutgoingMessage,
    QueuePublisher,
    ScheduledMessageGone,
    Write,
)
from shared.steps.dependencies import Committing
from shared.tracing import TRACEPARENT, outgoing

QueueRole = Literal["case_changes", "journey_events", "outbound_messages", "officer_tasks"]


log = logging.getLogger("victim_updates.results")


@dataclass(frozen=True)
class Emit:
    queue: QueueRole
    message: OutgoingMessage
    # Scheduled to be cancellable: told the sequence number the queue gives it, once it is sent.
    numbered: Callable[[int], None] | None = None


@dataclass(frozen=True)
class Later:
    """A write made once the emissions are sent, from what they told (None: nothing to write)."""

    make: Callable[[], Write | None]


@dataclass(frozen=True)
class Cancel:
    """A scheduled message no longer needed, to cancel after the writes (``about``: ids for the log)."""

    queue: QueueRole
    sequence_number: int
    about: str


@dataclass
class StepResult:
    emit: list[Emit] = field(default_factory=list)
    writes: list[Write | Later] = field(default_factory=list)
    cancel: list[Cancel] = field(default_factory=list)
    trace: str | None = None  # the traceparent of the message being handled
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # telemetry, sent once written

    def track(self, name: str, **dimensions: Any) -> None:
        self.events.append((name, dimensions))


def queue_name(services: Committing, role: QueueRole) -> str:
    settings = services.settings
    return {
        "case_changes": settings.CASE_CHANGES_QUEUE,
        "journey_events": settings.JOURNEY_EVENTS_QUEUE,
        "outbound_messages": settings.OUTBOUND_MESSAGES_QUEUE,
        "officer_tasks": settings.OFFICER_TASKS_QUEUE,
    }[role]


def apply(result: StepResult, services: Committing) -> StepResult:
    """Publish the emissions (grouped per queue, in order), then apply the writes, then cancel
    the scheduled messages the writes made pointless."""
    by_queue: dict[QueueRole, list[tuple[OutgoingMessage, Callable[[int], None] | None]]] = {}
    for item in result.emit:
        message = item.message
        if TRACEPARENT not in message.application_properties:
            properties = {
                **message.application_properties,
                TRACEPARENT: outgoing(result.trace, message.message_id),
            }
            message = replace(message, application_properties=properties)
        by_queue.setdefault(item.queue, []).append((message, item.numbered))
    publisher = services.publisher
    for role, pairs in by_queue.items():
        queue = queue_name(services, role)
        # Runs of ordinary and of numbered messages, each in its place in the order.
        for numbered, run in itertools.groupby(pairs, key=lambda pair: pair[1] is not None):
            batch = list(run)
            if not numbered:
                publisher.send(queue, [message for message, _ in batch])
                continue
            numbers = publisher.schedule(queue, [message for message, _ in batch])
            for (_, tell), number in zip(batch, numbers, strict=True):
                assert tell is not None
                tell(number)
    writes = [
        write
        for item in result.writes
        if (write := item.make() if isinstance(item, Later) else item) is not None
    ]
    result.writes = list[Write | Later](writes)  # as written, for whoever reads the result
    tables = services.tables
    pending_upserts: list[Entity] = []
    pending_table = ""

    def flush() -> None:
        if pending_upserts:
            # One row may appear once in a transaction: the last write of a row wins, as it would.
            latest = {entity.row_key: entity for entity in pending_upserts}
            tables.upsert_many(pending_table, list(latest.values()))
            pending_upserts.clear()

    for write in writes:
        # Consecutive upserts to one partition (the audit trail of a decision) go as one batch.
        if write.mode == "upsert":
            same = pending_upserts and pending_table == write.table
            if not (same and pending_upserts[0].partition_key == write.entity.partition_key):
                flush()
                pending_table = write.table
            pending_upserts.append(write.entity)
            continue
        flush()
        if write.mode == "insert_once":
            # An existing entity was written by an earlier delivery of the same message.
            with contextlib.suppress(EntityExists):
                tables.create(write.table, write.entity)
        elif write.mode == "insert":
            tables.create(write.table, write.entity)
        elif write.mode == "replace":
            if write.etag is None:
                raise ValueError("a replace needs the ETag it was read with")
            tables.update(write.table, write.entity, etag=write.etag)
    flush()
    for cancel in result.cancel:
        _cancel(publisher, queue_name(services, cancel.queue), cancel)
    for name, dimensions in result.events:
        telemetry.track(name, **dimensions)
    return result


def _cancel(publisher: QueuePublisher, queue: str, cancel: Cancel) -> None:
    """Cancel one scheduled message; a failure only lets it arrive and find nothing to do."""
    try:
        publisher.cancel_scheduled(queue, cancel.sequence_number)
    except ScheduledMessageGone:
        # Due already (or a redelivered step's duplicate, which the queue kept no copy of).
        log.info("scheduled message %s of %s was no longer scheduled", cancel.sequence_number, cancel.about)
    except Exception as error:  # an optimisation: whatever went wrong, the message comes and finds it done
        log.warning(
            "could not cancel scheduled message %s of %s (%s)",
            cancel.sequence_number,
            cancel.about,
            type(error).__name__,
        )


# A conditional write that found the state moved on: read again, decide again.
CONFLICTS = (EtagMismatch, EntityExists, EntityNotFound)


def retry_on_conflict(
    attempt: Callable[[int], StepResult],
    attempts: int,
    *,
    exhausted: Callable[[], StepResult] | None = None,
) -> StepResult:
    """Run a step's read-decide-write (``attempt(number)``, from 1) again on a conflict.

    After ``attempts`` conflicts, ``exhausted`` decides what to do instead; without it the
    conflict is raised, so Service Bus redelivers and the next delivery starts afresh.
    """
    for number in range(1, attempts + 1):
        try:
            return attempt(number)
        except CONFLICTS:
            if number == attempts and exhausted is None:
                raise
    assert exhausted is not None
    return exhausted()
