"""notify_officer: mail an officer task to the person who must act on it, once (journey-rules.md §11).

A ``task`` notice is mailed at once to the assignee's work address, or to the policy's
team mailbox when there is none (or it is not a usable address). A ``reminder``
notice arrives at the task's due time: if the Tasks row is still open then, it is
mailed to the policy's supervisor mailbox; if it is closed, nothing is sent. Nothing
is sent for a person whose journey was erased (journey-rules.md §16).

Exactly once, as send_message does it: the OfficerMail ledger row (PartitionKey the
crime reference, RowKey ``<task id>:<kind>``) is claimed before the notifier is
called, and the notifier gets that same key as its idempotency key. A row marked
``sent`` or ``not_sent`` ends a redelivery at once; a row still ``pending`` means an
earlier delivery may have reached the notifier, and the same key makes a second
hand-over the same mail.

A mail the notifier refuses for good (ProviderRejected) or cannot hand over raises:
Service Bus delivers the notice again and dead-letters it after the max delivery
count, where the dead-letter alert sees it; a task is never dropped quietly. A
throttled notifier gets a scheduled copy of the notice, as send_message does.

Every step emits before it writes, so a ``task`` notice can arrive before its Tasks
row exists (it carries the whole task), and, for a task already overdue when it was
made, so can its reminder: that one waits for the row a few minutes, as send_message
waits for a journey, then is logged (ids only) and dropped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.table_layout import OFFICER_MAIL, TASKS, task_is_closed
from shared.contracts.messages import NoticeTask, TaskNotice
from shared.domain.addresses import valid_email
from shared.domain.officer_mail import Recipient
from shared.domain.policy import Policy
from shared.ports import Entity, EntityExists, OfficerMail, OutgoingMessage, ProviderThrottled, Write
from shared.steps.dependencies import NotifyNeeds
from shared.steps.results import Emit, StepResult, apply
from shared.tracing import annotate, incoming

log = logging.getLogger("victim_updates.notify_officer")

FINISHED = ("sent", "not_sent")
# How long a reminder waits for its Tasks row after the task was made, and how often it looks.
RECORD_WAIT = timedelta(minutes=10)
RECORD_POLL = timedelta(seconds=30)


def task_address(task: NoticeTask, policy: Policy) -> tuple[str, Recipient]:
    """Where a new task goes: the assignee's work address, else the team mailbox."""
    address = valid_email(task.assignee_email)
    if address is not None:
        return address, "assignee"
    return policy.force.team_mailbox, "team"


def notify_officer(
    body: bytes | str, services: NotifyNeeds, properties: Mapping[str, Any] | None = None
) -> StepResult:
    """Handle one officer-tasks message (``properties``: its application properties)."""
    notice = TaskNotice.model_validate_json(body)
    task = notice.task
    annotate(task.crime_reference, task.person_id)
    now = services.clock.now()
    tables = services.tables
    result = StepResult(trace=incoming(properties))
    ledger = tables.get(OFFICER_MAIL, task.crime_reference, notice.key)
    if ledger is not None and ledger.properties.get("status") in FINISHED:
        return result  # an earlier delivery finished it
    read = services.journeys.get(task.crime_reference, task.person_id)
    if read is not None and read.journey.erased_at is not None:
        # Erased (journey-rules.md §16): nothing is sent for them, a task in flight or its reminder.
        erased = {"status": "not_sent", "kind": notice.kind, "reason": "erased", "decided_at": now}
        result.writes.append(Write(OFFICER_MAIL, Entity(task.crime_reference, notice.key, erased)))
        return apply(result, services)

    recipient: Recipient
    if notice.kind == "reminder":
        row = tables.get(TASKS, task.crime_reference, task.task_id)
        if row is None:
            return _without_task_row(notice, services, now, result)
        if task_is_closed(row):
            closed = {"status": "not_sent", "kind": notice.kind, "reason": "task_closed", "decided_at": now}
            result.writes.append(Write(OFFICER_MAIL, Entity(task.crime_reference, notice.key, closed)))
            return apply(result, services)
        to, recipient = services.policy.force.supervisor_mailbox, "supervisor"
    else:
        to, recipient = task_address(task, services.policy)

    rendered = services.renderer.officer_mail(notice, services.policy, recipient)
    mail = OfficerMail(
        task_id=task.task_id,
        crime_reference=task.crime_reference,
        kind=notice.kind,
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
    )
    if ledger is None:
        pending = {"status": "pending", "kind": notice.kind, "recipient": recipient, "first_attempt_at": now}
        # Claimed since the read by another delivery: the same key makes ours the same mail.
        with contextlib.suppress(EntityExists):
            tables.create(OFFICER_MAIL, Entity(task.crime_reference, notice.key, pending))
    try:
        receipt = services.notifier.send(idempotency_key=notice.key, mail=mail)
    except ProviderThrottled as throttled:
        # Come back when the provider says: a scheduled copy of this notice, never a lost one.
        retry_at = now + timedelta(seconds=max(1.0, throttled.retry_after_seconds))
        copy = OutgoingMessage(
            notice.to_json(), f"{notice.key}@{retry_at.isoformat()}", scheduled_at=retry_at
        )
        result.emit.append(Emit("officer_tasks", copy))
        return apply(result, services)
    sent = {
        "status": "sent",
        "kind": notice.kind,
        "recipient": recipient,
        "provider_id": receipt.provider_id,
        "sent_at": receipt.accepted_at,
    }
    result.writes.append(Write(OFFICER_MAIL, Entity(task.crime_reference, notice.key, sent)))
    result.track(
        "OfficerNotified",
        crime_reference=task.crime_reference,
        person_id=task.person_id,
        task_id=task.task_id,
        kind=notice.kind,
        reason=task.reason,
    )
    return apply(result, services)


def _without_task_row(
    notice: TaskNotice, services: NotifyNeeds, now: datetime, result: StepResult
) -> StepResult:
    """A reminder whose task is not recorded: wait a little for a task just made, else drop it."""
    task = notice.task
    if now - task.created_at < RECORD_WAIT:
        again = now + RECORD_POLL
        copy = OutgoingMessage(notice.to_json(), f"{notice.key}@wait:{again.isoformat()}", scheduled_at=again)
        result.emit.append(Emit("officer_tasks", copy))
        return apply(result, services)
    log.warning("reminder dropped: task %s of %s has no Tasks row", task.task_id, task.crime_reference)
    return result
