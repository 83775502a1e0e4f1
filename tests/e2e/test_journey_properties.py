"""Properties of whole journeys: random Niche histories replayed end to end through the real functions.

Each example is a few crimes, each a short history of whole-state snapshots (flags gained,
status moving on, milestones added and withdrawn, victims opting out or marking a channel
unsafe, children with or without a guardian, bursts, nights, duplicates and stale records).
The feed is replayed by ``run`` on the simulated clock and the outputs are checked against
what was generated.

"In force at a moment" means the latest snapshot of the crime that the ingest timer had read
by then: the feed is polled on the hour here, so a record modified at 10:05 is read at 11:00.

Each rule family replays an example once and checks all its rules on it, and counts what the
examples held (messages, SMS, tasks, guardians), so that none passes because nothing was sent.
The same rules are properties of the pure rules at 500 examples each in ``tests/unit/``.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.adapters.sqlite_queue import SqliteQueueBroker
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import JOURNEYS, journey_from
from shared.domain.journey import Journey
from shared.local.run import RunRequest, run
from tests.broker_faults import completion_lost_once
from tests.builders import links_hidden

LONDON = ZoneInfo("Europe/London")
HOURLY = "0 0 * * * *"
SETTLE = timedelta(days=30)  # long enough for every code deadline and a few check-ins
BASE = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; examples run from March to Christmas

EXCLUDED = [
    "domestic_abuse",
    "sexual_offence",
    "stalking_harassment",
    "honour_based_abuse",
    "modern_slavery",
    "bereaved",
]
OTHER_FLAGS = ["hate_crime", "persistently_targeted", "kidnap"]
NOTIFIABLE = [
    "suspect_arrested",
    "suspect_interviewed",
    "suspect_bailed",
    "bail_conditions_changed",
    "bail_cancelled",
    "suspect_released_under_investigation",
    "suspect_released_no_further_action",
    "suspect_charged",
    "out_of_court_disposal",
    "decision_not_to_prosecute",
]
CHILD_BORN = "2014-06-01"  # under 18 on every day an example is recorded
OPEN_STATUSES = ["recorded", "allocated", "under_investigation", "with_cps"]
FINAL_DUTY_STATUSES = {"sent", "tasked", "suppressed", "superseded", "discharged"}
OFFICER = {
    "employee_id": "104233",
    "collar_number": "PC 1234",
    "display_name": "Jo Bloggs",
    "rank": "PC",
    "email": "jo@example.police.uk",
    "phone": "101",
    "active": True,
}

PROPERTY_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _at(raw: str) -> datetime:
    return datetime.fromisoformat(raw)


def _ceil_hour(at: datetime) -> datetime:
    floor = at.replace(minute=0, second=0, microsecond=0)
    return floor if floor == at else floor + timedelta(hours=1)


# --- The generated feed -------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """The Niche feed of one example, in file order, and what the oracle needs to read it."""

    lines: tuple[dict[str, Any], ...]

    @property
    def start(self) -> datetime:
        return min(_at(line["modified_at"]) for line in self.lines)

    @property
    def end(self) -> datetime:
        return max(_at(line["modified_at"]) for line in self.lines) + SETTLE

    def read_at(self) -> list[datetime]:
        """When the hourly ingest timer reads each line (the reader stops at the first future one)."""
        first_tick = self.start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        reached = first_tick
        times = []
        for line in self.lines:
            reached = max(reached, first_tick, _ceil_hour(_at(line["modified_at"])))
            times.append(reached)
        return times

    def in_force(self, crime: str, at: datetime) -> dict[str, Any] | None:
        """The newest snapshot of ``crime`` read by ``at`` (stale and duplicate lines change nothing)."""
        read = [
            line
            for line, when in zip(self.lines, self.read_at(), strict=True)
            if line["crime_reference"] == crime and when <= at
        ]
        return max(read, key=lambda line: _at(line["modified_at"])) if read else None

    def victim_in_force(
        self, crime: str, person_id: str, at: datetime
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        record = self.in_force(crime, at)
        assert record is not None, f"a message for {crime} at {at} before any snapshot was read"
        victim = next((v for v in record["victims"] if v["person_id"] == person_id), None)
        assert victim is not None, f"a message for {crime}/{person_id} at {at}: no such victim in force"
        return record, victim


@dataclass(frozen=True)
class VictimPlan:
    person_id: str
    joins_at: int
    child: bool
    guardian: dict[str, Any] | None
    email: str | None
    mobile: str | None
    channel: str
    frequency_days: int
    safe: tuple[bool, bool]
    opted_out_from: int | None
    safe_change: tuple[int, bool, bool] | None
    channel_change: tuple[int, str] | None

    def at_step(self, step: int) -> dict[str, Any] | None:
        if step < self.joins_at:
            return None
        channel = self.channel
        if self.channel_change and step >= self.channel_change[0]:
            channel = self.channel_change[1]
        sms, email = self.safe
        if self.safe_change and step >= self.safe_change[0]:
            sms, email = self.safe_change[1], self.safe_change[2]
        opted_out = self.opted_out_from is not None and step >= self.opted_out_from
        return {
            "person_id": self.person_id,
            "name": {"title": "Ms", "forename": "Alex", "surname": "Smith"},
            "date_of_birth": CHILD_BORN if self.child else "1990-01-01",
            "contact": {"email": self.email, "mobile": self.mobile},
            "preferences": {
                "channel": channel,
                "frequency_days": self.frequency_days,
                "language": "en",
                "opted_out": opted_out,
            },
            "safe_contact": {"sms": sms, "email": email},
            "enhanced_rights": [],
            "guardian": self.guardian,
        }


def _one_in(draw: st.DrawFn, n: int) -> bool:
    # Not integers(0, n - 1) == 0: Hypothesis favours zero, which would make the rare case common.
    return draw(st.sampled_from([False] * (n - 1) + [True]))


def _later_step(draw: st.DrawFn, steps: int, one_in: int) -> int | None:
    """Now and then, a step after the first from which something holds."""
    if steps < 2 or not _one_in(draw, one_in):
        return None
    return draw(st.integers(1, steps - 1))


# Valid addresses most of the time, so that most examples send something.
EMAILS = ["x@example.org", "x@example.org", "x@example.org", "nope", None]
MOBILES = ["07700 900123", "07700 900123", "07700 900123", "12345", None]
CHANNELS = ["both", "sms", "email", "both", "sms", "email", "none"]


@st.composite
def victim_plans(draw: st.DrawFn, crime: int, index: int, steps: int) -> VictimPlan:
    child = _one_in(draw, 4)
    guardian = None
    if child and not _one_in(draw, 3):
        guardian = {"email": draw(st.sampled_from(EMAILS)), "mobile": draw(st.sampled_from(MOBILES))}
    opted_out_from = 0 if _one_in(draw, 12) else _later_step(draw, steps, 4)
    safe_step = _later_step(draw, steps, 3)
    channel_step = _later_step(draw, steps, 4)
    return VictimPlan(
        person_id=f"P-{crime}-{index}",
        joins_at=0 if index == 0 else draw(st.integers(0, steps - 1)),
        child=child,
        guardian=guardian,
        email=draw(st.sampled_from(EMAILS)),
        mobile=draw(st.sampled_from(MOBILES)),
        channel=draw(st.sampled_from(CHANNELS)),
        frequency_days=draw(st.sampled_from([28, 7, 3])),
        safe=(not _one_in(draw, 5), not _one_in(draw, 5)),
        opted_out_from=opted_out_from,
        safe_change=None if safe_step is None else (safe_step, draw(st.booleans()), draw(st.booleans())),
        channel_change=None
        if channel_step is None
        else (channel_step, draw(st.sampled_from(["email", "sms", "both"]))),
    )


GAP_MINUTES = st.one_of(
    st.integers(1, 10),  # a burst: the next record within the coalescing window
    st.integers(11, 12 * 60),
    st.integers(12 * 60, 5 * 24 * 60),
)


@st.composite
def crime_histories(draw: st.DrawFn, crime: int) -> list[tuple[datetime, dict[str, Any]]]:
    """One crime's feed lines as (place in the file, record): snapshots, duplicates and a stale one."""
    steps = draw(st.integers(1, 6))
    first = BASE + timedelta(days=draw(st.integers(0, 295)), minutes=draw(st.integers(0, 24 * 60 - 1)))
    times = [first]
    for _ in range(steps - 1):
        times.append(times[-1] + timedelta(minutes=draw(GAP_MINUTES)))
    recorded_at = first - timedelta(minutes=draw(st.integers(0, 180)))

    flags = draw(st.lists(st.sampled_from(OTHER_FLAGS), max_size=2, unique=True))
    if _one_in(draw, 8):
        flags.append(draw(st.sampled_from(EXCLUDED)))
    gains_flag = _later_step(draw, steps, 4)
    gained = draw(st.sampled_from(EXCLUDED))
    status_steps = sorted(draw(st.lists(st.integers(0, 3), min_size=steps, max_size=steps)))
    finalised = _one_in(draw, 3)
    outcome = draw(st.integers(1, 22))
    oic_change = _later_step(draw, steps, 5)
    victims = [draw(victim_plans(crime, i, steps)) for i in range(draw(st.integers(1, 2)))]

    records: list[dict[str, Any]] = []
    milestones: list[dict[str, Any]] = []
    next_id = 1
    for step, now in enumerate(times):
        if milestones and step > 0 and _one_in(draw, 4):
            withdrawn = draw(st.integers(0, len(milestones) - 1))
            milestones = [m for i, m in enumerate(milestones) if i != withdrawn]
        for _ in range(draw(st.sampled_from([1, 0, 2]))):
            kind = "victim_contacted" if _one_in(draw, 10) else draw(st.sampled_from(NOTIFIABLE))
            at = now - timedelta(minutes=draw(st.integers(0, 30)))
            milestones = [*milestones, {"id": f"M-{next_id}", "type": kind, "at": _iso(at), "details": {}}]
            next_id += 1
        last = step == steps - 1
        record = {
            "schema": "niche.occurrence/1",
            "occurrence_id": f"HU-26-{crime:06d}",
            "crime_reference": f"HU/{crime:06d}/26",
            "modified_at": _iso(now),
            "recorded_at": _iso(recorded_at),
            "incident_numbers": [],
            "offence": {
                "code": "105/01",
                "description": "Assault occasioning actual bodily harm",
                "category": "violence_with_injury",
            },
            "flags": flags + ([gained] if gains_flag is not None and step >= gains_flag else []),
            "status": "finalised" if last and finalised else OPEN_STATUSES[status_steps[step]],
            "outcome": {"code": str(outcome), "decided_at": _iso(now)} if last and finalised else None,
            "oic": {
                "employee_id": "104999" if oic_change is not None and step >= oic_change else "104233",
                "collar_number": None,
            },
            "milestones": milestones,
            "victims": [v for plan in victims if (v := plan.at_step(step)) is not None],
        }
        records.append(record)

    lines: list[tuple[datetime, dict[str, Any]]] = []
    stale = _later_step(draw, steps, 3)
    for step, record in enumerate(records):
        lines.append((times[step], record))
        if _one_in(draw, 5):
            lines.append((times[step], dict(record)))  # repeated verbatim
        if stale == step:
            # An older snapshot arriving after a newer one: already visible when it is read.
            lines.append((times[step], records[draw(st.integers(0, step - 1))]))
    return lines


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    placed = []
    for crime in range(1, draw(st.integers(1, 3)) + 1):
        for order, (when, record) in enumerate(draw(crime_histories(crime))):
            placed.append((when, crime, order, record))
    placed.sort(key=lambda item: item[:3])
    return Scenario(tuple(record for *_, record in placed))


# --- Replaying it -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outputs:
    summary: dict[str, Any]
    outbox: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    journeys: list[Journey]
    redelivered: Counter[str]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def replay(scenario: Scenario, *, redeliver: bool = False) -> Outputs:
    """Write the feed to a fresh folder and run it end to end on hourly ticks."""
    redelivered: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setenv("NICHE_POLL_SCHEDULE", HOURLY)
        patch.setenv("STORM_POLL_SCHEDULE", HOURLY)
        if redeliver:
            patch.setattr(SqliteQueueBroker, "complete", completion_lost_once(redelivered))
        feeds, out = Path(tmp) / "feeds", Path(tmp) / "out"
        feeds.mkdir()
        (feeds / "niche.jsonl").write_text(
            "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in scenario.lines),
            encoding="utf-8",
        )
        (feeds / "officers.json").write_text(json.dumps([OFFICER]), encoding="utf-8")
        summary = run(RunRequest(feeds, feeds / "officers.json", out, end=scenario.end))
        store = SqliteTableStore(out / "state.db")
        try:
            journeys = [journey_from(entity) for entity in store.export(JOURNEYS)]
        finally:
            store.close()
        return Outputs(
            summary=summary,
            outbox=_read_jsonl(out / "outbox.jsonl"),
            tasks=_read_jsonl(out / "tasks.jsonl"),
            audit=_read_jsonl(out / "audit.jsonl"),
            journeys=journeys,
            redelivered=redelivered,
        )


def _sent_at(message: dict[str, Any]) -> datetime:
    return _at(message["sent_at"])


def _describe(message: dict[str, Any]) -> str:
    local = _sent_at(message).astimezone(LONDON).strftime("%a %d %b %H:%M %Z")
    return f"{message['crime_reference']}/{message['person_id']} {message['duties']} by {message['channel']} at {local}"


def _check_messages(
    scenario: Scenario,
    outputs: Outputs,
    rule: Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], str | None],
) -> list[str]:
    """Apply ``rule(message, record in force, victim in force)`` to every message; the violations."""
    found = []
    for message in outputs.outbox:
        record, victim = scenario.victim_in_force(
            message["crime_reference"], message["person_id"], _sent_at(message)
        )
        why = rule(message, record, victim)
        if why:
            found.append(f"{_describe(message)}: {why}")
    return found


# --- Hand-written histories, run before the generated ones -------------------------------------


def _victim(**changes: Any) -> dict[str, Any]:
    victim = {
        "person_id": "P-1",
        "name": {"title": "Ms", "forename": "Alex", "surname": "Smith"},
        "date_of_birth": "1990-01-01",
        "contact": {"email": "x@example.org", "mobile": "07700 900123"},
        "preferences": {"channel": "sms", "frequency_days": 28, "language": "en", "opted_out": False},
        "safe_contact": {"sms": True, "email": True},
        "enhanced_rights": [],
        "guardian": None,
    }
    return victim | changes


def _occurrence(
    modified_at: str,
    milestones: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    victim: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema": "niche.occurrence/1",
        "occurrence_id": "HU-26-000001",
        "crime_reference": "HU/000001/26",
        "modified_at": modified_at,
        "recorded_at": "2026-11-02T09:00:00+00:00",
        "incident_numbers": [],
        "offence": {"code": "105/01", "description": "Assault", "category": "violence_with_injury"},
        "flags": list(flags),
        "status": "under_investigation",
        "outcome": None,
        "oic": {"employee_id": "104233", "collar_number": "PC 1234"},
        "milestones": [
            {"id": milestone, "type": "suspect_arrested", "at": "2026-11-03T21:00:00+00:00", "details": {}}
            for milestone in milestones
        ],
        "victims": [victim or _victim()],
    }


def _held_sms_then(flags: tuple[str, ...] = (), **victim: Any) -> Scenario:
    """An arrest read at 22:00 Tue 3 Nov is held for SMS until 08:00; at 01:30 the snapshot changes."""
    return Scenario(
        (
            _occurrence("2026-11-02T09:00:00+00:00"),
            _occurrence("2026-11-03T21:30:00+00:00", ("M-1",)),
            _occurrence("2026-11-04T01:30:00+00:00", ("M-1",), flags, _victim(**victim)),
        )
    )


_SMS_PREFS = _victim()["preferences"]
HELD_SMS_THEN_UNSAFE = _held_sms_then(safe_contact={"sms": False, "email": True})
HELD_SMS_THEN_EMAIL_PREFERRED = _held_sms_then(preferences=_SMS_PREFS | {"channel": "email"})
HELD_SMS_THEN_OPTED_OUT = _held_sms_then(preferences=_SMS_PREFS | {"opted_out": True})
HELD_SMS_THEN_EXCLUDED = _held_sms_then(flags=("domestic_abuse",))
# An arrest recorded at 11:50 and withdrawn at 11:55: both read by the 12:00 poll, in one batch.
WITHDRAWN_IN_ONE_POLL = Scenario(
    (
        _occurrence(
            "2026-11-02T09:00:00+00:00", victim=_victim(preferences=_SMS_PREFS | {"channel": "both"})
        ),
        _occurrence(
            "2026-11-03T11:50:00+00:00",
            ("M-1",),
            victim=_victim(preferences=_SMS_PREFS | {"channel": "both"}),
        ),
        _occurrence(
            "2026-11-03T11:55:00+00:00", victim=_victim(preferences=_SMS_PREFS | {"channel": "both"})
        ),
    )
)
# A child of 12 whose own mobile differs from the guardian's: only the guardian is messaged.
CHILD_WITH_GUARDIAN = Scenario(
    (
        _occurrence(
            "2026-11-02T09:00:00+00:00",
            victim=_victim(
                date_of_birth=CHILD_BORN,
                contact={"email": None, "mobile": "07700 900456"},
                guardian={"email": None, "mobile": "07700 900123"},
            ),
        ),
    )
)


# The rule families below each replay an example once and check every rule of the family on it.
# The same rules are properties of the pure rules at 500 examples each in tests/unit/ (the
# safeguarding, exactly-once, deadline and sending properties); here they are checked on what
# the whole pipeline, from feed files to the outbox, really did.

Rule = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], str | None]


def _breaches(scenario: Scenario, outputs: Outputs, rules: dict[str, Rule]) -> list[str]:
    """Every message against every rule; the breaches, each under its rule's name."""
    return [
        f"{name}: {breach}"
        for name, rule in rules.items()
        for breach in _check_messages(scenario, outputs, rule)
    ]


# --- Safeguarding, consent and the address in force, at the moment of sending ----------------------

# The generated addresses that are valid, as the provider must receive them.
USABLE = {"x@example.org": "x@example.org", "07700 900123": "+447700900123", "07700 900456": "+447700900456"}


def _unsafe(m: dict[str, Any], _r: dict[str, Any], v: dict[str, Any]) -> str | None:
    return None if v["safe_contact"][m["channel"]] else f"safe_contact.{m['channel']} is false"


def _opted_out(_m: dict[str, Any], _r: dict[str, Any], v: dict[str, Any]) -> str | None:
    prefs = v["preferences"]
    if prefs["opted_out"] or prefs["channel"] == "none":
        return f"opted_out={prefs['opted_out']} channel={prefs['channel']}"
    return None


def _excluded(_m: dict[str, Any], r: dict[str, Any], _v: dict[str, Any]) -> str | None:
    return f"flags {r['flags']}" if set(r["flags"]) & set(EXCLUDED) else None


def _wrong_address(m: dict[str, Any], _r: dict[str, Any], v: dict[str, Any]) -> str | None:
    child = v["date_of_birth"] == CHILD_BORN
    contact = v["guardian"] if child else v["contact"]
    if contact is None:
        return "a child without a guardian was messaged"
    expected = USABLE.get(contact["email" if m["channel"] == "email" else "mobile"] or "")
    return None if m["to"] == expected else f"sent to {m['to']!r}, the address in force is {expected!r}"


def test_no_message_goes_against_safeguarding_or_consent_or_to_any_address_but_the_one_in_force() -> None:
    """Never on a channel marked unsafe, never after an opt-out, never for a crime with an excluded
    flag, always to the address in force, and to a child only through the guardian."""
    seen: Counter[str] = Counter()

    @PROPERTY_SETTINGS
    @example(HELD_SMS_THEN_UNSAFE)
    @example(HELD_SMS_THEN_OPTED_OUT)
    @example(HELD_SMS_THEN_EXCLUDED)
    @example(CHILD_WITH_GUARDIAN)
    @given(scenarios())
    def check(scenario: Scenario) -> None:
        outputs = replay(scenario)
        rules = {"unsafe channel": _unsafe, "opted out": _opted_out, "excluded crime": _excluded}
        found = _breaches(scenario, outputs, rules | {"wrong address": _wrong_address})
        assert not found, "messages against safeguarding or consent:\n" + "\n".join(found)
        seen["messages"] += len(outputs.outbox)
        for m in outputs.outbox:
            _, victim = scenario.victim_in_force(m["crime_reference"], m["person_id"], _sent_at(m))
            seen["to_guardians"] += victim["date_of_birth"] == CHILD_BORN
        seen["tasks_for_excluded_crimes"] += sum(
            t["reason"].startswith("excluded_crime") for t in outputs.tasks
        )

    check()
    assert seen["messages"] >= 12 and seen["to_guardians"] >= 1, seen
    assert seen["tasks_for_excluded_crimes"] >= 10, seen


# --- Exactly once, never by SMS at night, never a withdrawn milestone -------------------------------


def test_each_duty_is_told_once_per_channel_never_by_sms_at_night_and_never_once_withdrawn() -> None:
    seen: Counter[str] = Counter()

    # 20 examples, not 12: with 12, an unrelated change to ingest moved the texts seen from 25 or
    # more to 18 (which scenarios are drawn is not stable across such changes).
    @settings(PROPERTY_SETTINGS, max_examples=20)
    @example(_held_sms_then())
    @example(WITHDRAWN_IN_ONE_POLL)
    @given(scenarios())
    def check(scenario: Scenario) -> None:
        outputs = replay(scenario)
        outbox = outputs.outbox
        ids = Counter(m["message_id"] for m in outbox)
        assert all(n == 1 for n in ids.values()), f"message ids handed over twice: {ids}"
        per_duty = Counter(
            (m["crime_reference"], m["person_id"], duty, m["channel"]) for m in outbox for duty in m["duties"]
        )
        twice = sorted(key for key, n in per_duty.items() if n > 1)
        assert not twice, f"duties messaged twice on one channel: {twice}"
        night = [
            _describe(m)
            for m in outbox
            if m["channel"] == "sms" and not 8 <= _sent_at(m).astimezone(LONDON).hour < 20
        ]
        assert not night, "SMS sent between 20:00 and 08:00 Europe/London:\n" + "\n".join(night)

        def withdrawn(m: dict[str, Any], r: dict[str, Any], _v: dict[str, Any]) -> str | None:
            present = {milestone["id"] for milestone in r["milestones"]}
            gone = [d for d in m["duties"] if d.startswith("m:") and d.removeprefix("m:") not in present]
            return f"{gone} no longer in the snapshot" if gone else None

        found = _check_messages(scenario, outputs, withdrawn)
        assert not found, "messages about withdrawn milestones:\n" + "\n".join(found)
        seen["duties_told"] += len(per_duty)
        seen["sms"] += sum(m["channel"] == "sms" for m in outbox)
        seen["held_for_the_morning"] += sum(a["decision"] == "deferred" for a in outputs.audit)
        seen["superseded"] += sum(a["decision"] == "superseded" for a in outputs.audit)

    check()
    assert seen["duties_told"] >= 50 and seen["sms"] >= 25, seen
    assert seen["held_for_the_morning"] >= 5 and seen["superseded"] >= 1, seen


# --- Every duty ends settled, and is dropped only by the victim's choice --------------------------------


def test_every_duty_ends_settled_and_is_dropped_only_by_the_victims_choice() -> None:
    """Every duty ends sent, tasked, suppressed, superseded or discharged, with no deadline left
    pending; and one is suppressed only because the victim chose so (nothing silently dropped)."""
    seen: Counter[str] = Counter()

    @PROPERTY_SETTINGS
    @example(HELD_SMS_THEN_UNSAFE)
    @example(HELD_SMS_THEN_EMAIL_PREFERRED)
    @given(scenarios())
    def check(scenario: Scenario) -> None:
        outputs = replay(scenario)
        # A check-in falling due in the last day may still be in its window or held until 08:00.
        settled_before = scenario.end - timedelta(days=1)
        unfinished, pending, dropped = [], [], []
        for journey in outputs.journeys:
            for duty in journey.duties.values():
                where = f"{journey.crime_reference}/{journey.person_id} {duty.key}"
                if duty.status.value not in FINAL_DUTY_STATUSES and duty.event_at < settled_before:
                    unfinished.append(f"{where}: {duty.status.value} ({duty.reason})")
                if duty.compliance.value == "pending":
                    pending.append(f"{where}: due {duty.due_by}, {duty.status.value}")
                elif duty.due_by is not None and duty.status.value != "superseded":
                    assert duty.compliance.value in ("met", "breached"), f"{where}: {duty.compliance.value}"
                if duty.status.value == "suppressed" and duty.reason != "opted_out":
                    dropped.append(f"{where}: suppressed ({duty.reason}), compliance {duty.compliance.value}")
                seen[f"ended_{duty.status.value}"] += 1
        assert not unfinished, "duties left open:\n" + "\n".join(unfinished)
        assert not pending, "deadlines still pending at the end:\n" + "\n".join(pending)
        assert not dropped, "duties neither sent, tasked nor chosen away by the victim:\n" + "\n".join(
            dropped
        )

    check()
    assert seen["ended_sent"] >= 30 and seen["ended_tasked"] >= 30 and seen["ended_suppressed"] >= 5, seen


# --- Redelivery changes nothing ----------------------------------------------------------------------


def _duties(outputs: Outputs) -> dict[tuple[str, str, str], tuple[str, str, str | None]]:
    return {
        (j.crime_reference, j.person_id, d.key): (d.status.value, d.compliance.value, d.reason)
        for j in outputs.journeys
        for d in j.duties.values()
    }


# Six examples, each replayed twice: redelivery is also a unit property at 500 examples under
# more kinds of fault (tests/unit/test_exactly_once_properties.py), a fixed scenario with every
# queue message redelivered (tests/e2e/test_end_to_end.py) and a fault kind of the chaos runs.
@settings(PROPERTY_SETTINGS, max_examples=6)
@given(scenarios())
def test_redelivering_every_queue_message_changes_nothing(scenario: Scenario) -> None:
    plain = replay(scenario)
    twice = replay(scenario, redeliver=True)
    assert set(twice.redelivered) >= {"case-changes", "journey-events"}, twice.redelivered
    assert sorted(m["message_id"] for m in twice.outbox) == sorted(m["message_id"] for m in plain.outbox), (
        "redelivery changed which messages were handed over"
    )
    assert sorted(t["task_id"] for t in twice.tasks) == sorted(t["task_id"] for t in plain.tasks), (
        "redelivery changed the officer tasks"
    )
    assert _duties(twice) == _duties(plain), "redelivery changed how duties ended"
    # Each run draws its own link ids (random by design): compare what else the messages hold.
    by_id = {m["message_id"]: m for m in links_hidden(plain.outbox)}
    changed = [m["message_id"] for m in links_hidden(twice.outbox) if m != by_id[m["message_id"]]]
    assert not changed, f"messages whose content or time differs under redelivery: {changed}"
