"""Hostile contact details and quoted free text: refused as they are, never reshaped into something else.

A mobile number with letters is not a mobile number: libphonenumber reads letters as a
keypad's digits, so "07700 900 ABC" would become +447700900222, a different (and real-looking)
number, and a stranger would get the victim's update. Free text a message quotes (a court's
name, an out-of-court disposal) is bounded by the feed contract, so a record cannot turn an
email into 100 KB of someone else's text.

What a local run makes of such a record (the email instead of the SMS, the record quarantined,
a court's name at the limit in the email) is in ``tests/e2e/test_hostile_contact_through_the_host.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.contracts.feeds import NicheOccurrence
from shared.contracts.schemas import SCHEMA_DIR
from shared.domain.addresses import uk_mobile_e164
from tests.builders import milestone, occurrence

# Ways of writing the same UK mobile that must keep working.
WRITTEN = (
    "07700 900123",
    "07700900123",
    "+447700900123",
    "+44 7700 900123",
    "+44 (0)7700 900-123",
    "(07700) 900.123",
    " 07700 900 123 ",
)
DIALLABLE = set("0123456789 +-().")
LETTERS = st.characters(categories=["Lu", "Ll", "Lt", "Lm", "Lo"])
# Anything else: letters, Unicode digits libphonenumber would normalise (٣, ３), punctuation, controls.
OTHER_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="".join(DIALLABLE))


@st.composite
def _with_inserted(draw: st.DrawFn, characters: st.SearchStrategy[str]) -> str:
    number = draw(st.sampled_from(WRITTEN))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(number)))
        number = number[:at] + draw(characters) + number[at:]
    return number


def test_every_way_of_writing_the_mobile_used_below_is_a_valid_uk_mobile() -> None:
    """The control: without the inserted characters each of these numbers is sent to."""
    assert {uk_mobile_e164(number) for number in WRITTEN} == {"+447700900123"}


def test_a_number_in_the_drama_range_is_a_mobile_only_when_whole() -> None:
    # Ofcom's 07700 900000-900999: eleven digits with the 0. Cut short or run on, it is no number
    # anyone has; libphonenumber calls some of those "possible" and would keep a 0 in the E.164.
    whole = "07700900123"
    seen = {"whole": 0, "refused": 0}
    for length in range(6, 16):
        digits = (whole * 2)[:length]
        for written in (digits, f"{digits[:5]} {digits[5:]}", f"+44 {digits[1:]}", f"0044{digits[1:]}"):
            got = uk_mobile_e164(written)
            if length == len(whole):
                assert got == "+447700900123", written
                seen["whole"] += 1
            else:
                assert got is None, (written, got)
                seen["refused"] += 1
    assert seen == {"whole": 4, "refused": 36}
    # The sample generator's malformed mobile is one of them.
    assert uk_mobile_e164("07700 9001") is None
    for last in ("000", "999"):  # both ends of the range
        assert uk_mobile_e164(f"07700 900{last}") == f"+447700900{last}"


def test_a_mobile_with_vanity_letters_is_refused_not_read_as_keypad_digits() -> None:
    import phonenumbers

    keypad = phonenumbers.parse("07700 900 ABC", "GB")
    assert phonenumbers.format_number(keypad, phonenumbers.PhoneNumberFormat.E164) == "+447700900222"
    assert uk_mobile_e164("07700 900 ABC") is None
    assert uk_mobile_e164("O77OO 9OO123") is None  # letter O for zero
    assert uk_mobile_e164("+44 7700 9OO 123") is None


def test_no_mobile_with_letters_inserted_anywhere_yields_a_number() -> None:
    seen: list[str] = []

    @settings(max_examples=400, derandomize=True, deadline=None, database=None)
    @given(number=_with_inserted(LETTERS))
    def check(number: str) -> None:
        seen.append(number)
        assert uk_mobile_e164(number) is None, number

    check()
    assert len(set(seen)) >= 300, f"only {len(set(seen))} distinct numbers were tried"


def test_no_mobile_with_any_other_character_inserted_yields_a_number() -> None:
    seen: list[str] = []

    @settings(max_examples=400, derandomize=True, deadline=None, database=None)
    @given(number=_with_inserted(OTHER_CHARACTERS))
    def check(number: str) -> None:
        seen.append(number)
        assert uk_mobile_e164(number) is None, number

    check()
    assert len(set(seen)) >= 300, f"only {len(set(seen))} distinct numbers were tried"


@pytest.mark.parametrize(
    "number", ["０７７００ ９００１２３", "٠٧٧٠٠٩٠٠١٢٣", "07700\t900123", "tel:07700900123"]
)
def test_a_mobile_in_other_digits_or_with_other_separators_is_refused(number: str) -> None:
    assert uk_mobile_e164(number) is None


# --- free text a message quotes --------------------------------------------------------------------


HEARING = {"court": "Hull Magistrates' Court", "at": "2026-12-01T10:00:00Z"}


def _charged(details: dict[str, Any]) -> dict[str, Any]:
    return occurrence(
        "2026-11-20T10:01:00Z",
        milestones=[milestone("M-1", "suspect_charged", "2026-11-20T10:00:00Z", details)],
    )


def _disposed(details: dict[str, Any]) -> dict[str, Any]:
    return occurrence(
        "2026-11-20T10:01:00Z",
        milestones=[milestone("M-1", "out_of_court_disposal", "2026-11-20T10:00:00Z", details)],
    )


REFUSED = [
    (_charged({"first_hearing": HEARING | {"court": "x" * 121}}), "first_hearing.court", "at most 120"),
    (_charged({"first_hearing": HEARING | {"court": "x" * 100_000}}), "first_hearing.court", "at most 120"),
    (_charged({"first_hearing": HEARING | {"court": ""}}), "first_hearing.court", "at least 1"),
    (_charged({"first_hearing": HEARING | {"court": 5}}), "first_hearing.court", "valid string"),
    (_charged({"first_hearing": {"at": HEARING["at"]}}), "first_hearing.court", "Field required"),
    (_charged({"first_hearing": HEARING | {"at": "next Tuesday"}}), "first_hearing.at", "ISO 8601"),
    (_charged({"first_hearing": HEARING | {"at": "2026-12-01T10:00:00"}}), "first_hearing.at", "time zone offset"),
    (_charged({"first_hearing": HEARING | {"at": "9999-12-31T23:59:59-12:00"}}), "first_hearing.at", "2100"),
    (_charged({"first_hearing": HEARING | {"at": 1764583200}}), "first_hearing.at", "not a number"),
    (_charged({"first_hearing": HEARING | {"room": "3"}}), "first_hearing.room", "Extra inputs"),
    (_charged({"first_hearing": "Hull, 1 December"}), "first_hearing", "should be an object"),
    (_disposed({"disposal": "x" * 121}), "disposal", "at most 120"),
    (_disposed({"disposal": ""}), "disposal", "at least 1"),
    (_disposed({"disposal": ["community resolution"]}), "disposal", "valid string"),
]  # fmt: skip


@pytest.mark.parametrize(("record", "field", "reason"), REFUSED, ids=[f"{f}:{r}" for _, f, r in REFUSED])
def test_quoted_free_text_outside_the_contract_is_refused_naming_the_key(
    record: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        NicheOccurrence.model_validate_json(json.dumps(record))
    [error] = caught.value.errors()
    assert ".".join(map(str, error["loc"])) == f"milestones.0.details.{field}"
    assert reason in error["msg"]


def test_quoted_details_within_the_contract_are_kept_exactly_as_received() -> None:
    details = {
        "first_hearing": {"court": "C" * 120, "at": "2026-12-01T10:00:00+00:00"},
        "notes": "x" * 5000,  # other keys are free-form: no message quotes them
        "officer_note": {"nested": [1, None, "two"]},
    }
    [charged] = NicheOccurrence.model_validate_json(json.dumps(_charged(details))).milestones
    assert charged.details == details  # a dict, its hearing time the text received
    for empty in ({"first_hearing": None}, {}):
        assert NicheOccurrence.model_validate_json(json.dumps(_charged(empty))).milestones[0].details == empty
    [disposed] = NicheOccurrence.model_validate_json(
        json.dumps(_disposed({"disposal": "adult caution"}))
    ).milestones
    assert disposed.details.get("disposal") == "adult caution"
    assert NicheOccurrence.model_validate_json(json.dumps(_disposed({"disposal": None}))).milestones


def test_the_published_schema_bounds_the_quoted_details() -> None:
    schema = json.loads((SCHEMA_DIR / "niche.occurrence.v1.schema.json").read_text(encoding="utf-8"))
    rules = {
        rule["if"]["properties"]["type"]["const"]: rule["then"]["properties"]["details"]["properties"]
        for rule in schema["$defs"]["Milestone"]["allOf"]
    }
    hearing = rules["suspect_charged"]["first_hearing"]["anyOf"][0]
    assert hearing["properties"]["court"] == {
        "maxLength": 120,
        "minLength": 1,
        "title": "Court",
        "type": "string",
    }
    assert hearing["properties"]["at"]["format"] == "date-time" and hearing["additionalProperties"] is False
    assert rules["out_of_court_disposal"]["disposal"]["anyOf"][0] == {
        "maxLength": 120,
        "minLength": 1,
        "type": "string",
    }


def test_free_text_of_one_milestone_type_never_rides_on_another_into_a_message() -> None:
    # The contract bounds `disposal` only for out-of-court disposals and `first_hearing` only for
    # charges; on any other milestone they are free-form and must not reach the duty (or a message).
    from shared.adapters.policy_file import load_policy
    from shared.contracts.feeds import NicheOccurrence
    from shared.contracts.messages import CaseChange, Change, ChangeKind, ResolvedCaseChange
    from shared.domain.journey import evaluate_case_change
    from tests.builders import milestone, occurrence

    huge = "x" * 50_000
    bailed = milestone(
        "M-1", "suspect_bailed", "2026-11-20T10:00:00Z", {"disposal": huge, "first_hearing": {"court": huge}}
    )
    record = NicheOccurrence.model_validate(occurrence("2026-11-20T10:05:00Z", milestones=[bailed]))
    change = Change(kind=ChangeKind.MILESTONE_ADDED, key="M-1", at=record.modified_at)
    case = CaseChange(
        change_id="c",
        feed="niche",
        crime_reference=record.crime_reference,
        detected_at=record.modified_at,
        changes=[change],
        niche=record,
    )
    decision = evaluate_case_change(
        None, ResolvedCaseChange(event_id="c", case=case), "P-1", "victim", load_policy(), record.modified_at
    )
    assert decision.journey.duties["m:M-1"].details == {"milestone": "suspect_bailed"}
