"""Queue messages between the steps. Each carries a ``type`` and a ``version``.

case-changes      CaseChange        ingest_niche      -> resolve_officer
journey-events    JourneyEvent      resolve_officer,  -> evaluate_journey
                                    ingest_storm (an incident's change, resolved: it has no
                                    officer), evaluate_journey (scheduled), send_message
outbound-messages OutboundMessage   evaluate_journey  -> send_message
officer-tasks     TaskNotice        evaluate_journey, -> notify_officer
                                    send_message (both through record_decision),
                                    notify_officer (a reminder waiting for its task)
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.contracts.feeds import NicheOccurrence, StormIncident


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChangeKind(StrEnum):
    VICTIM_ADDED = "victim_added"
    VICTIM_UPDATED = "victim_updated"
    MILESTONE_ADDED = "milestone_added"
    MILESTONE_WITHDRAWN = "milestone_withdrawn"
    STATUS_CHANGED = "status_changed"
    OUTCOME_ASSIGNED = "outcome_assigned"
    OIC_CHANGED = "oic_changed"
    FLAGS_CHANGED = "flags_changed"
    ATTENDANCE_BOOKED = "attendance_booked"
    CALLER_UPDATED = "caller_updated"
    INCIDENT_LINKED = "incident_linked"  # a Niche record names an incident it did not name before
    CATEGORY_CHANGED = "category_changed"  # a STORM incident's opening or closing category
    ATTENDED = "attended"  # an officer attended the STORM incident


class Change(_Message):
    """One difference between a feed record and its stored snapshot."""

    kind: ChangeKind
    key: str = ""  # milestone id, person id, employee id, outcome code, attendance time
    at: datetime  # when it happened in the source system (event time)


class Officer(_Message):
    """The officer in charge as told to a victim (from the directory)."""

    employee_id: str
    collar_number: str | None = None
    display_name: str
    rank: str | None = None
    email: str | None = None
    phone: str | None = None
    active: bool = True
    generic: bool = False  # True: the team contact stands in for an unknown officer


class CaseChange(_Message):
    """A feed record that differs from its snapshot, with the differences."""

    type: Literal["case_change"] = "case_change"
    version: Literal[1] = 1
    change_id: str
    feed: Literal["niche", "storm"]
    crime_reference: str  # or the incident number while STORM has no crime link
    detected_at: datetime
    changes: list[Change]
    # The Niche record with only the milestones this change adds (the steps after ingest read no
    # other; the whole record is the snapshot); the STORM record whole.
    niche: NicheOccurrence | None = None
    storm: StormIncident | None = None
    # For a STORM incident (whose crime_reference above is its incident number): the crime it is
    # linked to, by its own crime_reference or by a Niche record naming it.
    linked_crime: str | None = None


class CrimeFacts(_Message):
    """What every recipient of one crime shares: its safety facts (journey-rules.md §7).

    Kept per crime (the Crimes table) and told to every journey linked to it:
    its victims (and so their guardians) and the callers of its incidents.
    """

    crime_reference: str
    flags: list[str] = Field(default_factory=list)  # as the latest Niche record has them
    status: str | None = None
    recorded_at: datetime | None = None
    finalised_at: datetime | None = None  # when the case was finalised, while it is
    # Each linked incident with the STORM categories it has had (opening and closing).
    incidents: dict[str, list[str]] = Field(default_factory=dict)

    def categories(self) -> list[str]:
        """Every STORM category of every linked incident."""
        return sorted({category for names in self.incidents.values() for category in names})


class ResolvedCaseChange(_Message):
    """A case change with its officer resolved (resolve_officer -> evaluate_journey), or an
    incident's, which has none to resolve (ingest_storm -> evaluate_journey)."""

    type: Literal["resolved_case_change"] = "resolved_case_change"
    version: Literal[1] = 1
    event_id: str
    case: CaseChange
    officer: Officer | None = None
    officer_note: str | None = None  # why the officer is a cached or generic one


def resolved_body(case_json: str, change_id: str, officer: Officer | None, note: str | None) -> str:
    """A ResolvedCaseChange's body around a case change's own JSON text, passed on as it came:
    resolve_officer's, and ingest_storm's for an incident, which has no officer to resolve. Its
    queue message's id is ``resolved_message_id(change_id)`` from either."""
    around = {
        "type": "resolved_case_change",
        "version": 1,
        "event_id": change_id,
        "officer": officer.model_dump(mode="json") if officer is not None else None,
        "officer_note": note,
    }
    return json.dumps(around, separators=(",", ":"))[:-1] + ',"case":' + case_json + "}"


def resolved_message_id(change_id: str) -> str:
    return "r-" + change_id


class SharedFacts(_Message):
    """A crime's safety facts told to the journeys of one partition linked to it.

    ``crime_reference`` is the partition (and session) that hears it: the crime
    itself (its victims) or one of its incidents (the caller).
    """

    type: Literal["shared_facts"] = "shared_facts"
    version: Literal[1] = 1
    event_id: str
    crime_reference: str
    facts: CrimeFacts


class DeadlineCheck(_Message):
    """Scheduled at a duty's deadline: record met or breached."""

    type: Literal["deadline_check"] = "deadline_check"
    version: Literal[1] = 1
    event_id: str
    crime_reference: str
    person_id: str
    duty: str


class MessageOutcome(_Message):
    """What became of a message (sent or suppressed).

    send_message applies it to the journey itself; it travels as an event to
    evaluate_journey only when that journey write keeps conflicting.
    """

    type: Literal["message_outcome"] = "message_outcome"
    version: Literal[1] = 1
    event_id: str
    crime_reference: str
    person_id: str
    message_key: str
    duties: list[str]
    status: Literal["sent", "suppressed"]
    channel: str | None = None
    reason: str | None = None
    at: datetime


class MessageUndelivered(_Message):
    """A message handed over that the provider reports failed for good (journey-rules.md §12).

    record_delivery -> evaluate_journey, in the crime's session: the duties it carried
    are reopened (the other channel once, else an officer task).
    """

    type: Literal["message_undelivered"] = "message_undelivered"
    version: Literal[1] = 1
    event_id: str
    crime_reference: str
    person_id: str
    message_key: str
    duties: list[str]
    channel: Literal["email", "sms"]
    status: str  # the provider's word: Bounced, Failed, Expired …
    at: datetime


class Wake(_Message):
    """A scheduled re-evaluation (end of quiet hours, coalescing window, check-in)."""

    type: Literal["wake"] = "wake"
    version: Literal[1] = 1
    event_id: str
    crime_reference: str
    person_id: str
    purpose: str
    at: datetime


# Check-in frequencies a recipient may choose on their page, in days (journey-rules.md §13).
FREQUENCIES = (14, 28, 56)
MESSAGE_TO_OFFICER_MAX = 500  # characters


class PreferencesChosen(_Message):
    """What a recipient chose on their own page (journey-rules.md §13): the page -> evaluate_journey.

    Only what they changed is given; each choice wins over the feed until the feed changes
    that preference itself.
    """

    type: Literal["preferences_chosen"] = "preferences_chosen"
    version: Literal[1] = 1
    event_id: str
    crime_reference: str
    person_id: str
    channel: Literal["email", "sms", "both"] | None = None
    frequency_days: Literal[14, 28, 56] | None = None
    language: str | None = None
    opted_out: bool | None = None
    at: datetime


class MessageToOfficer(_Message):
    """A short message a recipient sent their officer from their page: it becomes an officer task."""

    type: Literal["message_to_officer"] = "message_to_officer"
    version: Literal[1] = 1
    event_id: str
    crime_reference: str
    person_id: str
    text: Annotated[str, Field(min_length=1, max_length=MESSAGE_TO_OFFICER_MAX)]
    at: datetime


JourneyEvent = Annotated[
    ResolvedCaseChange
    | SharedFacts
    | DeadlineCheck
    | MessageOutcome
    | MessageUndelivered
    | Wake
    | PreferencesChosen
    | MessageToOfficer,
    Field(discriminator="type"),
]
JOURNEY_EVENT = TypeAdapter[Any](JourneyEvent)


class OutboundMessage(_Message):
    """A command to send one message for one or more duties of one recipient."""

    type: Literal["outbound_message"] = "outbound_message"
    version: Literal[1] = 1
    message_key: str
    crime_reference: str
    person_id: str
    duties: list[str]
    template: str
    channel: Literal["email", "sms"]
    decided_at: datetime
    not_before: datetime | None = None  # quiet hours: Service Bus holds it until then
    # The feed record time (modified_at) of the earliest change it reports, for the latency from
    # feed change to provider; None for a check-in, and in messages queued before it existed.
    changed_at: datetime | None = None


TaskKind = Literal["task", "reminder"]


def task_notice_key(task_id: str, kind: str) -> str:
    """A task notice's id: its queue message id, its OfficerMail ledger row, its mail's idempotency key."""
    return f"{task_id}:{kind}"


class NoticeTask(_Message):
    """An officer task as a notice carries it: its own copy of the task's fields, versioned with the message.

    A reminder waits on the queue until the task is due, days later; its own copy keeps
    it readable whatever becomes of the domain's ``OfficerTask`` (Tasks table) meanwhile.
    """

    task_id: str
    crime_reference: str  # for a STORM caller's task, the incident number
    person_id: str
    duties: list[str]
    reason: str
    assignee: str
    assignee_email: str | None = None  # None: the policy's team mailbox
    due_by: datetime | None = None
    created_at: datetime
    # What the recipient wrote from their page, or what they changed there (journey-rules.md §13);
    # for a delivery_failed task, the channels the provider reported failed ("email,sms", §12).
    note: str | None = None
    # The victim's messages go to their parent or carer, and so must the officer (§3, §11).
    via_guardian: bool = False


class TaskNotice(_Message):
    """An officer task to mail (record_decision -> notify_officer).

    ``task``: at once, to the assignee's work address (or the team mailbox).
    ``reminder``: scheduled at the task's due time; mailed to the supervisor mailbox
    only if the Tasks row is still open then. Every step emits before it writes, so a
    ``task`` notice may arrive before its Tasks row exists: it carries all it needs.
    """

    type: Literal["task_notice"] = "task_notice"
    version: Literal[1] = 1
    kind: TaskKind
    task: NoticeTask
    role: Literal["victim", "caller"] = "victim"
    # Each duty's template (a milestone's is its type): the duties in words, with no table read.
    duty_templates: dict[str, str] = Field(default_factory=dict)
    # A visit that moved, by its duty's key: the earlier time the caller was told by a message
    # (``moved_from``), or that an officer had a task to tell, closed now (``replaces_task_for``).
    moved_from: dict[str, str] = Field(default_factory=dict)
    replaces_task_for: dict[str, str] = Field(default_factory=dict)
    linked_crime: str | None = None  # the crime a caller's incident is linked to, once known

    @property
    def key(self) -> str:
        return task_notice_key(self.task.task_id, self.kind)

    def to_json(self) -> str:
        """The notice as the queue carries it. The fields added since the version before
        (``via_guardian``, ``moved_from``, ``replaces_task_for``) only when they hold something,
        so that version, rolled back to, still reads every notice that does not need them (its
        models forbid fields they do not know, and a reminder waits days on the queue)."""
        exclude: dict[str, Any] = {
            name: True for name in ("moved_from", "replaces_task_for") if not getattr(self, name)
        }
        if not self.task.via_guardian:
            exclude["task"] = {"via_guardian"}
        return self.model_dump_json(exclude=exclude)


AnyJourneyEvent = (
    ResolvedCaseChange
    | SharedFacts
    | DeadlineCheck
    | MessageOutcome
    | MessageUndelivered
    | Wake
    | PreferencesChosen
    | MessageToOfficer
)


def parse_journey_event(body: bytes | str) -> AnyJourneyEvent:
    """Parse a journey-events message body into its typed event."""
    event: AnyJourneyEvent = JOURNEY_EVENT.validate_json(body)
    return event
