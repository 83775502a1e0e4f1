"""Safeguarding and consent, as properties of the pure rules (journey-rules.md §4, §7).

Each example is one recipient's short history — a victim, a child's guardian or a STORM
caller — driven through the journey rules and ``shared.domain.sending`` in memory
(``tests/unit/pipeline.py``): updates arrive, messages wait in their coalescing window, for
the morning or on a slow queue, and meanwhile something arrives that forbids them. Each
property counts what its examples exercised and fails if they did not exercise the rule,
so that it cannot pass because nothing was ever waiting or nothing was ever sent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts.messages import ResolvedCaseChange, SharedFacts
from shared.domain.journey import DutyStatus
from shared.domain.ledger import LedgerStatus
from tests.builders import facts_told, incident, milestone, niche_change, occurrence, storm_change, victim
from tests.unit.pipeline import POLICY, Recipient

EXAMPLES = 500
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LONDON = ZoneInfo("Europe/London")
BASE = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; examples run from March to December
CRIME = "HU/000001/26"
INCIDENT = "HU-20260302-0001"
OTHER_INCIDENT = "HU-20260302-0002"  # another incident of the same crime
CHILD_BORN = "2014-06-01"
EXCLUDED_FLAGS = list(POLICY.safeguarding.excluded_flags)
# Safeguarding categories as STORM may spell them: compared as words, so case and punctuation do not matter.
SAFEGUARDING = ["Domestic Incident", "domestic incident", "Sexual Offence", "STALKING / HARASSMENT", "Child Protection", "Honour-Based Abuse"]  # fmt: skip
ORDINARY = ["Violence", "Theft", "Burglary", "Concern for Welfare"]
NOTIFIABLE = ["suspect_arrested", "suspect_interviewed", "suspect_bailed", "suspect_charged"]
# How long a message waits on its queue before send_message takes it: at once, seconds, or a
# backlog (a provider outage, a redeployment).
LATENCIES = [timedelta(0), timedelta(seconds=20), timedelta(minutes=25), timedelta(hours=3)]
# Minutes between one feed change and the next: inside the coalescing window, or later.
GAPS = [1, 4, 9, 15, 20, 30, 45, 90, 190, 600, 1500]


def _iso(at: datetime) -> str:
    return at.isoformat()


# Strategies built once (Hypothesis validates a strategy each time one is made).
STARTS = st.builds(
    lambda day, minute: BASE + timedelta(days=day, minutes=minute),
    st.integers(0, 280),
    st.integers(0, 24 * 60 - 1),
)
STEPS = st.integers(2, 5)
GAP = st.sampled_from(GAPS)
LATENCY = st.sampled_from(LATENCIES)


# --- an excluded crime: no automated message, including one already waiting ---------------------------

Who = Literal["victim", "guardian", "caller"]
Arrival = Literal["niche_flag", "facts_category", "facts_flag", "storm_category", "none"]


@dataclass(frozen=True)
class ExclusionHistory:
    """A recipient told of a few updates; at ``exclusion_step`` something excludes the crime (or not)."""

    recipient: Who
    channel: str
    start: datetime
    gaps: tuple[int, ...]  # minutes from one feed change to the next
    exclusion_step: int  # 0: the recipient's first record already excludes it
    arrival: Arrival
    what: str  # the flag or the STORM category that arrives
    latency: timedelta


# Who is told, and how the exclusion reaches them (a control without one, for each).
ARRIVALS: list[tuple[Who, Arrival, bool]] = [  # who, how, and whether their first record already says so
    ("victim", "niche_flag", False),  # the crime's own record is flagged
    ("victim", "facts_category", False),  # a linked incident is a safeguarding one
    ("guardian", "niche_flag", False),
    ("guardian", "facts_category", False),
    ("caller", "storm_category", False),  # the caller's own incident is closed under a safeguarding category
    ("caller", "facts_flag", False),  # the crime the call is linked to is flagged
    ("caller", "facts_category", False),  # another incident of that crime is a safeguarding one
    ("victim", "niche_flag", True),
    ("caller", "storm_category", True),
    ("victim", "none", False),
    ("guardian", "none", False),
    ("caller", "none", False),
]


_ARRIVAL = st.sampled_from(ARRIVALS)
_EXCLUSION_CHANNEL = st.sampled_from(["both", "email", "sms", "sms"])
_CATEGORY = st.sampled_from(SAFEGUARDING)
_FLAG = st.sampled_from(EXCLUDED_FLAGS)


@st.composite
def exclusion_histories(draw: st.DrawFn) -> ExclusionHistory:
    recipient, arrival, first = draw(_ARRIVAL)
    steps = draw(STEPS)
    return ExclusionHistory(
        recipient=recipient,
        channel=draw(_EXCLUSION_CHANNEL),
        start=draw(STARTS),
        gaps=tuple(draw(GAP) for _ in range(steps - 1)),
        exclusion_step=0 if first else draw(st.integers(1, steps - 1)),
        arrival=arrival,
        what=draw(_CATEGORY if "category" in arrival else _FLAG),
        latency=draw(LATENCY),
    )


def _times(history: ExclusionHistory) -> list[datetime]:
    times = [history.start]
    for gap in history.gaps:
        times.append(times[-1] + timedelta(minutes=gap))
    return times


def _victim_events(history: ExclusionHistory) -> list[tuple[datetime, ResolvedCaseChange | SharedFacts]]:
    """A victim's (or a child's guardian's) crime: a milestone at each step, the exclusion at its step."""
    child = history.recipient == "guardian"
    person = victim(
        channel=history.channel,
        date_of_birth=CHILD_BORN if child else "1990-01-01",
        guardian={"name": {"forename": "Sam"}, "email": "sam@example.org", "mobile": "07700 900456"}
        if child
        else None,
    )
    events: list[tuple[datetime, ResolvedCaseChange | SharedFacts]] = []
    milestones: list[dict[str, Any]] = []
    before: dict[str, Any] | None = None
    flagged = False
    for step, at in enumerate(_times(history)):
        if step == history.exclusion_step and history.arrival == "facts_category":
            # A linked incident turns out to be a safeguarding one: told to the crime's partition.
            events.append((at, facts_told(CRIME, CRIME, incidents={INCIDENT: [history.what]})))
        flagged = flagged or (step == history.exclusion_step and history.arrival == "niche_flag")
        if step:
            kind = NOTIFIABLE[step % len(NOTIFIABLE)]
            milestones = [*milestones, milestone(f"M-{step}", kind, _iso(at - timedelta(minutes=1)))]
        record = occurrence(
            _iso(at),
            ref=CRIME,
            flags=[history.what] if flagged else [],
            milestones=milestones,
            victims=[person],
        )
        events.append((at, niche_change(record, before)))
        before = record
    return events


def _caller_events(history: ExclusionHistory) -> list[tuple[datetime, ResolvedCaseChange | SharedFacts]]:
    """A consenting caller whose visit is booked and moved; the exclusion at its step."""
    events: list[tuple[datetime, ResolvedCaseChange | SharedFacts]] = []
    before: dict[str, Any] | None = None
    closing = None
    for step, at in enumerate(_times(history)):
        if step == history.exclusion_step and history.arrival == "facts_flag":
            events.append((at, facts_told(INCIDENT, CRIME, flags=[history.what], incidents={INCIDENT: []})))
        if step == history.exclusion_step and history.arrival == "facts_category":
            incidents = {INCIDENT: [], OTHER_INCIDENT: [history.what]}
            events.append((at, facts_told(INCIDENT, CRIME, incidents=incidents)))
        if step == history.exclusion_step and history.arrival == "storm_category":
            closing = history.what
        # Each step books (or moves) the visit to a time far enough ahead to be told of it.
        visit = (at + timedelta(hours=2 + 5 * step)).replace(minute=15, second=0, microsecond=0)
        record = incident(
            _iso(at),
            number=INCIDENT,
            scheduled_for=_iso(visit),
            mobile="07700 900123" if history.channel != "email" else None,
            email="sam@example.org" if history.channel != "sms" else None,
            category=ORDINARY[step % len(ORDINARY)],
            closing_category=closing,
        )
        events.append((at, storm_change(record, before)))
        before = record
    return events


def _deliver(one: Recipient, event: ResolvedCaseChange | SharedFacts, at: datetime) -> None:
    if isinstance(event, SharedFacts):
        one.shared_facts(event, at)
    else:
        one.case_change(event, at)


def test_no_automated_message_reaches_anyone_once_their_crime_is_excluded_even_one_already_waiting() -> None:
    seen: Counter[str] = Counter()

    @PROPERTY
    @given(exclusion_histories())
    def check(history: ExclusionHistory) -> None:
        caller = history.recipient == "caller"
        person = "C-77" if caller else "P-1"
        one = Recipient(person, "caller" if caller else "victim", send_latency=history.latency)
        events = _caller_events(history) if caller else _victim_events(history)
        excluded_at = _times(history)[history.exclusion_step]
        cut = next(i for i, (at, _) in enumerate(events) if at == excluded_at)
        for at, event in events[:cut]:
            _deliver(one, event, at)
        one.run_until(excluded_at)  # everything due before the exclusion arrives has happened
        waiting = one.waiting_messages()
        undecided = {
            key: duty.status
            for key, duty in (one.journey.duties.items() if one.journey else ())
            if duty.status in (DutyStatus.WAITING, DutyStatus.QUEUED)
        }
        handed_before, emitted_before = len(one.handed_over), len(one.emitted)
        for at, event in events[cut:]:
            _deliver(one, event, at)
        one.run_until(excluded_at + timedelta(days=3))

        if history.arrival == "none":
            # The control: without the exclusion, what was waiting then goes.
            keys = {h.message.message_key for h in one.handed_over[handed_before:]}
            seen["control_waiting_then_sent"] += any(m.message_key in keys for m in waiting)
            seen["control_examples"] += 1
            return
        after = one.handed_over[handed_before:]
        assert not after, f"{history.arrival} {history.what}: handed over afterwards: {after}"
        assert not one.emitted[emitted_before:], "a message emitted once the crime was excluded"
        for message in waiting:
            entry = one.ledger[message.message_key]
            assert entry.status == LedgerStatus.SUPPRESSED, (message, entry)
            assert (entry.reason or "").startswith("excluded_crime"), entry.reason
        assert one.journey is not None
        tasked = {key for task in one.tasks for key in task.duties}
        for key in undecided:
            # Each update that was still to go is the officer's now (or, a visit moved, superseded).
            duty = one.journey.duties[key]
            assert duty.status in (DutyStatus.TASKED, DutyStatus.SUPERSEDED), (key, duty.status)
            if duty.status == DutyStatus.TASKED:
                assert (duty.reason or "").startswith("excluded_crime") and key in tasked, duty

        seen["examples_excluded"] += 1
        seen["from_the_first_record"] += history.exclusion_step == 0
        if waiting:
            seen["message_waiting_then_stopped"] += 1
            seen[f"stopped_by:{history.arrival}"] += 1
            seen[f"stopped_for:{history.recipient}"] += 1
            seen["stopped_while_held_for_the_morning"] += any(m.not_before for m in waiting)
            seen["stopped_on_a_slow_queue"] += any(not m.not_before for m in waiting)
        if any(status == DutyStatus.WAITING for status in undecided.values()):
            seen["update_in_its_window_then_tasked"] += 1
        seen["sent_before_the_exclusion"] += bool(handed_before)

    check()
    assert seen["examples_excluded"] + seen["control_examples"] == EXAMPLES
    assert seen["message_waiting_then_stopped"] >= 60, seen
    for kind in ("niche_flag", "facts_category", "facts_flag", "storm_category"):
        assert seen[f"stopped_by:{kind}"] >= 5, (kind, seen)
    for recipient in ("victim", "guardian", "caller"):
        assert seen[f"stopped_for:{recipient}"] >= 5, (recipient, seen)
    assert seen["stopped_while_held_for_the_morning"] >= 5 and seen["stopped_on_a_slow_queue"] >= 5, seen
    assert seen["update_in_its_window_then_tasked"] >= 20, seen
    assert seen["from_the_first_record"] >= 10, seen
    assert seen["control_waiting_then_sent"] >= 10, seen


# --- consent and safe contact: an opt-out or an unsafe channel is never used ------------------------


@dataclass(frozen=True)
class Person:
    """A victim as one Niche snapshot has them."""

    channel: str
    opted_out: bool
    safe_sms: bool
    safe_email: bool
    email: str | None
    mobile: str | None

    def record(self, child: bool) -> dict[str, Any]:
        contact = {"email": self.email, "mobile": self.mobile}
        return victim(
            channel=self.channel,
            opted_out=self.opted_out,
            safe_sms=self.safe_sms,
            safe_email=self.safe_email,
            date_of_birth=CHILD_BORN if child else "1990-01-01",
            # A child's messages go to the guardian's contact; the child's own must never be used.
            email="child@example.org" if child else self.email,
            mobile="07700 900999" if child else self.mobile,
            guardian={"name": {"forename": "Sam"}, **contact} if child else None,
        )


def _refuses(person: Person) -> bool:
    return person.opted_out or person.channel == "none"


# The addresses as the provider must be given them (an unusable one is None).
USABLE = {
    "x@example.org": "x@example.org",
    "07700 900123": "+447700900123",
    "07700 900 ABC": None,
    "nope": None,
}


PEOPLE = st.builds(
    Person,
    channel=st.sampled_from(["both", "email", "sms", "both", "none"]),
    opted_out=st.sampled_from([False] * 5 + [True]),
    safe_sms=st.sampled_from([True, True, False]),
    safe_email=st.sampled_from([True, True, False]),
    email=st.sampled_from(["x@example.org", "x@example.org", "nope", None]),
    mobile=st.sampled_from(["07700 900123", "07700 900123", "07700 900 ABC", None]),
)
# What the next snapshot changes: usually nothing, else one thing, now and then anything at all.
_CHANGES = st.sampled_from(["same", "same", "opted_out", "channel_none", "sms_unsafe", "email_unsafe", "any"])
# Mostly a victim who can be told at first, so that there is something for a later change to stop.
CONSENTING = st.builds(
    Person,
    channel=st.sampled_from(["both", "email", "sms", "sms"]),
    opted_out=st.just(False),
    safe_sms=st.just(True),
    safe_email=st.just(True),
    email=st.just("x@example.org"),
    mobile=st.just("07700 900123"),
)
_FIRST = st.one_of(CONSENTING, CONSENTING, PEOPLE)
_CHILD = st.sampled_from([False, False, True])


@dataclass(frozen=True)
class ConsentHistory:
    child: bool
    start: datetime
    gaps: tuple[int, ...]
    people: tuple[Person, ...]  # the victim as each snapshot has them
    latency: timedelta


@st.composite
def consent_histories(draw: st.DrawFn) -> ConsentHistory:
    steps = draw(STEPS)
    snapshots = [draw(_FIRST)]
    for _ in range(steps - 1):
        # Now and then the victim changes their mind, a channel is marked unsafe, an address changes.
        last, change = snapshots[-1], draw(_CHANGES)
        snapshots.append(
            {
                "same": last,
                "opted_out": replace(last, opted_out=True),
                "channel_none": replace(last, channel="none"),
                "sms_unsafe": replace(last, safe_sms=False),
                "email_unsafe": replace(last, safe_email=False),
            }.get(change)
            or draw(PEOPLE)
        )
    return ConsentHistory(
        child=draw(_CHILD),
        start=draw(STARTS),
        gaps=tuple(draw(GAP) for _ in range(steps - 1)),
        people=tuple(snapshots),
        latency=draw(LATENCY),
    )


def test_no_message_goes_to_a_victim_who_opted_out_or_on_a_channel_marked_unsafe() -> None:
    seen: Counter[str] = Counter()

    @PROPERTY
    @given(consent_histories())
    def check(history: ConsentHistory) -> None:
        one = Recipient("P-1", send_latency=history.latency)
        at = history.start
        before: dict[str, Any] | None = None
        milestones: list[dict[str, Any]] = []
        for step, person in enumerate(history.people):
            if step:
                at += timedelta(minutes=history.gaps[step - 1])
                milestones = [*milestones, milestone(f"M-{step}", NOTIFIABLE[step % 4], _iso(at))]
                waiting = {m.channel for m in one.waiting_messages()}
                previous = history.people[step - 1]
                if waiting and _refuses(person) and not _refuses(previous):
                    seen["opted_out_while_a_message_waited"] += 1
                unsafe = {
                    ch for ch, safe in (("sms", person.safe_sms), ("email", person.safe_email)) if not safe
                }
                seen["channel_made_unsafe_while_its_message_waited"] += bool(waiting & unsafe)
            record = occurrence(_iso(at), milestones=milestones, victims=[person.record(history.child)])
            one.case_change(niche_change(record, before), at)
            before = record
        one.run_until(at + timedelta(days=3))

        for handed in one.handed_over:
            person = history.people[handed.events_applied - 1]  # the snapshot in force then
            channel = handed.message.channel
            where = f"{channel} at {handed.at} to {person}"
            assert not _refuses(person), f"opted out: {where}"
            assert person.safe_sms if channel == "sms" else person.safe_email, f"unsafe: {where}"
            expected = USABLE.get((person.mobile if channel == "sms" else person.email) or "")
            assert handed.address == expected, f"sent to {handed.address}: {where}"
            local = handed.at.astimezone(LONDON)
            assert channel == "email" or 8 <= local.hour < 20, f"SMS in quiet hours: {where}"
            seen["hand_overs_checked"] += 1
            seen["to_a_guardian"] += history.child
            preferred = {"both": {"email", "sms"}}.get(person.channel, {person.channel})
            seen["fallback_to_the_other_channel"] += channel not in preferred
        held = [m for m in one.emitted if m.channel == "sms" and m.not_before] + [m for m, _ in one.held]
        seen["sms_held_for_the_morning"] += bool(held)
        seen["examples"] += 1

    check()
    assert seen["examples"] == EXAMPLES
    assert seen["hand_overs_checked"] >= 200 and seen["to_a_guardian"] >= 50, seen
    assert seen["opted_out_while_a_message_waited"] >= 10, seen
    assert seen["channel_made_unsafe_while_its_message_waited"] >= 15, seen
    assert seen["fallback_to_the_other_channel"] >= 20, seen
    assert seen["sms_held_for_the_morning"] >= 50, seen
