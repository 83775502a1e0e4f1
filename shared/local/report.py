"""What a local run shows a person: a progress bar and a readable summary."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm


@contextmanager
def progress_bar() -> Iterator[Callable[[datetime, datetime, datetime], None]]:
    """A progress bar over simulated time (silent when stderr is not a terminal)."""
    bar: tqdm[Any] | None = None

    def update(start: datetime, now: datetime, end: datetime) -> None:
        nonlocal bar
        total = max(1, int((end - start).total_seconds() // 3600))
        if bar is None:
            bar = tqdm(total=total, unit="h", desc="simulated time", disable=None, leave=True)
        bar.n = min(total, int((now - start).total_seconds() // 3600))
        bar.set_postfix_str(now.strftime("%Y-%m-%d %H:%M"), refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def _table(title: str, counts: dict[str, int]) -> list[str]:
    lines = [f"  {title}:"]
    if not counts:
        return [*lines, "    (none)"]
    width = max(len(k) for k in counts)
    lines += [f"    {key.ljust(width)}  {value:>7}" for key, value in counts.items()]
    return lines


def format_summary(summary: dict[str, Any], out: Path) -> str:
    records = summary["records"]
    duties = summary["duties"]
    compliance = summary["compliance"]
    mail = summary["officer_mail"]
    delivery = summary["delivery"]
    lines = [
        "Victim Updates — local run",
        f"  simulated clock:   {summary['clock']['start']}  →  {summary['clock']['end']}",
        f"  records in:        Niche {records['niche']}, STORM {records['storm']}"
        f" ({records['quarantined']} quarantined)",
        f"  messages sent:     email {summary['messages']['email']}, SMS {summary['messages']['sms']}"
        f" ({summary['sms_segments']} SMS segments)",
        f"  delivery reports:  {delivery['delivered']} delivered, {delivery['failed']} not delivered,"
        f" {delivery['pending']} awaiting a report; after a failure, {delivery['fallbacks']} sent again"
        f" on the other channel and {delivery['tasks']} handed to an officer",
        f"  officer tasks:     {summary['tasks']}",
        f"  officer mail:      {mail['task']} tasks to officers or teams,"
        f" {mail['reminder']} overdue reminders to supervisors",
        f"  duties:            {duties['due']} with a deadline: {duties['met']} met, {duties['breached']} breached,"
        f" {summary['duties_pending']} still open",
        f"  compliance:        {'n/a' if compliance is None else f'{compliance:.1%}'}",
        f"  dead letters:      {summary['dead_letters']}",
        *_table("messages by template", summary["messages_by_template"]),
        *_table("tasks by reason", summary["tasks_by_reason"]),
        *_page(summary.get("page"), out),
        f"  output files in {out}/: outbox.jsonl officer-mail.jsonl deliveries.jsonl tasks.jsonl"
        " audit.jsonl quarantine.jsonl dead-letter.jsonl summary.json",
    ]
    return "\n".join(lines)


def _page(page: dict[str, str] | None, out: Path) -> list[str]:
    """One victim's own page, and how to open it here (the same function object, over this run)."""
    if page is None:
        return []
    return [
        f"  a victim's page:   {page['link']}",
        f"    to open it here: python -m shared.local serve --data {out}",
        f"                     then http://127.0.0.1:8080/{page['link_id']}",
    ]


def print_summary(summary: dict[str, Any], out: Path) -> None:
    print(format_summary(summary, out))


def print_page(out: Path | str) -> None:
    """The page lines of a finished run's summary.json (``make demo`` ends with them)."""
    folder = Path(out)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    lines = _page(summary.get("page"), folder)
    print("\n".join(lines) if lines else "no victim's page to show: no victim was sent anything")
