"""The two feed contracts, Niche occurrences and STORM incidents (published as JSON Schema in schemas/).

Each record is the whole current state of one occurrence or incident. The models
are strict about shape (unknown keys are rejected, types are not coerced across
kinds) so that a malformed record is quarantined with a clear reason instead of
being half-understood.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs it (not typing's) before Python 3.12

NICHE_SCHEMA = "niche.occurrence/1"
STORM_SCHEMA = "storm.incident/1"

# Strict types: a number is not a string and "true" is not a boolean, as the published schemas say.
# A feed record is at most this many bytes of UTF-8 JSON (one line of the feed). A larger one is
# quarantined by reference: its row keeps its size, digest and first bytes, not the record, since a
# Table Storage entity holds at most 1 MiB and a Service Bus Standard message 256 KB, and the case
# change a record becomes carries the record. (A record with 50 victims and 1,000 milestones of
# ordinary size is about 211 KB: a feed that sends such records should send milestones as they come.)
MAX_RECORD_BYTES = 200 * 1024
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, strict=True)]
LongText = Annotated[str, StringConstraints(max_length=2000, strict=True)]
# Free text from a feed that a message quotes (a court's name, a disposal): short enough for an email line.
MessageText = Annotated[str, StringConstraints(min_length=1, max_length=120, strict=True)]
# A Home Office crime outcome type (journey-rules.md §6), as text: "1" to "22".
OUTCOME_CODE_PATTERN = r"^([1-9]|1[0-9]|2[0-2])$"
OutcomeCode = Annotated[str, StringConstraints(pattern=OUTCOME_CODE_PATTERN, strict=True)]


# Feed times outside these bounds are errors, not history or plans: they would overflow
# working-day and time-zone arithmetic downstream.
EARLIEST_FEED_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_FEED_TIME = datetime(2100, 1, 1, tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a time zone offset")
    if not EARLIEST_FEED_TIME <= value <= LATEST_FEED_TIME:
        raise ValueError("timestamp must lie between 2000 and 2100")
    return value


def _shallow(value: dict[str, Any], limit: int = 8) -> dict[str, Any]:
    """Free-form details stay shallow: deep nesting is an attack or a broken extract, not data."""

    def depth(node: Any, level: int) -> None:
        if level > limit:
            raise ValueError(f"details nest deeper than {limit} levels")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            depth(child, level + 1)

    depth(value, 1)
    return value


_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_text(pattern: re.Pattern[str], what: str) -> Any:
    # pydantic reads a digit string as a Unix time; the contract (and its schema) says ISO 8601.
    def check(value: Any) -> Any:
        if isinstance(value, str) and not pattern.match(value):
            raise ValueError(f"{what} must be ISO 8601 text")
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"{what} must be ISO 8601 text, not a number")
        return value

    return check


AwareDatetime = Annotated[
    datetime, BeforeValidator(_iso_text(_ISO_DATETIME, "a timestamp")), AfterValidator(_aware)
]
IsoDate = Annotated[date, BeforeValidator(_iso_text(_ISO_DATE, "a date"))]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class CaseStatus(StrEnum):
    RECORDED = "recorded"
    ALLOCATED = "allocated"
    UNDER_INVESTIGATION = "under_investigation"
    WITH_CPS = "with_cps"
    FINALISED = "finalised"


class Flag(StrEnum):
    DOMESTIC_ABUSE = "domestic_abuse"
    SEXUAL_OFFENCE = "sexual_offence"
    HATE_CRIME = "hate_crime"
    STALKING_HARASSMENT = "stalking_harassment"
    HONOUR_BASED_ABUSE = "honour_based_abuse"
    MODERN_SLAVERY = "modern_slavery"
    TERRORISM = "terrorism"
    ATTEMPTED_MURDER = "attempted_murder"
    KIDNAP = "kidnap"
    ARSON_ENDANGER_LIFE = "arson_endanger_life"
    BEREAVED = "bereaved"
    PERSISTENTLY_TARGETED = "persistently_targeted"


class MilestoneType(StrEnum):
    SUSPECT_ARRESTED = "suspect_arrested"
    SUSPECT_INTERVIEWED = "suspect_interviewed"
    SUSPECT_BAILED = "suspect_bailed"
    BAIL_CONDITIONS_CHANGED = "bail_conditions_changed"
    BAIL_CANCELLED = "bail_cancelled"
    SUSPECT_RELEASED_UNDER_INVESTIGATION = "suspect_released_under_investigation"
    SUSPECT_RELEASED_NO_FURTHER_ACTION = "suspect_released_no_further_action"
    SUSPECT_CHARGED = "suspect_charged"
    OUT_OF_COURT_DISPOSAL = "out_of_court_disposal"
    DECISION_NOT_TO_PROSECUTE = "decision_not_to_prosecute"
    VICTIM_CONTACTED = "victim_contacted"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    BOTH = "both"
    NONE = "none"


class Offence(_Record):
    code: ShortText
    description: LongText
    category: ShortText


class Outcome(_Record):
    code: OutcomeCode
    decided_at: AwareDatetime


class OicRef(_Record):
    employee_id: ShortText
    collar_number: ShortText | None = None


class FirstHearing(_Record):
    """A charged suspect's first hearing: the email names the court and the day."""

    court: MessageText
    at: AwareDatetime


class _ChargedDetails(TypedDict, total=False):
    first_hearing: FirstHearing | None


class _DisposalDetails(TypedDict, total=False):
    disposal: MessageText | None


# The detail keys a message quotes, by milestone type (null: not given). Every other key is
# free-form: it never reaches a message.
_QUOTED_DETAILS: dict[MilestoneType, TypeAdapter[Any]] = {
    kind: TypeAdapter(with_config(ConfigDict(extra="allow"))(details))
    for kind, details in (
        (MilestoneType.SUSPECT_CHARGED, _ChargedDetails),
        (MilestoneType.OUT_OF_COURT_DISPOSAL, _DisposalDetails),
    )
}


def _quoted_details_schema(schema: dict[str, Any]) -> None:
    """The published schema says what the model checks: the quoted details, by milestone type."""
    null = {"type": "null"}
    quoted = {
        MilestoneType.SUSPECT_CHARGED: {"first_hearing": {"anyOf": [FirstHearing.model_json_schema(), null]}},
        MilestoneType.OUT_OF_COURT_DISPOSAL: {
            "disposal": {"anyOf": [TypeAdapter(MessageText).json_schema(), null]}
        },
    }
    schema["allOf"] = [
        {
            "if": {"properties": {"type": {"const": kind.value}}, "required": ["type"]},
            "then": {"properties": {"details": {"properties": properties}}},
        }
        for kind, properties in quoted.items()
    ]


class Milestone(_Record):
    """A milestone of the investigation. Its details are free-form, except those a message quotes:
    first_hearing (suspect_charged) and disposal (out_of_court_disposal), when given."""

    model_config = ConfigDict(json_schema_extra=_quoted_details_schema)

    id: ShortText
    type: MilestoneType
    at: AwareDatetime
    details: Annotated[dict[str, Any], AfterValidator(_shallow)] = Field(default_factory=dict)

    @field_validator("details")
    @classmethod
    def _quoted_details(cls, details: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # The error names the key (details.first_hearing.court); the details stay the dict as received.
        kind = info.data.get("type")  # absent when the type itself was refused
        adapter = _QUOTED_DETAILS.get(kind) if isinstance(kind, MilestoneType) else None
        if adapter is not None:
            adapter.validate_python(details)
        return details


class PersonName(_Record):
    title: ShortText | None = None
    forename: ShortText | None = None
    surname: ShortText | None = None


class Contact(_Record):
    email: ShortText | None = None
    mobile: ShortText | None = None


class Preferences(_Record):
    channel: Channel = Channel.EMAIL
    frequency_days: Annotated[StrictInt, Field(ge=1, le=365)] = 28
    language: Annotated[str, StringConstraints(min_length=2, max_length=10, strict=True)] = "en"
    opted_out: StrictBool = False


class SafeContact(_Record):
    sms: StrictBool = True
    email: StrictBool = True


class Guardian(_Record):
    """A guardian's contact block: the same shape as a victim's contact."""

    name: PersonName | None = None
    email: ShortText | None = None
    mobile: ShortText | None = None


class Victim(_Record):
    person_id: ShortText
    name: PersonName | None = None
    date_of_birth: IsoDate | None = None
    contact: Contact = Field(default_factory=Contact)
    preferences: Preferences = Field(default_factory=Preferences)
    safe_contact: SafeContact = Field(default_factory=SafeContact)
    enhanced_rights: list[ShortText] = Field(default_factory=list)
    guardian: Guardian | None = None


# A record a feed reader passed over unread, too large to hold (shared/adapters/http_feed.py): the
# reader yields this in its place, so that ingest quarantines it with unread_reason's reason and the
# cursor moves on past it. It carries sizes and the feed's position, never any of the record.
UNREAD_RECORD = "$unread_record"


def unread_record(position: str, page_bytes: int, limit_bytes: int) -> dict[str, Any]:
    """What stands for a record passed over unread: where it is in the feed and how large its page was."""
    return {UNREAD_RECORD: {"position": position, "page_bytes": page_bytes, "limit_bytes": limit_bytes}}


def unread_reason(data: Any) -> str | None:
    """Why a parsed feed line is refused when it is what stands for a record passed over unread
    (ingest's check, before the models: a model-level validator would slow every record's parse)."""
    if not (isinstance(data, dict) and UNREAD_RECORD in data):
        return None
    unread = data[UNREAD_RECORD] if isinstance(data[UNREAD_RECORD], dict) else {}
    return (
        f"record larger than {unread.get('limit_bytes')} bytes at position "
        f"{unread.get('position')!r} (its page: {unread.get('page_bytes')} bytes), "
        "passed over unread by the feed reader"
    )


class NicheOccurrence(_Record):
    """A Niche RMS occurrence: the whole current state of one crime."""

    schema_: Literal["niche.occurrence/1"] = Field(alias="schema")
    occurrence_id: ShortText
    crime_reference: ShortText
    modified_at: AwareDatetime
    recorded_at: AwareDatetime
    incident_numbers: list[ShortText] = Field(default_factory=list, max_length=100)
    offence: Offence
    flags: list[Flag] = Field(default_factory=list)
    status: CaseStatus
    outcome: Outcome | None = None
    oic: OicRef | None = None
    milestones: list[Milestone] = Field(default_factory=list, max_length=1000)
    victims: list[Victim] = Field(default_factory=list, max_length=50)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Attendance(_Record):
    scheduled_for: AwareDatetime | None = None
    attended_at: AwareDatetime | None = None


class Caller(_Record):
    person_id: ShortText
    name: PersonName | None = None
    contact: Contact = Field(default_factory=Contact)
    consent_to_updates: StrictBool = False


class StormIncident(_Record):
    """A STORM command-and-control incident."""

    schema_: Literal["storm.incident/1"] = Field(alias="schema")
    incident_number: ShortText
    modified_at: AwareDatetime
    opened_at: AwareDatetime
    status: ShortText
    opening_category: ShortText | None = None
    closing_category: ShortText | None = None
    crime_reference: ShortText | None = None
    attendance: Attendance | None = None
    caller: Caller | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


FeedRecord = NicheOccurrence | StormIncident

FEED_MODELS: dict[str, type[NicheOccurrence] | type[StormIncident]] = {
    "niche": NicheOccurrence,
    "storm": StormIncident,
}


def accepts(feed: str, raw: bytes | str) -> bool:
    """Whether the feed's contract accepts this line as it stands."""
    try:
        FEED_MODELS[feed].model_validate_json(raw)
    except (ValueError, RecursionError):  # pydantic's ValidationError is a ValueError
        return False
    return True
