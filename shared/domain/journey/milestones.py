"""Telling the victim about a milestone of the investigation, or not when it is withdrawn (journey-rules.md §1, §9)."""

from __future__ import annotations

from datetime import datetime

from shared.contracts.feeds import Milestone
from shared.domain.journey.duties import DutyKind
from shared.domain.journey.state import AddDuty, Compliance, Decision, DutyStatus, Journey
from shared.domain.policy import Policy


def tell_milestone(milestone: Milestone, policy: Policy, add: AddDuty) -> None:
    """A notifiable milestone is a duty; only the details the feed contract bounds for its type go with it."""
    if milestone.type not in policy.notifiable_milestones:
        return
    details = {"milestone": milestone.type.value}
    disposal = milestone.details.get("disposal")
    if milestone.type == "out_of_court_disposal" and isinstance(disposal, str) and disposal.strip():
        details["disposal"] = disposal.strip()
    hearing = milestone.details.get("first_hearing")
    if milestone.type == "suspect_charged" and isinstance(hearing, dict):
        details["court"] = str(hearing.get("court") or "")
        details["hearing_at"] = str(hearing.get("at") or "")
    add(DutyKind.MILESTONE.key(milestone.id), milestone.type.value, milestone.at, details)


def withdraw_milestone(journey: Journey, milestone_id: str, now: datetime, d: Decision) -> None:
    """A milestone gone from a later snapshot before its message went is never announced."""
    duty = journey.duties.get(DutyKind.MILESTONE.key(milestone_id))
    if duty is not None and duty.status in (DutyStatus.OPEN, DutyStatus.WAITING, DutyStatus.QUEUED):
        duty.status = DutyStatus.SUPERSEDED
        duty.compliance = Compliance.NONE
        d.note(now, duty.key, "superseded", "milestone_withdrawn")
