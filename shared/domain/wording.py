"""What a message says, worked out before any template is opened (journey-rules.md §5, §6, §7).

The templates (``shared/adapters/templates.py`` loads them) only choose words;
everything they say about the person is worked out here, once: who the
message is for (the victim, the guardian of a victim under 18, or a STORM
caller), how the officer is named, the days and dates in words, the outcome in
plain words, and whether the Victims' Right to Review applies. Templates only
choose words. An update the renderer cannot read (an unreadable hearing date,
say) is left out of the sentence rather than filled with a placeholder.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.contracts.messages import Officer
from shared.domain.journey import Duty, Journey, has_enhanced_rights, is_under_age, template_for
from shared.domain.people import Name
from shared.domain.policy import Policy

_LONDON = ZoneInfo("Europe/London")

Audience = Literal["victim", "guardian", "caller"]

# --- SMS length ------------------------------------------------------------------------

# GSM 03.38 basic character set and its extension table (each extension character costs two).
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")

# The SMS segment budget of each template: the one place it is set. A single update fits
# one segment (160 GSM-7 characters) with the longest realistic values (an 18-character
# reference, a 9-character collar number, a 40-character personal link). None means the
# policy's ``timing.sms_max_segments``: several updates in one message; an outcome, which
# journey-rules.md §6 wants in plain words on every channel; a visit, which journey-rules.md §7 wants with
# its day, date and time ("Wednesday 30 September at 12:45pm" is 33 characters alone); and a
# release under investigation, which needs "while we investigate" to say the case is still
# open. Anything carrying the Victims' Right to Review has the policy's maximum too
# (``sms_budget``). With realistic values all but outcomes and reviews fit one segment.
SMS_SEGMENT_BUDGET: dict[str, int | None] = {
    "acknowledgement": 1,
    "officer_changed": 1,
    "suspect_arrested": 1,
    "suspect_interviewed": 1,
    "suspect_bailed": 1,
    "bail_conditions_changed": 1,
    "bail_cancelled": 1,
    "suspect_released_under_investigation": None,
    "suspect_released_no_further_action": None,
    "suspect_charged": 1,
    "out_of_court_disposal": 1,
    "decision_not_to_prosecute": None,
    "case_closed": None,
    "checkin": 1,
    "attendance_booked": None,
    "combined_update": None,
}


_GSM7 = frozenset(_GSM7_BASIC | _GSM7_EXTENDED)


def sms_segments(text: str) -> int:
    """How many SMS segments the text takes (GSM-7: 160/153; UCS-2: 70/67)."""
    if is_gsm7(text):
        # An extended character (an escape and itself) takes two septets.
        units = len(text) + sum(text.count(ch) for ch in _GSM7_EXTENDED)
        single, part = 160, 153
    else:
        # A character outside the Basic Multilingual Plane takes two UCS-2 units (a surrogate pair).
        units = len(text.encode("utf-16-le", "surrogatepass")) // 2
        single, part = 70, 67
    return 1 if units <= single else math.ceil(units / part)


def is_gsm7(text: str) -> bool:
    """Whether every character is in the GSM-7 alphabet (otherwise the SMS goes as UCS-2)."""
    return _GSM7.issuperset(text)


def sms_budget(duties: list[Duty], policy: Policy) -> int:
    """The most segments an SMS carrying these duties may take (``SMS_SEGMENT_BUDGET``)."""
    most = policy.timing.sms_max_segments
    if any(_review_applies(duty, policy) for duty in duties):
        return most
    budget = SMS_SEGMENT_BUDGET.get(template_for(duties))
    return most if budget is None else min(budget, most)


# Typographic characters a template or a record may carry, as their GSM-7 equivalents: one
# curly quote would otherwise send the whole SMS as UCS-2 (70 characters a segment).
_TO_GSM7 = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "–": "-",
        "—": "-",
        "‐": "-",
        "‑": "-",
        "…": "...",
        "\u00a0": " ",
    }
)

# --- Days, dates and times ------------------------------------------------------------------


def _local(value: str | datetime | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(_LONDON) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _clock(local: datetime) -> str:
    """GOV.UK style: 9am, 3:45pm, midday, midnight."""
    if (local.hour, local.minute) == (12, 0):
        return "midday"
    if (local.hour, local.minute) == (0, 0):
        return "midnight"
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    return f"{hour}{minutes}{'am' if local.hour < 12 else 'pm'}"


def day_and_date(value: str | datetime | None, year: bool = False) -> str | None:
    """'Tuesday 6 October' (with the year: 'Tuesday 6 October 2026'), Europe/London; None if unreadable."""
    local = _local(value)
    if local is None:
        return None
    return f"{local:%A} {local.day} {local:%B}" + (f" {local.year}" if year else "")


def day_date_and_time(value: str | datetime | None) -> str | None:
    """'Tuesday 6 October at 3:45pm' (journey-rules.md §7: a time always comes with its day and date)."""
    local = _local(value)
    return f"{day_and_date(local)} at {_clock(local)}" if local is not None else None


# --- Who is written to, and about whom ------------------------------------------------------


def audience(journey: Journey, policy: Policy) -> Audience:
    """The reader: a STORM caller, the guardian of a victim under 18, or the victim."""
    if journey.role == "caller":
        return "caller"
    victim = journey.victim
    guardian = victim.guardian if victim is not None else None
    if guardian is not None and (guardian.email or guardian.mobile) and is_under_age(journey, policy):
        return "guardian"
    return "victim"


def _clean(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _greeting_name(name: Name | None) -> str | None:
    """'Ms Smith', 'Alex Smith' or 'Alex'; None when there is no name to use."""
    if name is None:
        return None
    title, forename, surname = _clean(name.title), _clean(name.forename), _clean(name.surname)
    if surname:
        return f"{title or forename} {surname}".strip()
    return forename or None


def _reader_name(journey: Journey, reader: Audience) -> Name | None:
    if reader == "caller":
        return journey.caller.name if journey.caller else None
    victim = journey.victim
    if victim is None:
        return None
    if reader == "guardian":
        return victim.guardian.name if victim.guardian else None
    return victim.name


# --- The officer, named once ------------------------------------------------------------------

_RANKS = {
    "police constable": "PC",
    "constable": "PC",
    "detective constable": "DC",
    "trainee detective constable": "TDC",
    "police sergeant": "PS",
    "sergeant": "PS",
    "detective sergeant": "DS",
    "police inspector": "Inspector",
    "inspector": "Inspector",
    "detective inspector": "DI",
    "chief inspector": "Chief Inspector",
    "detective chief inspector": "DCI",
    "police community support officer": "PCSO",
    "special constable": "SC",
}
_ABBREVIATIONS = {short.casefold(): short for short in _RANKS.values()} | {
    "sgt": "PS",
    "insp": "Inspector",
    "det": "DC",
    "tdc": "TDC",
}
_RANK_WORDS = sorted({*_RANKS, *_ABBREVIATIONS}, key=len, reverse=True)
_LEADING_RANK = re.compile(r"^(?:" + "|".join(re.escape(w) for w in _RANK_WORDS) + r")\b\.?\s*", re.I)
_COLLAR = re.compile(r"^(?:(?P<prefix>[A-Za-z]{1,6})\.?\s*)?(?P<number>\d[0-9A-Za-z]*)$")
_COLLAR_IN_NAME = re.compile(
    r"\(?\b(?:(?P<prefix>" + "|".join(re.escape(w) for w in _ABBREVIATIONS) + r")\.?\s*)?"
    r"(?P<number>\d{2,}[A-Za-z]{0,2})\b\)?",
    re.I,
)


@dataclass(frozen=True)
class OfficerNames:
    """How a message names the officer in charge, or the team standing in for one."""

    full: str  # 'PC 1234 Jordan Lee', or the team: 'your local policing team'
    ask_for: str | None  # what to ask for on 101 in an SMS: 'PC 1234' (never a name); None: just call
    email: str | None
    team: bool


def officer_names(officer: Officer | None, policy: Policy) -> OfficerNames:
    """Name the officer once, cleanly, whatever mix of rank, collar number and display name the
    directory holds ('Police Constable' or 'PC'; 'PC 1234' or '1234'; 'PC 1234 Jordan Lee' or
    'Jordan Lee (PC 1234)' as the display name): 'PC 1234 Jordan Lee'."""
    if officer is None or officer.generic:
        return OfficerNames(policy.force.team_contact_name, None, None, True)
    rank = _clean(officer.rank)
    short = _RANKS.get(rank.casefold()) or _ABBREVIATIONS.get(rank.casefold()) or rank or None
    number: str | None = None
    collar = _clean(officer.collar_number)
    if collar:
        match = _COLLAR.match(collar)
        if match:
            number = match["number"]
            prefix = match["prefix"]
            if prefix and prefix.casefold() in _ABBREVIATIONS:  # the rank as the collar number gives it
                short = _ABBREVIATIONS[prefix.casefold()]
        else:
            number = collar
    name = _clean(officer.display_name)
    found = _COLLAR_IN_NAME.search(name)
    if found:  # a collar number in the display name: the directory's own field wins if both are there
        number = number or found["number"]
        if found["prefix"] and not short:
            short = _ABBREVIATIONS[found["prefix"].casefold()]
        name = _clean(name[: found.start()] + " " + name[found.end() :])
    if number is not None:
        name = _clean(re.sub(r"\(?\b" + re.escape(number) + r"\b\)?", " ", name))
    while True:  # the rank at the front of the display name, as often as it is there
        leading = _LEADING_RANK.match(name)
        if leading:
            word = leading.group(0).strip(" .").casefold()
            short = short or _RANKS.get(word) or _ABBREVIATIONS.get(word)
        stripped = _LEADING_RANK.sub("", name)
        if rank:
            stripped = re.sub(r"^" + re.escape(rank) + r"\b\.?\s*", "", stripped, flags=re.I)
        if stripped == name:
            break
        name = stripped
    name = name.strip(" ,;:-()")
    if number and not short:  # no rank to put before the number: 'Jordan Lee (collar number 1234)'
        full = f"{name} (collar number {number})" if name else f"officer {number}"
    else:
        full = " ".join(part for part in (short, number, name) if part)
    full = full or policy.force.team_contact_name
    ask_for = f"{short or 'officer'} {number}" if number else None
    return OfficerNames(full, ask_for, _clean(officer.email) or None, False)


# Out-of-court disposals an email may name. Niche's disposal detail is free text, which could
# hold a suspect's name or the offence (journey-rules.md §5), so only a known kind of disposal is
# repeated; anything else is left out. Cannabis and khat warnings would name the offence.
_DISPOSALS = frozenset(
    {
        "community resolution",
        "caution",
        "simple caution",
        "adult caution",
        "conditional caution",
        "youth caution",
        "youth conditional caution",
        "penalty notice",
        "penalty notice for disorder",
        "fixed penalty notice",
        "restorative justice",
        "diversion",
    }
)


def _disposal(text: str | None) -> str | None:
    words = _clean(text)
    return words if words.casefold() in _DISPOSALS else None


# --- Outcomes and the right to review ---------------------------------------------------------------


# Each Home Office outcome code's sentence: one for every reader, or one per reader.
OutcomeWords = Mapping[str, str | Mapping[str, str]]


def outcome_sentence(code: str, reader: Audience, outcome_words: OutcomeWords) -> str | None:
    """The outcome in plain words for this reader (journey-rules.md §6), or None for an unknown code."""
    words = outcome_words.get(code)
    if isinstance(words, Mapping):
        return words.get(reader) or words["victim"]
    return words


def _review_applies(duty: Duty, policy: Policy) -> bool:
    return (
        duty.details.get("outcome") in policy.right_to_review_outcomes
        or duty.details.get("milestone", duty.template) in policy.right_to_review_milestones
    )


# --- Printable text ----------------------------------------------------------------------------------

# ASCII control characters: whitespace ones become a space, the others go (as in _printable).
_ASCII_CONTROLS = {code: (" " if chr(code).isspace() else None) for code in [*range(0x20), 0x7F]}


def _printable(text: str) -> str:
    """No control or formatting characters from data in a message (they garble or hide text)."""
    if text.isascii():  # the common case, without a per-character Unicode lookup
        return text.translate(_ASCII_CONTROLS)
    return "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
    )


@dataclass(frozen=True)
class RenderedSms:
    text: str
    segments: int
    language: str
    budget: int = 1  # the segments this message may take (sms_budget)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    language: str


def choose_language(journey: Journey, policy: Policy, available: Container[str]) -> tuple[str, bool]:
    """The template language (of those ``available``) and whether the preferred one had to fall back."""
    wanted = journey.victim.preferences.language if journey.victim else policy.default_language
    if wanted in policy.languages and wanted in available:
        return wanted, False
    return policy.default_language, wanted != policy.default_language


# --- The template context ------------------------------------------------------------------------


def _update(duty: Duty, reader: Audience, policy: Policy, outcome_words: OutcomeWords) -> dict[str, Any]:
    details = duty.details
    code = details.get("outcome")
    outcome = outcome_sentence(code, reader, outcome_words) if code else None
    court = _clean(details.get("court")) or None
    return {
        "template": duty.template,
        "outcome": outcome,
        "disposal": _disposal(details.get("disposal")),
        "court": court,
        "hearing": day_and_date(details.get("hearing_at"), year=True) if court else None,
        "appointment": day_date_and_time(details.get("appointment")),
        "moved_from": day_date_and_time(details.get("moved_from")),
        "first_officer": details.get("first_officer") == "yes",
        "review": _review_applies(duty, policy),
    }


def message_context(
    journey: Journey,
    duties: list[Duty],
    policy: Policy,
    language: str,
    link: str,
    outcome_words: OutcomeWords,
) -> dict[str, Any]:
    """Everything the templates of a message read, for its reader."""
    reader = audience(journey, policy)
    victim = journey.victim
    child = _clean(victim.name.forename) if reader == "guardian" and victim and victim.name else ""
    if reader == "caller":
        incident: str | None = journey.crime_reference
        crime: str | None = journey.linked_crime
    else:
        incident, crime = None, journey.crime_reference
    frequency = victim.preferences.frequency_days if victim else policy.timing.default_frequency_days
    deadlines = policy.deadlines
    enhanced = reader != "caller" and has_enhanced_rights(journey, policy)
    sooner = enhanced and deadlines.enhanced_working_days < deadlines.working_days
    # Updates in the order they happened (a stable sort keeps the feed's order for ties).
    ordered = sorted(duties, key=lambda duty: duty.event_at)
    updates = [_update(duty, reader, policy, outcome_words) for duty in ordered]
    return {
        "audience": reader,
        "force": policy.force.model_dump(),
        "reference": incident or crime,  # what the reader quotes: the incident number for a call
        "crime_reference": crime,
        "incident_number": incident,
        "officer": officer_names(journey.officer, policy),
        "updates": updates,
        "right_to_review": any(u["review"] for u in updates),
        "review_months": policy.right_to_review_months,
        "greeting_name": _greeting_name(_reader_name(journey, reader)),
        "child": child,
        "enhanced": sooner,  # enhanced rights that bring the news sooner
        "news_days": deadlines.enhanced_working_days if enhanced else deadlines.working_days,
        "checkin_days": frequency,
        "link": link,  # the recipient's personal link (journey-rules.md §13)
        "language": language,
    }


def sms_message(
    render: Callable[[dict[str, Any]], str],
    context: dict[str, Any],
    duties: list[Duty],
    policy: Policy,
    language: str,
) -> RenderedSms:
    """The SMS from its template (``render`` a context to text): neutral words, no offence, no names,
    no addresses (journey-rules.md §5), GSM-7 only, within its segment budget where it can be."""
    context = context | {"greeting_name": None, "child": ""}  # an SMS never names anyone
    budget = sms_budget(duties, policy)
    text = " ".join(_printable(render(context)).translate(_TO_GSM7).split())
    officer: OfficerNames = context["officer"]
    if sms_segments(text) > budget:
        # Over its budget (several updates and a closure in one message): no "ask for" (the email
        # gives whom), so 101 once, in the review line when there is one. Every update is named.
        shorter = context | {"officer": replace(officer, ask_for=None)}
        text = " ".join(_printable(render(shorter)).translate(_TO_GSM7).split())
    return RenderedSms(text, sms_segments(text), language, budget)


def email_parts(subject: str, body: str) -> tuple[str, list[str]]:
    """An email's subject on one line and its body as paragraphs (split on blank lines)."""
    paragraphs = [" ".join(_printable(block).split()) for block in body.split("\n\n") if block.strip()]
    return " ".join(_printable(subject).split()), paragraphs


def sentence(text: str) -> str:
    """The first letter in capitals, the rest as written ('your local policing team' -> 'Your …')."""
    return text[:1].upper() + text[1:]
