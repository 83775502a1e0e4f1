"""Which changes of a crime's facts its incidents' callers are told (journey-rules.md §7).

A caller's journey is kept under its incident number and hears the crime's facts as a
``shared_facts`` event. Every change is told but one: a change of status alone that neither
finalises the crime nor reopens it, since a caller's journey uses the status only to know
whether the case is finalised. Told or not, what a caller's journey uses must be what the
crime's facts say after every Niche record: its flags, recording time, finalisation, the
categories of its incidents and the crime itself. Checked here on random histories of a
crime, through evaluate_journey on the embedded store, each told event delivered to the
caller's partition as the queue would deliver it.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.table_layout import CRIMES, FACTS_ROW, facts_from
from shared.bootstrap import Services
from shared.contracts.feeds import CaseStatus, Flag, NicheOccurrence, StormIncident
from shared.contracts.messages import CaseChange, CrimeFacts, ResolvedCaseChange
from shared.domain.diff import diff_niche, diff_storm
from shared.domain.facts import told_to_callers
from shared.local.host import SimulatedClock
from shared.settings import load_settings
from shared.steps.evaluate_journey import evaluate_journey
from shared.steps.results import StepResult
from tests.builders import embedded, incident, occurrence

START = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)  # a Tuesday morning
CALLER = "C-77"
STATUSES = [status.value for status in CaseStatus]
FLAGS = [Flag.DOMESTIC_ABUSE.value, Flag.HATE_CRIME.value]


_numbers = itertools.count(1)


def _resolved(case: CaseChange) -> str:
    return ResolvedCaseChange(event_id=case.change_id, case=case).model_dump_json(by_alias=True)


def _told_to(result: StepResult, partition: str) -> list[str]:
    return [
        item.message.body if isinstance(item.message.body, str) else item.message.body.decode("utf-8")
        for item in result.emit
        if item.queue == "journey_events"
        and item.message.session_id == partition
        and json.loads(item.message.body)["type"] == "shared_facts"
    ]


def _caller_uses_what_the_crime_says(services: Services, call: str, facts: CrimeFacts) -> None:
    read = services.journeys.get(call, CALLER)
    assert read is not None
    journey = read.journey
    assert journey.linked_crime == facts.crime_reference
    assert journey.flags == sorted(facts.flags)
    assert journey.recorded_at == facts.recorded_at
    assert journey.finalised_at == facts.finalised_at
    assert (journey.case_status == CaseStatus.FINALISED.value) == (facts.status == CaseStatus.FINALISED.value)
    assert set(facts.categories()) <= set(journey.incident_categories)


# Each Niche record of a crime: its status, its flags (mostly none), and whether a second incident
# is linked from it on (mostly not), so that changes of status alone come often.
histories = st.lists(
    st.tuples(
        st.sampled_from(STATUSES),
        st.sampled_from([(), (), (), (Flag.DOMESTIC_ABUSE.value,)]),
        st.sampled_from([False, False, False, True]),
    ),
    min_size=2,
    max_size=6,
)


def _history(
    services: Services, history: list[tuple[str, tuple[str, ...], bool]], seen: Counter[str]
) -> None:
    """One crime's Niche records through evaluate_journey, after its incident's caller."""
    number = next(_numbers)
    crime, call = f"HU/{number:06d}/26", f"HU-20261117-{number:04d}"
    clock = services.clock
    assert isinstance(clock, SimulatedClock)
    at = START + timedelta(days=number)
    clock.advance_to(at)
    # The caller's journey first: a STORM incident not yet linked to any crime.
    storm = StormIncident.model_validate(incident(at.isoformat(), number=call, category="Violence"))
    change = CaseChange(
        change_id=f"s-{number}",
        feed="storm",
        crime_reference=call,
        detected_at=at,
        changes=diff_storm(None, storm),
        storm=storm,
    )
    evaluate_journey(_resolved(change), services)
    previous: NicheOccurrence | None = None
    known: CrimeFacts | None = None
    for step, (status, flags, second) in enumerate(history):
        at += timedelta(hours=1)
        clock.advance_to(at)
        incidents = {call, f"HU-20261117-9{number:03d}"} if second else {call}
        if previous is not None:  # an incident once linked stays linked here
            incidents |= set(previous.incident_numbers)
        record = NicheOccurrence.model_validate(
            occurrence(
                at.isoformat(),
                ref=crime,
                recorded_at=START.isoformat(),
                status=status,
                flags=list(flags),
                incident_numbers=sorted(incidents),
            )
        )
        changes = diff_niche(previous, record)
        if not changes:
            continue
        case = CaseChange(
            change_id=f"n-{number}-{step}",
            feed="niche",
            crime_reference=crime,
            detected_at=at,
            changes=changes,
            niche=record,
        )
        result = evaluate_journey(_resolved(case), services)
        row = services.tables.get(CRIMES, crime, FACTS_ROW)
        assert row is not None
        facts = facts_from(row)
        told = _told_to(result, call)
        # The step tells as the rule says (this alone would pass for any rule: what holds the rule
        # to what callers need is the check of the caller's journey below, and the floors).
        assert bool(told) == (facts != known and told_to_callers(known, facts)), (known, facts)
        if known is not None and facts != known:
            seen["told" if told else "status change not told"] += 1
        for body in told:  # delivered to the caller's partition, as the queue would
            evaluate_journey(body, services)
        _caller_uses_what_the_crime_says(services, call, facts)
        seen["records"] += 1
        previous, known = record, facts


def test_a_caller_hears_every_change_it_uses_and_no_status_change_it_does_not(tmp_path: Path) -> None:
    services, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(START))
    seen: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(history=histories)
    def check(history: list[tuple[str, tuple[str, ...], bool]]) -> None:
        _history(services, history, seen)

    check()
    # It saw both kinds of change, and enough of each (202 records, 98 told, 44 not when written).
    assert seen["records"] >= 100, seen
    assert seen["told"] >= 50, seen
    assert seen["status change not told"] >= 20, seen


def _facts(**changes: Any) -> CrimeFacts:
    base: dict[str, Any] = {
        "crime_reference": "HU/000001/26",
        "flags": [],
        "status": "under_investigation",
        "recorded_at": START,
        "finalised_at": None,
        "incidents": {"HU-20261117-0001": ["Violence"]},
    }
    return CrimeFacts.model_validate(base | changes)


@pytest.mark.parametrize(
    ("change", "told"),
    [
        ({"status": "with_cps"}, False),
        ({"status": "allocated"}, False),
        ({"status": "finalised", "finalised_at": START + timedelta(days=3)}, True),
        ({"flags": ["domestic_abuse"]}, True),
        ({"recorded_at": START - timedelta(days=1)}, True),
        ({"incidents": {"HU-20261117-0001": ["Violence", "Domestic Incident"]}}, True),
        ({"incidents": {"HU-20261117-0001": ["Violence"], "HU-20261117-0002": []}}, True),
    ],
)
def test_each_fact_a_caller_uses_is_told_and_a_status_alone_is_not(
    change: dict[str, Any], told: bool
) -> None:
    assert told_to_callers(_facts(), _facts(**change)) is told
    assert told_to_callers(None, _facts(**change)) is True  # a crime's first facts always are


def test_a_crime_reopened_after_finalisation_is_told() -> None:
    finalised = _facts(status="finalised", finalised_at=START + timedelta(days=3))
    assert told_to_callers(finalised, _facts(status="under_investigation")) is True
