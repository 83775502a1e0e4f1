"""A journey's keyed state, and the decision a rule returns.

A journey is one recipient's state for one crime (an incident, for a STORM
caller): the duties they are owed and what became of each. A rule is a pure
function of (journey, event, policy, now) that returns a Decision: the new state
and the commands to carry out (messages, officer tasks, scheduled events, audit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.messages import DeadlineCheck, Officer, OutboundMessage, Wake
from shared.domain.journey.duties import DutyKind
from shared.domain.people import CallerFacts, Preferences, VictimFacts

APPLIED_EVENTS_KEPT = 64


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


class KeptCheck(BaseModel):
    """A deadline check of the duty on the queue: its sequence number there, so that it can be
    cancelled once the duty is decided, and when it is due (one due already cannot be)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sequence_number: int
    at: datetime


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
    # Messages the provider reported failed for good (their keys), and whether the other channel
    # has been tried once because of one (journey-rules.md §12).
    undelivered: list[str] = Field(default_factory=list)
    redirected: bool = False
    # The channels of those messages ("email", "sms"), as the provider reported them failed: what
    # an officer's delivery_failed task names (version 6).
    failed_channels: list[str] = Field(default_factory=list)
    escalation_task_id: str | None = None  # the task raised when its deadline was breached
    escalation_closed: bool = False  # a logged contact has closed that task
    handed_at: datetime | None = None
    reason: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    # Its deadline checks still scheduled, while it is pending (kept by the step that scheduled
    # them; the rules never read them).
    checks: list[KeptCheck] = Field(default_factory=list)

    @property
    def kind(self) -> DutyKind:
        return DutyKind.of(self.key)


# The version of a stored journey's form. Stored journeys of an earlier version are upgraded as
# they are read (``upgrade_journey``), one version at a time; a later one is refused, not guessed.
JOURNEY_SCHEMA = 7


class PageChoice(BaseModel):
    """What the recipient chose on their own page (journey-rules.md §13), and what the feed said of
    each preference then: a choice stands until the feed changes that preference itself."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "sms", "both"] | None = None
    frequency_days: int | None = None
    language: str | None = None
    opted_out: bool | None = None
    changed_at: datetime
    feed: Preferences  # the feed's preferences when the choice was made
    feed_consent: bool | None = None  # a STORM caller's consent when they stopped updates


class Journey(BaseModel):
    """The keyed state of one recipient for one crime (Journeys table)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = JOURNEY_SCHEMA
    crime_reference: str
    person_id: str
    role: Literal["victim", "caller"]
    recorded_at: datetime | None = None
    case_status: str | None = None
    finalised_at: datetime | None = None  # when the case was finalised, while it is (§11)
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
    page_choice: PageChoice | None = None  # what they chose on their own page (journey-rules.md §13)
    # Erased (journey-rules.md §16): when, and why ("request": a person's erasure by command;
    # "retention": the policy's days after finalisation). An erased journey keeps ids only, and
    # nothing moves it again.
    erased_at: datetime | None = None
    erased_because: Literal["request", "retention"] | None = None


class SchemaTooNew(ValueError):
    """A stored journey written by a later version of the service than this one."""


def _v1_to_v2(document: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (before ``schema_version``) kept the victim and caller in the feed contract's models.
    Their stored form is the same; version 2 reads them into the domain's own types, which ignore
    keys a later feed drops or adds, so only the version changes."""
    return {**document, "schema_version": 2}


def _v2_to_v3(document: dict[str, Any]) -> dict[str, Any]:
    """Version 3 adds ``page_choice`` (none yet for a journey stored before it)."""
    return {**document, "schema_version": 3}


def _v3_to_v4(document: dict[str, Any]) -> dict[str, Any]:
    """Version 4 adds ``finalised_at`` (a journey stored before takes it from its outcome duty), and
    ``erased_at`` and ``erased_because`` (not erased)."""
    return {**document, "schema_version": 4}


def _v4_to_v5(document: dict[str, Any]) -> dict[str, Any]:
    """Version 5 adds a duty's ``checks`` (none kept for a journey stored before: its checks come
    and find what they find, as before)."""
    return {**document, "schema_version": 5}


def _v5_to_v6(document: dict[str, Any]) -> dict[str, Any]:
    """Version 6 adds a duty's ``failed_channels`` (none known: a task for such a duty's failed
    message says only that it could not be delivered)."""
    return {**document, "schema_version": 6}


# What two commits of 30 November (f49813a, 91e549a) kept in a version 6 journey, since taken out.
_DROPPED_IN_V7 = ("record_modified_at", "storm_record_at")


def _v6_to_v7(document: dict[str, Any]) -> dict[str, Any]:
    """Version 7 keeps no time of the newest feed record applied: a journey stored by those two
    commits (on ``main`` for an hour, never released) loads with it dropped."""
    kept = {key: value for key, value in document.items() if key not in _DROPPED_IN_V7}
    return {**kept, "schema_version": 7}


_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
    6: _v6_to_v7,
}


def upgrade_journey(document: dict[str, Any]) -> dict[str, Any]:
    """A stored journey's document in the current form (``JOURNEY_SCHEMA``)."""
    version = int(document.get("schema_version", 1))
    if version > JOURNEY_SCHEMA:
        raise SchemaTooNew(f"journey schema {version} is newer than this service's {JOURNEY_SCHEMA}")
    while version < JOURNEY_SCHEMA:
        document = _UPGRADES[version](document)
        version += 1
    return document


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
    # What the recipient wrote to the officer from their page (reason victim_message), or what
    # they chose there (preferences_changed_on_page); kept with the task and mailed to its
    # assignee, never logged. For delivery_failed, the channels that failed ("email,sms").
    note: str | None = None
    # The victim's messages go to their parent or carer (under 18, a guardian to write to, and a
    # crime not excluded): the officer must know that before contacting anyone (journey-rules.md
    # §3, §11). Written to a row only when true, so the version before reads every other row.
    via_guardian: bool = False


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

    def then(self, later: Decision) -> Decision:
        """This decision and ``later``, made next on its journey, as one: the later journey, and
        everything either decided (a task closed by both keeps the first reason, as ``close_task``)."""
        return Decision(
            later.journey,
            messages=[*self.messages, *later.messages],
            tasks=[*self.tasks, *later.tasks],
            scheduled=[*self.scheduled, *later.scheduled],
            audit=[*self.audit, *later.audit],
            closed_tasks={**later.closed_tasks, **self.closed_tasks},
            unchanged=self.unchanged and later.unchanged,
        )


def copy_journey(journey: Journey) -> Journey:
    # A JSON round trip is several times cheaper than deepcopy for this nested model.
    return Journey.model_validate_json(journey.model_dump_json())


def working_journey(journey: Journey, owned: bool) -> Journey:
    """The journey a rule changes: a copy, so the caller's is left as it was, or, when the caller
    hands it over (``owned``: it never reads that object again), the journey itself."""
    return journey if owned else copy_journey(journey)


def new_journey(crime_reference: str, person_id: str, role: Literal["victim", "caller"]) -> Journey:
    return Journey(crime_reference=crime_reference, person_id=person_id, role=role)


class AddDuty(Protocol):
    """Adds a duty the change brings to the journey (none twice), as ``evaluate.new_duties`` does."""

    def __call__(
        self, key: str, template: str, at: datetime, details: dict[str, str] | None = None
    ) -> None: ...


CHOICES = ("channel", "frequency_days", "language", "opted_out")  # what the page lets a recipient choose


def apply_page_choice(journey: Journey) -> None:
    """Put the page's choices over the feed's, dropping each the feed has changed since."""
    choice = journey.page_choice
    if choice is None:
        return
    if journey.role == "caller":
        # A caller can only stop (or start again): it stands while STORM's consent is as it was.
        caller = journey.caller
        if caller is None or caller.consent_to_updates != choice.feed_consent:
            journey.page_choice = None
        elif choice.opted_out:
            journey.caller = caller.model_copy(update={"consent_to_updates": False})
        return
    victim = journey.victim
    if victim is None:
        return
    feed = victim.preferences
    kept = {
        name: getattr(choice, name)
        for name in CHOICES
        if getattr(choice, name) is not None and getattr(feed, name) == getattr(choice.feed, name)
    }
    if not kept:
        journey.page_choice = None
        return
    journey.page_choice = PageChoice(changed_at=choice.changed_at, feed=choice.feed, **kept)
    journey.victim = victim.model_copy(update={"preferences": feed.model_copy(update=kept)})
