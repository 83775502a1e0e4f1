"""Officer tasks: a duty an automated message must not or cannot carry goes to a person (journey-rules.md §11)."""

from __future__ import annotations

import re
from datetime import datetime

from shared.domain.deadlines import code_deadline
from shared.domain.journey.duties import task_id
from shared.domain.journey.safeguard import writes_to_guardian
from shared.domain.journey.state import Duty, DutyStatus, Journey, OfficerTask
from shared.domain.policy import Policy

# A message the provider reported failed for good, its duties with an officer (journey-rules.md §12).
DELIVERY_FAILED = "delivery_failed"
# The channels such a task's note names, in this order ("email,sms"): not the person's data, so a
# reminder carries it and an erasure leaves it, unlike what they wrote or chose on their page.
CHANNELS = ("email", "sms")
# A duty's deadline passed before the person was told: the supervisor's escalation. Its note is
# the reason the duty was with an officer (``excluded_crime:domestic_abuse``), if it was: a code,
# so the escalation keeps the safety facts behind it (journey-rules.md §10).
DEADLINE_BREACHED = "deadline_breached"
# A reason code, never free text: only such a note is kept as not the person's.
_CODE = re.compile(r"[a-z0-9_]+(:[a-z0-9_]+)*")


def note_is_theirs(reason: str) -> bool:
    """Whether a task's note (if any) is the person's own: what they wrote or chose (§13)."""
    return reason not in (DELIVERY_FAILED, DEADLINE_BREACHED)


def channels_in_note(note: str | None) -> list[str]:
    """The channels a delivery_failed task's note names (none for a note from before, or another)."""
    return list(dict.fromkeys(name for name in (note or "").split(",") if name in CHANNELS))


def tasked_because(duty: Duty) -> str | None:
    """Why a duty is with an officer (its reason code), if it is: None for one that is not."""
    if duty.status != DutyStatus.TASKED or not duty.reason or not _CODE.fullmatch(duty.reason):
        return None
    return duty.reason


TEAM_ASSIGNEE = "team"  # a task with no named officer goes to the policy's team mailbox


def assignee_of(journey: Journey) -> tuple[str, str | None]:
    """Who a task is for: the officer in charge (employee id and work address), else the team."""
    officer = journey.officer
    if officer is None or officer.generic or not officer.active:
        return TEAM_ASSIGNEE, None
    return officer.employee_id, officer.email or None


def task_due(duties: list[Duty], policy: Policy, now: datetime) -> datetime:
    """A task is due when its earliest duty is; an appointment before the visit; else in working days."""
    dues = [duty.due_by for duty in duties if duty.due_by is not None]
    for duty in duties:
        appointment = duty.details.get("appointment")
        if appointment:
            dues.append(datetime.fromisoformat(appointment))
    if dues:
        return min(dues)
    rules = policy.deadlines
    return code_deadline(now, rules.working_days, rules.nation, rules.timezone)


# Reasons a duty went to an officer because nothing could go to a parent or carer: an escalation of
# such a duty is not marked as going to one, even if that has changed since (a flag lifted, a
# guardian's address added), since the officer was handling it on those terms.
_NOT_THROUGH_GUARDIAN = ("excluded_crime", "under_18_no_guardian")


def _through_guardian(journey: Journey, reason: str, note: str | None, policy: Policy) -> bool:
    """Whether the task's person is reached through their parent or carer (journey-rules.md §3, §11)."""
    if reason == DEADLINE_BREACHED and note and note.partition(":")[0] in _NOT_THROUGH_GUARDIAN:
        return False
    return writes_to_guardian(journey, policy)


def officer_task(
    journey: Journey,
    duties: list[Duty],
    reason: str,
    policy: Policy,
    now: datetime,
    due_by: datetime | None = None,
    note: str | None = None,
) -> OfficerTask:
    keys = [duty.key for duty in duties]
    assignee, email = assignee_of(journey)
    return OfficerTask(
        task_id=task_id(journey.crime_reference, journey.person_id, keys, reason),
        crime_reference=journey.crime_reference,
        person_id=journey.person_id,
        duties=keys,
        reason=reason,
        assignee=assignee,
        due_by=due_by or task_due(duties, policy, now),
        created_at=now,
        assignee_email=email,
        note=note,
        via_guardian=_through_guardian(journey, reason, note, policy),
    )
