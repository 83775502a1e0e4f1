"""Quiet hours (journey-rules.md §8), in the force's local time."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.domain.policy import Policy


def in_quiet_hours(at: datetime, policy: Policy) -> bool:
    """True when an SMS must not be sent (by default 20:00 to 08:00 Europe/London)."""
    start, end = policy.timing.quiet_hours_start, policy.timing.quiet_hours_end
    hour = at.astimezone(ZoneInfo(policy.deadlines.timezone)).hour
    if start == end:
        return False
    if start > end:  # the quiet spell crosses midnight
        return hour >= start or hour < end
    return start <= hour < end


def quiet_hours_end(at: datetime, policy: Policy) -> datetime:
    """The first moment after ``at`` when quiet hours are over (08:00 local by default)."""
    zone = ZoneInfo(policy.deadlines.timezone)
    local = at.astimezone(zone)
    candidate = datetime.combine(local.date(), time(policy.timing.quiet_hours_end), tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(
            local.date() + timedelta(days=1), time(policy.timing.quiet_hours_end), tzinfo=zone
        )
    return candidate


def in_working_hours(at: datetime, policy: Policy) -> bool:
    """Monday to Friday, 08:00 to 18:00 local, less bank holidays: when a silent feed is news."""
    from shared.domain.deadlines import is_working_day

    local = at.astimezone(ZoneInfo(policy.deadlines.timezone))
    return is_working_day(local.date(), policy.deadlines.nation) and 8 <= local.hour < 18
