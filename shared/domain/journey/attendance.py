"""Visits: telling a STORM caller when an officer will attend, and that a visit moved (journey-rules.md §1, §7)."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.contracts.messages import Change
from shared.domain.journey.duties import DutyKind
from shared.domain.journey.state import AddDuty, Decision, DutyStatus, Journey
from shared.domain.policy import Policy


def book_visit(
    journey: Journey, incident: str, change: Change, policy: Policy, now: datetime, d: Decision, add: AddDuty
) -> None:
    """A visit booked or moved is a duty to tell the caller, with enough notice to be of use."""
    key = DutyKind.ATTENDANCE.key(incident, change.key)
    told, tasked = rebook(journey, incident, key, now, d)
    appointment = datetime.fromisoformat(change.key)
    if appointment - now < timedelta(minutes=policy.timing.attendance_min_notice_minutes):
        d.note(now, key, "suppressed", "appointment_too_soon")
        return
    details = {"appointment": change.key}
    if told is not None:
        details["moved_from"] = told  # the caller was told the earlier time: say that it moved
    if tasked is not None:
        # An officer had a task to tell the earlier time, now closed: their task for this one says so.
        details["replaces_task_for"] = tasked
    add(key, "attendance_booked", change.at, details)


def rebook(
    journey: Journey, incident: str, key: str, now: datetime, d: Decision
) -> tuple[str | None, str | None]:
    """A new appointment for the incident: stop any earlier one not yet told.

    Returns the latest earlier appointment the caller was told of, and the latest one an
    officer had a task to tell (closed now), if any.
    """
    told: tuple[datetime, str] | None = None
    tasked: tuple[datetime, str] | None = None
    for duty in journey.duties.values():
        if not duty.key.startswith(f"attend:{incident}:") or duty.key == key:
            continue
        if duty.status in (DutyStatus.OPEN, DutyStatus.WAITING, DutyStatus.QUEUED, DutyStatus.TASKED):
            if duty.status == DutyStatus.TASKED and duty.task_id:
                d.close_task(duty.task_id, "appointment_moved")  # the new time is a task of its own
                if tasked is None or duty.event_at > tasked[0]:
                    tasked = (duty.event_at, duty.details.get("appointment", ""))
            duty.status = DutyStatus.SUPERSEDED
            duty.reason = "appointment_moved"
            d.note(now, duty.key, "superseded", "appointment_moved")
        elif duty.status == DutyStatus.SENT and (told is None or duty.event_at > told[0]):
            told = (duty.event_at, duty.details.get("appointment", ""))
    return (told[1] if told and told[1] else None), (tasked[1] if tasked and tasked[1] else None)


def discharge_by_visit(
    journey: Journey, incident: str, attended_at: datetime, now: datetime, d: Decision
) -> None:
    """The officer has attended: telling the caller of a visit booked before then is moot, and its
    tasks are closed. A visit booked after it (a follow-up) is still told, whatever later changes
    of the incident, which still carry the attendance, come before it goes."""
    for duty in journey.duties.values():
        if not duty.key.startswith(f"attend:{incident}:") or duty.status not in (
            DutyStatus.OPEN,
            DutyStatus.WAITING,
            DutyStatus.QUEUED,
            DutyStatus.TASKED,
        ):
            continue
        if duty.event_at > attended_at:
            continue  # booked by a record read after the visit: not the visit that was made
        if duty.status == DutyStatus.TASKED and duty.task_id:
            d.close_task(duty.task_id, "attended")
        duty.status = DutyStatus.DISCHARGED
        duty.reason = "attended"
        d.note(now, duty.key, "discharged", f"attended at {attended_at.isoformat()}")
