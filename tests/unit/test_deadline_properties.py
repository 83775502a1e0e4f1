"""Deadlines (journey-rules.md §2, §7), as properties of the pure rules.

A code deadline is the end (23:59:59 Europe/London) of the n-th working day after the
event's London day, working days being Monday to Friday less the nation's bank holidays;
and a duty's deadline only ever moves earlier, whatever facts arrive or leave later.
The oracle for working days is the ``holidays`` package and the weekday, counted day by day
here, not ``shared/domain/deadlines.py``'s own loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts.messages import DeadlineCheck
from shared.domain.deadlines import code_deadline
from shared.domain.journey import Compliance, Decision, Journey, evaluate_case_change, evaluate_shared_facts
from tests.builders import facts_told, milestone, niche_change, occurrence, victim
from tests.unit.pipeline import POLICY

EXAMPLES = 500
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LONDON = ZoneInfo("Europe/London")
SUBDIVISIONS = {"england_and_wales": "ENG", "scotland": "SCT", "northern_ireland": "NIR"}
END_OF_DAY = time(23, 59, 59)


@cache
def _bank_holidays(nation: str) -> holidays.HolidayBase:
    return holidays.country_holidays("GB", subdiv=SUBDIVISIONS[nation], years=range(2015, 2041))


def _working(day: date, nation: str) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays(nation)


def _working_days_between(after: date, until: date, nation: str) -> int:
    """Working days in (after, until], counted one day at a time."""
    return sum(_working(after + timedelta(days=n), nation) for n in range(1, (until - after).days + 1))


def _is_end_of_a_london_working_day(moment: datetime, nation: str) -> bool:
    local = moment.astimezone(LONDON)
    return local.time() == END_OF_DAY and _working(local.date(), nation)


# --- the deadline of an event ---------------------------------------------------------------------

# Days where the rule is easy to get wrong: each bank holiday and the day either side of it,
# and the days the clocks change.
SPECIAL_DAYS = sorted(
    {
        day + timedelta(days=shift)
        for nation in SUBDIVISIONS
        for day in _bank_holidays(nation)
        if 2016 <= day.year <= 2038
        for shift in (-1, 0, 1)
    }
    | {
        day
        for year in range(2016, 2039)
        for day in (date(year, 3, 31) - timedelta(days=n) for n in range(7))
        if day.weekday() == 6
    }
    | {
        day
        for year in range(2016, 2039)
        for day in (date(year, 10, 31) - timedelta(days=n) for n in range(7))
        if day.weekday() == 6
    }
)
# Any offset the feeds may carry: the same instant written in another zone.
ZONES = [UTC, LONDON, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)), timezone(timedelta(hours=5, minutes=45))]  # fmt: skip
DAYS = st.one_of(st.dates(date(2016, 1, 1), date(2038, 12, 31)), st.sampled_from(SPECIAL_DAYS))
# London times of day, with the hours around midnight (where the UTC day is another) as likely as the rest.
TIMES = st.one_of(
    st.times(),
    st.builds(time, st.sampled_from([22, 23, 0, 1]), st.integers(0, 59), st.integers(0, 59)),
)
EVENTS = st.builds(
    lambda day, clock, zone: datetime.combine(day, clock, tzinfo=LONDON).astimezone(zone),
    DAYS,
    TIMES,
    st.sampled_from(ZONES),
)


def test_a_deadline_is_the_end_of_the_nth_london_working_day_after_the_event_and_never_earlier_for_later() -> (
    None
):
    seen: Counter[str] = Counter()

    @PROPERTY
    @given(
        event=EVENTS,
        days=st.sampled_from([1, 5, 0, 2, 10]),
        nation=st.sampled_from(list(SUBDIVISIONS)),
        later_by=st.sampled_from(
            [timedelta(minutes=1), timedelta(hours=3), timedelta(days=1), timedelta(days=4)]
        ),
    )
    def check(event: datetime, days: int, nation: str, later_by: timedelta) -> None:
        due = code_deadline(event, days, nation, "Europe/London")
        event_day = event.astimezone(LONDON).date()
        due_day = due.astimezone(LONDON).date()
        assert due.astimezone(LONDON).time() == END_OF_DAY, due
        assert due.utcoffset() == LONDON.utcoffset(datetime.combine(due_day, END_OF_DAY)), due
        assert _working_days_between(event_day, due_day, nation) == days, (event, due)
        if days:
            assert _working(due_day, nation), due_day
        assert due > event or days == 0
        # Later events are never due earlier; more days are never due earlier.
        assert code_deadline(event + later_by, days, nation, "Europe/London") >= due
        assert code_deadline(event, days + 1, nation, "Europe/London") > due

        seen["examples"] += 1
        seen["london_day_is_not_the_utc_day"] += event_day != event.astimezone(UTC).date()
        seen["event_on_a_weekend_or_holiday"] += not _working(event_day, nation)
        steps_over = any(
            (event_day + timedelta(days=n)) in _bank_holidays(nation)
            for n in range(1, (due_day - event_day).days)
        )
        seen["steps_over_a_bank_holiday"] += steps_over
        seen["clocks_change_in_between"] += (
            event.astimezone(LONDON).utcoffset() != due.astimezone(LONDON).utcoffset()
        )
        others = [n for n in SUBDIVISIONS if n != nation]
        seen["nations_differ"] += any(code_deadline(event, days, n, "Europe/London") != due for n in others)

    check()
    assert seen["examples"] == EXAMPLES
    assert seen["london_day_is_not_the_utc_day"] >= 15, seen
    assert seen["event_on_a_weekend_or_holiday"] >= 100, seen
    assert seen["steps_over_a_bank_holiday"] >= 50, seen
    assert seen["clocks_change_in_between"] >= 8, seen
    assert seen["nations_differ"] >= 20, seen


# --- a duty's deadline only ever comes earlier ----------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What one Niche snapshot says about the victim's rights."""

    hate_crime: bool  # an enhanced-rights flag
    enhanced_rights: bool  # an entry in the victim's enhanced rights
    child: bool  # a date of birth under 18 on the day the crime was recorded
    milestone: bool  # the snapshot brings a new milestone (a new duty)


FACTS = st.builds(Facts, st.booleans(), st.sampled_from([False, False, True]), st.sampled_from([False, False, True]), st.booleans())  # fmt: skip


@dataclass(frozen=True)
class RightsHistory:
    start: datetime
    gaps: tuple[int, ...]  # hours between snapshots
    facts: tuple[Facts, ...]
    category_at: int | None  # the snapshot before which a linked incident turns out to be a safeguarding one


@st.composite
def rights_histories(draw: st.DrawFn) -> RightsHistory:
    steps = draw(st.integers(2, 5))
    return RightsHistory(
        start=draw(EVENTS),
        gaps=tuple(draw(st.sampled_from([1, 5, 20, 50, 120])) for _ in range(steps - 1)),
        facts=tuple(draw(FACTS) for _ in range(steps)),
        category_at=draw(st.sampled_from([None, None, None, *range(1, steps)])),
    )


def _snapshot(
    at: datetime, recorded: datetime, facts: Facts, milestones: list[dict[str, Any]]
) -> dict[str, Any]:
    person = victim(date_of_birth="2014-06-01" if facts.child else "1990-01-01")
    person["enhanced_rights"] = ["vulnerable"] if facts.enhanced_rights else []
    return occurrence(
        at.isoformat(),
        recorded_at=recorded.isoformat(),
        flags=["hate_crime"] if facts.hate_crime else [],
        milestones=milestones,
        victims=[person],
    )


def test_a_duty_deadline_only_ever_moves_earlier_whatever_facts_arrive_or_leave() -> None:
    seen: Counter[str] = Counter()

    @PROPERTY
    @given(rights_histories())
    def check(history: RightsHistory) -> None:
        journey: Journey | None = None
        at = history.start
        before: dict[str, Any] | None = None
        milestones: list[dict[str, Any]] = []
        due: dict[str, datetime] = {}  # each duty's deadline so far
        for step, facts in enumerate(history.facts):
            if step:
                at += timedelta(hours=history.gaps[step - 1])
            decisions: list[Decision] = []
            if journey is not None and history.category_at == step:
                told = facts_told("HU/000001/26", incidents={"HU-20260302-0001": ["Child Protection"]})
                decisions.append(evaluate_shared_facts(journey, told, POLICY, at))
                journey = decisions[-1].journey
            if facts.milestone:
                milestones = [*milestones, milestone(f"M-{step}", "suspect_arrested", at.isoformat())]
            record = _snapshot(at, history.start, facts, milestones)
            decisions.append(
                evaluate_case_change(journey, niche_change(record, before), "P-1", "victim", POLICY, at)
            )
            journey, before = decisions[-1].journey, record
            for decision in decisions:
                for scheduled in decision.scheduled:
                    if isinstance(scheduled.event, DeadlineCheck):
                        # A deadline already passed is checked at once; any other at the deadline.
                        duty = decision.journey.duties[scheduled.event.duty]
                        assert duty.due_by is not None and scheduled.at == max(duty.due_by, at)
                        seen["checked_at_once_having_passed"] += duty.due_by < at
            category = history.category_at is not None and history.category_at <= step
            lifted = step > 0 and not (facts.hate_crime or facts.enhanced_rights or facts.child or category)
            for key, duty in journey.duties.items():
                if duty.due_by is None:
                    continue
                assert _is_end_of_a_london_working_day(duty.due_by, "england_and_wales"), duty
                if key in due:
                    assert duty.due_by <= due[key], f"{key} moved later: {due[key]} -> {duty.due_by}"
                    seen["moved_earlier"] += duty.due_by < due[key]
                    # Every right lifted, the deadline a duty would get now is later than the one it has.
                    ordinary = code_deadline(duty.event_at, POLICY.deadlines.working_days, "england_and_wales", "Europe/London")  # fmt: skip
                    seen["rights_lifted_and_the_deadline_stayed"] += bool(
                        lifted and duty.compliance == Compliance.PENDING and duty.due_by < ordinary
                    )
                due[key] = duty.due_by
        seen["examples"] += 1
        seen["duties_followed"] += len(due)

    check()
    assert seen["examples"] == EXAMPLES and seen["duties_followed"] >= 600, seen
    assert seen["moved_earlier"] >= 60, seen
    assert seen["rights_lifted_and_the_deadline_stayed"] >= 100, seen
    assert seen["checked_at_once_having_passed"] >= 30, seen
