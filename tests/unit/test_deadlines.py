"""Working-day deadlines of the Victims' Code (journey-rules.md §2)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from shared.domain.deadlines import code_deadline, is_working_day

LONDON = ZoneInfo("Europe/London")


def test_arrest_on_friday_before_christmas_is_due_tuesday_29th() -> None:
    arrest = datetime(2026, 12, 18, 10, 0, tzinfo=UTC)
    due = code_deadline(arrest, 5, "england_and_wales", "Europe/London")
    assert due == datetime(2026, 12, 29, 23, 59, 59, tzinfo=LONDON)


def test_enhanced_rights_deadline_is_the_end_of_the_next_working_day() -> None:
    # Friday evening: the next working day is Monday.
    event = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
    assert code_deadline(event, 1, "england_and_wales", "Europe/London") == datetime(
        2026, 11, 23, 23, 59, 59, tzinfo=LONDON
    )


def test_scottish_bank_holiday_that_is_not_one_in_england() -> None:
    # St Andrew's Day, Monday 30 November 2026, is a bank holiday in Scotland only.
    st_andrews = datetime(2026, 11, 30).date()
    assert not is_working_day(st_andrews, "scotland")
    assert is_working_day(st_andrews, "england_and_wales")
    friday = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert code_deadline(friday, 1, "england_and_wales", "Europe/London").day == 30
    assert code_deadline(friday, 1, "scotland", "Europe/London").day == 1  # Tuesday 1 December


def test_deadline_across_the_change_to_british_summer_time() -> None:
    # Clocks go forward on Sunday 29 March 2026; Good Friday and Easter Monday follow.
    event = datetime(2026, 3, 27, 11, 0, tzinfo=UTC)
    due = code_deadline(event, 5, "england_and_wales", "Europe/London")
    assert due == datetime(2026, 4, 7, 23, 59, 59, tzinfo=LONDON)
    assert due.utcoffset() is not None and due.utcoffset().total_seconds() == 3600  # BST
    assert due.astimezone(UTC) == datetime(2026, 4, 7, 22, 59, 59, tzinfo=UTC)


def test_event_late_in_the_evening_counts_from_its_london_day() -> None:
    # 23:30 UTC on Monday 1 June 2026 is 00:30 BST on Tuesday 2 June.
    event = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    assert code_deadline(event, 1, "england_and_wales", "Europe/London").day == 3
