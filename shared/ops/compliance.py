"""The Victims' Code compliance report: every duty whose deadline falls in a date range, and the
repeat-contact figure; what a duty manager acts on.

Dates are the force's local dates, and every time in the report is given in the policy's time
zone (Europe/London), which the page states once. The report is:

- ``compliance.csv``: one row per duty due in the range: what it is in words, when, whether it
  was met, and for a breach why (in words), the task that now carries it and its assignee;
- ``repeat-contacts.csv``: one row per week: repeat contacts per 100 open crimes, overall and
  split by whether the victim had been sent an update in the previous N days, and the same
  before and after a go-live date (``shared/ops/repeat_contacts.py`` defines each figure);
- ``compliance.html``: a self-contained page (no script, no link, nothing fetched): the figures,
  the breaches to act on, messages by channel and what became of them (the Messages ledger),
  the tables, and four charts drawn with matplotlib on the Agg backend and embedded as base64
  PNG. When the run folder holds the generator's ``synthetic.json``, the page says the data are
  synthetic and how the calls in them were made.

Reading every journey is an export: a report, never a step.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared.adapters.table_layout import AUDIT, JOURNEYS, MESSAGES, TASKS, journey_from
from shared.domain.journey.duties import DutyKind
from shared.domain.journey.tasks import DELIVERY_FAILED
from shared.domain.officer_mail import MILESTONE_WORDS, reason_in_words
from shared.domain.policy import Policy
from shared.ops import repeat_contacts
from shared.ops.repeat_contacts import Comparison, Figures, Week
from shared.ports import ExportableStore

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates" / "report"
CSV_COLUMNS = (
    "crime_reference",
    "person_id",
    "duty",
    "template",
    "event_at",
    "due_by",
    "handed_at",
    "compliance",
    "what",
    "breach_reason",
    "task_id",
    "assignee",
)
REPEAT_COLUMNS = (
    "week_commencing",
    "first_day",
    "last_day",
    "period",
    "open_crimes",
    "open_crime_weeks",
    "repeat_contacts",
    "per_100_open_crimes",
    "after_update_contacts",
    "after_update_crime_weeks",
    "after_update_per_100",
    "no_update_contacts",
    "no_update_crime_weeks",
    "no_update_per_100",
)
OUTCOMES = ("met", "breached", "pending", "none")
_COLOURS = {"met": "#2e7d32", "breached": "#c62828", "pending": "#9e9e9e", "none": "#d7ccc8"}


@dataclass(frozen=True)
class DutyRow:
    crime_reference: str
    person_id: str
    duty: str
    template: str
    event_at: datetime
    due_by: datetime
    handed_at: datetime | None
    compliance: str
    due_day: date  # the deadline's local date
    role: str = "victim"
    status: str = "open"  # the duty's status (DutyStatus)
    reason: str | None = None  # why it went as it did (a task's or a suppression's reason)
    task_id: str | None = None  # the officer task that carried it
    escalation_task_id: str | None = None  # the task raised when it was breached


@dataclass(frozen=True)
class TaskInfo:
    assignee: str  # an employee id, or "team"
    assignee_email: str | None
    closed: bool


# --- words ---------------------------------------------------------------------------------------


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """``Tue 20 Oct 2026 14:05``: a time in the report's zone (the page names the zone once)."""
    return f"{moment.astimezone(zone):%a %d %b %Y %H:%M}"


def local_iso(moment: datetime | None, zone: ZoneInfo) -> str:
    """A time for the CSV: ISO 8601 in the report's zone, with that zone's offset then."""
    return "" if moment is None else moment.astimezone(zone).isoformat()


def duty_type(key: str, template: str | None) -> str:
    """What kind of duty, in words: ``ack`` is an acknowledgement, ``m:M-1`` the milestone's words."""
    try:
        kind = DutyKind.of(key)
    except ValueError:
        return key
    if kind is DutyKind.MILESTONE:
        words = MILESTONE_WORDS.get(template or "")
        return f"update: {words}" if words else "update on the case"
    return {
        DutyKind.ACKNOWLEDGE: "acknowledgement",
        DutyKind.OFFICER: "new officer in charge",
        DutyKind.OUTCOME: "outcome of the investigation",
        DutyKind.CHECKIN: "check-in",
        DutyKind.ATTENDANCE: "officer's visit",
    }[kind]


def duty_words(key: str, template: str | None, zone: ZoneInfo) -> str:
    """A duty in words, with what tells it apart (``update: the suspect was arrested (milestone M-7)``)."""
    words = duty_type(key, template)
    rest = key.partition(":")[2]
    try:
        kind: DutyKind | None = DutyKind.of(key)
    except ValueError:
        kind = None
    if not rest or kind is None or kind is DutyKind.ACKNOWLEDGE:
        return words
    if kind is DutyKind.OFFICER:
        return f"{words} (employee {rest})"
    if kind is DutyKind.MILESTONE:
        return f"{words} (milestone {rest})"
    if kind is DutyKind.OUTCOME:
        return f"{words} (Home Office outcome {rest})"
    if kind is DutyKind.CHECKIN:
        return f"{words} {rest}"
    incident, _, at = rest.partition(":")
    try:
        return f"{words} at {local_time(datetime.fromisoformat(at), zone)} (incident {incident})"
    except ValueError:
        return f"{words} (incident {incident})"


_SUPPRESSED = {
    "no_consent": "the caller did not agree to be sent updates",
    "no_valid_address": "there is no valid mobile number or email address to send to",
    "opted_out": "the {person} chose not to be sent updates",
}


def breach_reason(row: DutyRow, policy: Policy, zone: ZoneInfo) -> str:
    """Why a duty was not met by its deadline, in words."""
    person = "caller" if row.role == "caller" else "victim"
    reason = row.reason or ""
    if row.handed_at is not None and row.handed_at > row.due_by:
        return f"the message was handed over after the deadline, at {local_time(row.handed_at, zone)}"
    if row.status == "tasked":
        done = f"no contact with the {person} was logged on the officer task by the deadline"
        return (
            f"{done}; the officer had it because {reason_in_words(reason, person, policy)}"
            if reason
            else done
        )
    if row.status == "queued":
        return "a message was still waiting to be sent at the deadline"
    if row.status == "waiting":
        return "the message was still waiting for updates to join it at the deadline"
    if row.status == "suppressed":
        words = _SUPPRESSED.get(reason)
        if words is None:
            words = reason_in_words(reason, person, policy) if reason else "it was stopped"
        return "no message could be sent: " + words.format(person=person)
    if row.status == "discharged":
        return f"nothing reached the {person} by the deadline; an officer logged contact with them afterwards"
    if row.status == "open":
        return "nothing had been decided for it by the deadline"
    return f"it was {row.status.replace('_', ' ')} ({reason.replace('_', ' ')})" if reason else row.status


def assignee_words(task: TaskInfo | None, policy: Policy) -> str:
    if task is None:
        return ""
    if task.assignee == "team":
        return f"team mailbox {policy.force.team_mailbox}"
    return f"officer {task.assignee}" + (f" {task.assignee_email}" if task.assignee_email else "")


# --- reading the state ---------------------------------------------------------------------------


def duties_due(tables: ExportableStore, first: date, last: date, zone: ZoneInfo) -> list[DutyRow]:
    """Every duty with a deadline on a local date from ``first`` to ``last`` (inclusive)."""
    rows: list[DutyRow] = []
    for entity in tables.export(JOURNEYS):
        journey = journey_from(entity)
        for duty in journey.duties.values():
            if duty.due_by is None:
                continue
            day = duty.due_by.astimezone(zone).date()
            if first <= day <= last:
                rows.append(
                    DutyRow(
                        journey.crime_reference,
                        journey.person_id,
                        duty.key,
                        duty.template,
                        duty.event_at,
                        duty.due_by,
                        duty.handed_at,
                        duty.compliance.value,
                        day,
                        role=journey.role,
                        status=duty.status.value,
                        reason=duty.reason,
                        task_id=duty.task_id,
                        escalation_task_id=duty.escalation_task_id,
                    )
                )
    rows.sort(key=lambda r: (r.due_by, r.crime_reference, r.person_id, r.duty))
    return rows


def read_tasks(tables: ExportableStore) -> dict[str, TaskInfo]:
    """Every officer task: its assignee, and whether it is closed."""
    tasks: dict[str, TaskInfo] = {}
    for entity in tables.export(TASKS):
        task = json.loads(str(entity.properties["task"]))
        closed = entity.properties.get("closed_at") is not None
        tasks[entity.row_key] = TaskInfo(str(task["assignee"]), task.get("assignee_email"), closed)
    return tasks


CHANNELS = ("email", "sms")
# What became of a message, as the Messages ledger has it (in the order of the page's table).
LEDGER_OUTCOMES = (
    "handed_over",
    "delivered",
    "undelivered",
    "awaiting_report",
    "refused",
    "unknown",
    "not_sent",
)
_BY_STATUS = {
    "sent": ("handed_over", "awaiting_report"),
    "delivered": ("handed_over", "delivered"),
    "undelivered": ("handed_over", "undelivered"),
    "failed": ("refused",),
    "unknown": ("unknown",),
    "suppressed": ("not_sent",),
}


def message_counts(
    tables: ExportableStore, first: date, last: date, zone: ZoneInfo
) -> dict[str, Counter[str]]:
    """Messages by channel (email, sms, and the total) whose hand-over (or decision) fell in the
    range, by what became of them; every count is there, zero when none."""
    counts: dict[str, Counter[str]] = {channel: Counter() for channel in (*CHANNELS, "total")}
    for entity in tables.export(MESSAGES):
        p = entity.properties
        when = next(
            (
                p[name]
                for name in ("sent_at", "decided_at", "first_attempt_at")
                if isinstance(p.get(name), datetime)
            ),
            None,
        )
        channel = str(p.get("channel") or "")
        if when is None or channel not in counts or not first <= when.astimezone(zone).date() <= last:
            continue
        for outcome in _BY_STATUS.get(str(p.get("status")), ()):
            counts[channel][outcome] += 1
            counts["total"][outcome] += 1
    for counter in counts.values():
        for outcome in LEDGER_OUTCOMES:
            counter[outcome] += 0
    return counts


def after_failures(tables: ExportableStore, first: date, last: date, zone: ZoneInfo) -> dict[str, int]:
    """What the service did, in the range, after a message was reported not delivered: messages
    sent again on the other channel (the audit's ``fallback: delivery_failed``, once per recipient
    and decision, though it is written for each duty), and ``delivery_failed`` officer tasks, with
    how many of those are still open."""

    def within(moment: Any) -> bool:
        return isinstance(moment, datetime) and first <= moment.astimezone(zone).date() <= last

    fallbacks = {
        (entity.partition_key, entity.properties.get("person_id"), entity.properties["at"])
        for entity in tables.export(AUDIT)
        if entity.properties.get("decision") == "fallback"
        and entity.properties.get("reason") == DELIVERY_FAILED
        and within(entity.properties.get("at"))
    }
    tasks = open_tasks = 0
    for entity in tables.export(TASKS):
        task = json.loads(str(entity.properties["task"]))
        created = datetime.fromisoformat(str(task.get("created_at")).replace("Z", "+00:00"))
        if str(task.get("reason")).split(":")[0] == DELIVERY_FAILED and within(created):
            tasks += 1
            open_tasks += entity.properties.get("closed_at") is None
    return {"fallbacks": len(fallbacks), "tasks": tasks, "open_tasks": open_tasks}


def read_synthetic_marker(folder: Path | None) -> dict[str, Any] | None:
    """The generator's ``synthetic.json`` in a run folder, if the run replayed generated feeds."""
    from shared.local.generate import SYNTHETIC_MARKER

    if folder is None or not (folder / SYNTHETIC_MARKER).is_file():
        return None
    try:
        marker = json.loads((folder / SYNTHETIC_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"synthetic": True}  # unreadable, but there: the data are still synthetic
    return marker if isinstance(marker, dict) else {"synthetic": True}


def compliance_figure(counts: Counter[str]) -> float | None:
    decided = counts["met"] + counts["breached"]
    return counts["met"] / decided if decided else None


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


# --- charts ------------------------------------------------------------------------------


def _png(figure: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(height: float = 4.0) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(9.0, height), layout="constrained")


def _no_data(figure: Figure, title: str) -> Figure:
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.text(0.5, 0.5, "no duties in range", ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()
    return figure


def chart_by_type(rows: list[DutyRow]) -> str:
    """Duties by type (in words), stacked by compliance."""
    title = "Duties by type"
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        counts.setdefault(duty_type(row.duty, row.template), Counter())[row.compliance] += 1
    templates = sorted(counts, key=lambda t: (sum(counts[t].values()), t))
    figure = _figure(max(3.0, 1.2 + 0.35 * len(templates)))
    if not rows:
        return _png(_no_data(figure, title))
    axes = figure.add_subplot()
    left = [0] * len(templates)
    for outcome in OUTCOMES:
        widths = [counts[t][outcome] for t in templates]
        if any(widths):
            axes.barh(templates, widths, left=left, label=outcome, color=_COLOURS[outcome])
            left = [a + b for a, b in zip(left, widths, strict=True)]
    axes.set_title(title)
    axes.set_xlabel("duties with a deadline in range")
    axes.legend(loc="lower right")
    return _png(figure)


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly(rows: list[DutyRow]) -> list[tuple[date, Counter[str]]]:
    """Counts by week (Monday of the deadline's local date), every week of the range present."""
    by_week: dict[date, Counter[str]] = {}
    for row in rows:
        by_week.setdefault(_week(row.due_day), Counter())[row.compliance] += 1
    return sorted(by_week.items())


def chart_by_week(weeks: list[tuple[date, Counter[str]]]) -> str:
    """Met against breached, week by week of the deadline."""
    title = "Met against breached, by week of the deadline"
    figure = _figure()
    if not weeks:
        return _png(_no_data(figure, title))
    axes = figure.add_subplot()
    positions = list(range(len(weeks)))
    width = 0.4
    met = [counts["met"] for _, counts in weeks]
    breached = [counts["breached"] for _, counts in weeks]
    axes.bar([p - width / 2 for p in positions], met, width, label="met", color=_COLOURS["met"])
    axes.bar(
        [p + width / 2 for p in positions], breached, width, label="breached", color=_COLOURS["breached"]
    )
    axes.set_xticks(positions, [f"w/c {start:%d %b %Y}" for start, _ in weeks], rotation=45, ha="right")
    axes.set_ylabel("duties")
    axes.set_title(title)
    axes.legend()
    return _png(figure)


def hours_to_message(rows: list[DutyRow]) -> list[float]:
    """Hours from each duty's event to the hand-over of its message (duties with a message)."""
    return [
        (row.handed_at - row.event_at).total_seconds() / 3600 for row in rows if row.handed_at is not None
    ]


def chart_time_to_message(hours: list[float]) -> str:
    title = "Time from event to message"
    figure = _figure()
    if not hours:
        return _png(_no_data(figure, title))
    axes = figure.add_subplot()
    axes.hist(hours, bins=min(40, max(5, len(hours) // 5)), color="#1565c0")
    middle = median(hours)
    axes.axvline(middle, color="#000000", linestyle="--", label=f"median {middle:.1f} h")
    axes.set_xlabel("hours from the event to the message being handed over")
    axes.set_ylabel("duties")
    axes.set_title(title)
    axes.legend()
    return _png(figure)


_SERIES = (
    ("overall", "all open crimes", "#1565c0", "-"),
    ("updated", "sent an update in the previous days", "#2e7d32", "--"),
    ("not_updated", "no update in the previous days", "#c62828", ":"),
)


def chart_repeat_contacts(weeks: list[Week], go_live: date | None, update_days: int) -> str:
    """Repeat contacts per 100 open crimes, week by week: overall and split by recent update."""
    title = "Repeat contacts per 100 open crimes a week"
    figure = _figure()
    if not weeks:
        axes = figure.add_subplot()
        axes.set_title(title)
        axes.text(0.5, 0.5, "no open crimes in range", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return _png(figure)
    axes = figure.add_subplot()
    positions = list(range(len(weeks)))
    for name, label, colour, style in _SERIES:
        values = [getattr(week.figures, name).per_100 for week in weeks]
        shown = [float("nan") if value is None else value for value in values]
        axes.plot(
            positions,
            shown,
            style,
            marker="o",
            color=colour,
            label=label.replace("previous days", f"previous {update_days} days"),
        )
    if go_live is not None:
        for index, week in enumerate(weeks):
            if week.monday <= go_live <= week.monday + timedelta(days=6):
                spot = index - 0.5 + go_live.weekday() / 7
                axes.axvline(spot, color="#000000", linestyle="--", linewidth=1)
                axes.annotate("go-live", (spot, 1), xycoords=("data", "axes fraction"), ha="left", va="top")
    axes.set_xticks(positions, [f"w/c {week.monday:%d %b %Y}" for week in weeks], rotation=45, ha="right")
    axes.set_ylabel("calls per 100 open crimes a week")
    axes.set_ylim(bottom=0)
    axes.set_title(title)
    axes.legend()
    return _png(figure)


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplianceReport:
    csv_path: Path
    html_path: Path
    duties: int
    counts: dict[str, int]
    compliance: float | None
    repeat_csv_path: Path | None = None
    repeat: Figures | None = None  # over the whole period (None: no open crime in it)
    comparison: Comparison | None = None
    update_days: int = repeat_contacts.DEFAULT_UPDATE_DAYS
    synthetic: bool = False


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _change(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0%}"


def _figures(figures: Figures | None) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {
        "open_crimes": figures.open_crimes,
        **{
            name: {
                "contacts": rate.contacts,
                "crime_weeks": f"{rate.crime_weeks:.1f}",
                "per_100": _rate(rate.per_100),
            }
            for name, rate in (
                ("overall", figures.overall),
                ("updated", figures.updated),
                ("not_updated", figures.not_updated),
            )
        },
    }


def _repeat_csv_row(name: str, first: date, last: date, label: str, figures: Figures) -> list[str]:
    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    return [
        name,
        first.isoformat(),
        last.isoformat(),
        label,
        str(figures.open_crimes),
        f"{figures.overall.crime_weeks:.3f}",
        str(figures.overall.contacts),
        number(figures.overall.per_100),
        str(figures.updated.contacts),
        f"{figures.updated.crime_weeks:.3f}",
        number(figures.updated.per_100),
        str(figures.not_updated.contacts),
        f"{figures.not_updated.crime_weeks:.3f}",
        number(figures.not_updated.per_100),
    ]


def _write_repeat_csv(
    path: Path,
    weeks: Iterable[Week],
    whole: Figures | None,
    comparison: Comparison | None,
    zone: ZoneInfo,
) -> None:
    """One row per week, then the whole period, then before and after go-live (when given)."""

    def days(figures: Figures) -> tuple[date, date]:
        return figures.start.astimezone(zone).date(), (figures.end - timedelta(microseconds=1)).astimezone(
            zone
        ).date()

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPEAT_COLUMNS)
        for week in weeks:
            label = "part week" if week.part else "week"
            writer.writerow(
                _repeat_csv_row(week.monday.isoformat(), week.first, week.last, label, week.figures)
            )
        if whole is not None:
            writer.writerow(_repeat_csv_row("", *days(whole), "whole period", whole))
        if comparison is not None:
            for label, side in (("before go-live", comparison.before), ("from go-live", comparison.after)):
                if side is not None:
                    writer.writerow(_repeat_csv_row("", *days(side), label, side))


def _table(rows: list[DutyRow], key: Any) -> list[dict[str, Any]]:
    groups: dict[Any, Counter[str]] = {}
    for row in rows:
        groups.setdefault(key(row), Counter())[row.compliance] += 1
    return [
        {
            "name": name,
            "due": sum(counts.values()),
            **{outcome: counts[outcome] for outcome in OUTCOMES},
            "compliance": _percent(compliance_figure(counts)),
        }
        for name, counts in sorted(groups.items())
    ]


def write_report(
    tables: ExportableStore,
    first: date,
    last: date,
    out: Path,
    zone: ZoneInfo,
    generated_at: datetime,
    *,
    policy: Policy | None = None,
    update_days: int = repeat_contacts.DEFAULT_UPDATE_DAYS,
    go_live: date | None = None,
    synthetic: dict[str, Any] | None = None,
) -> ComplianceReport:
    """Write compliance.csv, repeat-contacts.csv and compliance.html under ``out``."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    policy = policy or Policy()
    rows = duties_due(tables, first, last, zone)
    tasks = read_tasks(tables)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = out / "compliance.csv", out / "compliance.html"
    repeat_path = out / "repeat-contacts.csv"

    def task_of(row: DutyRow) -> str | None:
        return row.escalation_task_id or row.task_id

    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            task_id = task_of(row)
            writer.writerow(
                [
                    row.crime_reference,
                    row.person_id,
                    row.duty,
                    row.template,
                    local_iso(row.event_at, zone),
                    local_iso(row.due_by, zone),
                    local_iso(row.handed_at, zone),
                    row.compliance,
                    duty_words(row.duty, row.template, zone),
                    breach_reason(row, policy, zone) if row.compliance == "breached" else "",
                    task_id or "",
                    assignee_words(tasks.get(task_id) if task_id else None, policy),
                ]
            )

    window = timedelta(days=update_days)
    inputs = repeat_contacts.read_inputs(tables, policy.storm)
    span = repeat_contacts.period(inputs, first, last, zone)
    weeks: list[Week] = []
    whole: Figures | None = None
    comparison: Comparison | None = None
    if span is not None:
        weeks = repeat_contacts.by_week(inputs, *span, zone, window)
        whole = repeat_contacts.measure(inputs.crimes, inputs.contacts, inputs.updates, *span, window)
        if go_live is not None:
            comparison = repeat_contacts.compare(inputs, *span, go_live, zone, window)
    _write_repeat_csv(repeat_path, weeks, whole, comparison, zone)

    # Those whose task is still open first: they are the ones to act on now.
    breaches = sorted(
        (
            _breach(row, tasks.get(task_of(row) or ""), task_of(row), policy, zone)
            for row in rows
            if row.compliance == "breached"
        ),
        key=lambda breach: breach["task_state"] != "open",
    )

    counts = Counter(row.compliance for row in rows)
    figure = compliance_figure(counts)
    by_week_counts = weekly(rows)
    hours = hours_to_message(rows)
    environment = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    data_span = (
        None if span is None else {"first": local_time(span[0], zone), "last": local_time(span[1], zone)}
    )
    html = environment.get_template("compliance.html.j2").render(
        first=first.isoformat(),
        last=last.isoformat(),
        zone=str(zone),
        generated_at=local_time(generated_at, zone),
        duties=len(rows),
        counts={outcome: counts[outcome] for outcome in OUTCOMES},
        compliance=_percent(figure),
        messages=len(hours),
        median_hours=f"{median(hours):.1f}" if hours else "n/a",
        by_type=_table(rows, lambda r: duty_type(r.duty, r.template)),
        by_week=[
            {**row, "name": f"w/c {row['name']:%d %b %Y}"} for row in _table(rows, lambda r: _week(r.due_day))
        ],
        breaches=breaches,
        channels=[
            {"name": name, **{outcome: counter[outcome] for outcome in LEDGER_OUTCOMES}}
            for name, counter in message_counts(tables, first, last, zone).items()
        ],
        after_failures=after_failures(tables, first, last, zone),
        repeat={
            "span": data_span,
            "update_days": update_days,
            "categories": policy.storm.update_request_categories,
            "whole": _figures(whole),
            "weeks": [
                {
                    "name": f"w/c {week.monday:%d %b %Y}" + (" (part week)" if week.part else ""),
                    **(_figures(week.figures) or {}),
                }
                for week in weeks
            ],
            "go_live": None
            if comparison is None
            else {
                "day": f"{comparison.go_live:%a %d %b %Y}",
                "before": _figures(comparison.before),
                "after": _figures(comparison.after),
                "change": {
                    name: _change(comparison.change(name)) for name in ("overall", "updated", "not_updated")
                },
            },
        },
        synthetic=_synthetic_words(synthetic, go_live is not None),
        charts={
            "repeat_contacts": chart_repeat_contacts(weeks, go_live, update_days),
            "by_type": chart_by_type(rows),
            "by_week": chart_by_week(by_week_counts),
            "time_to_message": chart_time_to_message(hours),
        },
    )
    html_path.write_text(html, encoding="utf-8")
    return ComplianceReport(
        csv_path,
        html_path,
        len(rows),
        dict(counts),
        figure,
        repeat_csv_path=repeat_path,
        repeat=whole,
        comparison=comparison,
        update_days=update_days,
        synthetic=synthetic is not None,
    )


def _breach(
    row: DutyRow, task: TaskInfo | None, task_id: str | None, policy: Policy, zone: ZoneInfo
) -> dict[str, str]:
    """A breach as the page lists it: whose, which duty, when it was due, why, and who has it now."""
    return {
        "crime_reference": row.crime_reference,
        "person_id": row.person_id,
        "who": row.role,
        "duty": duty_words(row.duty, row.template, zone),
        "due": local_time(row.due_by, zone),
        "reason": breach_reason(row, policy, zone),
        "task_id": task_id or "none",
        "assignee": assignee_words(task, policy) if task is not None else "not recorded",
        "task_state": "" if task is None else "closed" if task.closed else "open",
    }


def repeat_lines(report: ComplianceReport) -> list[str]:
    """The repeat-contact figures in a line or two, for the command line."""
    whole = report.repeat
    if whole is None:
        return ["repeat contacts: no crime open in range"]
    days = report.update_days

    def rate(figures: Figures, name: str) -> str:
        chosen = getattr(figures, name)
        return f"{_rate(chosen.per_100)} ({chosen.contacts} calls)"

    lines = [
        f"repeat contacts: {rate(whole, 'overall')} per 100 open crimes a week; "
        f"after an update in the previous {days} days {rate(whole, 'updated')}, "
        f"without {rate(whole, 'not_updated')}"
    ]
    comparison = report.comparison
    if comparison is not None:
        before = "n/a" if comparison.before is None else rate(comparison.before, "overall")
        after = "n/a" if comparison.after is None else rate(comparison.after, "overall")
        lines.append(
            f"before go-live {comparison.go_live}: {before}; from go-live: {after}; "
            f"change {_change(comparison.change())}"
        )
    if report.synthetic:
        lines.append("the data are synthetic (synthetic.json in the run folder)")
    return lines


def _synthetic_words(marker: dict[str, Any] | None, go_live: bool) -> str | None:
    """What the page says of synthetic data (None: the data are not known to be synthetic)."""
    if marker is None:
        return None
    arguments = marker.get("arguments") or {}
    made = "generated by python -m shared.local generate"
    if {"crimes", "days", "seed"} <= set(arguments):
        made += f" ({arguments['crimes']} crimes over {arguments['days']} days, seed {arguments['seed']})"
    model = (marker.get("behaviour_model") or {}).get("summary")
    words = f"These data are synthetic: {made}, not a force's records."
    if model:
        words += f" The victims' calls for an update come from its behaviour model: {model}"
    if go_live:
        words += (
            " The service ran from the first day of the sample, so a difference before and after"
            " the go-live date is not an effect of going live."
        )
    return words
