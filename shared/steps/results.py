"""What a step hands back: messages to emit, then table writes to apply.

Emitting before writing is what makes every step safe to repeat: message ids
are deterministic, so a redelivered step re-emits the same ids (dropped by
duplicate detection, ignored by idempotent consumers), and state only moves on
once everything that follows from it is on a queue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from shared import telemetry
from shared.ports import Entity, EntityExists, EntityNotFound, EtagMismatch, OutgoingMessage, Write
from shared.steps.dependencies import Committing
from shared.tracing import TRACEPARENT, outgoing

QueueRole = Literal["case_changes", "journey_events", "outbound_messages", "officer_tasks"]


@dataclass(frozen=True)
class Emit:
    queue: QueueRole
    message: OutgoingMessage


@dataclass
class StepResult:
    emit: list[Emit] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
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
    """Publish the emissions (grouped per queue, in order), then apply the writes."""
    by_queue: dict[QueueRole, list[OutgoingMessage]] = {}
    for item in result.emit:
        message = item.message
        if TRACEPARENT not in message.application_properties:
            properties = {
                **message.application_properties,
                TRACEPARENT: outgoing(result.trace, message.message_id),
            }
            message = replace(message, application_properties=properties)
        by_queue.setdefault(item.queue, []).append(message)
    for role, messages in by_queue.items():
        services.publisher.send(queue_name(services, role), messages)
    tables = services.tables
    pending_upserts: list[Entity] = []
    pending_table = ""

    def flush() -> None:
        if pending_upserts:
            # One row may appear once in a transaction: the last write of a row wins, as it would.
            latest = {entity.row_key: entity for entity in pending_upserts}
            tables.upsert_many(pending_table, list(latest.values()))
            pending_upserts.clear()

    for write in result.writes:
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
    for name, dimensions in result.events:
        telemetry.track(name, **dimensions)
    return result


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
