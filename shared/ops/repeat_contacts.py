"""Repeat contact: victims phoning the control room for an update, per 100 open crimes a week.

The figure a force's board asks of the service ("repeat contact from victims into the
control room cut by ~60%"), measured from the service's own state:

- A **repeat contact** is a STORM incident whose opening category is one of the policy's
  ``storm.update_request_categories`` (compared as words, as every STORM category is) and
  that names a crime reference. It counts in the week it was opened, whatever the crime's
  state, since it is a call the control room took.
- An **open crime** is a Niche crime from its recording until its outcome was decided (a
  crime with no outcome is open until the end of the data). It counts for the part of a
  week it was open, so the denominator is open crime-weeks: a crime open all week is one,
  a crime recorded on Thursday is three sevenths. The figure is ``100 × repeat contacts ÷
  open crime-weeks``: repeat contacts per 100 open crimes a week.
- **Recently updated**: a message was handed over to the crime's victim (or their
  guardian) in the ``window`` before the call: a row of the crime's Messages ledger whose
  status is ``sent``, ``delivered`` or ``undelivered``, at its ``sent_at``. The open time
  is split the same way (open within ``window`` after such a message, or not), so each
  side of the split is a rate of its own: calls from recently updated crimes per 100 such
  crime-weeks, and calls from the others per 100 of theirs.
- Weeks run Monday to Sunday on Europe/London dates; a report's first and last weeks may
  be part weeks, which the exposure measure keeps comparable.

Reading the whole Snapshots and Messages tables is an export: a report, never a step.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.adapters.table_layout import MESSAGES, SNAPSHOTS
from shared.domain.policy import StormPolicy
from shared.ports import ExportableStore

WEEK_SECONDS = 7 * 24 * 3600
DEFAULT_UPDATE_DAYS = 14
# Ledger statuses of a message handed over to the provider (delivery reports move ``sent`` on to
# ``delivered`` or ``undelivered``; either way the message went).
HANDED_OVER = frozenset({"sent", "delivered", "undelivered"})


@dataclass(frozen=True)
class Crime:
    reference: str
    recorded_at: datetime
    closed_at: datetime | None  # the outcome's decision; None while open


@dataclass(frozen=True)
class RepeatContact:
    incident_number: str
    crime_reference: str
    at: datetime  # when the incident was opened
    category: str


@dataclass(frozen=True)
class Rate:
    contacts: int
    crime_weeks: float  # open crime-weeks: the exposure

    @property
    def per_100(self) -> float | None:
        return 100 * self.contacts / self.crime_weeks if self.crime_weeks > 0 else None


@dataclass(frozen=True)
class Figures:
    """Repeat contacts over one period [start, end)."""

    start: datetime
    end: datetime
    open_crimes: int  # crimes open at some moment of the period
    overall: Rate
    updated: Rate  # a message handed over to the victim within the window before
    not_updated: Rate


@dataclass(frozen=True)
class Week:
    monday: date
    first: date  # the week's first and last dates within the period (a part week at either end)
    last: date
    figures: Figures

    @property
    def part(self) -> bool:
        return (self.last - self.first).days < 6


@dataclass(frozen=True)
class Comparison:
    """Before and after the service went live (the go-live day belongs to after)."""

    go_live: date
    before: Figures | None  # None: no part of the period lies on that side
    after: Figures | None

    def change(self, pick: str = "overall") -> float | None:
        """The relative change of the rate, after against before (-0.6: cut by 60%)."""
        if self.before is None or self.after is None:
            return None
        was: float | None = getattr(self.before, pick).per_100
        now: float | None = getattr(self.after, pick).per_100
        if was is None or now is None or was == 0:
            return None
        return now / was - 1


@dataclass
class Inputs:
    """What the figure is made of, as read from the state."""

    crimes: list[Crime] = field(default_factory=list)
    contacts: list[RepeatContact] = field(default_factory=list)
    # crime reference -> when a message was handed over to its victims (sorted)
    updates: dict[str, list[datetime]] = field(default_factory=dict)
    earliest: datetime | None = None  # the first and last moments the feeds speak of
    latest: datetime | None = None


# --- the computation (pure) ---------------------------------------------------------------------


def _merged(starts: Sequence[datetime], window: timedelta) -> list[tuple[datetime, datetime]]:
    """The times within ``window`` after any of ``starts`` (sorted), as disjoint intervals."""
    spans: list[tuple[datetime, datetime]] = []
    for at in starts:
        if spans and at <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], at + window))
        else:
            spans.append((at, at + window))
    return spans


def _overlap(a: datetime, b: datetime, c: datetime, d: datetime) -> float:
    return max(0.0, (min(b, d) - max(a, c)).total_seconds())


def recently_updated(updates: Sequence[datetime], at: datetime, window: timedelta) -> bool:
    """Whether one of ``updates`` (sorted) was handed over in the ``window`` up to ``at``."""
    index = bisect_right(updates, at)
    return index > 0 and at - updates[index - 1] < window


def measure(
    crimes: Iterable[Crime],
    contacts: Iterable[RepeatContact],
    updates: Mapping[str, Sequence[datetime]],
    start: datetime,
    end: datetime,
    window: timedelta,
) -> Figures:
    """Repeat contacts per 100 open crime-weeks over [start, end), overall and split by recent update."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # elapsed time, whatever the zones
    open_crimes = 0
    exposure = exposure_updated = 0.0
    for crime in crimes:
        until = end if crime.closed_at is None else min(crime.closed_at, end)
        since = max(crime.recorded_at, start)
        if since >= until:
            continue
        open_crimes += 1
        exposure += (until - since).total_seconds()
        for first, last in _merged(updates.get(crime.reference, ()), window):
            exposure_updated += _overlap(since, until, first, last)
    counted = [contact for contact in contacts if start <= contact.at < end]
    updated = sum(
        recently_updated(updates.get(contact.crime_reference, ()), contact.at, window) for contact in counted
    )
    weeks, weeks_updated = exposure / WEEK_SECONDS, exposure_updated / WEEK_SECONDS
    return Figures(
        start=start,
        end=end,
        open_crimes=open_crimes,
        overall=Rate(len(counted), weeks),
        updated=Rate(updated, weeks_updated),
        not_updated=Rate(len(counted) - updated, weeks - weeks_updated),
    )


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of a local date, in UTC (two times in one ZoneInfo subtract as wall-clock times,
    which across a change of the clocks is an hour out)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def period(inputs: Inputs, first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The report's dates [first, last] as times, within what the feeds speak of (None: nothing)."""
    start, end = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
    if inputs.earliest is not None:
        start = max(start, inputs.earliest)
    if inputs.latest is not None:
        end = min(end, inputs.latest)
    if inputs.earliest is None or start >= end:
        return None
    return start, end


def by_week(inputs: Inputs, start: datetime, end: datetime, zone: ZoneInfo, window: timedelta) -> list[Week]:
    """The figures week by week (Monday to Sunday, London dates) from ``start`` to ``end``."""
    weeks: list[Week] = []
    first_day = start.astimezone(zone).date()
    last_day = (end - timedelta(microseconds=1)).astimezone(zone).date()
    monday = first_day - timedelta(days=first_day.weekday())
    while monday <= last_day:
        sunday = monday + timedelta(days=6)
        since = max(start, local_midnight(monday, zone))
        until = min(end, local_midnight(sunday + timedelta(days=1), zone))
        figures = measure(inputs.crimes, inputs.contacts, inputs.updates, since, until, window)
        weeks.append(Week(monday, max(monday, first_day), min(sunday, last_day), figures))
        monday += timedelta(days=7)
    return weeks


def compare(
    inputs: Inputs, start: datetime, end: datetime, go_live: date, zone: ZoneInfo, window: timedelta
) -> Comparison:
    """The figures before the go-live day and from it on, within [start, end)."""
    cut = local_midnight(go_live, zone)

    def side(since: datetime, until: datetime) -> Figures | None:
        if since >= until:
            return None
        return measure(inputs.crimes, inputs.contacts, inputs.updates, since, until, window)

    return Comparison(go_live, side(start, min(cut, end)), side(max(cut, start), end))


# --- reading the state ----------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def reference_key(reference: str) -> str:
    """A crime reference as the figure matches it: a call handler's ``hu/000123/26 `` is ``HU/000123/26``."""
    return reference.strip().upper()


def _crime(record: dict[str, Any]) -> Crime | None:
    recorded = _time(record.get("recorded_at"))
    reference = record.get("crime_reference")
    if recorded is None or not isinstance(reference, str):
        return None
    reference = reference_key(reference)
    closed = None
    if record.get("status") == "finalised":
        outcome = record.get("outcome") or {}
        closed = _time(outcome.get("decided_at")) or _time(record.get("modified_at"))
    return Crime(reference, recorded, closed)


def read_inputs(tables: ExportableStore, storm: StormPolicy) -> Inputs:
    """The crimes (latest Niche snapshots), repeat contacts (latest STORM snapshots) and the
    hand-over times of each crime's messages (the Messages ledger), matched by ``reference_key``."""
    inputs = Inputs()
    moments: list[datetime] = []
    for entity in tables.export(SNAPSHOTS):
        if entity.row_key not in ("niche", "storm"):
            continue  # a crime link, kept beside an incident's snapshot
        record = json.loads(str(entity.properties["record"]))
        if (modified := _time(record.get("modified_at"))) is not None:
            moments.append(modified)
        if entity.row_key == "niche":
            if (crime := _crime(record)) is not None:
                inputs.crimes.append(crime)
                moments.append(crime.recorded_at)
            continue
        opened = _time(record.get("opened_at"))
        category = record.get("opening_category")
        reference = record.get("crime_reference")
        if opened is not None:
            moments.append(opened)
        if opened is not None and reference and storm.is_update_request(category):
            inputs.contacts.append(
                RepeatContact(
                    str(record.get("incident_number")), reference_key(str(reference)), opened, str(category)
                )
            )
    for entity in tables.export(MESSAGES):
        sent = _time(entity.properties.get("sent_at"))
        if str(entity.properties.get("status")) in HANDED_OVER and sent is not None:
            inputs.updates.setdefault(reference_key(entity.partition_key), []).append(sent)
    for times in inputs.updates.values():
        times.sort()
    inputs.crimes.sort(key=lambda crime: (crime.recorded_at, crime.reference))
    inputs.contacts.sort(key=lambda contact: (contact.at, contact.incident_number))
    if moments:
        inputs.earliest, inputs.latest = min(moments), max(moments)
    return inputs
