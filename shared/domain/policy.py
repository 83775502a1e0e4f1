"""The journey policy: every number and list of docs/journey-rules.md, overridable by a force.

The shipped default lives in ``policy/journey-policy.json``; the app setting
``JOURNEY_POLICY_PATH`` points at another file (read by ``shared/adapters/policy_file.py``). A malformed file fails at
start-up with one line naming the bad field and what is wrong with it: a
policy typo must never quietly switch a safeguarding rule off, or leave every
journey event to dead-letter later. So every value is checked against what the
code reads it as: flags and milestones against the feed contract's enums,
outcome codes against the Home Office list, languages against the template
folders (when the file is read: ``shared/adapters/policy_file.py``), the time zone against the IANA database, URLs and mailboxes by syntax,
and STORM categories (safeguarding ones, and those of a victim phoning for an update) against
the force's own vocabulary. The model is strict:
a number is not a string, and no list holds a value twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from enum import StrEnum
from functools import lru_cache
from string import Formatter
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared.contracts.feeds import OUTCOME_CODE_PATTERN, Flag, MilestoneType

REFERENCE_LANGUAGE = "en"  # the templates every other language must have as well

NOTIFIABLE_MILESTONES = [
    MilestoneType.SUSPECT_ARRESTED,
    MilestoneType.SUSPECT_INTERVIEWED,
    MilestoneType.SUSPECT_BAILED,
    MilestoneType.BAIL_CONDITIONS_CHANGED,
    MilestoneType.BAIL_CANCELLED,
    MilestoneType.SUSPECT_RELEASED_UNDER_INVESTIGATION,
    MilestoneType.SUSPECT_RELEASED_NO_FURTHER_ACTION,
    MilestoneType.SUSPECT_CHARGED,
    MilestoneType.OUT_OF_COURT_DISPOSAL,
    MilestoneType.DECISION_NOT_TO_PROSECUTE,
]


# --- checks: each raises ValueError with what is wrong; the caller names the field ------------


def _item_error(index: int, reason: str, value: Any) -> ValidationError:
    """An error located at one item of the list being validated (pydantic prefixes the field)."""
    error = PydanticCustomError("policy", "{reason}", {"reason": reason})
    return ValidationError.from_exception_data(
        "policy", [InitErrorDetails(type=error, loc=(index,), input=value)]
    )


def _unique(key: Callable[[Any], Hashable] = lambda value: value) -> AfterValidator:
    """No value twice (as ``key`` compares them); the error names the second one."""

    def check(values: list[Any]) -> list[Any]:
        seen: dict[Hashable, Any] = {}
        for index, value in enumerate(values):
            if (k := key(value)) in seen:
                first = str(seen[k])
                also = "" if first == str(value) else f" (as {first!r})"
                raise _item_error(index, f"{str(value)!r} is listed twice{also}", value)
            seen[k] = value
        return values

    return AfterValidator(check)


def _member_of(enum: type[StrEnum], what: str) -> BeforeValidator:
    """A clearer refusal than pydantic's for a misspelt enum value: it repeats the value."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and value not in {member.value for member in enum}:
            raise ValueError(f"{value!r} is not {what} (expected one of {', '.join(enum)})")
        return value

    return BeforeValidator(check)


def _outcome_code(value: str) -> str:
    if not re.fullmatch(OUTCOME_CODE_PATTERN, value):
        raise ValueError(f'{value!r} is not a Home Office outcome code (expected "1" to "22")')
    return value


def _phone_number(value: str) -> str:
    if not re.fullmatch(r"[0-9]( ?[0-9]){2,14}", value):
        raise ValueError(f"{value!r} is not a short phone number (3 to 15 digits, single spaces between)")
    return value


def _not_contact(milestone: MilestoneType) -> MilestoneType:
    if milestone == MilestoneType.VICTIM_CONTACTED:
        raise ValueError("'victim_contacted' is not notifiable: it records contact that was made")
    return milestone


def _https_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        usable = parts.scheme == "https" and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a malformed host or port
        usable = False
    if not usable or re.search(r"[\s\x00-\x1f\x7f]", value):
        raise ValueError(f"{value!r} is not an absolute https URL with a host")
    return value


# Room a link has in an SMS: a single update fits one segment (160 GSM-7 characters) with a link
# this long (the SMS budgets of shared/domain/wording.py are set against it). A personal link is
# the page's address, a slash and an id of LINK_ID_LENGTH letters and digits (journey-rules.md §13).
SMS_LINK_MAX = 40
LINK_ID_LENGTH = 11


def _link_base(value: str) -> str:
    _https_url(value)
    parts = urlsplit(value)
    if parts.path not in ("",) or parts.query or parts.fragment or value.endswith("/"):
        raise ValueError(f"{value!r} must be just https:// and a host (each link adds /<id>)")
    longest = len(value) + 1 + LINK_ID_LENGTH
    if longest > SMS_LINK_MAX:
        raise ValueError(
            f"{value!r} makes links of {longest} characters: at most {SMS_LINK_MAX} (with https://), "
            "since every SMS carries one and a single update must fit one segment"
        )
    return value


def _record_url(value: str) -> str:
    """An https URL whose one placeholder is {crime_reference} (it is filled in with str.format)."""
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in Formatter().parse(value)
            if name is not None
        ]
    except ValueError:
        fields = [("", "", None)]  # a lone brace
    if not fields:
        raise ValueError(f"{value!r} does not contain the placeholder {{crime_reference}}")
    if any(field != ("crime_reference", "", None) for field in fields):
        raise ValueError(f"{value!r} has braces other than the placeholder {{crime_reference}}")
    try:
        _https_url(value.format(crime_reference="HU/000001/26"))
    except ValueError:
        raise ValueError(f"{value!r} is not an absolute https URL with a host") from None
    return value


def _mailbox(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email  # as addresses.py: on first use

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid email address: {exc}") from None
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (such as Europe/London)") from None
    return value


def _language(value: str) -> str:
    """A language code; that it has every template is checked where the templates are read
    (``shared/adapters/policy_file.py``)."""
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", value):
        raise ValueError(f"{value!r} is not a language code (such as en or cy)")
    return value


def _category(value: str) -> str:
    if not category_key(value):
        raise ValueError(f"{value!r} is not a category name (it has no words)")
    return value


Text = Annotated[str, StringConstraints(min_length=1, max_length=200, strict=True)]
HttpsUrl = Annotated[Text, AfterValidator(_https_url)]
LinkBase = Annotated[Text, AfterValidator(_link_base)]
Mailbox = Annotated[Text, AfterValidator(_mailbox)]
PhoneNumber = Annotated[Text, AfterValidator(_phone_number)]
# Enums are read from their text in Python too (code and tests build policies from plain strings).
FlagName = Annotated[Flag, Strict(False), _member_of(Flag, "a crime flag")]
MilestoneName = Annotated[MilestoneType, Strict(False), _member_of(MilestoneType, "a milestone type")]
OutcomeCode = Annotated[Text, AfterValidator(_outcome_code)]
Language = Annotated[Text, AfterValidator(_language)]
Category = Annotated[Text, AfterValidator(_category)]


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ForcePolicy(_Policy):
    name: Text = "Humberside Police"
    non_emergency_number: PhoneNumber = "101"
    # The victim's own page (journey-rules.md §13): each message carries this and a personal id.
    link_base_url: LinkBase = "https://vu.example.police.uk"
    team_contact_name: Text = "your local policing team"
    victim_support: Text = "Victim Support on 08 08 16 89 111"
    review_url: HttpsUrl = "https://victim-updates.example.police.uk/right-to-review"
    # Officer tasks (journey-rules.md §11): where a task goes when there is no named officer, where an
    # overdue one is sent again, and the link to the record ({crime_reference} is filled in).
    team_mailbox: Mailbox = "victim-updates-team@example.police.uk"
    supervisor_mailbox: Mailbox = "victim-updates-supervisors@example.police.uk"
    record_url: Annotated[Text, AfterValidator(_record_url)] = (
        "https://niche.example.police.uk/occurrence/{crime_reference}"
    )


class DeadlinePolicy(_Policy):
    working_days: Annotated[int, Field(ge=0, le=30)] = 5
    enhanced_working_days: Annotated[int, Field(ge=0, le=30)] = 1
    nation: Literal["england_and_wales", "scotland", "northern_ireland"] = "england_and_wales"
    timezone: Annotated[Text, AfterValidator(_time_zone)] = "Europe/London"


class SafeguardingPolicy(_Policy):
    excluded_flags: Annotated[list[FlagName], _unique()] = [
        Flag.DOMESTIC_ABUSE,
        Flag.SEXUAL_OFFENCE,
        Flag.STALKING_HARASSMENT,
        Flag.HONOUR_BASED_ABUSE,
        Flag.MODERN_SLAVERY,
        Flag.BEREAVED,
    ]
    enhanced_flags: Annotated[list[FlagName], _unique()] = [
        Flag.DOMESTIC_ABUSE,
        Flag.SEXUAL_OFFENCE,
        Flag.HATE_CRIME,
        Flag.TERRORISM,
        Flag.MODERN_SLAVERY,
        Flag.ATTEMPTED_MURDER,
        Flag.KIDNAP,
        Flag.ARSON_ENDANGER_LIFE,
        Flag.BEREAVED,
        Flag.HONOUR_BASED_ABUSE,
        Flag.PERSISTENTLY_TARGETED,
    ]
    adult_age: Annotated[int, Field(ge=1, le=25)] = 18


class TimingPolicy(_Policy):
    quiet_hours_start: Annotated[int, Field(ge=0, le=23)] = 20
    quiet_hours_end: Annotated[int, Field(ge=0, le=23)] = 8
    coalesce_minutes: Annotated[int, Field(ge=0, le=1440)] = 10
    attendance_min_notice_minutes: Annotated[int, Field(ge=0, le=1440)] = 60
    sms_max_segments: Annotated[int, Field(ge=1, le=10)] = 2
    default_frequency_days: Annotated[int, Field(ge=1, le=365)] = 28


class StormPolicy(_Policy):
    """STORM incident categories: the force's vocabulary, those that are safeguarding (journey-rules.md §7),
    and those that record a victim phoning for an update (the repeat-contact figure, §10).

    ``categories`` holds every opening and closing category the force's STORM uses; a
    safeguarding or update-request category must be one of them, so that a misspelt one fails
    here instead of never matching an incident. The update-request categories are checked even
    when left at their default, since a force that replaces the vocabulary must say which of its
    categories are update requests (or ``[]``), or its repeat-contact figure would silently be 0.
    """

    # category_key is defined further down (where it always was), hence the lambdas.
    categories: Annotated[list[Category], Field(min_length=1), _unique(lambda name: category_key(name))] = [
        "Anti-Social Behaviour",
        "Burglary",
        "Caller Requesting Update",
        "Child Protection",
        "Concern for Welfare",
        "Criminal Damage",
        "Domestic Incident",
        "Fraud",
        "Honour-Based Abuse",
        "Lost or Found Property",
        "Noise Nuisance",
        "Public Order",
        "Road Traffic Collision",
        "Robbery",
        "Sexual Offence",
        "Stalking/Harassment",
        "Suspicious Circumstances",
        "Theft",
        "Update Request",
        "Violence",
        # Closing categories.
        "ASB - no crime",
        "Crime recorded",
        "Damage only - details exchanged",
        "No crime - advice given",
        "No crime - welfare check completed",
        "Property recorded",
        "Referred to partner agency",
    ]
    safeguarding_categories: Annotated[list[Category], _unique(lambda name: category_key(name))] = [
        "Domestic Incident",
        "Sexual Offence",
        "Stalking/Harassment",
        "Child Protection",
        "Honour-Based Abuse",
    ]

    # A call into the control room asking for news of a crime: one that names a crime reference is
    # a repeat contact (shared/ops/repeat_contacts.py), the figure the service exists to bring down.
    update_request_categories: Annotated[
        list[Category], _unique(lambda name: category_key(name)), Field(validate_default=True)
    ] = [
        "Update Request",
        "Caller Requesting Update",
    ]

    @field_validator("safeguarding_categories", "update_request_categories")
    @classmethod
    def _in_the_vocabulary(cls, names: list[str], info: ValidationInfo) -> list[str]:
        if "categories" not in info.data:  # the vocabulary itself was refused: that error is the one
            return names
        vocabulary = {category_key(name): name for name in info.data["categories"]}
        for index, name in enumerate(names):
            if category_key(name) not in vocabulary:
                import difflib  # only to say what was meant: on first use

                close = difflib.get_close_matches(name, list(vocabulary.values()), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise _item_error(index, f"{name!r} is not one of storm.categories{hint}", name)
        return names

    def safeguarding_category(self, category: str | None) -> str | None:
        """The policy's name of a safeguarding category, if ``category`` is one (spelling-tolerant)."""
        if not category:
            return None
        return _names_by_key(tuple(self.safeguarding_categories)).get(category_key(category))

    def is_update_request(self, category: str | None) -> bool:
        """Whether a STORM category records a caller asking for an update (spelling-tolerant)."""
        if not category:
            return False
        return category_key(category) in _names_by_key(tuple(self.update_request_categories))


# Every journey event asks whether its incidents' categories are safeguarding ones: the keys of
# the few category names STORM sends, and of the policy's lists, are worked out once, not each time.
@lru_cache(maxsize=4096)
def category_key(category: str) -> str:
    """A STORM category compared as words: case, punctuation, "and" and "or" do not matter."""
    words = re.sub(r"[^0-9a-z]+", " ", category.casefold()).split()
    return "".join(word for word in words if word not in ("and", "or"))


@lru_cache(maxsize=64)
def _names_by_key(names: tuple[str, ...]) -> dict[str, str]:
    """Each name's key, to the first name with that key (a policy's lists have no two alike)."""
    keys: dict[str, str] = {}
    for name in names:
        keys.setdefault(category_key(name), name)
    return keys


class PagePolicy(_Policy):
    """The victim's own page (journey-rules.md §13)."""

    # A personal link works while the case is open and for this many days after it is finalised.
    days_after_finalised: Annotated[int, Field(ge=0, le=730)] = 90


class RetentionPolicy(_Policy):
    """How long personal data is kept (journey-rules.md §16)."""

    # A journey's personal data (and its crime's snapshots, links and notes) goes this many days
    # after the case is finalised: never before its page stops opening (page.days_after_finalised).
    days_after_finalised: Annotated[int, Field(ge=1, le=3650)] = 180
    # A quarantined feed record and a dead-lettered queue message go this many days after they
    # were set aside: time enough to mend and replay them, not to keep them.
    quarantine_days: Annotated[int, Field(ge=1, le=365)] = 180
    dead_letter_days: Annotated[int, Field(ge=1, le=365)] = 180


class Policy(_Policy):
    """The whole journey policy."""

    force: ForcePolicy = ForcePolicy()
    deadlines: DeadlinePolicy = DeadlinePolicy()
    safeguarding: SafeguardingPolicy = SafeguardingPolicy()
    timing: TimingPolicy = TimingPolicy()
    storm: StormPolicy = StormPolicy()
    page: PagePolicy = PagePolicy()
    retention: RetentionPolicy = RetentionPolicy()
    notifiable_milestones: Annotated[
        list[Annotated[MilestoneName, AfterValidator(_not_contact)]], _unique()
    ] = NOTIFIABLE_MILESTONES
    right_to_review_outcomes: Annotated[list[OutcomeCode], _unique()] = ["10", "15", "17", "21"]
    right_to_review_months: Annotated[int, Field(ge=1, le=24)] = 3
    right_to_review_milestones: Annotated[list[MilestoneName], _unique()] = [
        MilestoneType.SUSPECT_RELEASED_NO_FURTHER_ACTION,
        MilestoneType.DECISION_NOT_TO_PROSECUTE,
    ]
    languages: Annotated[list[Language], Field(min_length=1), _unique()] = [REFERENCE_LANGUAGE]
    default_language: Text = REFERENCE_LANGUAGE

    @field_validator("retention")
    @classmethod
    def _kept_while_the_page_opens(cls, retention: RetentionPolicy, info: ValidationInfo) -> RetentionPolicy:
        page = info.data.get("page")
        if page is not None and retention.days_after_finalised < page.days_after_finalised:
            raise ValueError(
                f"days_after_finalised ({retention.days_after_finalised}) is shorter than "
                f"page.days_after_finalised ({page.days_after_finalised}): a page would open on erased data"
            )
        return retention

    @field_validator("default_language")
    @classmethod
    def _a_listed_language(cls, language: str, info: ValidationInfo) -> str:
        languages = info.data.get("languages")
        if languages is not None and language not in languages:
            raise ValueError(f"{language!r} is not in languages ({', '.join(languages)})")
        return language


class PolicyError(ValueError):
    """The policy file is unreadable or malformed; the message is one line naming the bad field."""
