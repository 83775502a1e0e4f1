"""Working-day deadlines of the Victims' Code, in Europe/London time."""

from __future__ import annotations

from collections.abc import Container
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# The holidays package names the UK nations by subdivision code.
SUBDIVISIONS = {"england_and_wales": "ENG", "scotland": "SCT", "northern_ireland": "NIR"}
# The years shared/domain/bank_holidays.py holds, written from the holidays package
# (shared/local/bank_holidays.py).
FIRST_YEAR, LAST_YEAR = 2015, 2040


class _BankHolidays:
    """A nation's bank holidays: FIRST_YEAR to LAST_YEAR from bank_holidays.py; any other year from the
    holidays package itself, imported then only (it loads every country's module)."""

    def __init__(self, nation: str, days: frozenset[date]) -> None:
        self.nation = nation
        self.days = days

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        if FIRST_YEAR <= day.year <= LAST_YEAR:
            return day in self.days
        import holidays

        return day in holidays.country_holidays("GB", subdiv=SUBDIVISIONS[self.nation], years=day.year)


@lru_cache(maxsize=8)
def _bank_holidays(nation: str) -> Container[date]:
    from shared.domain.bank_holidays import BANK_HOLIDAYS

    days = frozenset(
        date(int(year), int(day[:2]), int(day[3:]))
        for year, text in BANK_HOLIDAYS[nation].items()
        for day in text.split()
    )
    return _BankHolidays(nation, days)


# A deadline or a working-hours check is asked of a few hundred distinct days a year, many times
# each: a holiday lookup (and the walk to the n-th working day) is answered once per day.
@lru_cache(maxsize=4096)
def is_working_day(day: date, nation: str) -> bool:
    """Monday to Friday, less the bank holidays of the nation."""
    return day.weekday() < 5 and day not in _bank_holidays(nation)


@lru_cache(maxsize=4096)
def add_working_days(day: date, count: int, nation: str) -> date:
    """The ``count``-th working day after ``day`` (``day`` itself when count is 0)."""
    current = day
    remaining = count
    while remaining > 0:
        current += timedelta(days=1)
        if is_working_day(current, nation):
            remaining -= 1
    return current


def code_deadline(event_at: datetime, working_days: int, nation: str, timezone: str) -> datetime:
    """End (23:59:59 local) of the ``working_days``-th working day after the event's local day."""
    zone = ZoneInfo(timezone)
    local_day = event_at.astimezone(zone).date()
    due_day = add_working_days(local_day, working_days, nation)
    return datetime.combine(due_day, time(23, 59, 59), tzinfo=zone)
