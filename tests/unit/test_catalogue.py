"""Every message in the catalogue, read as its reader will read it (journey-rules.md §5, §6, §7).

The catalogue (shared/ops/catalogue.py) renders every template on every channel for every
reader, officer and set of values through the real render functions. These tests read each
one and fail on what was found in real output before: doubled words, "the victim", stacked
colons, unfilled values, an SMS over its budget or outside GSM-7, "crime" to a caller whose
call has no crime, a time without its day and date, and a guardian greeted by the child's name.
The checks themselves are tested first, on text that breaks each rule.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from shared.domain.policy import Policy
from shared.domain.wording import is_gsm7, sms_segments
from shared.ops.catalogue import (
    LONGEST,
    LONGEST_LINK_LENGTH,
    LONGEST_REFERENCE_LENGTH,
    READERS,
    REALISTIC,
    Rendered,
    main,
    render_all,
    templates,
    write_catalogue,
)

POLICY = Policy()

# --- the checks ------------------------------------------------------------------------------------

_URL = re.compile(r"https?://\S+")
_CLOCK = r"(?:\d{1,2}(?::\d{2})?\s?(?:am|pm)|midday|midnight)"
_TIME = re.compile(r"\b" + _CLOCK + r"\b", re.I)
_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DAY_DATE_AT = re.compile(rf"\b(?:{_DAYS}) \d{{1,2}} (?:{_MONTHS})(?: \d{{4}})? at $")
_UNFILLED = ("{{", "}}", "{%", "%}", "None", "a date we will confirm", "a time we will confirm", "()", "[]")


def _sentences(text: str) -> list[str]:
    text = _TIME.sub("TIME", _URL.sub("URL", text))
    return [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def doubled_words(text: str) -> list[str]:
    return [m.group(0) for m in re.finditer(r"\b([^\W\d_]+)\s+\1\b", _URL.sub("URL", text), re.I)]


def stacked_colons(text: str) -> list[str]:
    return [s for s in _sentences(text) if s.count(":") > 1]


def unfilled(text: str) -> list[str]:
    found = [token for token in _UNFILLED if token in text]
    return found + [m.group(0) for m in re.finditer(r"\s[,.;:]|\(\s*\)", _URL.sub("URL", text))]


def times_without_a_day(text: str) -> list[str]:
    return [m.group(0) for m in _TIME.finditer(text) if not _DAY_DATE_AT.search(text[: m.start()])]


def mentions_crime(text: str) -> bool:
    return re.search(r"\bcrimes?\b", text, re.I) is not None


def test_the_checks_catch_what_they_are_for() -> None:
    assert doubled_words("Your officer is PC PC 1234 Jordan Lee") == ["PC PC"]
    assert doubled_words("We will tell the the victim") == ["the the"]
    assert doubled_words("Ref HU/000133/26. Ask for PC 8628 on 101. Call 08 08 16 89 111.") == []
    assert stacked_colons("Your case has been closed: the investigation has ended: no suspect.") != []
    assert stacked_colons("Humberside Police: we will visit on Tuesday 6 October at 3:45pm.") == []
    assert stacked_colons("Humberside Police: a visit. Stop or change: https://x.uk/a") == []
    assert unfilled("An officer will visit you on a date we will confirm.") != []
    assert unfilled("The first hearing is at None.") != []
    assert unfilled("Your officer is Jo () today") != []
    assert unfilled("Ask for  on 101. Your reference is .") != []
    assert unfilled("Dear Ms Smith, go to https://x.uk/p.") == []
    assert times_without_a_day("An officer will visit you at 3:45pm.") == ["3:45pm"]
    assert times_without_a_day("We will visit at midday tomorrow.") == ["midday"]
    assert times_without_a_day("We will visit on Tuesday 6 October at 3:45pm, not at 2pm.") == ["2pm"]
    assert times_without_a_day("on Tuesday 6 October at 3:45pm and Monday 5 October 2026 at 2pm") == []
    assert mentions_crime("An update on crime HU-20261005-0123") and not mentions_crime("your call")
    assert not is_gsm7("We’ll visit – soon…") and is_gsm7("We'll visit - soon...")


# --- every variant, checked --------------------------------------------------------------------------


@cache
def _rendered() -> tuple[Rendered, ...]:
    return tuple(render_all(POLICY))


def _texts(item: Rendered) -> dict[str, str]:
    return {"sms": item.sms.text, "subject": item.email.subject, "email": item.email.text}


def _problems(item: Rendered) -> list[str]:
    v, sms, email = item.variant, item.sms, item.email
    found: list[str] = []
    for where, text in _texts(item).items():
        found += [f"{where}: doubled word {w!r}" for w in doubled_words(text)]
        if re.search(r"\bthe victim\b", text, re.I):
            found.append(f"{where}: 'the victim'")
        found += [f"{where}: stacked colons in {s!r}" for s in stacked_colons(text)]
        found += [f"{where}: unfilled {u!r}" for u in unfilled(text)]
        found += [f"{where}: time without its day and date: {t!r}" for t in times_without_a_day(text)]
        if not v.has_crime and mentions_crime(text):
            found.append(f"{where}: 'crime' to a caller whose call has no crime")
    if sms.segments > sms.budget:
        found.append(f"sms: {sms.segments} segments over a budget of {sms.budget} ({len(sms.text)} chars)")
    if sms.segments != sms_segments(sms.text):
        found.append("sms: segment count differs from the text's")
    if not is_gsm7(sms.text):
        found.append(f"sms: not GSM-7: {[ch for ch in sms.text if not is_gsm7(ch)]}")
    greeting = email.text.split("\n\n", 1)[0]
    if v.audience == "guardian":
        child = (LONGEST if v.values == "longest" else REALISTIC).child_name["forename"]
        if child in greeting:
            found.append(f"email: the guardian greeted by the child's name: {greeting!r}")
    # journey-rules.md §5: what every message gives, and what an SMS never holds.
    values = LONGEST if v.values == "longest" else REALISTIC
    reference = values.incident_number if v.audience == "caller" else values.crime_reference
    for where, text in (("sms", sms.text), ("email", email.text)):
        for needed in (reference, POLICY.force.non_emergency_number, v.link):
            if needed not in text:
                found.append(f"{where}: no {needed!r}")
    for name in (*values.victim_name.values(), *values.child_name.values(), *values.guardian_name.values()):
        if len(name) > 3 and name in sms.text:
            found.append(f"sms: names {name!r}")
    for never in (values.court, values.officer.display_name.split()[-1]):
        if never in sms.text:
            found.append(f"sms: holds {never!r}")
    if v.officer == "named" and values.officer.display_name.split()[-1] not in email.text:
        found.append("email: the officer is not named")
    if v.officer == "team" and POLICY.force.team_contact_name.lower() not in email.text.lower():
        found.append("email: the team contact is not named")
    return found


def test_every_catalogue_variant_reads_cleanly_to_its_reader() -> None:
    rendered = _rendered()
    problems = {item.variant.key: p for item in rendered if (p := _problems(item))}
    assert problems == {}, "\n".join(f"{key}: {p}" for key, p in list(problems.items())[:40])
    # The count, so that this test cannot pass by checking nothing: the 10 milestones for the 4
    # readers of a crime; the acknowledgement and check-in, and two variants each of
    # officer_changed and attendance_booked, for all 5 readers (a call with no crime too); the
    # 22 outcomes and 3 combinations for the 4 readers of a crime; each for 2 officers x 2 values.
    crime_readers, all_readers = 4, 5
    singles = 10 * crime_readers + 2 * all_readers + 2 * 2 * all_readers
    expected = (singles + 22 * crime_readers + 3 * crime_readers) * 2 * 2
    assert len(rendered) == expected == 680
    assert Counter(item.variant.reader for item in rendered).keys() == READERS.keys()


def test_the_catalogue_covers_every_template_outcome_and_variant() -> None:
    rendered = _rendered()
    sections = {item.variant.section for item in rendered}
    assert sections == {*templates(), "combined_update"}
    assert {
        item.variant.duties[0].details["outcome"]
        for item in rendered
        if item.variant.section == "case_closed"
    } == {str(n) for n in range(1, 23)}
    keys = {item.variant.key for item in rendered}
    for needed in (
        "attendance_booked/moved/caller_no_crime/team/longest",
        "suspect_released_no_further_action/guardian/named/longest",
        "decision_not_to_prosecute/caller_crime/team/realistic",
        "combined_update/two/victim/named/realistic",
        "combined_update/several/guardian/team/longest",
        "acknowledgement/enhanced/named/realistic",
    ):
        assert needed in keys


def test_the_longest_values_are_as_long_as_the_page_says() -> None:
    assert len(LONGEST.crime_reference) == len(LONGEST.incident_number) == LONGEST_REFERENCE_LENGTH
    assert len(LONGEST.link) == LONGEST_LINK_LENGTH
    assert len(REALISTIC.link) <= LONGEST_LINK_LENGTH
    for realistic in (REALISTIC.crime_reference, REALISTIC.incident_number):
        assert len(realistic) < LONGEST_REFERENCE_LENGTH


def test_single_updates_fit_one_segment_with_realistic_values() -> None:
    # Outcomes and reviews may take two; so may a visit with its day, date and time when a
    # named officer is to be asked for (callers' visits come with the team contact).
    review = {*POLICY.right_to_review_milestones, "case_closed"}
    single = [
        item
        for item in _rendered()
        if item.variant.values == "realistic"
        and len(item.variant.duties) == 1
        and item.variant.section not in review
        and not (item.variant.section == "attendance_booked" and item.variant.officer == "named")
    ]
    # 8 milestones for 4 readers, 4 acknowledgement/check-in/officer variants for 5, 2 officers
    # each; and the 2 visit variants for 5 readers with the team contact.
    assert len(single) == 2 * (8 * 4 + 4 * 5) + 2 * 5 == 114
    over = [(item.variant.key, len(item.sms.text)) for item in single if item.sms.segments != 1]
    assert over == []


@pytest.mark.parametrize("section", ["combined_update"])
def test_a_combined_sms_names_every_update_in_the_order_they_happened(section: str) -> None:
    item = next(i for i in _rendered() if i.variant.key == "combined_update/two/victim/named/realistic")
    sms, email = item.sms.text, item.email.text
    assert sms.index("We have arrested someone") < sms.index("We have interviewed a suspect")
    assert email.index("We have arrested someone") < email.index("We have interviewed a suspect")
    several = next(
        i for i in _rendered() if i.variant.key == "combined_update/several/victim/named/realistic"
    )
    order = ["now has an officer", "arrested someone", "interviewed a suspect", "released on bail"]
    positions = [several.sms.text.index(words) for words in order]
    assert positions == sorted(positions)


def test_the_catalogue_page_is_written_self_contained_with_every_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path / "catalogue")]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == tmp_path / "catalogue" / "index.html"
    page = path.read_text(encoding="utf-8")
    for template in (*templates(), "combined_update"):
        assert f'id="{template}"' in page
    assert page.count('class="variant"') == len(_rendered())
    assert not re.search(r"""<(?:link|script)\b|src=["']?https?:|@import|url\(""", page)
    assert "18 characters" in page and "Every SMS is within its budget" in page
    first = _rendered()[0]
    assert first.sms.text.replace("'", "&#39;") in page


def test_write_catalogue_returns_the_page_it_wrote(tmp_path: Path) -> None:
    path = write_catalogue(tmp_path, POLICY)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
