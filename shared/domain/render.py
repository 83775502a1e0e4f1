"""Message rendering: Jinja2 templates, plain text for SMS, HTML and text for email.

Templates live in ``shared/templates/<language>/``. Undefined values raise
(StrictUndefined) rather than print blanks; HTML is autoescaped.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from jinja2 import Environment

from shared.contracts.messages import Officer
from shared.domain.journey import Duty, Journey
from shared.domain.policy import Policy

TEMPLATE_ROOT = Path(__file__).resolve().parents[1] / "templates"
_LONDON = ZoneInfo("Europe/London")

# GSM 03.38 basic character set and its extension table (each extension character costs two).
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def sms_segments(text: str) -> int:
    """How many SMS segments the text takes (GSM-7: 160/153; UCS-2: 70/67)."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in text)
        single, part = 160, 153
    else:
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
        single, part = 70, 67
    return 1 if units <= single else math.ceil(units / part)


def _local(value: str | datetime) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(_LONDON) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _london_date(value: str | datetime) -> str:
    local = _local(value)
    return f"{local:%A} {local.day} {local:%B %Y}" if local else "a date we will confirm"


def _london_time(value: str | datetime) -> str:
    local = _local(value)
    if local is None:
        return "a time we will confirm"
    return f"{local.hour % 12 or 12}:{local:%M}{'am' if local.hour < 12 else 'pm'}"


# ASCII control characters: whitespace ones become a space, the others go (as in _printable).
_ASCII_CONTROLS = {code: (" " if chr(code).isspace() else None) for code in [*range(0x20), 0x7F]}


def _printable(text: str) -> str:
    """No control or formatting characters from data in an SMS (they garble or hide text)."""
    if text.isascii():  # the common case, without a per-character Unicode lookup
        return text.translate(_ASCII_CONTROLS)
    return "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
    )


@lru_cache(maxsize=8)
def _environment(language: str, html: bool) -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape  # on first use

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_ROOT / language)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False) if html else False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["london_date"] = _london_date
    env.filters["london_time"] = _london_time
    return env


@lru_cache(maxsize=8)
def _outcome_words(language: str) -> dict[str, str]:
    words: dict[str, str] = json.loads(
        (TEMPLATE_ROOT / language / "outcomes.json").read_text(encoding="utf-8")
    )
    return words


@dataclass(frozen=True)
class RenderedSms:
    text: str
    segments: int
    language: str


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    language: str


def choose_language(journey: Journey, policy: Policy) -> tuple[str, bool]:
    """The template language and whether the preferred one had to fall back."""
    wanted = journey.victim.preferences.language if journey.victim else policy.default_language
    if wanted in policy.languages and (TEMPLATE_ROOT / wanted).is_dir():
        return wanted, False
    return policy.default_language, wanted != policy.default_language


def _officer_view(officer: Officer | None, policy: Policy) -> dict[str, Any]:
    if officer is None or officer.generic:
        team = policy.force.team_contact_name
        return {"sms_name": team, "email_name": team, "email": None}
    named = " ".join(part for part in (officer.rank, officer.display_name) if part)
    return {
        "sms_name": officer.collar_number or "your officer",
        "email_name": f"{named} ({officer.collar_number})" if officer.collar_number else named,
        "email": officer.email,
    }


def _context(journey: Journey, duties: list[Duty], policy: Policy, language: str) -> dict[str, Any]:
    outcomes = _outcome_words(language)
    updates = []
    review = False
    for duty in duties:
        outcome = duty.details.get("outcome")
        updates.append(
            {
                "template": duty.template,
                "details": dict(duty.details),
                "outcome_words": outcomes.get(outcome, "the investigation has ended") if outcome else "",
            }
        )
        if outcome in policy.right_to_review_outcomes:
            review = True
        if duty.details.get("milestone") in policy.right_to_review_milestones:
            review = True
    greeting = None
    victim = journey.victim
    if victim is not None and victim.name is not None and victim.name.surname:
        greeting = " ".join(p for p in (victim.name.title or victim.name.forename, victim.name.surname) if p)
    return {
        "force": policy.force.model_dump(),
        "crime_reference": journey.crime_reference,
        "officer": _officer_view(journey.officer, policy),
        "updates": updates,
        "right_to_review": review,
        "review_months": policy.right_to_review_months,
        "greeting_name": greeting,
        "language": language,
    }


def render_sms(journey: Journey, duties: list[Duty], policy: Policy, language: str = "en") -> RenderedSms:
    """The SMS text: neutral words, no offence, no names, no addresses."""
    context = _context(journey, duties, policy, language)
    context["greeting_name"] = None  # an SMS never names the victim
    text = " ".join(
        _printable(_environment(language, False).get_template("sms.txt.j2").render(context)).split()
    )
    return RenderedSms(text, sms_segments(text), language)


def render_email(journey: Journey, duties: list[Duty], policy: Policy, language: str = "en") -> RenderedEmail:
    """The email: a subject, a plain-text body and the same body as escaped HTML."""
    context = _context(journey, duties, policy, language)
    plain = _environment(language, False)
    subject = " ".join(_printable(plain.get_template("email_subject.txt.j2").render(context)).split())
    body = plain.get_template("email_body.txt.j2").render(context)
    paragraphs = [" ".join(_printable(block).split()) for block in body.split("\n\n") if block.strip()]
    html = (
        _environment(language, True)
        .get_template("email.html.j2")
        .render({"paragraphs": paragraphs, "subject": subject, "language": language})
    )
    return RenderedEmail(subject, "\n\n".join(paragraphs) + "\n", html, language)
