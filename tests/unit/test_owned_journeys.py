"""A rule handed its journey as its own (``owned=True``, as the steps hand a journey just read)
decides exactly what it decides on a copy; without ``owned`` it leaves its input untouched.

Driven by the exactly-once property's histories (tests/unit/pipeline.py drives each journey as
the steps do), with every rule the pipeline calls checked both ways at every call, and the page
and delivery-report rules applied to each history's last journey.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from shared.contracts.messages import MessageToOfficer, MessageUndelivered, PreferencesChosen
from shared.domain.journey import (
    Decision,
    Journey,
    evaluate_message_to_officer,
    evaluate_preferences_chosen,
    evaluate_undelivered,
)
from shared.domain.journey.state import copy_journey
from tests.unit import pipeline
from tests.unit.pipeline import POLICY, Recipient
from tests.unit.test_exactly_once_properties import CRIME, HISTORIES, History, _deliver, _events

EXAMPLES = 500
Rule = Callable[..., Decision]


def _what(d: Decision) -> tuple[Any, ...]:
    return (
        d.journey.model_dump_json(),
        d.messages,
        d.scheduled,
        d.tasks,
        d.audit,
        d.closed_tasks,
        d.unchanged,
    )


def _checked(rule: Rule, seen: Counter[str]) -> Rule:
    name = rule.__name__

    def call(journey: Journey | None, *args: Any) -> Decision:
        if journey is None:  # a new journey: nothing of the caller's to change
            return rule(journey, *args)
        before = journey.model_dump_json()
        kept = rule(journey, *args)
        assert journey.model_dump_json() == before, f"{name} changed the journey it was given"
        mine = copy_journey(journey)
        owned = rule(mine, *args, owned=True)
        assert owned.journey is mine, f"{name} copied a journey handed over as its own"
        assert _what(owned) == _what(kept), f"{name} decided otherwise on a journey of its own"
        seen[name] += 1
        seen[f"{name}:changed"] += not kept.unchanged
        return kept

    return call


def test_a_rule_decides_the_same_on_a_journey_of_its_own_and_leaves_a_lent_one_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: Counter[str] = Counter()
    for name in (
        "evaluate_case_change",
        "evaluate_shared_facts",
        "evaluate_wake",
        "evaluate_deadline",
        "evaluate_message_outcome",
    ):
        monkeypatch.setattr(pipeline, name, _checked(getattr(pipeline, name), seen))
    page_and_reports = {
        rule.__name__: _checked(rule, seen)
        for rule in (evaluate_preferences_chosen, evaluate_message_to_officer, evaluate_undelivered)
    }

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(HISTORIES)
    def check(history: History) -> None:
        one = Recipient(
            "P-1",
            send_latency=history.latency,
            redeliver_messages=history.redeliver_messages,
            crash_after_send=history.crash_after_send,
            crash_on_wakes=history.crash_on_wakes,
        )
        for at, event, fault in _events(history):
            _deliver(one, event, at, crash=fault == "crash_after_emit")
            if fault != "none":
                _deliver(one, event, at)  # delivered again: unchanged, either way
        at += timedelta(days=5)
        one.run_until(at)
        journey = one.journey
        assert journey is not None
        words = {"crime_reference": CRIME, "person_id": "P-1", "at": at}
        page_and_reports["evaluate_preferences_chosen"](
            journey, PreferencesChosen(event_id="p1", channel="sms", frequency_days=14, **words), POLICY, at
        )
        page_and_reports["evaluate_preferences_chosen"](
            journey, PreferencesChosen(event_id="p2", opted_out=True, **words), POLICY, at
        )
        page_and_reports["evaluate_message_to_officer"](
            journey, MessageToOfficer(event_id="o1", text="Please call me", **words), POLICY, at
        )
        for n, handed in enumerate(one.handed_over):
            undelivered = MessageUndelivered(
                event_id=f"u{n}",
                crime_reference=CRIME,
                person_id="P-1",
                message_key=handed.message.message_key,
                duties=list(handed.duties),
                channel="sms" if handed.message.channel == "sms" else "email",
                status="Failed",
                at=at,
            )
            page_and_reports["evaluate_undelivered"](journey, undelivered, POLICY, at)
        seen["examples"] += 1

    check()
    assert seen["examples"] == EXAMPLES
    # Every rule checked, at every call the histories make (calls, and calls not refused as applied
    # already; 500 derandomized examples make 2,244, 570, 1,980, 249, 1,900, 1,000, 500 and 821).
    for name, calls, changed in (
        ("evaluate_case_change", 2000, 1300),
        ("evaluate_shared_facts", 500, 200),
        ("evaluate_wake", 1800, 1600),
        ("evaluate_deadline", 200, 200),
        ("evaluate_message_outcome", 1700, 1700),
        ("evaluate_preferences_chosen", 2 * EXAMPLES, 2 * EXAMPLES),
        ("evaluate_message_to_officer", EXAMPLES, EXAMPLES),
        ("evaluate_undelivered", 700, 700),
    ):
        assert seen[name] >= calls and seen[f"{name}:changed"] >= changed, (name, seen)
