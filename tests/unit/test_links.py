"""Personal links (journey-rules.md §13): their shape, their length in a message, and when they open.

The rule, stated here on its own: a link is the force's page address, a slash and 11 letters and
digits drawn at random (at least 64 bits), at most 40 characters with https://; it opens its page
while the case is open and for ``page.days_after_finalised`` days after it is finalised, never once
revoked, and never when the journey it opens is gone.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.repositories import random_link_id
from shared.domain.journey import Duty, Journey
from shared.domain.links import (
    LINK_ALPHABET,
    Link,
    LinkState,
    is_link_id,
    link_state,
    link_url,
    unsubscribe_headers,
)
from shared.domain.policy import LINK_ID_LENGTH, SMS_LINK_MAX, Policy

POLICY = Policy()
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_an_id_has_at_least_64_bits_and_a_link_fits_the_sms_budget() -> None:
    assert LINK_ID_LENGTH * math.log2(len(LINK_ALPHABET)) >= 64
    assert len(set(LINK_ALPHABET)) == len(LINK_ALPHABET) == 62
    url = link_url(POLICY, random_link_id())
    assert url.startswith("https://") and len(url) <= SMS_LINK_MAX
    # The longest address the policy accepts still makes a link of at most 40 characters.
    longest = "https://" + "a" * (SMS_LINK_MAX - len("https://") - 1 - LINK_ID_LENGTH)
    assert len(link_url(Policy.model_validate({"force": {"link_base_url": longest}}), "x" * 11)) == 40


def test_ids_are_drawn_at_random_from_the_whole_alphabet() -> None:
    drawn = [random_link_id() for _ in range(20_000)]
    assert len(set(drawn)) == len(drawn)  # 20,000 draws of 65 bits: a repeat would mean a broken source
    assert all(is_link_id(i) for i in drawn)
    counts = Counter(ch for i in drawn for ch in i)
    assert set(counts) == set(LINK_ALPHABET)
    expected = len(drawn) * LINK_ID_LENGTH / len(LINK_ALPHABET)  # about 3,548 each
    assert all(abs(n - expected) < 0.15 * expected for n in counts.values()), counts.most_common(3)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Ab3dE6gH9j",
        "Ab3dE6gH9jKL",
        "Ab3dE6gH9j-",
        "Ab3dE6gH9j_",
        "../../etc/p",
        "Ab3dE6gH9jK\n",
        "Ab3dE6gH9jé",
    ],
)
def test_only_eleven_letters_and_digits_are_a_link_id(text: str) -> None:
    assert not is_link_id(text)
    assert is_link_id("Ab3dE6gH9jK")


def _journey(status: str | None = None, closed_at: datetime | None = None) -> Journey:
    duties = {
        "ack": Duty(key="ack", template="acknowledgement", event_at=NOW - timedelta(days=40), change_id="c1")
    }
    if closed_at is not None:
        duties["outcome:18"] = Duty(
            key="outcome:18", template="case_closed", event_at=closed_at, change_id="c2"
        )
    return Journey(
        crime_reference="HU/1/26", person_id="P-1", role="victim", case_status=status, duties=duties
    )


LINK = Link("Ab3dE6gH9jK", "HU/1/26", "P-1", NOW - timedelta(days=40))


def test_a_link_opens_while_the_case_is_open_and_for_the_policy_days_after_it_is_finalised() -> None:
    days = POLICY.page.days_after_finalised
    assert link_state(LINK, _journey("under_investigation"), POLICY, NOW) is LinkState.OPEN
    closed = NOW - timedelta(days=days)
    assert link_state(LINK, _journey("finalised", closed), POLICY, NOW) is LinkState.OPEN
    assert (
        link_state(LINK, _journey("finalised", closed - timedelta(minutes=1)), POLICY, NOW)
        is LinkState.EXPIRED
    )
    shorter = Policy.model_validate({"page": {"days_after_finalised": 0}})
    assert (
        link_state(LINK, _journey("finalised", NOW - timedelta(seconds=1)), shorter, NOW) is LinkState.EXPIRED
    )


def test_a_revoked_link_or_one_whose_journey_is_gone_opens_nothing() -> None:
    revoked = Link(
        LINK.link_id, LINK.crime_reference, LINK.person_id, LINK.created_at, NOW - timedelta(hours=1)
    )
    assert link_state(revoked, _journey("under_investigation"), POLICY, NOW) is LinkState.REVOKED
    assert link_state(LINK, None, POLICY, NOW) is LinkState.EXPIRED


def test_the_unsubscribe_headers_point_at_the_link_for_one_click() -> None:
    url = link_url(POLICY, "Ab3dE6gH9jK")
    assert unsubscribe_headers(url) == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


@pytest.mark.parametrize(
    "facts",
    [
        {"flags": ["domestic_abuse"]},
        {"flags": ["sexual_offence"]},
        {"incident_categories": ["Domestic Incident"]},
    ],
)
def test_a_link_opens_nothing_once_the_crime_is_excluded_by_safeguarding(facts: dict[str, list[str]]) -> None:
    # Sent before the flag arrived: the page is automated contact too, and stops with the messages.
    journey = _journey("under_investigation").model_copy(update=facts)
    assert link_state(LINK, journey, POLICY, NOW) is LinkState.EXCLUDED
