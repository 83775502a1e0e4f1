"""A journey decision turned into what a step does: emissions, task and audit writes, the state.

Shared by evaluate_journey, which decides, and send_message, which records in the
journey what became of a message it handed over.

Each new officer task is also two notices for notify_officer: one now, and a reminder
scheduled at its due time (none without one), whose sequence number the Tasks row keeps
(written once the reminder is scheduled). A task a logged contact closes has its Tasks row
read and written back closed, and its reminder, if still to come, is cancelled after that
write: no notify_officer call only to find the task closed. One not cancelled finds it
closed and stays quiet: a cancel that failed, a row written before reminders were kept, or a
row whose number names nothing (the first delivery scheduled the reminder and died before
writing the row; the redelivery's schedule was a duplicate the queue dropped, and its number
is the one kept).

A deadline check for a pending duty is scheduled for its sequence number, kept in the
duty by the journey write (made once the check is sent). Once a duty is decided (met by
a message sent, an opt-out or a contact; or breached), the journey is written without
its checks, and those still to come are cancelled after that write: none wakes
evaluate_journey only to find the duty decided. One that is not cancelled comes and
finds that, as every check did before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial

from shared.adapters.table_layout import (
    AUDIT,
    RETENTION,
    TASKS,
    audit_entity,
    changed_at,
    closed_task_entity,
    retention_entity,
    task_entity,
    task_is_closed,
    task_reminder,
)
from shared.contracts.messages import DeadlineCheck, NoticeTask, TaskNotice
from shared.domain.journey import Compliance, Decision, Duty, Journey, KeptCheck, OfficerTask
from shared.domain.journey.tasks import note_is_theirs
from shared.domain.retention import finalised_day
from shared.ports import Entity, JourneyRepository, OutgoingMessage, StoredJourney, TableStore, Write
from shared.steps.results import Cancel, Emit, Later, StepResult

log = logging.getLogger("victim_updates.decisions")


# Decisions that are also custom events for the operations dashboards.
_DECISION_EVENTS = {
    "deadline_met": "DutyMet",
    "deadline_breached": "DeadlineBreached",
    "suppressed": "MessageSuppressed",
}


def _task_notices(task: OfficerTask, journey: Journey, kept: dict[str, int]) -> list[Emit]:
    """The notice of a new task (``<task id>:task``), and its reminder at the due time (``<task id>:reminder``),
    whose sequence number the queue tells into ``kept`` once it is scheduled."""
    duties = [journey.duties[key] for key in task.duties if key in journey.duties]
    notice = TaskNotice(
        kind="task",
        task=NoticeTask.model_validate(task.model_dump()),  # the same fields, versioned with the message
        role=journey.role,
        duty_templates={duty.key: duty.template for duty in duties},
        # A moved visit's earlier times, by duty key (attendance.book_visit keeps them in its details).
        moved_from={duty.key: at for duty in duties if (at := duty.details.get("moved_from"))},
        replaces_task_for={duty.key: at for duty in duties if (at := duty.details.get("replaces_task_for"))},
        linked_crime=journey.linked_crime,
    )
    emits = [Emit("officer_tasks", OutgoingMessage(notice.to_json(), notice.key))]
    if task.due_by is not None:
        # Scheduled for days, where an erasure cannot reach it on Service Bus: without a note that is
        # theirs (what they wrote or chose), which a supervisor's reminder does not show anyway.
        kept_note = None if note_is_theirs(task.reason) else notice.task.note
        unwritten = notice.task.model_dump() | {"note": kept_note}
        reminder = TaskNotice.model_validate(notice.model_dump() | {"kind": "reminder", "task": unwritten})
        emits.append(
            Emit(
                "officer_tasks",
                OutgoingMessage(reminder.to_json(), reminder.key, scheduled_at=task.due_by),
                numbered=partial(kept.__setitem__, "reminder"),
            )
        )
    return emits


def _new_task_row(task: OfficerTask, kept: dict[str, int]) -> Write:
    """A new task's row, with its reminder's sequence number if one was scheduled (a Later write)."""
    number = kept.get("reminder")
    reminder = (number, task.due_by) if number is not None and task.due_by is not None else None
    return Write(TASKS, task_entity(task, reminder), mode="insert_once")


def _reminder_to_cancel(row: Entity, now: datetime) -> Cancel | None:
    """The scheduled reminder of a task being closed, if it is still to come."""
    reminder = task_reminder(row)
    if reminder is None or reminder[1] <= now:
        return None
    return Cancel("officer_tasks", reminder[0], f"{row.partition_key}/{row.row_key}:reminder")


def _close_task(
    tables: TableStore, crime_reference: str, task_id: str, now: datetime, why: str
) -> tuple[Write | None, Cancel | None]:
    """The write that marks a recorded task closed (None: not recorded, or closed already), and
    the cancel of its reminder still to come.

    A task closed already is cancelled again: the delivery that closed it may have died, or
    met a conflict and been retried, after its write and before its cancel (a reminder
    cancelled already makes the cancel find nothing, which is logged and harmless).
    """
    entity = tables.get(TASKS, crime_reference, task_id)
    if entity is None:
        log.warning("task %s of %s to close is not recorded", task_id, crime_reference)
        return None, None
    cancel = _reminder_to_cancel(entity, now)
    if task_is_closed(entity):
        return None, cancel  # closed by an earlier delivery of this decision: its time stands
    if entity.etag is None:
        raise ValueError("a Tasks row read from the store has an ETag")
    closed = closed_task_entity(entity, now, why)
    return Write(TASKS, closed, mode="replace", etag=entity.etag), cancel


def _checks_to_cancel(journey: Journey, now: datetime) -> list[Cancel]:
    """The deadline checks of decided duties, taken out of the journey: those still to come are
    to be cancelled once it is written."""
    cancels: list[Cancel] = []
    for duty in journey.duties.values():
        if not duty.checks or duty.compliance == Compliance.PENDING:
            continue
        about = f"{journey.crime_reference}/{journey.person_id}/{duty.key}"
        cancels.extend(
            Cancel("journey_events", check.sequence_number, about) for check in duty.checks if check.at > now
        )
        duty.checks = []
    return cancels


def _keep(duty: Duty, at: datetime, sequence_number: int, now: datetime) -> None:
    """Keep a check's number in its duty, with those still to come (one come already cannot be
    cancelled, so it is not kept)."""
    still = [check for check in duty.checks if check.at > now]
    duty.checks = [*still, KeptCheck(sequence_number=sequence_number, at=at)]


def _numbered(journey: Journey, event: object, at: datetime, now: datetime) -> Callable[[int], None] | None:
    """For a deadline check still to come of a pending duty: keeping its sequence number in the duty."""
    if not isinstance(event, DeadlineCheck) or at <= now:
        return None
    duty = journey.duties.get(event.duty)
    if duty is None or duty.compliance != Compliance.PENDING:
        return None  # decided already: it comes and finds that
    return partial(_keep, duty, at, now=now)


def record_decision(
    result: StepResult,
    decision: Decision,
    read: StoredJourney | None,
    cause: str,
    *,
    now: datetime,
    journeys: JourneyRepository,
    tables: TableStore,
) -> None:
    """Turn a decision into emissions and writes, the state last.

    ``read`` is the journey as it was read (None: a new one), for the conditional write (its
    ``journey`` may be the decision's own, changed: only what was kept beside it is read);
    ``now`` is when the step runs (a closed task's ``closed_at``); ``tables`` reads the
    Tasks rows the decision closes.
    """
    if decision.unchanged:
        return
    journey = decision.journey
    result.cancel.extend(_checks_to_cancel(journey, now))
    numbered = False
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
        keep = _numbered(journey, item.event, item.at, now)
        numbered = numbered or keep is not None
        result.emit.append(
            Emit(
                "journey_events",
                OutgoingMessage(
                    item.event.model_dump_json(),
                    item.event.event_id,
                    session_id=journey.crime_reference,
                    scheduled_at=item.at,
                ),
                numbered=keep,
            )
        )
    closing = dict(decision.closed_tasks)
    for task in decision.tasks:
        if task.task_id in closing:
            # Made and closed by one decision: recorded closed, and nobody needs mailing.
            closed = closed_task_entity(task_entity(task), now, closing.pop(task.task_id))
            result.writes.append(Write(TASKS, closed, mode="insert_once"))
        else:
            kept: dict[str, int] = {}
            result.emit.extend(_task_notices(task, journey, kept))
            result.writes.append(Later(partial(_new_task_row, task, kept)))
        result.track(
            "TaskCreated",
            crime_reference=task.crime_reference,
            person_id=task.person_id,
            duties=",".join(task.duties),
            reason=task.reason,
        )
    for task_id, why in closing.items():
        close, cancel = _close_task(tables, journey.crime_reference, task_id, now, why)
        if close is not None:
            result.writes.append(close)
        if cancel is not None:
            result.cancel.append(cancel)
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
    day = finalised_day(journey)
    if day is not None and (read is None or read.finalised != day):
        # Finalised (or finalised again, on a later day): the retention timer will come to it.
        result.writes.append(
            Write(RETENTION, retention_entity(day, journey.crime_reference, journey.person_id))
        )
    if numbered:
        # Written once the checks are sent, with the sequence numbers they were given.
        result.writes.append(Later(partial(journeys.save, journey, read)))
        return
    save = journeys.save(journey, read)
    if save is not None:
        result.writes.append(save)
