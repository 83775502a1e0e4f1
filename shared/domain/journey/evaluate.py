"""Applying a case change, or a crime's shared facts, to one recipient's journey.

The feed change brings new duties (an acknowledgement, a new officer, a milestone,
the case's closure, a visit), withdrawals and logged contacts; the crime's shared
safety facts bring exclusions and earlier deadlines. Each is applied by the
module named for what the person is owed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from shared.contracts.messages import CaseChange, ChangeKind, CrimeFacts, ResolvedCaseChange, SharedFacts
from shared.domain.journey.acknowledge import acknowledge, new_officer
from shared.domain.journey.attendance import book_visit, discharge_by_visit
from shared.domain.journey.checkin import ensure_checkin
from shared.domain.journey.closure import close_case
from shared.domain.journey.contact import discharge_by_contact
from shared.domain.journey.deadlines import set_deadline, tighten_deadlines
from shared.domain.journey.duties import DutyKind
from shared.domain.journey.milestones import tell_milestone, withdraw_milestone
from shared.domain.journey.safeguard import refresh_facts, share_facts
from shared.domain.journey.state import (
    APPLIED_EVENTS_KEPT,
    Decision,
    Duty,
    Journey,
    new_journey,
    working_journey,
)
from shared.domain.journey.telling import offer, stop_waiting_messages
from shared.domain.policy import Policy


def new_duties(
    journey: Journey, case: CaseChange, policy: Policy, now: datetime, d: Decision, had_officer: bool
) -> list[Duty]:
    """Create the duties this change brings (none twice), and apply withdrawals, contacts and visits."""
    created: list[Duty] = []
    had_ack = DutyKind.ACKNOWLEDGE.key() in journey.duties
    record = case.niche or case.storm
    noticed = record.modified_at if record is not None else None

    def add(key: str, template: str, at: datetime, details: dict[str, str] | None = None) -> None:
        if key in journey.duties:
            return
        duty = Duty(
            key=key,
            template=template,
            event_at=at,
            change_id=case.change_id,
            noticed_at=noticed,
            details=details or {},
        )
        journey.duties[key] = duty
        created.append(duty)

    victim, caller = journey.role == "victim", journey.role == "caller"
    if victim and not had_ack:
        acknowledge(journey.person_id, case.changes, now, add)
    visit = case.storm.attendance if case.storm is not None else None
    if caller and case.storm is not None and visit is not None and visit.attended_at is not None:
        discharge_by_visit(journey, case.storm.incident_number, visit.attended_at, now, d)

    milestones = {m.id: m for m in case.niche.milestones} if case.niche else {}
    for change in case.changes:
        if change.kind == ChangeKind.MILESTONE_ADDED and victim and (milestone := milestones.get(change.key)):
            if milestone.type == "victim_contacted":
                discharge_by_contact(journey, milestone.at, now, d)
            else:
                tell_milestone(milestone, policy, add)
        elif change.kind == ChangeKind.MILESTONE_WITHDRAWN:
            withdraw_milestone(journey, change.key, now, d)
        elif change.kind == ChangeKind.OUTCOME_ASSIGNED and victim:
            close_case(change, add)
        elif change.kind == ChangeKind.OIC_CHANGED and victim and had_ack:
            new_officer(change, had_officer, add)
        elif change.kind == ChangeKind.ATTENDANCE_BOOKED and caller:
            incident = case.storm.incident_number if case.storm else journey.crime_reference
            book_visit(journey, incident, change, policy, now, d, add)
    return created


def evaluate_case_change(
    journey: Journey | None,
    event: ResolvedCaseChange,
    person_id: str,
    role: Literal["victim", "caller"],
    policy: Policy,
    now: datetime,
    facts: CrimeFacts | None = None,
    *,
    owned: bool = False,
) -> Decision:
    """Apply one case change to one recipient's journey (``facts``: the crime's shared safety facts)."""
    case = event.case
    if journey is not None and event.event_id in journey.applied_events:
        return Decision(journey, unchanged=True)
    state = working_journey(journey, owned) if journey else new_journey(case.crime_reference, person_id, role)
    state.applied_events = [*state.applied_events[-(APPLIED_EVENTS_KEPT - 1) :], event.event_id]
    d = Decision(state)
    had_officer = state.officer is not None and not state.officer.generic
    refresh_facts(state, case, event.officer, facts)
    if event.officer_note:
        d.note(now, "", "officer_fallback", event.officer_note)
    tighten_deadlines(state, policy, now, d)
    stop_waiting_messages(state, policy, now, d)
    created = new_duties(state, case, policy, now, d, had_officer)
    for duty in created:
        set_deadline(state, duty, policy, now, d)
    offer(state, created, policy, now, d)
    ensure_checkin(state, policy, now, d)
    return d


def evaluate_shared_facts(
    journey: Journey, event: SharedFacts, policy: Policy, now: datetime, *, owned: bool = False
) -> Decision:
    """A crime's safety facts reach a journey linked to it: deadlines tighten, waiting messages stop."""
    if event.event_id in journey.applied_events:
        return Decision(journey, unchanged=True)
    state = working_journey(journey, owned)
    state.applied_events = [*state.applied_events[-(APPLIED_EVENTS_KEPT - 1) :], event.event_id]
    d = Decision(state)
    share_facts(state, event.facts)
    tighten_deadlines(state, policy, now, d)
    stop_waiting_messages(state, policy, now, d)
    return d
