"""A victim's journey: the keyed state and the rules that move it (docs/journey-rules.md).

Every function here is pure: (journey state, event, policy, now) -> Decision,
where a Decision is the new state plus the commands to carry out. The steps do
the I/O; this module never reads a clock, a table or a queue.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.feeds import NicheOccurrence
from shared.contracts.messages import (
    CaseChange,
    ChangeKind,
    CrimeFacts,
    DeadlineCheck,
    MessageOutcome,
    Officer,
    OutboundMessage,
    ResolvedCaseChange,
    SharedFacts,
    Wake,
)
from shared.domain.addresses import uk_mobile_e164, valid_email
from shared.domain.deadlines import code_deadline
from shared.domain.people import CallerFacts, VictimFacts
from shared.domain.policy import Policy
from shared.domain.timing import in_quiet_hours, quiet_hours_end

APPLIED_EVENTS_KEPT = 64

ChannelName = Literal["email", "sms"]
_PREFERRED: dict[str, list[ChannelName]] = {"both": ["email", "sms"], "email": ["email"], "sms": ["sms"]}

# --- State --------------------------------------------------------------------------


class DutyStatus(StrEnum):
    OPEN = "open"  # created, not yet routed
    WAITING = "waiting"  # in the coalescing window, to be sent with whatever joins it
    QUEUED = "queued"  # a message waits to be sent
    SENT = "sent"  # handed to the provider
    TASKED = "tasked"  # an officer task carries it
    SUPPRESSED = "suppressed"  # not to be sent (the victim's choice, or no consent)
    SUPERSEDED = "superseded"  # its milestone was withdrawn before sending
    DISCHARGED = "discharged"  # an officer logged a manual contact covering it


class Compliance(StrEnum):
    NONE = "none"  # the duty has no code deadline
    PENDING = "pending"
    MET = "met"
    BREACHED = "breached"


class Duty(BaseModel):
    """Something one recipient must be told; discharged at most once."""

    model_config = ConfigDict(extra="forbid")

    key: str
    template: str
    event_at: datetime
    change_id: str
    noticed_at: datetime | None = None  # when the feed change that brought it appeared (its modified_at)
    due_by: datetime | None = None
    status: DutyStatus = DutyStatus.OPEN
    compliance: Compliance = Compliance.NONE
    message_keys: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)  # where its waiting messages are going
    task_id: str | None = None
    escalation_task_id: str | None = None  # the task raised when its deadline was breached
    escalation_closed: bool = False  # a logged contact has closed that task
    handed_at: datetime | None = None
    reason: str | None = None
    details: dict[str, str] = Field(default_factory=dict)


# The version of a stored journey's form. Stored journeys of an earlier version are upgraded as
# they are read (``upgrade_journey``), one version at a time; a later one is refused, not guessed.
JOURNEY_SCHEMA = 2


class Journey(BaseModel):
    """The keyed state of one recipient for one crime (Journeys table)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = JOURNEY_SCHEMA
    crime_reference: str
    person_id: str
    role: Literal["victim", "caller"]
    recorded_at: datetime | None = None
    case_status: str | None = None
    flags: list[str] = Field(default_factory=list)
    incident_number: str | None = None
    # A caller's journey is keyed by its incident number (crime_reference holds it); the crime
    # it is linked to, once known, is here (journey-rules.md §7).
    linked_crime: str | None = None
    # STORM categories of this incident and of every incident linked to the crime (journey-rules.md §7):
    # a safeguarding one among them excludes automated messages.
    incident_categories: list[str] = Field(default_factory=list)
    victim: VictimFacts | None = None
    caller: CallerFacts | None = None
    officer: Officer | None = None
    duties: dict[str, Duty] = Field(default_factory=dict)
    last_contact_at: datetime | None = None
    window_closes_at: datetime | None = None  # when the waiting duties go out as one message
    next_checkin_at: datetime | None = None  # the one check-in wake that counts
    checkins: int = 0
    # Case changes already applied (newest last), so a redelivered one changes nothing.
    applied_events: list[str] = Field(default_factory=list)


class SchemaTooNew(ValueError):
    """A stored journey written by a later version of the service than this one."""


def _v1_to_v2(document: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (before ``schema_version``) kept the victim and caller in the feed contract's models.
    Their stored form is the same; version 2 reads them into the domain's own types, which ignore
    keys a later feed drops or adds, so only the version changes."""
    return {**document, "schema_version": 2}


_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def upgrade_journey(document: dict[str, Any]) -> dict[str, Any]:
    """A stored journey's document in the current form (``JOURNEY_SCHEMA``)."""
    version = int(document.get("schema_version", 1))
    if version > JOURNEY_SCHEMA:
        raise SchemaTooNew(f"journey schema {version} is newer than this service's {JOURNEY_SCHEMA}")
    while version < JOURNEY_SCHEMA:
        document = _UPGRADES[version](document)
        version += 1
    return document


# --- Commands -----------------------------------------------------------------------


class OfficerTask(BaseModel):
    """A duty handed to an officer because an automated message must not or cannot go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str
    crime_reference: str
    person_id: str
    duties: list[str]
    reason: str
    assignee: str
    due_by: datetime | None
    created_at: datetime
    # The assignee's work address from the directory; None: the policy's team mailbox.
    assignee_email: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One decision and why (DPA 2018 s62 logging). Never personal data."""

    at: datetime
    crime_reference: str
    person_id: str
    duty: str
    decision: str
    reason: str


@dataclass(frozen=True)
class Scheduled:
    """A journey event to re-evaluate at a later time."""

    event: DeadlineCheck | Wake
    at: datetime


@dataclass
class Decision:
    """The new state and what to do about it."""

    journey: Journey
    messages: list[OutboundMessage] = field(default_factory=list)
    tasks: list[OfficerTask] = field(default_factory=list)
    scheduled: list[Scheduled] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    closed_tasks: dict[str, str] = field(default_factory=dict)  # task id -> why it is closed
    unchanged: bool = False  # nothing to write: the event was already applied

    def close_task(self, task_id: str, reason: str) -> None:
        """The officer task is no longer needed (the first reason given stands)."""
        self.closed_tasks.setdefault(task_id, reason)

    def note(self, at: datetime, duty: str, decision: str, reason: str) -> None:
        j = self.journey
        self.audit.append(AuditEntry(at, j.crime_reference, j.person_id, duty, decision, reason))


# --- Keys ---------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def message_key(crime_reference: str, person_id: str, duties: list[str], channel: str) -> str:
    """The ledger key of a message: the same duties to the same person on one channel."""
    return _digest("msg", crime_reference, person_id, *sorted(duties), channel)


def task_id(crime_reference: str, person_id: str, duties: list[str], reason: str) -> str:
    return "T-" + _digest("task", crime_reference, person_id, *sorted(duties), reason)[:16]


def template_for(duties: list[Duty]) -> str:
    """The template a message uses: the duty's own, or the combined update for several."""
    return duties[0].template if len(duties) == 1 else "combined_update"


# --- Facts about the recipient -----------------------------------------------------------


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def local_day(moment: datetime, policy: Policy) -> date:
    """The force's calendar day of a moment (every "day" of the rules is a Europe/London day)."""
    return moment.astimezone(ZoneInfo(policy.deadlines.timezone)).date()


def is_under_age(journey: Journey, policy: Policy) -> bool:
    """Under the adult age on the (London) day the crime was recorded."""
    victim = journey.victim
    if victim is None or victim.date_of_birth is None or journey.recorded_at is None:
        return False
    recorded = local_day(journey.recorded_at, policy)
    return _age_on(victim.date_of_birth, recorded) < policy.safeguarding.adult_age


def safeguarding_category(journey: Journey, policy: Policy) -> str | None:
    """The first STORM safeguarding category of the incidents behind this journey, if any."""
    for category in journey.incident_categories:
        name = policy.storm.safeguarding_category(category)
        if name:
            return name
    return None


def has_enhanced_rights(journey: Journey, policy: Policy) -> bool:
    if set(journey.flags) & set(policy.safeguarding.enhanced_flags):
        return True
    if journey.victim is not None and journey.victim.enhanced_rights:
        return True
    # Every default safeguarding category (domestic, sexual, stalking, child protection,
    # honour-based abuse) is a victim the Victims' Code gives enhanced rights.
    if safeguarding_category(journey, policy):
        return True
    return is_under_age(journey, policy)


def excluded_flag(journey: Journey, policy: Policy) -> str | None:
    """The first safeguarding flag that forbids automated messages, if any."""
    for flag in policy.safeguarding.excluded_flags:
        if flag in journey.flags:
            return flag
    return None


def _slug(name: str) -> str:
    return "_".join(re.sub(r"[^0-9a-z]+", " ", name.casefold()).split())


def excluded_reason(journey: Journey, policy: Policy) -> str | None:
    """Why automated messages are forbidden for this recipient: a crime flag or a STORM category."""
    flag = excluded_flag(journey, policy)
    if flag:
        return f"excluded_crime:{flag}"
    category = safeguarding_category(journey, policy)
    if category:
        return f"excluded_crime:storm:{_slug(category)}"
    return None


@dataclass(frozen=True)
class Route:
    """How a group of duties reaches its recipient."""

    action: Literal["send", "task", "suppress"]
    reason: str = ""
    channels: tuple[tuple[Literal["email", "sms"], str], ...] = ()
    fallback: bool = False


def route(journey: Journey, policy: Policy) -> Route:
    """Safeguarding first, then consent, then the channel (journey-rules.md §4, §7)."""
    excluded = excluded_reason(journey, policy)
    if journey.role == "caller":
        caller = journey.caller
        if caller is None or not caller.consent_to_updates:
            return Route("suppress", "no_consent")
        if excluded:
            return Route("task", excluded)
        mobile = uk_mobile_e164(caller.contact.mobile)
        if mobile:
            return Route("send", channels=(("sms", mobile),))
        email = valid_email(caller.contact.email)
        if email:
            return Route("send", channels=(("email", email),))
        return Route("suppress", "no_valid_address")

    victim = journey.victim
    if victim is None:
        return Route("task", "victim_unknown")
    prefs = victim.preferences
    if prefs.opted_out or prefs.channel == "none":
        return Route("suppress", "opted_out")
    if excluded:
        return Route("task", excluded)
    email_raw, mobile_raw = victim.contact.email, victim.contact.mobile
    if is_under_age(journey, policy):
        guardian = victim.guardian
        if guardian is None or not (guardian.email or guardian.mobile):
            return Route("task", "under_18_no_guardian")
        email_raw, mobile_raw = guardian.email, guardian.mobile
    usable: dict[Literal["email", "sms"], str | None] = {
        "email": valid_email(email_raw) if victim.safe_contact.email else None,
        "sms": uk_mobile_e164(mobile_raw) if victim.safe_contact.sms else None,
    }
    preferred = _PREFERRED[str(prefs.channel)]
    chosen = tuple((ch, addr) for ch in preferred if (addr := usable[ch]))
    if chosen:
        return Route("send", channels=chosen)
    others = tuple((ch, addr) for ch, addr in usable.items() if ch not in preferred and addr)
    if others:
        return Route("send", channels=others[:1], fallback=True, reason=f"{preferred[0]}_unusable")
    return Route("task", "no_safe_channel")


# --- Rules --------------------------------------------------------------------------


def _copy(journey: Journey) -> Journey:
    # A JSON round trip is several times cheaper than deepcopy for this nested model.
    return Journey.model_validate_json(journey.model_dump_json())


def _new_journey(crime_reference: str, person_id: str, role: Literal["victim", "caller"]) -> Journey:
    return Journey(crime_reference=crime_reference, person_id=person_id, role=role)


def _share_facts(journey: Journey, facts: CrimeFacts) -> None:
    """The crime's safety facts, for every recipient linked to it (journey-rules.md §7).

    Flags and status are the crime's as its latest Niche record has them (a flag
    removed there lifts its exclusion); STORM categories only accumulate, since an
    incident is a safeguarding one if it was ever opened or closed as one.
    """
    journey.flags = sorted(facts.flags)
    journey.case_status = facts.status
    if facts.recorded_at is not None:
        journey.recorded_at = facts.recorded_at
    journey.incident_categories = sorted({*journey.incident_categories, *facts.categories()})
    if journey.role == "caller":
        journey.linked_crime = facts.crime_reference


def _refresh_facts(
    journey: Journey, case: CaseChange, officer: Officer | None, facts: CrimeFacts | None
) -> None:
    if case.niche is not None:
        record: NicheOccurrence = case.niche
        journey.flags = [flag.value for flag in record.flags]
        journey.case_status = record.status.value
        journey.recorded_at = record.recorded_at
        for victim in record.victims:
            if victim.person_id == journey.person_id:
                journey.victim = VictimFacts.model_validate(victim)  # the domain's own copy
    if case.storm is not None:
        storm = case.storm
        journey.incident_number = storm.incident_number
        if storm.caller is not None and storm.caller.person_id == journey.person_id:
            journey.caller = CallerFacts.model_validate(storm.caller)
        own = [category for category in (storm.opening_category, storm.closing_category) if category]
        journey.incident_categories = sorted({*journey.incident_categories, *own})
        if case.linked_crime:
            journey.linked_crime = case.linked_crime
    if facts is not None:
        _share_facts(journey, facts)
    if officer is not None:
        journey.officer = officer


def _new_duties(
    journey: Journey, case: CaseChange, policy: Policy, now: datetime, d: Decision, had_officer: bool
) -> list[Duty]:
    """Create the duties this change brings (none twice), and apply withdrawals and manual contacts."""
    created: list[Duty] = []
    had_ack = "ack" in journey.duties

    def add(key: str, template: str, at: datetime, details: dict[str, str] | None = None) -> None:
        if key in journey.duties:
            return
        record = case.niche or case.storm
        noticed = record.modified_at if record is not None else None
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

    if journey.role == "victim" and not had_ack:
        added = [c for c in case.changes if c.kind == ChangeKind.VICTIM_ADDED and c.key == journey.person_id]
        add("ack", "acknowledgement", added[0].at if added else now)
    visit = case.storm.attendance if case.storm is not None else None
    if journey.role == "caller" and visit is not None and visit.attended_at is not None and case.storm:
        _discharge_by_visit(journey, case.storm.incident_number, visit.attended_at, now, d)

    milestones = {m.id: m for m in case.niche.milestones} if case.niche else {}
    for change in case.changes:
        if change.kind == ChangeKind.MILESTONE_ADDED and journey.role == "victim":
            milestone = milestones.get(change.key)
            if milestone is None:
                continue
            if milestone.type == "victim_contacted":
                _discharge_by_contact(journey, milestone.at, now, d)
            elif milestone.type in policy.notifiable_milestones:
                details = {"milestone": milestone.type.value}
                # Only the details the feed contract bounds for this type reach a message.
                disposal = milestone.details.get("disposal")
                if (
                    milestone.type == "out_of_court_disposal"
                    and isinstance(disposal, str)
                    and disposal.strip()
                ):
                    details["disposal"] = disposal.strip()
                hearing = milestone.details.get("first_hearing")
                if milestone.type == "suspect_charged" and isinstance(hearing, dict):
                    details["court"] = str(hearing.get("court") or "")
                    details["hearing_at"] = str(hearing.get("at") or "")
                add(f"m:{milestone.id}", milestone.type.value, milestone.at, details)
        elif change.kind == ChangeKind.MILESTONE_WITHDRAWN:
            duty = journey.duties.get(f"m:{change.key}")
            if duty is not None and duty.status in (DutyStatus.OPEN, DutyStatus.WAITING, DutyStatus.QUEUED):
                duty.status = DutyStatus.SUPERSEDED
                duty.compliance = Compliance.NONE
                d.note(now, duty.key, "superseded", "milestone_withdrawn")
        elif change.kind == ChangeKind.OUTCOME_ASSIGNED and journey.role == "victim":
            add(f"outcome:{change.key}", "case_closed", change.at, {"outcome": change.key})
        elif change.kind == ChangeKind.OIC_CHANGED and journey.role == "victim" and had_ack:
            add(
                f"oic:{change.key}",
                "officer_changed",
                change.at,
                {"first_officer": "no" if had_officer else "yes"},
            )
        elif change.kind == ChangeKind.ATTENDANCE_BOOKED and journey.role == "caller":
            incident = case.storm.incident_number if case.storm else journey.crime_reference
            key = f"attend:{incident}:{change.key}"
            told = _rebook(journey, incident, key, now, d)
            appointment = datetime.fromisoformat(change.key)
            notice = timedelta(minutes=policy.timing.attendance_min_notice_minutes)
            if appointment - now < notice:
                d.note(now, key, "suppressed", "appointment_too_soon")
                continue
            details = {"appointment": change.key}
            if told is not None:
                details["moved_from"] = told  # the caller was told the earlier time: say that it moved
            add(key, "attendance_booked", change.at, details)
    return created


def _rebook(journey: Journey, incident: str, key: str, now: datetime, d: Decision) -> str | None:
    """A new appointment for the incident: stop any earlier one not yet told.

    Returns the latest earlier appointment the caller was told of, if any.
    """
    told: tuple[datetime, str] | None = None
    for duty in journey.duties.values():
        if not duty.key.startswith(f"attend:{incident}:") or duty.key == key:
            continue
        if duty.status in (DutyStatus.OPEN, DutyStatus.WAITING, DutyStatus.QUEUED, DutyStatus.TASKED):
            if duty.status == DutyStatus.TASKED and duty.task_id:
                d.close_task(duty.task_id, "appointment_moved")  # the new time is a task of its own
            duty.status = DutyStatus.SUPERSEDED
            duty.reason = "appointment_moved"
            d.note(now, duty.key, "superseded", "appointment_moved")
        elif duty.status == DutyStatus.SENT and (told is None or duty.event_at > told[0]):
            told = (duty.event_at, duty.details.get("appointment", ""))
    return told[1] if told and told[1] else None


def _discharge_by_visit(
    journey: Journey, incident: str, attended_at: datetime, now: datetime, d: Decision
) -> None:
    """The officer has attended: telling the caller of the visit is moot, and its tasks are closed."""
    for duty in journey.duties.values():
        if not duty.key.startswith(f"attend:{incident}:") or duty.status not in (
            DutyStatus.OPEN,
            DutyStatus.WAITING,
            DutyStatus.QUEUED,
            DutyStatus.TASKED,
        ):
            continue
        if duty.status == DutyStatus.TASKED and duty.task_id:
            d.close_task(duty.task_id, "attended")
        duty.status = DutyStatus.DISCHARGED
        duty.reason = "attended"
        d.note(now, duty.key, "discharged", f"attended at {attended_at.isoformat()}")


def _discharge_by_contact(journey: Journey, contacted_at: datetime, now: datetime, d: Decision) -> None:
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


def _code_deadline(journey: Journey, duty: Duty, policy: Policy) -> datetime:
    rules = policy.deadlines
    days = rules.enhanced_working_days if has_enhanced_rights(journey, policy) else rules.working_days
    return code_deadline(duty.event_at, days, rules.nation, rules.timezone)


def _check_deadline(journey: Journey, duty: Duty, now: datetime, d: Decision) -> None:
    """Schedule the duty's deadline check (at once if its deadline has already passed)."""
    assert duty.due_by is not None
    check = DeadlineCheck(
        # The deadline is part of the id: a deadline brought forward is a new check, not a duplicate.
        event_id=_digest(
            "deadline", journey.crime_reference, journey.person_id, duty.key, duty.due_by.isoformat()
        ),
        crime_reference=journey.crime_reference,
        person_id=journey.person_id,
        duty=duty.key,
    )
    d.scheduled.append(Scheduled(check, max(duty.due_by, now)))


def _set_deadline(journey: Journey, duty: Duty, policy: Policy, now: datetime, d: Decision) -> None:
    if duty.template in ("checkin", "attendance_booked"):
        return
    duty.due_by = _code_deadline(journey, duty, policy)
    duty.compliance = Compliance.PENDING
    _check_deadline(journey, duty, now, d)


def _tighten_deadlines(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """A flag, enhanced right or date of birth that arrives later brings open deadlines forward.

    A deadline only ever comes earlier (journey-rules.md §7); the earlier check decides the
    duty, and the later one, when it comes, finds it decided.
    """
    for duty in journey.duties.values():
        if duty.compliance != Compliance.PENDING or duty.due_by is None:
            continue
        due = _code_deadline(journey, duty, policy)
        if due < duty.due_by:
            d.note(now, duty.key, "deadline_moved", f"from {duty.due_by.isoformat()} to {due.isoformat()}")
            duty.due_by = due
            _check_deadline(journey, duty, now, d)


TEAM_ASSIGNEE = "team"  # a task with no named officer goes to the policy's team mailbox


def _assignee(journey: Journey) -> tuple[str, str | None]:
    """Who a task is for: the officer in charge (employee id and work address), else the team."""
    officer = journey.officer
    if officer is None or officer.generic or not officer.active:
        return TEAM_ASSIGNEE, None
    return officer.employee_id, officer.email or None


def _task_due(duties: list[Duty], policy: Policy, now: datetime) -> datetime:
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


def _task(
    journey: Journey,
    duties: list[Duty],
    reason: str,
    policy: Policy,
    now: datetime,
    due_by: datetime | None = None,
) -> OfficerTask:
    keys = [duty.key for duty in duties]
    assignee, email = _assignee(journey)
    return OfficerTask(
        task_id=task_id(journey.crime_reference, journey.person_id, keys, reason),
        crime_reference=journey.crime_reference,
        person_id=journey.person_id,
        duties=keys,
        reason=reason,
        assignee=assignee,
        due_by=due_by or _task_due(duties, policy, now),
        created_at=now,
        assignee_email=email,
    )


def _dispatch(journey: Journey, duties: list[Duty], policy: Policy, now: datetime, d: Decision) -> None:
    """Route one group of duties (one feed change, one recipient) to a message, tasks or nothing."""
    if not duties:
        return
    how = route(journey, policy)
    if how.action == "suppress":
        for duty in duties:
            duty.status = DutyStatus.SUPPRESSED
            duty.reason = how.reason
            d.note(now, duty.key, "suppressed", how.reason)
            if how.reason == "opted_out" and duty.compliance == Compliance.PENDING:
                # The victim's choice discharges the duty (journey-rules.md §10).
                duty.compliance = Compliance.MET
                d.note(now, duty.key, "deadline_met", "opted_out")
        return
    if how.action == "task":
        # Excluded crimes: each duty its own task with its own deadline; otherwise one task for the group.
        groups = [[duty] for duty in duties] if how.reason.startswith("excluded_crime") else [duties]
        for group in groups:
            task = _task(journey, group, how.reason, policy, now)
            d.tasks.append(task)
            for duty in group:
                duty.status = DutyStatus.TASKED
                duty.task_id = task.task_id
                duty.reason = how.reason
                d.note(now, duty.key, "tasked", how.reason)
        return
    keys = [duty.key for duty in duties]
    for channel, _address in how.channels:
        key = message_key(journey.crime_reference, journey.person_id, keys, channel)
        not_before = None
        if channel == "sms" and in_quiet_hours(now, policy):
            not_before = quiet_hours_end(now, policy)
            for duty in duties:
                d.note(now, duty.key, "deferred", f"quiet_hours until {not_before.isoformat()}")
        d.messages.append(
            OutboundMessage(
                message_key=key,
                crime_reference=journey.crime_reference,
                person_id=journey.person_id,
                duties=keys,
                template=template_for(duties),
                channel=channel,
                decided_at=now,
                not_before=not_before,
            )
        )
        for duty in duties:
            duty.message_keys.append(key)
    for duty in duties:
        duty.status = DutyStatus.QUEUED
        duty.channels = [channel for channel, _ in how.channels]
        if how.fallback:
            d.note(now, duty.key, "fallback", how.reason)


def _wake(journey: Journey, purpose: str, at: datetime) -> Scheduled:
    event = Wake(
        event_id=_digest("wake", journey.crime_reference, journey.person_id, purpose, at.isoformat()),
        crime_reference=journey.crime_reference,
        person_id=journey.person_id,
        purpose=purpose,
        at=at,
    )
    return Scheduled(event, at)


def _offer(journey: Journey, duties: list[Duty], policy: Policy, now: datetime, d: Decision) -> None:
    """New duties wait in the coalescing window, or go now when waiting would miss a deadline."""
    if not duties:
        return
    if route(journey, policy).action != "send":
        _dispatch(journey, duties, policy, now, d)  # tasks and suppressions need no window
        return
    for duty in duties:
        duty.status = DutyStatus.WAITING
    waiting = [duty for duty in journey.duties.values() if duty.status == DutyStatus.WAITING]
    window = timedelta(minutes=policy.timing.coalesce_minutes)
    open_window = (
        journey.window_closes_at if journey.window_closes_at and journey.window_closes_at > now else None
    )
    closes = open_window or now + window
    if window <= timedelta(0) or any(duty.due_by is not None and duty.due_by < closes for duty in waiting):
        _close_window(journey, policy, now, d)
        return
    if open_window is None:
        journey.window_closes_at = closes
        d.scheduled.append(_wake(journey, "send_window", closes))
    else:
        for duty in duties:
            d.note(now, duty.key, "coalesced", f"joins the message due at {closes.isoformat()}")


def _close_window(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """Send every waiting duty of the recipient as one message."""
    journey.window_closes_at = None
    waiting = [duty for duty in journey.duties.values() if duty.status == DutyStatus.WAITING]
    _dispatch(journey, waiting, policy, now, d)


def _frequency(journey: Journey, policy: Policy) -> timedelta:
    days = (
        journey.victim.preferences.frequency_days if journey.victim else policy.timing.default_frequency_days
    )
    return timedelta(days=days)


def _checkins_stop(journey: Journey) -> bool:
    victim = journey.victim
    opted_out = victim is not None and (victim.preferences.opted_out or victim.preferences.channel == "none")
    return journey.role != "victim" or journey.case_status == "finalised" or opted_out


def _ensure_checkin(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """Schedule the next check-in wake if none is pending and the case is open."""
    if journey.next_checkin_at is not None or _checkins_stop(journey) or "ack" not in journey.duties:
        return
    basis = max(filter(None, [journey.last_contact_at, now]))
    journey.next_checkin_at = basis + _frequency(journey, policy)
    d.scheduled.append(_wake(journey, "checkin", journey.next_checkin_at))


def _stop_waiting_messages(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """Facts changed (a flag, an opt-out): re-route every duty whose message is not yet sent."""
    waiting = [
        duty for duty in journey.duties.values() if duty.status in (DutyStatus.QUEUED, DutyStatus.WAITING)
    ]
    if not waiting:
        return
    how = route(journey, policy)
    if how.action == "send":
        # A waiting message keeps its channel if that is still usable (the address is re-read at
        # send time); otherwise it goes again by the channel that now is, and the old one stops.
        usable = {channel for channel, _ in how.channels}
        stranded = [
            duty
            for duty in waiting
            if duty.status == DutyStatus.QUEUED and not usable.intersection(duty.channels)
        ]
        for duty in stranded:
            d.note(now, duty.key, "fallback", "channel_no_longer_usable")
        _dispatch(journey, stranded, policy, now, d)
        return
    for duty in waiting:
        if duty.status == DutyStatus.QUEUED:
            # The message keeps its key: at send time it finds the duty no longer queued and stops.
            d.note(now, duty.key, "suppressed", how.reason)
    journey.window_closes_at = None
    _dispatch(journey, waiting, policy, now, d)


def evaluate_case_change(
    journey: Journey | None,
    event: ResolvedCaseChange,
    person_id: str,
    role: Literal["victim", "caller"],
    policy: Policy,
    now: datetime,
    facts: CrimeFacts | None = None,
) -> Decision:
    """Apply one case change to one recipient's journey (``facts``: the crime's shared safety facts)."""
    case = event.case
    if journey is not None and event.event_id in journey.applied_events:
        return Decision(journey, unchanged=True)
    state = _copy(journey) if journey else _new_journey(case.crime_reference, person_id, role)
    state.applied_events = [*state.applied_events[-(APPLIED_EVENTS_KEPT - 1) :], event.event_id]
    d = Decision(state)
    had_officer = state.officer is not None and not state.officer.generic
    _refresh_facts(state, case, event.officer, facts)
    if event.officer_note:
        d.note(now, "", "officer_fallback", event.officer_note)
    _tighten_deadlines(state, policy, now, d)
    _stop_waiting_messages(state, policy, now, d)
    created = _new_duties(state, case, policy, now, d, had_officer)
    for duty in created:
        _set_deadline(state, duty, policy, now, d)
    _offer(state, created, policy, now, d)
    _ensure_checkin(state, policy, now, d)
    return d


def evaluate_shared_facts(journey: Journey, event: SharedFacts, policy: Policy, now: datetime) -> Decision:
    """A crime's safety facts reach a journey linked to it: deadlines tighten, waiting messages stop."""
    if event.event_id in journey.applied_events:
        return Decision(journey, unchanged=True)
    state = _copy(journey)
    state.applied_events = [*state.applied_events[-(APPLIED_EVENTS_KEPT - 1) :], event.event_id]
    d = Decision(state)
    _share_facts(state, event.facts)
    _tighten_deadlines(state, policy, now, d)
    _stop_waiting_messages(state, policy, now, d)
    return d


def evaluate_wake(journey: Journey, event: Wake, policy: Policy, now: datetime) -> Decision:
    """A scheduled re-evaluation: the end of a coalescing window, or a check-in."""
    state = _copy(journey)
    d = Decision(state)
    if event.purpose == "send_window":
        if any(duty.status == DutyStatus.WAITING for duty in state.duties.values()):
            _close_window(state, policy, now, d)
        else:
            state.window_closes_at = None
        return d
    if event.purpose != "checkin" or state.next_checkin_at != event.at:
        return Decision(journey, unchanged=True)  # superseded by a later schedule
    state.next_checkin_at = None
    if _checkins_stop(state):
        return d
    frequency = _frequency(state, policy)
    if state.last_contact_at is not None and state.last_contact_at + frequency > now:
        # Someone was in touch since: the clock restarts from that contact.
        state.next_checkin_at = state.last_contact_at + frequency
        d.scheduled.append(_wake(state, "checkin", state.next_checkin_at))
        return d
    if any(duty.status in (DutyStatus.WAITING, DutyStatus.QUEUED) for duty in state.duties.values()):
        # An update is about to go (held for the morning, or in its window): that is the contact,
        # and a "no news yet" check-in beside it would contradict it. The clock restarts now.
        state.next_checkin_at = now + frequency
        d.scheduled.append(_wake(state, "checkin", state.next_checkin_at))
        return d
    state.checkins += 1
    duty = Duty(key=f"checkin:{state.checkins}", template="checkin", event_at=now, change_id=event.event_id)
    state.duties[duty.key] = duty
    _offer(state, [duty], policy, now, d)
    state.next_checkin_at = now + frequency
    d.scheduled.append(_wake(state, "checkin", state.next_checkin_at))
    return d


def evaluate_deadline(
    journey: Journey, event: DeadlineCheck, handed_at: datetime | None, policy: Policy, now: datetime
) -> Decision:
    """At a duty's deadline: met if a message was handed over in time, otherwise breached."""
    state = _copy(journey)
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
    escalation = _task(state, [duty], "deadline_breached", policy, now, due_by=next_day)
    duty.escalation_task_id = escalation.task_id
    d.tasks.append(escalation)
    return d


def evaluate_message_outcome(journey: Journey, event: MessageOutcome, now: datetime) -> Decision:
    """Record what send_message did with a message."""
    state = _copy(journey)
    d = Decision(state)
    for key in event.duties:
        duty = state.duties.get(key)
        if duty is None or event.message_key not in duty.message_keys:
            continue
        if event.status == "sent":
            if duty.handed_at is None:
                duty.handed_at = event.at
            duty.status = DutyStatus.SENT
            state.last_contact_at = max(filter(None, [state.last_contact_at, event.at]))
            if duty.compliance == Compliance.PENDING and duty.due_by and event.at <= duty.due_by:
                duty.compliance = Compliance.MET
                d.note(now, key, "deadline_met", "message_sent")
        elif duty.status == DutyStatus.QUEUED:
            others_waiting = [k for k in duty.message_keys if k != event.message_key]
            duty.message_keys = others_waiting
            if not others_waiting:
                duty.status = DutyStatus.SUPPRESSED
                duty.reason = event.reason
    return d


def _too_late(duty: Duty, policy: Policy, now: datetime) -> bool:
    """An attendance message is pointless once the visit is under the notice period away."""
    appointment = duty.details.get("appointment")
    if duty.template != "attendance_booked" or not appointment:
        return False
    notice = timedelta(minutes=policy.timing.attendance_min_notice_minutes)
    return datetime.fromisoformat(appointment) - now < notice


def send_time_check(
    journey: Journey, message: OutboundMessage, policy: Policy, now: datetime
) -> tuple[list[Duty], str | None]:
    """At the moment of sending: the duties still to be told, or the reason not to send at all."""
    excluded = excluded_reason(journey, policy)
    if excluded:
        return [], excluded
    live = [
        journey.duties[key]
        for key in message.duties
        if key in journey.duties
        and journey.duties[key].status in (DutyStatus.QUEUED, DutyStatus.SENT)
        and message.message_key in journey.duties[key].message_keys
        and not _too_late(journey.duties[key], policy, now)
    ]
    if not live:
        duties = [journey.duties[k] for k in message.duties if k in journey.duties]
        if duties and all(_too_late(duty, policy, now) for duty in duties):
            return [], "appointment_too_soon"
        return [], "no_live_duty:" + ",".join(sorted({duty.status.value for duty in duties}))
    how = route(journey, policy)
    if how.action != "send":
        return [], how.reason
    if message.channel not in {channel for channel, _ in how.channels}:
        return [], f"{message.channel}_no_longer_usable"
    return live, None


def address_for(journey: Journey, channel: str, policy: Policy) -> str | None:
    """The current address for a channel (E.164 mobile or normalised email)."""
    how = route(journey, policy)
    return next((addr for ch, addr in how.channels if ch == channel), None)
