"""A journey decision turned into what a step does: emissions, task and audit writes, the state.

Shared by evaluate_journey, which decides, and send_message, which records in the
journey what became of a message it handed over.
"""

from __future__ import annotations

from shared.domain.journey import Decision
from shared.ports import Entity, OutgoingMessage
from shared.steps.records import (
    AUDIT,
    JOURNEYS,
    TASKS,
    audit_entity,
    changed_at,
    journey_entity,
    task_entity,
)
from shared.steps.results import Emit, StepResult, Write

# Decisions that are also custom events for the operations dashboards.
_DECISION_EVENTS = {
    "deadline_met": "DutyMet",
    "deadline_breached": "DeadlineBreached",
    "suppressed": "MessageSuppressed",
}


def record_decision(result: StepResult, decision: Decision, stored: Entity | None, cause: str) -> None:
    """Turn a decision into emissions and writes, the state last."""
    if decision.unchanged:
        return
    journey = decision.journey
    for message in decision.messages:
        result.emit.append(
            Emit(
                "outbound_messages",
                OutgoingMessage(
                    # With the time of the feed change behind it, for the change-to-message latency.
                    message.model_copy(
                        update={"changed_at": changed_at(journey, message.duties)}
                    ).model_dump_json(),
                    message.message_key,
                    scheduled_at=message.not_before,
                ),
            )
        )
    for item in decision.scheduled:
        result.emit.append(
            Emit(
                "journey_events",
                OutgoingMessage(
                    item.event.model_dump_json(),
                    item.event.event_id,
                    session_id=journey.crime_reference,
                    scheduled_at=item.at,
                ),
            )
        )
    for task in decision.tasks:
        result.writes.append(Write(TASKS, task_entity(task), mode="insert_once"))
        result.track(
            "TaskCreated",
            crime_reference=task.crime_reference,
            person_id=task.person_id,
            duties=",".join(task.duties),
            reason=task.reason,
        )
    for entry in decision.audit:
        result.writes.append(Write(AUDIT, audit_entity(entry, cause)))
        event = _DECISION_EVENTS.get(entry.decision)
        if event:
            result.track(
                event,
                crime_reference=entry.crime_reference,
                person_id=entry.person_id,
                duty=entry.duty,
                decision=entry.decision,
                reason=entry.reason,
            )
    entity = journey_entity(journey)
    if stored is not None and stored.properties.get("state") == entity.properties["state"]:
        return  # nothing changed: no write (a deadline already met, a stale wake)
    if stored is None:
        result.writes.append(Write(JOURNEYS, entity, mode="insert"))
    elif stored.etag is not None:
        result.writes.append(Write(JOURNEYS, entity, mode="replace", etag=stored.etag))
