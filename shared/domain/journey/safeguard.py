"""Safeguarding first: what the service knows of a recipient, and whether and how to reach them.

The facts decisions rest on (the crime's flags and STORM categories, shared by
every recipient of the crime; the person's age, preferences and safe channels),
and ``route``: safeguarding, then consent, then the channel (journey-rules.md §3, §4, §7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from shared.contracts.feeds import NicheOccurrence
from shared.contracts.messages import CaseChange, CrimeFacts, Officer
from shared.domain.addresses import uk_mobile_e164, valid_email
from shared.domain.facts import finalised_time
from shared.domain.journey.state import Journey, apply_page_choice
from shared.domain.people import CallerFacts, VictimFacts
from shared.domain.policy import Policy

ChannelName = Literal["email", "sms"]


_PREFERRED: dict[str, list[ChannelName]] = {"both": ["email", "sms"], "email": ["email"], "sms": ["sms"]}


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
    note: str | None = None  # a task's note beside its reason (the channels that failed: "email,sms")


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
    if is_under_age(journey, policy):
        guardian = victim.guardian
        if guardian is None or not (guardian.email or guardian.mobile):
            return Route("task", "under_18_no_guardian")
    usable = usable_channels(journey, policy)
    preferred = _PREFERRED[str(prefs.channel)]
    chosen = tuple((ch, addr) for ch in preferred if (addr := usable[ch]))
    if chosen:
        return Route("send", channels=chosen)
    others = tuple((ch, addr) for ch, addr in usable.items() if ch not in preferred and addr)
    if others:
        return Route("send", channels=others[:1], fallback=True, reason=f"{preferred[0]}_unusable")
    return Route("task", "no_safe_channel")


def writes_to_guardian(journey: Journey, policy: Policy) -> bool:
    """Whether this recipient's messages go to their parent or carer (journey-rules.md §3): a
    victim under 18 whose guardian has an email address or a mobile number, of a crime that
    automated messages are allowed for (an excluded one's go to nobody)."""
    victim = journey.victim
    if journey.role != "victim" or victim is None or excluded_reason(journey, policy):
        return False
    guardian = victim.guardian
    return is_under_age(journey, policy) and guardian is not None and bool(guardian.email or guardian.mobile)


def usable_channels(journey: Journey, policy: Policy) -> dict[ChannelName, str | None]:
    """Each channel's address if it is safe and valid for this recipient now, the preference aside
    (a child's are the guardian's; a caller's have no safe-contact marks)."""
    if journey.role == "caller":
        contact = journey.caller.contact if journey.caller is not None else None
        return {
            "email": valid_email(contact.email) if contact else None,
            "sms": uk_mobile_e164(contact.mobile) if contact else None,
        }
    victim = journey.victim
    if victim is None:
        return {"email": None, "sms": None}
    email_raw, mobile_raw = victim.contact.email, victim.contact.mobile
    if is_under_age(journey, policy):
        guardian = victim.guardian
        email_raw, mobile_raw = (guardian.email, guardian.mobile) if guardian else (None, None)
    return {
        "email": valid_email(email_raw) if victim.safe_contact.email else None,
        "sms": uk_mobile_e164(mobile_raw) if victim.safe_contact.sms else None,
    }


def share_facts(journey: Journey, facts: CrimeFacts) -> None:
    """The crime's safety facts, for every recipient linked to it (journey-rules.md §7).

    Flags and status are the crime's as its latest Niche record has them (a flag
    removed there lifts its exclusion); STORM categories only accumulate, since an
    incident is a safeguarding one if it was ever opened or closed as one.
    """
    journey.flags = sorted(facts.flags)
    journey.case_status = facts.status
    journey.finalised_at = facts.finalised_at
    if facts.recorded_at is not None:
        journey.recorded_at = facts.recorded_at
    journey.incident_categories = sorted({*journey.incident_categories, *facts.categories()})
    if journey.role == "caller":
        journey.linked_crime = facts.crime_reference


def refresh_facts(
    journey: Journey, case: CaseChange, officer: Officer | None, facts: CrimeFacts | None
) -> None:
    if case.niche is not None:
        record: NicheOccurrence = case.niche
        journey.flags = [flag.value for flag in record.flags]
        journey.case_status = record.status.value
        journey.finalised_at = finalised_time(record)
        journey.recorded_at = record.recorded_at
        for victim in record.victims:
            if victim.person_id == journey.person_id:
                journey.victim = VictimFacts.model_validate(victim)  # the domain's own copy
                apply_page_choice(journey)  # what they chose on their page, unless Niche changed it since
    if case.storm is not None:
        storm = case.storm
        journey.incident_number = storm.incident_number
        if storm.caller is not None and storm.caller.person_id == journey.person_id:
            journey.caller = CallerFacts.model_validate(storm.caller)
            apply_page_choice(journey)  # stopped on their page, unless STORM's consent changed since
        own = [category for category in (storm.opening_category, storm.closing_category) if category]
        journey.incident_categories = sorted({*journey.incident_categories, *own})
        if case.linked_crime:
            journey.linked_crime = case.linked_crime
    if facts is not None:
        share_facts(journey, facts)
    if officer is not None:
        journey.officer = officer
