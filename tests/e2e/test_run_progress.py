"""A local run's progress: a bar on a terminal, else plain lines at an interval (issue 16).

The clock is a fake one that moves a second each time it is read, so nothing here sleeps or
depends on how fast the machine is; no assertion is about a real timing.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.local import bench
from shared.local.generate import generate
from shared.local.report import progress
from shared.local.run import RunCounts, RunRequest, run
from tests.builders import HOURLY

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "tests" / "scenarios" / "first_journey"

# Dates, whole numbers and fixed words only: a progress line never carries anyone's data.
WHERE = (
    r"simulated \d{4}-\d\d-\d\d \(day [\d,]+ of [\d,]+, \d+%\),"
    r" (?P<records>[\d,]+) feed records, (?P<messages>[\d,]+) messages, (?P<elapsed>[\w ]+) elapsed"
)
STARTED = re.compile(
    r"progress: started, simulated \d{4}-\d\d-\d\d \d\d:\d\d to \d{4}-\d\d-\d\d \d\d:\d\d UTC"
    r" \([\d,]+ days\); a line every 10 s"
)
LINE = re.compile(r"progress: " + WHERE)
ENDED = re.compile(r"progress: " + WHERE + "; writing the output files")
DONE = re.compile(r"progress: done, " + WHERE)


class FakeMonotonic:
    """A monotonic clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("progress") / "feeds"
    generate(folder, crimes=40, days=10, seed=3)
    return folder


@pytest.fixture
def hourly_polls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NICHE_POLL_SCHEDULE", HOURLY)
    monkeypatch.setenv("STORM_POLL_SCHEDULE", HOURLY)
    yield


def _run(feeds: Path, out: Path, stream: io.StringIO) -> dict[str, Any]:
    with progress(stream, interval=10, clock=FakeMonotonic()) as on_progress:
        return run(RunRequest(feeds, feeds / "officers.json", out), on_progress)


def _count(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.usefixtures("hourly_polls")
def test_off_a_terminal_a_run_prints_a_line_at_each_interval_with_counts_that_grow(
    feeds: Path, tmp_path: Path
) -> None:
    stream = Pipe()
    summary = _run(feeds, tmp_path / "run", stream)
    first, *middle, ended, done = stream.getvalue().splitlines()
    assert STARTED.fullmatch(first), first
    assert len(middle) >= 3
    lines = [LINE.fullmatch(line) for line in middle]
    assert all(lines), middle
    # The fake clock moves a second a step: a line every 10 of them, not one a step.
    assert [_seconds(m["elapsed"]) for m in lines if m] == [10 * n for n in range(1, len(lines) + 1)]
    records = [_count(m["records"]) for m in lines if m]
    messages = [_count(m["messages"]) for m in lines if m]
    assert records == sorted(records) and messages == sorted(messages)
    assert ENDED.fullmatch(ended), ended
    last = DONE.fullmatch(done)
    assert last, done
    total_records = summary["records"]["niche"] + summary["records"]["storm"]
    total_messages = summary["messages"]["email"] + summary["messages"]["sms"]
    assert (_count(last["records"]), _count(last["messages"])) == (total_records, total_messages)
    assert records[0] < total_records and messages[0] < total_messages


def _seconds(elapsed: str) -> int:
    """ "1 h 2 min 5 s", "2 min 5 s" or "5 s" in seconds."""
    units = {"h": 3600, "min": 60, "s": 1}
    words = elapsed.split()
    return sum(int(number) * units[unit] for number, unit in zip(words[::2], words[1::2], strict=True))


@pytest.mark.usefixtures("hourly_polls")
def test_on_a_terminal_a_run_shows_the_bar_not_lines(feeds: Path, tmp_path: Path) -> None:
    stream = Terminal()
    _run(feeds, tmp_path / "run", stream)
    shown = stream.getvalue()
    assert "progress:" not in shown
    assert "simulated time:" in shown and "100%|" in shown


def test_a_run_that_fails_ends_with_a_stopped_line_and_a_late_step_skips_the_missed_lines() -> None:
    stream, clock = Pipe(), FakeMonotonic()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = start + timedelta(days=10)
    with pytest.raises(RuntimeError), progress(stream, interval=10, clock=clock) as on_progress:
        on_progress(start, start, end, RunCounts)
        clock.now += 34  # one step took 35 seconds: one line, not three
        on_progress(start, start + timedelta(days=1), end, lambda: RunCounts(5, 2))
        on_progress(start, start + timedelta(days=2), end, lambda: RunCounts(6, 3))  # 36 s: not due
        clock.now += 3
        on_progress(start, start + timedelta(days=3), end, lambda: RunCounts(7, 4))  # 40 s: due
        raise RuntimeError
    assert stream.getvalue().splitlines()[1:] == [
        "progress: simulated 2026-03-02 (day 2 of 10, 10%), 5 feed records, 2 messages, 35 s elapsed",
        "progress: simulated 2026-03-04 (day 4 of 10, 30%), 7 feed records, 4 messages, 40 s elapsed",
        "progress: stopped, simulated 2026-03-04 (day 4 of 10, 30%), 7 feed records, 4 messages, 41 s elapsed",
    ]


def test_the_command_line_with_stderr_a_pipe_prints_the_first_and_last_progress_lines(tmp_path: Path) -> None:
    officers, out = SCENARIO / "officers.json", tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.local",
            "run",
            "--feeds",
            SCENARIO,
            "--officers",
            officers,
            "--out",
            out,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "progress:" in line]
    assert STARTED.fullmatch(lines[0]), lines
    last = DONE.fullmatch(lines[-1])
    assert last, lines
    assert last["records"] == "5"
    assert "Victim Updates — local run" in done.stdout and "progress" not in done.stdout


def test_a_benchmark_childs_progress_lines_reach_the_parents_stderr_marked_with_its_size(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = {"repeats": 0, "app_median_ms": 0, "bare_median_ms": 0, "overhead_median_ms": 0}
    monkeypatch.setattr(bench, "cold_start", lambda: cold)  # not what this test is about, and slow
    assert bench.main(["--sizes", "40", "--out", str(tmp_path), "--seed", "3"]) == 0
    lines = [line for line in capfd.readouterr().err.splitlines() if "progress:" in line]
    assert lines[0] == "[40] progress: generating the sample, then the run"
    assert STARTED.fullmatch(lines[1].removeprefix("[40] ")), lines
    assert DONE.fullmatch(lines[-1].removeprefix("[40] ")), lines
