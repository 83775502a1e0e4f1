"""``python -m shared.local run --processes 2``: the feeds split by crime group, replayed in two
processes at once and merged, make the run one process makes (README, `--processes`): the
same messages, officer mails, tasks, audit rows, quarantined records, delivery
reports and summary counts, and a folder that a later one-process run goes on from."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from shared.local.generate import generate
from shared.local.parts import NUMBERS
from shared.local.run import feed_span

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(rb"https://[^/\s\"]+/[A-Za-z0-9_-]{11}")
# Different on every run, in one process or several: a personal link's id is random.
RANDOM = ("page",)
# What the host measured, not what the run did.
MEASURED = ("step_cpu_seconds", "step_wall_seconds", "host_settle_cpu_seconds", "invocations")
TIMERS = {"ingest_niche", "ingest_storm", "retention"}


# A small batch, and a start a day after the first records: ticks find a backlog, which every
# process must take at the same simulated times as one process does.
BATCH = "20"


def _run(feeds: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.local", "run", "--feeds", str(feeds), "--officers",
         str(feeds / "officers.json"), "--delivery-reports", str(feeds / "delivery-reports.json"),
         "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "FEED_BATCH_SIZE": BATCH},
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("parts")
    feeds = folder / "feeds"
    generate(feeds, crimes=120, days=4, seed=5)
    one, two = folder / "one", folder / "two"
    first, _ = feed_span(feeds)
    assert first is not None
    start = (first + timedelta(days=1)).isoformat()
    for out, extra in ((one, ()), (two, ("--processes", "2"))):
        done = _run(feeds, out, "--start", start, *extra)
        assert done.returncode == 0, done.stderr
    return feeds, one, two


def _lines(path: Path) -> Counter[bytes]:
    return Counter(LINK.sub(b"LINK", line) for line in path.read_bytes().splitlines())


def test_two_processes_make_the_same_run_as_one(runs: tuple[Path, Path, Path]) -> None:
    _, one, two = runs
    first = json.loads((one / "summary.json").read_text(encoding="utf-8"))
    second = json.loads((two / "summary.json").read_text(encoding="utf-8"))
    assert second.pop("processes")["count"] == 2
    for key in (*RANDOM, *MEASURED):  # invocations: the next test
        first.pop(key)
        second.pop(key)
    assert first == second
    assert first["messages"]["email"] + first["messages"]["sms"] > 100, "a sample with something to compare"
    assert first["tasks"] > 10 and first["records"]["quarantined"] > 0
    for name in ("outbox.jsonl", "officer-mail.jsonl", "tasks.jsonl", "audit.jsonl", "quarantine.jsonl",
                 "deliveries.jsonl", "dead-letter.jsonl"):  # fmt: skip
        assert _lines(one / name) == _lines(two / name), name
    assert not (two / "parts").exists(), "the parts' folders are merged and taken away"


def test_what_is_sent_is_sent_at_the_same_times_in_the_same_order_of_time(
    runs: tuple[Path, Path, Path],
) -> None:
    """A backlog taken tick by tick, as one process takes it; the providers' files in time order."""
    _, one, two = runs
    for name in ("outbox.jsonl", "officer-mail.jsonl"):
        times = [
            [json.loads(line)["sent_at"] for line in (out / name).open(encoding="utf-8")]
            for out in (one, two)
        ]
        assert times[0] == times[1], name
        assert times[0] == sorted(times[0]) and len(set(times[0])) > 10, name
    audit = [sorted(line for line in (out / "audit.jsonl").open(encoding="utf-8")) for out in (one, two)]
    assert audit[0] == audit[1]
    summary = json.loads((one / "summary.json").read_text(encoding="utf-8"))
    assert summary["invocations"]["ingest_niche"] > 0
    records = summary["records"]["niche"] + summary["records"]["storm"]
    assert records > 10 * int(BATCH), "more records than a few ticks' batches: the backlog was real"


def test_the_functions_called_per_message_are_called_as_often_and_the_timers_in_each_process(
    runs: tuple[Path, Path, Path],
) -> None:
    _, one, two = runs
    first = json.loads((one / "summary.json").read_text(encoding="utf-8"))["invocations"]
    second = json.loads((two / "summary.json").read_text(encoding="utf-8"))["invocations"]
    assert set(first) == set(second) and set(first) >= TIMERS
    for name, count in first.items():
        assert second[name] == (2 * count if name in TIMERS else count), name


def _cursors(out: Path) -> dict[str, dict[str, object]]:
    with sqlite3.connect(out / "state.db") as db:
        rows = db.execute("SELECT pk, props FROM entities WHERE tbl='Cursors'").fetchall()
    return {pk: json.loads(props) for pk, props in rows}


def test_the_merged_state_is_one_runs_and_a_later_run_goes_on_from_it(runs: tuple[Path, Path, Path]) -> None:
    feeds, one, two = runs
    assert _cursors(two) == _cursors(one)  # position, digest, records and quarantined alike
    with sqlite3.connect(two / "queues.db") as merged, sqlite3.connect(one / "queues.db") as alone:
        count = "SELECT queue, count(*) FROM messages GROUP BY queue ORDER BY queue"
        assert merged.execute(count).fetchall() == alone.execute(count).fetchall()
        assert merged.execute(count).fetchall(), "messages still scheduled at the end, to go on with"
        waiting = {seq for (seq,) in merged.execute("SELECT seq FROM messages")}
    assert any(seq >= NUMBERS for seq in waiting), "the second process's messages are among them"
    end = json.loads((two / "summary.json").read_text(encoding="utf-8"))["clock"]["end"]
    later = end.replace(end[:4], str(int(end[:4]) + 1), 1)  # a year on: every check-in falls due
    go_on = _run(feeds, two, "--start", end, "--end", later)
    assert go_on.returncode == 0, go_on.stderr
    summary = json.loads((two / "summary.json").read_text(encoding="utf-8"))
    records = json.loads((one / "summary.json").read_text(encoding="utf-8"))["records"]
    assert summary["resumed"] == {"niche": records["niche"], "storm": records["storm"]}
    assert summary["dead_letters"] == 0 and not summary["failures"]
    with sqlite3.connect(two / "queues.db") as merged:
        left = {seq for (seq,) in merged.execute("SELECT seq FROM messages")}
    assert not waiting & left, "every message waiting at the end of the split run fell due and was taken"
    assert summary["invocations"]["evaluate_journey"] >= len(waiting)


_FAILING_PART = """
import sys
from pathlib import Path
from shared.local.run import RunError, RunRequest, run

feeds, out = Path(sys.argv[1]), Path(sys.argv[2])


def prepare(services, broker):
    if services.settings.LOCAL_DATA_DIR.name == "2":  # the second part's folder
        raise RuntimeError("a fault in the second part")


try:
    run(RunRequest(feeds, feeds / "officers.json", out, processes=2, prepare=prepare))
except RunError as error:
    print(error)
    sys.exit(2)
"""


def test_a_part_that_fails_fails_the_run_saying_why_and_leaves_nothing(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    feeds = runs[0]
    out = tmp_path / "new" / "run"
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_PART, str(feeds), str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == "part 2 of 2 failed: RuntimeError: a fault in the second part"
    assert not (tmp_path / "new").exists(), "the run takes away the folders it made"


def test_a_parts_folder_left_by_a_killed_run_is_taken_away_and_the_run_made_afresh(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    feeds, one, _ = runs
    out = tmp_path / "again"
    (out / "parts" / "1").mkdir(parents=True)
    (out / "parts" / "1" / "queues.db").write_bytes(b"left by a run killed part-way")
    done = _run(feeds, out, "--processes", "2", "--start",
                json.loads((one / "summary.json").read_text(encoding="utf-8"))["clock"]["start"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (out / "parts").exists()
    assert _lines(out / "tasks.jsonl") == _lines(one / "tasks.jsonl")


def test_more_than_one_process_into_an_earlier_runs_folder_is_one_line_and_changes_nothing(
    runs: tuple[Path, Path, Path],
) -> None:
    feeds, one, _ = runs
    before = (one / "state.db").stat().st_mtime_ns
    done = _run(feeds, one, "--processes", "2")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--processes 2" in done.stderr and "new folder" in done.stderr
    assert (one / "state.db").stat().st_mtime_ns == before
    assert not (one / "parts").exists()


def test_more_processes_than_a_run_can_part_is_one_line(
    runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    feeds, _, _ = runs
    done = _run(feeds, tmp_path / "many", "--processes", "256")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.endswith(": --processes 256: at most 255\n")
    assert not (tmp_path / "many" / "parts").exists()
