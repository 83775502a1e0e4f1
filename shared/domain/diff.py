"""Snapshot diffing: what changed between the stored record and the new one."""

from __future__ import annotations

from shared.contracts.feeds import NicheOccurrence, StormIncident
from shared.contracts.messages import Change, ChangeKind


def diff_niche(old: NicheOccurrence | None, new: NicheOccurrence) -> list[Change]:
    """The case changes that turn ``old`` (None: first seen) into ``new``."""
    changes: list[Change] = []
    first_seen_at = new.recorded_at if old is None else new.modified_at
    old_victims = {v.person_id: v for v in old.victims} if old else {}
    for victim in new.victims:
        before = old_victims.get(victim.person_id)
        if before is None:
            changes.append(Change(kind=ChangeKind.VICTIM_ADDED, key=victim.person_id, at=first_seen_at))
        elif before != victim:
            changes.append(Change(kind=ChangeKind.VICTIM_UPDATED, key=victim.person_id, at=new.modified_at))

    old_milestones = {m.id: m for m in old.milestones} if old else {}
    new_ids = {m.id for m in new.milestones}
    for milestone in new.milestones:
        if milestone.id not in old_milestones:
            changes.append(Change(kind=ChangeKind.MILESTONE_ADDED, key=milestone.id, at=milestone.at))
    for milestone_id in old_milestones:
        if milestone_id not in new_ids:
            changes.append(Change(kind=ChangeKind.MILESTONE_WITHDRAWN, key=milestone_id, at=new.modified_at))

    if old is not None and old.status != new.status:
        changes.append(Change(kind=ChangeKind.STATUS_CHANGED, key=new.status.value, at=new.modified_at))
    if new.outcome is not None and (
        old is None or old.outcome is None or old.outcome.code != new.outcome.code
    ):
        changes.append(
            Change(kind=ChangeKind.OUTCOME_ASSIGNED, key=new.outcome.code, at=new.outcome.decided_at)
        )
    old_oic = old.oic.employee_id if old and old.oic else None
    if new.oic is not None and new.oic.employee_id != old_oic:
        changes.append(Change(kind=ChangeKind.OIC_CHANGED, key=new.oic.employee_id, at=new.modified_at))
    if old is not None and set(old.flags) != set(new.flags):
        changes.append(
            Change(kind=ChangeKind.FLAGS_CHANGED, key=",".join(sorted(new.flags)), at=new.modified_at)
        )
    known = set(old.incident_numbers) if old else set()
    for incident in new.incident_numbers:
        if incident not in known:
            changes.append(Change(kind=ChangeKind.INCIDENT_LINKED, key=incident, at=new.modified_at))
    return changes


def diff_storm(old: StormIncident | None, new: StormIncident) -> list[Change]:
    """The case changes that turn ``old`` (None: first seen) into ``new``."""
    changes: list[Change] = []
    if new.caller is not None and (old is None or old.caller != new.caller):
        changes.append(Change(kind=ChangeKind.CALLER_UPDATED, key=new.caller.person_id, at=new.modified_at))
    for category in (new.opening_category, new.closing_category):
        if category and (old is None or category not in (old.opening_category, old.closing_category)):
            changes.append(Change(kind=ChangeKind.CATEGORY_CHANGED, key=category, at=new.modified_at))
    if new.crime_reference and (old is None or old.crime_reference != new.crime_reference):
        changes.append(Change(kind=ChangeKind.INCIDENT_LINKED, key=new.crime_reference, at=new.modified_at))
    attended = new.attendance.attended_at if new.attendance else None
    if attended is not None and (
        old is None or old.attendance is None or old.attendance.attended_at != attended
    ):
        changes.append(Change(kind=ChangeKind.ATTENDED, key=attended.isoformat(), at=attended))
    booked = new.attendance.scheduled_for if new.attendance else None
    before = old.attendance.scheduled_for if old and old.attendance else None
    if booked is not None and booked != before:
        changes.append(Change(kind=ChangeKind.ATTENDANCE_BOOKED, key=booked.isoformat(), at=new.modified_at))
    return changes
