"""The Victims' Code compliance report: every duty whose deadline falls in a date range.

Dates are the force's local dates (the policy's time zone). The report is a CSV,
one row per duty, and a self-contained HTML page: the overall figure, tables, and
three charts drawn with matplotlib on the Agg backend and embedded as base64 PNG.
Reading every journey is an export: a report, never a step.
"""

from __future__ import annotations

import base64
import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared.adapters.table_layout import JOURNEYS, journey_from
from shared.ops.context import ExportableStore

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

    def csv(self) -> list[str]:
        return [
            self.crime_reference,
            self.person_id,
            self.duty,
            self.template,
            self.event_at.isoformat(),
            self.due_by.isoformat(),
            self.handed_at.isoformat() if self.handed_at else "",
            self.compliance,
        ]


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
                    )
                )
    rows.sort(key=lambda r: (r.due_by, r.crime_reference, r.person_id, r.duty))
    return rows


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
    """Duties by type (template), stacked by compliance."""
    title = "Duties by type"
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        counts.setdefault(row.template, Counter())[row.compliance] += 1
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


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplianceReport:
    csv_path: Path
    html_path: Path
    duties: int
    counts: dict[str, int]
    compliance: float | None


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
    tables: ExportableStore, first: date, last: date, out: Path, zone: ZoneInfo, generated_at: datetime
) -> ComplianceReport:
    """Write compliance.csv and compliance.html under ``out``."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    rows = duties_due(tables, first, last, zone)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = out / "compliance.csv", out / "compliance.html"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(row.csv() for row in rows)

    counts = Counter(row.compliance for row in rows)
    figure = compliance_figure(counts)
    weeks = weekly(rows)
    hours = hours_to_message(rows)
    environment = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html = environment.get_template("compliance.html.j2").render(
        first=first.isoformat(),
        last=last.isoformat(),
        zone=str(zone),
        generated_at=generated_at.isoformat(timespec="seconds"),
        duties=len(rows),
        counts={outcome: counts[outcome] for outcome in OUTCOMES},
        compliance=_percent(figure),
        messages=len(hours),
        median_hours=f"{median(hours):.1f}" if hours else "n/a",
        by_type=_table(rows, lambda r: r.template),
        by_week=[
            {**row, "name": f"w/c {row['name']:%d %b %Y}"} for row in _table(rows, lambda r: _week(r.due_day))
        ],
        charts={
            "by_type": chart_by_type(rows),
            "by_week": chart_by_week(weeks),
            "time_to_message": chart_time_to_message(hours),
        },
    )
    html_path.write_text(html, encoding="utf-8")
    return ComplianceReport(csv_path, html_path, len(rows), dict(counts), figure)
