"""Message rendering: content rules, SMS length, escaping, language (RULES.md §2, §6)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest

from shared.contracts.feeds import Victim
from shared.contracts.messages import Officer
from shared.domain.journey import Duty, Journey
from shared.domain.policy import Policy
from shared.domain.render import (
    TEMPLATE_ROOT,
    choose_language,
    outcome_sentence,
    render_email,
    render_sms,
    sms_segments,
)

POLICY = Policy()
TEMPLATES = sorted({p.name.split(".")[0] for p in (TEMPLATE_ROOT / "en" / "updates").glob("*.sms.j2")})
LONGEST_DETAILS = {
    "milestone": "suspect_released_under_investigation",
    "court": "Kingston upon Hull Combined Court Centre and Magistrates' Court",
    "hearing_at": "2026-12-30T09:45:00+00:00",
    "appointment": "2026-11-25T12:45:00+00:00",
    "outcome": "13",
    "first_officer": "no",
    "disposal": "conditional caution with rehabilitative conditions",
}


def _journey(**victim: object) -> Journey:
    person = {
        "person_id": "P-1",
        "name": {"title": "Ms", "forename": "Alexandra", "surname": "Featherstonehaugh-Smythe"},
        "date_of_birth": "1990-01-01",
    } | victim
    return Journey(
        crime_reference="HU/1234567/26",
        person_id="P-1",
        role="victim",
        victim=Victim.model_validate(person),
        officer=Officer(
            employee_id="104233",
            collar_number="DC 12345",
            display_name="Christopher Montgomery-Richardson",
            rank="Detective Constable",
            email="christopher.montgomery-richardson@example.police.uk",
        ),
    )


def _duty(template: str, **details: str) -> Duty:
    return Duty(
        key=f"k:{template}",
        template=template,
        event_at=datetime(2026, 11, 20, tzinfo=UTC),
        change_id="c",
        details=details,
    )


def test_every_update_template_has_sms_and_email_wording() -> None:
    for template in TEMPLATES:
        assert (TEMPLATE_ROOT / "en" / "updates" / f"{template}.email.j2").is_file()
    expected = {
        "acknowledgement",
        "officer_changed",
        "case_closed",
        "checkin",
        "attendance_booked",
        *POLICY.notifiable_milestones,
    }
    assert set(TEMPLATES) == expected


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_sms_template_fits_in_two_segments_with_the_longest_realistic_values(template: str) -> None:
    sms = render_sms(_journey(), [_duty(template, **LONGEST_DETAILS)], POLICY)
    assert sms.segments <= POLICY.timing.sms_max_segments, f"{template}: {len(sms.text)} characters"
    assert sms.segments == sms_segments(sms.text)


def test_a_coalesced_sms_names_every_update_and_fits_two_segments_when_their_words_do() -> None:
    # A combined SMS names every update (no more "There are 3 updates on your case"). Two or
    # three milestones fit the policy's two segments; six, one of them an outcome in full
    # words, take a third rather than leave one out.
    milestones = ["suspect_arrested", "suspect_interviewed", "suspect_bailed"]
    for count in (2, 3):
        duties = [_duty(t, milestone=t) for t in milestones[:count]]
        assert render_sms(_journey(), duties, POLICY).segments <= POLICY.timing.sms_max_segments
    many = [_duty(t, **LONGEST_DETAILS) for t in TEMPLATES[:6]]
    sms = render_sms(_journey(), many, POLICY)
    assert sms.segments <= POLICY.timing.sms_max_segments + 1
    for words in ("We have recorded your report", "An officer will visit you on", "no longer on bail"):
        assert words in sms.text


def test_sms_segments_follow_gsm7_and_ucs2_limits() -> None:
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("a" * 306) == 2
    assert sms_segments("a" * 307) == 3
    assert sms_segments("€" * 80) == 1  # an extension character costs two septets
    assert sms_segments("€" * 81) == 2
    assert sms_segments("ŵ" * 70) == 1  # outside GSM-7: UCS-2
    assert sms_segments("ŵ" * 71) == 2
    assert sms_segments("ŵ" * 134) == 2
    assert sms_segments("ŵ" * 135) == 3


@pytest.mark.parametrize("template", TEMPLATES)
def test_an_sms_never_names_the_victim_the_offence_or_the_officer(template: str) -> None:
    text = render_sms(_journey(), [_duty(template, **LONGEST_DETAILS)], POLICY).text
    for forbidden in ("Alexandra", "Featherstonehaugh", "Christopher", "Assault", "Magistrates"):
        assert forbidden not in text
    assert "HU/1234567/26" in text and "101" in text and POLICY.force.preferences_url in text


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_email_gives_the_reference_the_officer_101_and_how_to_stop(template: str) -> None:
    email = render_email(_journey(), [_duty(template, **LONGEST_DETAILS)], POLICY)
    for needed in ("HU/1234567/26", "DC 12345", "101", POLICY.force.preferences_url, "Victim Support"):
        assert needed in email.text
    assert "HU/1234567/26" in email.subject


def test_the_charge_email_names_the_court_and_the_hearing_date() -> None:
    email = render_email(_journey(), [_duty("suspect_charged", **LONGEST_DETAILS)], POLICY)
    assert "Kingston upon Hull Combined Court Centre" in email.text
    assert "Wednesday 30 December 2026" in email.text


def test_hostile_values_are_escaped_in_html() -> None:
    journey = _journey(name={"title": "<script>alert(1)</script>", "surname": "O'Brien & <b>Co</b>"})
    email = render_email(journey, [_duty("acknowledgement")], POLICY)
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "<b>Co</b>" not in email.html
    assert "<script>alert(1)</script>" in email.text  # plain text is not HTML


@pytest.mark.parametrize("code", [str(n) for n in range(1, 23)])
def test_every_outcome_code_has_plain_words(code: str) -> None:
    words = outcome_sentence(code, "victim")
    assert words and "the victim" not in words.lower() and words.count(":") == 0
    email = render_email(_journey(), [_duty("case_closed", outcome=code)], POLICY)
    assert f"We can now tell you the outcome of our investigation into your case. {words}" in email.text
    assert words in render_sms(_journey(), [_duty("case_closed", outcome=code)], POLICY).text


@pytest.mark.parametrize(
    ("code", "review"), [("10", True), ("15", True), ("17", True), ("21", True), ("1", False), ("18", False)]
)
def test_right_to_review_paragraph_appears_exactly_where_police_decided_not_to_charge(
    code: str, review: bool
) -> None:
    email = render_email(_journey(), [_duty("case_closed", outcome=code)], POLICY)
    assert ("ask us to review it" in email.text) is review
    assert ("within 3 months" in email.text) is review


def test_nfa_milestone_carries_the_right_to_review() -> None:
    duty = _duty("suspect_released_no_further_action", milestone="suspect_released_no_further_action")
    assert "within 3 months" in render_email(_journey(), [duty], POLICY).text


def test_unknown_language_falls_back_to_english() -> None:
    journey = _journey(preferences={"language": "xx"})
    assert choose_language(journey, POLICY) == ("en", True)
    assert choose_language(_journey(), POLICY) == ("en", False)


def test_a_language_the_policy_allows_but_no_templates_exist_for_falls_back_to_english() -> None:
    welsh_allowed = POLICY.model_copy(update={"languages": ["en", "cy"]})
    journey = _journey(preferences={"language": "cy"})
    assert not (TEMPLATE_ROOT / "cy").exists()
    assert choose_language(journey, welsh_allowed) == ("en", True)


def test_the_ascii_fast_path_strips_exactly_what_the_unicode_rule_strips() -> None:
    from shared.domain.render import _printable

    def by_category(text: str) -> str:
        kept = (ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf"))
        return "".join(" " if ch.isspace() else ch for ch in kept)

    every_ascii = "".join(chr(code) for code in range(128))
    assert _printable(every_ascii) == by_category(every_ascii)
    mixed = every_ascii + "é\u200b\u202e\u2028\x85\xa0"  # not ASCII: the per-character rule
    assert _printable(mixed) == by_category(mixed)
