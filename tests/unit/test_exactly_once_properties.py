"""Exactly once (journey-rules.md §1, §9), as a property of the pure rules and send_message's decisions.

Each example is a victim's crime over a few weeks — milestones added and withdrawn, a
contact logged, the case closed, check-ins — driven in memory (``tests/unit/pipeline.py``)
under the faults Service Bus and a worker bring: an event delivered again at once or after
later ones, a step that emits and dies before its write (so the event is evaluated again
from the old state and its messages are on the queue twice), ``send_message`` dying after
the provider took a message, and every message delivered twice.

The property: every duty is told at most once on each channel, the provider is called at
most once for each message, a duty handed to an officer is never also messaged (but for one
known race, stated where it is allowed), the same event applied again changes nothing
(``applied_events``), and the same event evaluated twice from the same state decides the
same thing (so a redelivery emits the same message ids).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts.messages import ResolvedCaseChange, SharedFacts
from shared.domain.journey import Decision
from tests.builders import facts_told, milestone, niche_change, occurrence, victim
from tests.unit.pipeline import Recipient

EXAMPLES = 500
BASE = datetime(2026, 3, 2, tzinfo=UTC)
CRIME = "HU/000001/26"
NOTIFIABLE = ["suspect_arrested", "suspect_interviewed", "suspect_bailed", "suspect_charged"]
Fault = Literal["none", "again_at_once", "again_later", "crash_after_emit"]


@dataclass(frozen=True)
class Step:
    gap: int  # minutes after the previous step
    adds: int  # milestones added
    withdraws: bool  # the latest milestone withdrawn
    contact: bool  # an officer logs a contact with the victim
    category: str | None  # a linked incident's category told as shared facts
    fault: Fault


# Every kind of step, each as often as its weight (one draw picks a whole step).
ALL_STEPS = [
    Step(*kind)
    for kind in itertools.product(
        [2, 8, 30, 240, 900, 2000],  # gap: in the coalescing window, or later
        [0, 1, 1, 2],  # milestones added
        [False, False, False, True],  # the latest withdrawn
        [False] * 7 + [True],  # a logged contact
        [None] * 6 + ["Violence", "Domestic Incident"],  # a linked incident's category
        ["none", "none", "again_at_once", "again_later", "crash_after_emit"],
    )
]
STEPS = st.lists(st.sampled_from(ALL_STEPS), min_size=1, max_size=4)


@dataclass(frozen=True)
class History:
    start: datetime
    channel: str
    frequency_days: int
    steps: tuple[Step, ...]
    finalised: bool  # the last snapshot closes the case with an outcome
    crash_after_send: bool  # send_message dies after each first hand-over
    crash_on_wakes: bool  # evaluate_journey dies after emitting, on each scheduled wake-up
    redeliver_messages: bool  # every message is delivered twice
    latency: timedelta


HISTORIES = st.builds(
    History,
    start=st.builds(
        lambda day, minute: BASE + timedelta(days=day, minutes=minute),
        st.integers(0, 280),
        st.integers(0, 24 * 60 - 1),
    ),
    channel=st.sampled_from(["both", "email", "sms"]),
    frequency_days=st.sampled_from([3, 7, 28]),
    steps=STEPS.map(tuple),
    finalised=st.booleans(),
    crash_after_send=st.booleans(),
    crash_on_wakes=st.booleans(),
    redeliver_messages=st.booleans(),
    latency=st.sampled_from([timedelta(0), timedelta(minutes=20), timedelta(hours=3)]),
)


def _events(history: History) -> list[tuple[datetime, ResolvedCaseChange | SharedFacts, Fault]]:
    person = victim(channel=history.channel, frequency_days=history.frequency_days)
    at = history.start
    record = occurrence(at.isoformat(), ref=CRIME, victims=[person])
    events: list[tuple[datetime, ResolvedCaseChange | SharedFacts, Fault]] = [
        (at, niche_change(record), "none")
    ]
    milestones: list[dict[str, Any]] = []
    number = 0
    for index, step in enumerate(history.steps):
        at += timedelta(minutes=step.gap)
        if step.category:
            events.append(
                (at, facts_told(CRIME, CRIME, incidents={"HU-20260302-0001": [step.category]}), step.fault)
            )
        for _ in range(step.adds):
            number += 1
            milestones.append(
                milestone(f"M-{number}", NOTIFIABLE[number % 4], (at - timedelta(minutes=1)).isoformat())
            )
        if step.withdraws and milestones:
            milestones.pop()
        if step.contact:
            number += 1
            milestones.append(milestone(f"M-{number}", "victim_contacted", at.isoformat()))
        closing = history.finalised and index == len(history.steps) - 1
        new = occurrence(
            at.isoformat(),
            ref=CRIME,
            victims=[person],
            milestones=list(milestones),
            status="finalised" if closing else "under_investigation",
            outcome={"code": "14", "decided_at": at.isoformat()} if closing else None,
        )
        events.append((at, niche_change(new, record), step.fault))
        record = new
    return events


def _deliver(
    one: Recipient, event: ResolvedCaseChange | SharedFacts, at: datetime, crash: bool = False
) -> Decision:
    if isinstance(event, SharedFacts):
        return one.shared_facts(event, at, crash_after_emit=crash)
    return one.case_change(event, at, crash_after_emit=crash)


def test_every_duty_is_told_at_most_once_per_channel_whatever_is_delivered_again() -> None:
    seen: Counter[str] = Counter()

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
        later: list[ResolvedCaseChange | SharedFacts] = []
        for at, event, fault in _events(history):
            one.run_until(at)
            for old in later:  # delivered again after a later event
                assert _deliver(one, old, at).unchanged, "an event applied a second time changed the journey"
                seen["redelivered_after_later_events"] += 1
            later = []
            _deliver(one, event, at, crash=fault == "crash_after_emit")
            seen["crashed_after_emitting"] += fault == "crash_after_emit"
            if fault == "again_at_once":
                before = one.journey
                assert _deliver(one, event, at).unchanged and one.journey is before
                seen["redelivered_at_once"] += 1
            elif fault == "again_later":
                later.append(event)
        one.run_until(at + timedelta(days=5))

        told = Counter((duty, h.message.channel) for h in one.handed_over for duty in h.duties)
        twice = sorted(key for key, n in told.items() if n > 1)
        assert not twice, f"told twice: {twice}"
        called = sorted(key for key, n in one.hand_over_calls.items() if n > 1)
        assert not called, f"the provider was called twice for {called}"
        tasked: dict[str, datetime] = {}
        for task in one.tasks:
            if task.reason != "deadline_breached":  # an escalation is not a discharge
                for duty in task.duties:
                    tasked.setdefault(duty, task.created_at)
        for h in one.handed_over:
            for duty in set(h.duties) & set(tasked):
                # Known race (reported, not fixed here): send_message dies after the provider took the
                # message and before the journey records it; an exclusion arriving in that gap tasks a
                # duty the victim was already told of. Only that, and only in that order.
                assert h.message.message_key in one.crashed and h.at <= tasked[duty], (duty, h, tasked)
                seen["told_then_tasked_in_the_crash_gap"] += 1

        seen["examples"] += 1
        seen["evaluated_again_after_a_crash_alike"] += one.redecided
        seen["duties_told"] += len(told)
        seen["checkins_told"] += sum(duty.startswith("checkin:") for duty, _ in told)
        seen["duties_tasked"] += len(tasked)
        emitted = Counter(m.message_key for m in one.emitted)
        seen["examples_with_a_message_emitted_twice"] += any(n > 1 for n in emitted.values())
        for kind, n in one.deliveries.items():
            seen[f"deliveries:{kind}"] += n

    check()
    assert seen["examples"] == EXAMPLES
    assert seen["duties_told"] >= 700 and seen["checkins_told"] >= 50 and seen["duties_tasked"] >= 100, seen
    assert seen["evaluated_again_after_a_crash_alike"] >= 300, seen
    assert seen["redelivered_at_once"] >= 150 and seen["redelivered_after_later_events"] >= 100, seen
    assert seen["crashed_after_emitting"] >= 100, seen
    assert seen["examples_with_a_message_emitted_twice"] >= 70, seen
    # A message delivered again after the provider took it is recorded as sent, never handed over again;
    # one delivered again after it finished is left as it is.
    assert seen["deliveries:provider_had_it"] >= 150 and seen["deliveries:finished_before"] >= 300, seen
