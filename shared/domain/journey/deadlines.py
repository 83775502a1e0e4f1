"""Deadlines: when each duty must be met, and what happens when it is not (journey-rules.md §2, §7, §10).

A duty's kind says whether it has a Victims' Code deadline; the deadline is the
end of the 5th working day after its event (the 1st with enhanced rights), only
ever brought forward by facts that arrive later; at the deadline an unmet duty is
breached and escalated to an officer.
"""

from __future__ import annotations

from datetime import datetime

from shared.contracts.messages import DeadlineCheck
from shared.domain.deadlines import code_deadline
from shared.domain.journey.duties import digest
from shared.domain.journey.safeguard import has_enhanced_rights
from shared.domain.journey.state import (
    Compliance,
    Decision,
    Duty,
    DutyStatus,
    Journey,
    Scheduled,
    working_journey,
)
from shared.domain.journey.tasks import DEADLINE_BREACHED, officer_task, tasked_because
from shared.domain.policy import Policy


def code_deadline_for(journey: Journey, duty: Duty, policy: Policy) -> datetime:
    rules = policy.deadlines
    days = rules.enhanced_working_days if has_enhanced_rights(journey, policy) else rules.working_days
    return code_deadline(duty.event_at, days, rules.nation, rules.timezone)


def schedule_deadline_check(journey: Journey, duty: Duty, now: datetime, d: Decision) -> None:
    """Schedule the duty's deadline check (at once if its deadline has already passed)."""
    assert duty.due_by is not None
    check = DeadlineCheck(
        # The deadline is part of the id: a deadline brought forward is a new check, not a duplicate.
        event_id=digest(
            "deadline", journey.crime_reference, journey.person_id, duty.key, duty.due_by.isoformat()
        ),
        crime_reference=journey.crime_reference,
        person_id=journey.person_id,
        duty=duty.key,
    )
    d.scheduled.append(Scheduled(check, max(duty.due_by, now)))


def set_deadline(journey: Journey, duty: Duty, policy: Policy, now: datetime, d: Decision) -> None:
    if not duty.kind.has_code_deadline:
        return
    duty.due_by = code_deadline_for(journey, duty, policy)
    duty.compliance = Compliance.PENDING
    schedule_deadline_check(journey, duty, now, d)


def tighten_deadlines(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """A flag, enhanced right or date of birth that arrives later brings open deadlines forward.

    A deadline only ever comes earlier (journey-rules.md §7); the earlier check decides the
    duty, and the later one is cancelled then (or, if it is not, comes and finds it decided).
    """
    for duty in journey.duties.values():
        if duty.compliance != Compliance.PENDING or duty.due_by is None:
            continue
        due = code_deadline_for(journey, duty, policy)
        if due < duty.due_by:
            d.note(now, duty.key, "deadline_moved", f"from {duty.due_by.isoformat()} to {due.isoformat()}")
            duty.due_by = due
            schedule_deadline_check(journey, duty, now, d)


def evaluate_deadline(
    journey: Journey,
    event: DeadlineCheck,
    handed_at: datetime | None,
    policy: Policy,
    now: datetime,
    *,
    owned: bool = False,
) -> Decision:
    """At a duty's deadline: met if a message was handed over in time, otherwise breached."""
    state = working_journey(journey, owned)
    d = Decision(state)
    duty = state.duties.get(event.duty)
    if duty is None or duty.compliance != Compliance.PENDING or duty.due_by is None:
        return d
    if handed_at is not None and duty.handed_at is None:
        duty.handed_at = handed_at
        duty.status = DutyStatus.SENT
    if duty.handed_at is not None and duty.handed_at <= duty.due_by:
        duty.compliance = Compliance.MET
        d.note(now, duty.key, "deadline_met", "message_sent")
        return d
    duty.compliance = Compliance.BREACHED
    d.note(now, duty.key, "deadline_breached", duty.reason or duty.status.value)
    rules = policy.deadlines
    # The escalation is due by the end of the next working day.
    next_day = code_deadline(now, 1, rules.nation, rules.timezone)
    # With why the duty was with an officer, if it was: a safeguarding exclusion must not be lost
    # on the way to the supervisor who is told to contact them now.
    because = tasked_because(duty)
    escalation = officer_task(state, [duty], DEADLINE_BREACHED, policy, now, due_by=next_day, note=because)
    duty.escalation_task_id = escalation.task_id
    d.tasks.append(escalation)
    return d
