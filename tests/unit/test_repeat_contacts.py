"""The repeat-contact figure, from its rule (shared/ops/repeat_contacts.py): victims' calls for an
update per 100 open crimes a week, split by an update in the previous N days, before and after go-live."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import MESSAGES, SNAPSHOTS
from shared.domain.policy import StormPolicy
from shared.ops.repeat_contacts import (
    Crime,
    Inputs,
    RepeatContact,
    by_week,
    compare,
    measure,
    period,
    read_inputs,
    recently_updated,
)
from shared.ports import Entity

LONDON = ZoneInfo("Europe/London")
WINDOW = timedelta(days=14)
# Monday 2 November 2026, midnight in London (GMT: the clocks went back on 25 October).
MONDAY = datetime(2026, 11, 2, tzinfo=LONDON)
NEXT_MONDAY = MONDAY + timedelta(days=7)


def crime(n: int, recorded: datetime, closed: datetime | None = None) -> Crime:
    return Crime(f"HU/{n:06d}/26", recorded, closed)


def call(n: int, at: datetime, incident: int = 0) -> RepeatContact:
    return RepeatContact(f"HU-20261102-{5000 + incident:04d}", f"HU/{n:06d}/26", at, "Update Request")


def test_the_figure_is_calls_per_100_crimes_open_all_week() -> None:
    crimes = [crime(n, MONDAY - timedelta(days=30)) for n in range(1, 11)]
    calls = [
        call(1, MONDAY + timedelta(days=1, hours=10)),
        call(2, MONDAY + timedelta(days=3)),
        call(2, MONDAY),
    ]
    figures = measure(crimes, calls, {}, MONDAY, NEXT_MONDAY, WINDOW)
    assert figures.open_crimes == 10
    assert figures.overall.contacts == 3
    assert figures.overall.crime_weeks == pytest.approx(10)
    assert figures.overall.per_100 == pytest.approx(30)


def test_a_crime_counts_for_the_part_of_the_week_it_was_open() -> None:
    crimes = [
        crime(1, MONDAY + timedelta(days=3)),  # recorded on Thursday: four sevenths of the week
        crime(2, MONDAY - timedelta(days=9), MONDAY + timedelta(days=2)),  # outcome on Wednesday: two
        crime(3, MONDAY - timedelta(days=20), MONDAY - timedelta(days=1)),  # closed before the week
        crime(4, NEXT_MONDAY),  # recorded after it
    ]
    figures = measure(crimes, [call(1, MONDAY + timedelta(days=5))], {}, MONDAY, NEXT_MONDAY, WINDOW)
    assert figures.open_crimes == 2
    assert figures.overall.crime_weeks == pytest.approx(6 / 7)
    assert figures.overall.per_100 == pytest.approx(100 / (6 / 7))


def test_calls_count_in_the_week_they_were_made() -> None:
    crimes = [crime(1, MONDAY - timedelta(days=30))]
    calls = [call(1, MONDAY - timedelta(seconds=1)), call(1, MONDAY), call(1, NEXT_MONDAY)]
    assert measure(crimes, calls, {}, MONDAY, NEXT_MONDAY, WINDOW).overall.contacts == 1


def test_the_split_is_by_a_message_handed_over_in_the_previous_n_days() -> None:
    crimes = [crime(1, MONDAY - timedelta(days=40)), crime(2, MONDAY - timedelta(days=40))]
    told = MONDAY - timedelta(days=10)  # crime 1's victim was sent an update ten days before the week
    updates = {crimes[0].reference: [told]}
    calls = [
        call(1, MONDAY + timedelta(days=1)),  # eleven days after the update: recent
        call(1, MONDAY + timedelta(days=5)),  # fifteen days after: not
        call(2, MONDAY + timedelta(days=2)),  # never updated
    ]
    figures = measure(crimes, calls, updates, MONDAY, NEXT_MONDAY, WINDOW)
    assert (figures.updated.contacts, figures.not_updated.contacts) == (1, 2)
    # Crime 1 was within 14 days of its update for the first four days of the week.
    assert figures.updated.crime_weeks == pytest.approx(4 / 7)
    assert figures.not_updated.crime_weeks == pytest.approx(3 / 7 + 1)
    assert figures.updated.per_100 == pytest.approx(100 / (4 / 7))
    assert figures.not_updated.per_100 == pytest.approx(200 / (10 / 7))
    assert figures.overall.crime_weeks == pytest.approx(
        figures.updated.crime_weeks + figures.not_updated.crime_weeks
    )


def test_an_update_exactly_n_days_before_a_call_is_no_longer_recent() -> None:
    at = MONDAY + timedelta(days=3)
    assert recently_updated([at - WINDOW + timedelta(seconds=1)], at, WINDOW)
    assert not recently_updated([at - WINDOW], at, WINDOW)
    assert recently_updated([at], at, WINDOW)
    assert not recently_updated([at + timedelta(seconds=1)], at, WINDOW)  # a message after the call
    assert not recently_updated([], at, WINDOW)


def test_updates_close_together_are_not_counted_twice_in_the_open_time() -> None:
    crimes = [crime(1, MONDAY - timedelta(days=40))]
    updates = {crimes[0].reference: [MONDAY - timedelta(days=13), MONDAY - timedelta(days=12)]}
    figures = measure(crimes, [], updates, MONDAY, NEXT_MONDAY, timedelta(days=14))
    assert figures.updated.crime_weeks == pytest.approx(2 / 7)
    assert figures.overall.per_100 == 0


def test_with_no_open_crime_there_is_no_rate() -> None:
    figures = measure([], [call(1, MONDAY + timedelta(days=1))], {}, MONDAY, NEXT_MONDAY, WINDOW)
    assert figures.overall.contacts == 1 and figures.overall.per_100 is None


def test_before_and_after_go_live_split_the_period_at_the_go_live_days_london_midnight() -> None:
    crimes = [crime(n, MONDAY - timedelta(days=30)) for n in range(1, 8)]
    wednesday = date(2026, 11, 4)
    calls = [
        call(1, MONDAY + timedelta(hours=12)),
        call(2, MONDAY + timedelta(days=1, hours=23, minutes=59)),
        call(3, datetime(2026, 11, 4, 0, 0, tzinfo=LONDON)),
        call(4, MONDAY + timedelta(days=6)),
    ]
    inputs = Inputs(crimes=crimes, contacts=calls)
    comparison = compare(inputs, MONDAY, NEXT_MONDAY, wednesday, LONDON, WINDOW)
    assert comparison.before is not None and comparison.after is not None
    assert comparison.before.end == comparison.after.start == datetime(2026, 11, 4, tzinfo=LONDON)
    assert comparison.before.overall.contacts == 2 and comparison.after.overall.contacts == 2
    assert comparison.before.overall.crime_weeks == pytest.approx(7 * 2 / 7)
    assert comparison.after.overall.crime_weeks == pytest.approx(7 * 5 / 7)
    before, after = 100 * 2 / 2, 100 * 2 / 5
    assert comparison.before.overall.per_100 == pytest.approx(before)
    assert comparison.change() == pytest.approx(after / before - 1)  # -60%: cut by 60%


def test_a_go_live_outside_the_period_leaves_one_side_empty() -> None:
    inputs = Inputs(crimes=[crime(1, MONDAY - timedelta(days=3))])
    comparison = compare(inputs, MONDAY, NEXT_MONDAY, date(2026, 12, 1), LONDON, WINDOW)
    assert comparison.after is None and comparison.before is not None and comparison.change() is None


def test_weeks_run_monday_to_sunday_on_london_dates_across_the_change_of_the_clocks() -> None:
    # Sunday 25 October 2026 the clocks went back: that London week is 169 hours long.
    start = datetime(2026, 10, 21, 9, 0, tzinfo=LONDON)  # a Wednesday morning
    end = datetime(2026, 11, 3, 12, 0, tzinfo=LONDON)  # the next Tuesday but one, at noon
    inputs = Inputs(
        crimes=[crime(1, start - timedelta(days=1))],
        contacts=[call(1, datetime(2026, 10, 25, 23, 30, tzinfo=UTC))],
    )
    weeks = by_week(inputs, start, end, LONDON, WINDOW)
    assert [week.monday for week in weeks] == [date(2026, 10, 19), date(2026, 10, 26), date(2026, 11, 2)]
    assert [(week.first, week.last, week.part) for week in weeks] == [
        (date(2026, 10, 21), date(2026, 10, 25), True),
        (date(2026, 10, 26), date(2026, 11, 1), False),
        (date(2026, 11, 2), date(2026, 11, 3), True),
    ]
    # 23:30 UTC on Sunday 25 October is 23:30 GMT, still that Sunday in London: the first week.
    assert [week.figures.overall.contacts for week in weeks] == [1, 0, 0]
    # Elapsed time, an hour more than the wall clock says across the night the clocks went back.
    elapsed = end.astimezone(UTC) - start.astimezone(UTC)
    assert elapsed == end - start + timedelta(hours=1)
    assert sum(week.figures.overall.crime_weeks for week in weeks) == pytest.approx(
        elapsed.total_seconds() / (7 * 86400)
    )
    assert weeks[0].figures.overall.crime_weeks == pytest.approx((4 * 24 + 15 + 1) / (7 * 24))


def test_the_period_is_the_reports_dates_within_what_the_feeds_speak_of() -> None:
    inputs = Inputs(
        earliest=datetime(2026, 10, 5, 7, tzinfo=UTC), latest=datetime(2027, 1, 2, 13, tzinfo=UTC)
    )
    assert period(inputs, date(2026, 1, 1), date(2027, 12, 31), LONDON) == (inputs.earliest, inputs.latest)
    assert period(inputs, date(2026, 11, 2), date(2026, 11, 8), LONDON) == (MONDAY, NEXT_MONDAY)
    assert period(inputs, date(2020, 1, 1), date(2020, 1, 31), LONDON) is None
    assert period(Inputs(), date(2026, 11, 2), date(2026, 11, 8), LONDON) is None


# --- what is read from the state ---------------------------------------------------------------------


def _storm(number: str, category: str | None, reference: str | None, opened: str) -> Entity:
    record = {
        "schema": "storm.incident/1",
        "incident_number": number,
        "modified_at": opened,
        "opened_at": opened,
        "status": "closed",
        "opening_category": category,
        "closing_category": None,
        "crime_reference": reference,
        "attendance": None,
        "caller": None,
    }
    return Entity(number, "storm", {"record": json.dumps(record)})


def _niche(reference: str, recorded: str, status: str, decided: str | None = None) -> Entity:
    record = {
        "crime_reference": reference,
        "modified_at": decided or recorded,
        "recorded_at": recorded,
        "status": status,
        "outcome": {"code": "18", "decided_at": decided} if decided else None,
    }
    return Entity(reference, "niche", {"record": json.dumps(record)})


def _message(reference: str, key: str, status: str, sent: datetime | None) -> Entity:
    properties: dict[str, object] = {"status": status, "channel": "sms"}
    if sent is not None:
        properties["sent_at"] = sent
    return Entity(reference, key, properties)


def test_read_inputs_takes_update_requests_naming_a_crime_and_messages_handed_over(tmp_path: Path) -> None:
    store = SqliteTableStore(tmp_path / "state.db")
    sent = datetime(2026, 11, 1, 9, tzinfo=UTC)
    for entity in (
        _niche("HU/000001/26", "2026-10-20T10:00:00Z", "under_investigation"),
        _niche("HU/000002/26", "2026-10-21T10:00:00Z", "finalised", "2026-11-03T12:00:00Z"),
        _storm("HU-20261102-5001", "Update Request", "HU/000001/26", "2026-11-02T10:00:00Z"),
        _storm("HU-20261102-5002", "CALLER REQUESTING UPDATE", " hu/000002/26", "2026-11-02T11:00:00Z"),
        _storm("HU-20261102-5003", "Update Request", None, "2026-11-02T12:00:00Z"),  # names no crime
        _storm("HU-20261102-0001", "Theft", "HU/000001/26", "2026-11-02T13:00:00Z"),  # not an update request
        Entity("HU-20261102-0001", "crime-link", {"crime_reference": "HU/000001/26"}),
        _message("HU/000001/26", "a", "sent", sent),
        _message("HU/000001/26", "b", "delivered", sent + timedelta(days=1)),
        _message("HU/000001/26", "c", "undelivered", sent - timedelta(days=1)),
        _message("HU/000001/26", "d", "failed", None),
        _message("HU/000002/26", "e", "suppressed", None),
        _message("HU/000002/26", "f", "pending", None),
    ):
        store.upsert(MESSAGES if entity.row_key in "abcdef" else SNAPSHOTS, entity)
    inputs = read_inputs(store, StormPolicy())
    store.close()
    assert [(c.incident_number, c.crime_reference) for c in inputs.contacts] == [
        ("HU-20261102-5001", "HU/000001/26"),
        ("HU-20261102-5002", "HU/000002/26"),
    ]
    assert inputs.updates == {"HU/000001/26": [sent - timedelta(days=1), sent, sent + timedelta(days=1)]}
    assert [(c.reference, c.closed_at) for c in inputs.crimes] == [
        ("HU/000001/26", None),
        ("HU/000002/26", datetime(2026, 11, 3, 12, tzinfo=UTC)),
    ]
    assert inputs.earliest == datetime(2026, 10, 20, 10, tzinfo=UTC)
    assert inputs.latest == datetime(2026, 11, 3, 12, tzinfo=UTC)


def test_a_force_can_name_its_own_update_request_categories() -> None:
    storm = StormPolicy(
        categories=["Theft", "Progress Enquiry"], update_request_categories=["Progress Enquiry"]
    )
    assert storm.is_update_request("progress enquiry") and not storm.is_update_request("Update Request")
