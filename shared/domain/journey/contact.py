"""A logged contact: an officer told the victim themselves (journey-rules.md §1, §10, §11)."""

from __future__ import annotations

from datetime import datetime

from shared.domain.journey.state import Compliance, Decision, DutyStatus, Journey


def discharge_by_contact(journey: Journey, contacted_at: datetime, now: datetime, d: Decision) -> None:
    """A logged manual contact discharges every open duty whose event came before it.

    It also closes the officer tasks it covers (journey-rules.md §11): a duty's own task once
    none of that task's duties is still waiting for the officer, and the escalation
    of a breached duty it covers.
    """
    journey.last_contact_at = max(filter(None, [journey.last_contact_at, contacted_at]))
    covered: set[str] = set()
    for duty in journey.duties.values():
        if duty.event_at <= contacted_at and duty.escalation_task_id and not duty.escalation_closed:
            covered.add(duty.escalation_task_id)
            duty.escalation_closed = True
        if duty.event_at <= contacted_at and duty.status == DutyStatus.TASKED and duty.task_id:
            covered.add(duty.task_id)
    for duty in journey.duties.values():
        if duty.event_at <= contacted_at and duty.status in (
            DutyStatus.OPEN,
            DutyStatus.WAITING,
            DutyStatus.QUEUED,
            DutyStatus.TASKED,
        ):
            duty.status = DutyStatus.DISCHARGED
            duty.reason = "manual_contact"
            if duty.compliance == Compliance.PENDING:
                met = duty.due_by is None or contacted_at <= duty.due_by
                duty.compliance = Compliance.MET if met else Compliance.PENDING
                if met:
                    d.note(now, duty.key, "deadline_met", "manual_contact")
    still_tasked = {duty.task_id for duty in journey.duties.values() if duty.status == DutyStatus.TASKED}
    for closed in sorted(covered - still_tasked):
        d.close_task(closed, "victim_contacted")
