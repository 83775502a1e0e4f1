"""What a local run shows a person: its progress as it goes, and a readable summary."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tqdm import tqdm

if TYPE_CHECKING:
    from shared.local.run import Progress, RunCounts

# A line every 10 seconds when stderr is not a terminal: a CI log shows the run moving well
# within any watchdog's silence limit (minutes), and a force-year run (about an hour) writes
# a few hundred short lines, which a log reader can still scroll.
PROGRESS_SECONDS = 10.0


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min {secs} s"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _days(span: timedelta) -> int:
    return max(1, -(-int(span.total_seconds()) // 86400))  # whole days, rounded up


class _Lines:
    """One plain line every ``interval`` seconds of ``clock``, plus a first and a last one."""

    def __init__(self, stream: TextIO, interval: float, clock: Callable[[], float], prefix: str) -> None:
        self.stream, self.interval, self.clock, self.prefix = stream, interval, clock, prefix
        self.started = 0.0
        self.due: float | None = None  # the clock reading at which the next line is due
        self.ended = False  # the simulated clock has reached the end
        self.last: tuple[datetime, datetime, datetime, Callable[[], RunCounts]] | None = None

    def _write(self, text: str) -> None:
        self.stream.write(f"{self.prefix}progress: {text}\n")  # one write a line: runs at once stay whole
        self.stream.flush()

    def _where(self, start: datetime, now: datetime, end: datetime, counts: RunCounts, at: float) -> str:
        total = _days(end - start)
        day = min(total, int((now - start).total_seconds() // 86400) + 1)
        span = (end - start).total_seconds()
        percent = 100 * (now - start).total_seconds() / span if span > 0 else 100.0
        return (
            f"simulated {now:%Y-%m-%d} (day {day:,} of {total:,}, {percent:.0f}%),"
            f" {counts.feed_records:,} feed records, {counts.messages:,} messages,"
            f" {_duration(at - self.started)} elapsed"
        )

    def update(self, start: datetime, now: datetime, end: datetime, counts: Callable[[], RunCounts]) -> None:
        self.last = (start, now, end, counts)
        at = self.clock()  # the one clock reading of a step
        if self.due is None:
            self.started, self.due = at, at + self.interval
            self._write(
                f"started, simulated {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
                f" ({_days(end - start):,} days); a line every {self.interval:g} s"
            )
        elif now >= end and not self.ended:  # at once: what follows (writing the files) takes a while
            self.ended = True
            self._write(f"{self._where(start, now, end, counts(), at)}; writing the output files")
        elif at >= self.due:
            self.due += self.interval * (1 + (at - self.due) // self.interval)  # the next multiple
            self._write(self._where(start, now, end, counts(), at))

    def close(self, failed: bool) -> None:
        if self.last is not None:
            start, now, end, counts = self.last
            where = self._where(start, now, end, counts(), self.clock())
            self._write(f"{'stopped' if failed else 'done'}, {where}")


class _Bar:
    """The terminal's bar over simulated hours, redrawn at most ten times a second of ``clock``."""

    def __init__(self, stream: TextIO, clock: Callable[[], float], prefix: str) -> None:
        self.stream, self.clock, self.prefix = stream, clock, prefix
        self.bar: tqdm[Any] | None = None
        self.due = 0.0

    def update(self, start: datetime, now: datetime, end: datetime, counts: Callable[[], RunCounts]) -> None:
        total = max(1, int((end - start).total_seconds() // 3600))
        if self.bar is None:
            self.bar = tqdm(
                total=total, unit="h", desc=f"{self.prefix}simulated time", file=self.stream, leave=True
            )
        at = self.clock()
        if at < self.due and now < end:
            return  # drawn a moment ago: a simulated year has hundreds of thousands of steps
        self.due = at + 0.1
        self.bar.n = min(total, int((now - start).total_seconds() // 3600))
        self.bar.set_postfix_str(now.strftime("%Y-%m-%d %H:%M"), refresh=False)
        self.bar.refresh()

    def close(self, failed: bool) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def progress(
    stream: TextIO | None = None,
    *,
    interval: float = PROGRESS_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    prefix: str = "",
    lines: bool | None = None,
) -> Iterator[Progress]:
    """A run's progress on ``stream`` (default stderr): a bar over simulated time on a terminal;
    elsewhere (a pipe, a CI log) a first line, one line every ``interval`` seconds of ``clock``
    and a last line. ``lines`` True or False chooses regardless of the terminal."""
    out = sys.stderr if stream is None else stream
    as_lines = lines if lines is not None else not out.isatty()
    shown: _Lines | _Bar = _Lines(out, interval, clock, prefix) if as_lines else _Bar(out, clock, prefix)
    failed = True
    try:
        yield shown.update
        failed = False
    finally:
        shown.close(failed)


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
        *_resumed(summary.get("resumed")),
        f"  function failures: {_failures(summary.get('failures'))}",
        *_table("messages by template", summary["messages_by_template"]),
        *_table("tasks by reason", summary["tasks_by_reason"]),
        *_page(summary.get("page"), out),
        f"  output files in {out}/: outbox.jsonl officer-mail.jsonl deliveries.jsonl tasks.jsonl"
        " audit.jsonl quarantine.jsonl dead-letter.jsonl summary.json",
    ]
    return "\n".join(lines)


def _resumed(resumed: dict[str, int] | None) -> list[str]:
    """Said when the state had read these feed files before: the records counted include those."""
    if not resumed:
        return []
    names = {"niche": "Niche", "storm": "STORM"}
    read = ", ".join(
        f"{names.get(feed, feed)} after {records:,} records" for feed, records in resumed.items()
    )
    return [f"  resumed:           {read} read by an earlier run into this state; only what is new was read"]


def _failures(failures: dict[str, int] | None) -> str:
    if not failures:
        return "none"
    each = ", ".join(f"{name} {count:,}" for name, count in failures.items())
    return (
        f"{each} (each on stderr; a timer tries again at its next tick, a message until its delivery count)"
    )


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
