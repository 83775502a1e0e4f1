"""--compare REF: one sample per size, run by a git ref's code and by this code in the same run."""

from __future__ import annotations

import io
import json
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shared.local import bench

ROOT = Path(bench.__file__).resolve().parents[2]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temporary folder, where the ref's checkout goes, as a folder of the test's own."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_the_same_code_on_the_same_sample_counts_exactly_the_same(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # HEAD, or the worktree's uncommitted tracked changes as a commit (git stash create touches no ref):
    # either way the same code as this checkout, so every count must match to the unit.
    ref = _git("stash", "create") or "HEAD"
    monkeypatch.setattr(bench, "COMPARE_COLD_START_REPEATS", 1)
    monkeypatch.chdir(tmp_path)  # --out relative, as make bench gives it; the children run elsewhere
    out = tmp_path / "out"
    assert bench.main(["--sizes", "12", "--compare", ref, "--seed", "3", "--out", "out"]) == 0

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["compare"]["ref"] == ref and report["compare"]["commit"] == _git("rev-parse", ref)
    assert report["code"]["commit"] == _git("rev-parse", "HEAD") and isinstance(report["code"]["dirty"], bool)
    (ours,), (theirs,) = report["sizes"], report["compare"]["sizes"]
    assert ours["crimes"] == theirs["crimes"] == 12
    assert ours["feed_records"] == theirs["feed_records"] > 0
    assert (
        ours["table_operations"] > 0
        and sum(ours["queue_messages"].values()) > 0
        and ours["messages_sent"] > 0
    )
    for exact in (
        "records_by_feed",
        "quarantined",
        "messages_sent",
        "tasks",
        "table_operations",
        "table_operations_by",
        "queue_messages",
        "feed_change_to_provider_seconds",
    ):
        assert ours[exact] == theirs[exact], exact
    for side in (ours, theirs):
        assert side["measured_from_parent"]["child_peak_memory_mib"] > 0
    # Each side imported its own code: the ref's checkout (gone now), this checkout.
    assert Path(theirs["code_folder"]).parent.parent == scratch and Path(ours["code_folder"]) == ROOT
    assert list(scratch.iterdir()) == []
    assert report["cold_start"]["app_median_ms"] and report["compare"]["cold_start"]["app_median_ms"]
    assert report["cold_start"]["first_message_median_ms"] > report["cold_start"]["app_median_ms"]
    assert report["compare"]["cold_start"]["first_message_median_ms"]  # the ref is this code, snippet and all

    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert f"| figure | {ref} | this code | change |" in markdown
    operations = ours["table_operations"]
    assert f"| table operations | {operations} | {operations} | same |" in markdown
    assert markdown in capsys.readouterr().out


def test_an_unknown_ref_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--sizes", "12", "--compare", "no-such-ref-anywhere", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "bench: --compare: unknown git ref 'no-such-ref-anywhere'\n"
    assert not (tmp_path / "out").exists()  # nothing generated, nothing run


def test_outside_a_git_checkout_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "_ROOT", tmp_path)  # as if this code were unpacked from an archive
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--sizes", "12", "--compare", "HEAD", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"bench: --compare: not a git checkout: {tmp_path}\n"


def test_the_checkout_is_removed_when_the_run_is_interrupted(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    def interrupted(feeds: Path, crimes: int, seed: int) -> tuple[int, float]:
        seen.extend(
            (folder / "code" / "shared" / "local" / "run.py").is_file() for folder in scratch.iterdir()
        )
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "_generate_once", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--sizes", "12", "--compare", "HEAD", "--out", str(tmp_path / "out")])
    assert seen == [True]  # the ref's code was checked out when Ctrl-C came
    assert list(scratch.iterdir()) == []


def test_a_ref_whose_snippet_sends_no_first_message_reports_none_for_it() -> None:
    # An older commit's _APP_IMPORT prints one number (the services built); this code's prints both.
    assert bench._figures("0.5\n") == (0.5, None)
    assert bench._figures('noise\n{"app": 0.5, "first_message": 0.75}\n') == (0.5, 0.75)
    cold = {
        "repeats": 3,
        "ref_median_ms": 300.0,
        "this_median_ms": 250.0,
        "bare_median_ms": 200.0,
        "ref_first_message_median_ms": None,
        "this_first_message_median_ms": 400.0,
    }
    theirs, ours = bench._cold_start_of(cold, "ref"), bench._cold_start_of(cold, "this")
    assert theirs is not None and ours is not None
    assert theirs["overhead_median_ms"] == 100.0 and ours["overhead_median_ms"] == 50.0
    assert theirs["first_message_median_ms"] is None and theirs["first_message_over_bare_median_ms"] is None
    assert ours["first_message_median_ms"] == 400.0 and ours["first_message_over_bare_median_ms"] == 200.0
    report = {
        "machine": {"cpus": 2, "python": "3.11"},
        "code": {"commit": "c" * 40, "dirty": False},
        "sizes": [],
        "cold_start": ours,
        "compare": {
            "ref": "old",
            "commit": "a" * 40,
            "sample": "s",
            "order": "o",
            "sizes": [],
            "cold_start": theirs,
        },
    }
    markdown = bench._compare_markdown(report)
    assert "| over a bare app (ms) | 100.0 | 50.0 | -50.0% |" in markdown
    assert "| to the end of the first message sent (ms) | n/a | 400.0 |  |" in markdown
    assert "| first message sent, over a bare app (ms) | n/a | 200.0 |  |" in markdown
    assert bench._cold_start_sentence(ours).endswith("400.0 ms, 200.0 ms over the bare app.")
    assert bench._cold_start_sentence(theirs).endswith("overhead 100.0 ms.")  # no first message: not said


def test_repeated_runs_alternate_the_codes_and_report_medians_and_every_run(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = _git("stash", "create") or "HEAD"
    monkeypatch.setattr(bench, "COMPARE_COLD_START_REPEATS", 0)
    ran: list[str] = []
    run_under = bench._run_under

    def recorded(
        code: Path, feeds: Path, out: Path, *rest: Any, **named: Any
    ) -> tuple[dict[str, object] | None, str]:
        ran.append(out.name)
        return run_under(code, feeds, out, *rest, **named)

    monkeypatch.setattr(bench, "_run_under", recorded)
    out = tmp_path / "out"
    assert (
        bench.main(["--sizes", "12", "--compare", ref, "--seed", "3", "--repeat", "3", "--out", str(out)])
        == 0
    )

    # Alternated, so neither code always runs first (a warm cache, a busy neighbour).
    assert ran == ["ref-1", "this-1", "this-2", "ref-2", "ref-3", "this-3"]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["compare"]["repeats"] == 3 and "3 times by each code" in report["compare"]["order"]
    (ours,), (theirs,) = report["sizes"], report["compare"]["sizes"]
    for side in (ours, theirs):
        repeats = side["repeats"]
        assert repeats["runs"] == 3 and repeats["varied"] == []  # the same code counts the same every run
        for _, path in bench._SPREAD:
            runs = repeats[path]
            assert len(runs) == 3 and all(isinstance(v, int | float) and v > 0 for v in runs)
            assert bench._dig(side, path) == statistics.median(runs)
    assert ours["table_operations"] == theirs["table_operations"] > 0

    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "Run to run (3 runs of each code" in markdown
    cpu = ", ".join(str(v) for v in ours["repeats"]["run_cpu_seconds"])
    assert f"| {cpu} |" in markdown
    assert "did not agree" not in markdown


def _one_run(cpu: float, b: int, step: float) -> dict[str, object]:
    """A run's result as measure_run gives it, cut down: counts, CPU figures, a folder name."""
    return {
        "tasks": 7,
        "run_cpu_seconds": cpu,
        "queue_messages": {"a": 5, "b": b},
        "code_folder": "x",
        "measured_from_parent": {"child_cpu_seconds": cpu + 0.5},
        "step_cpu_ms_per_feed_record": step,
    }


def test_medians_keep_what_the_runs_agree_on_and_name_what_they_do_not() -> None:
    runs = [_one_run(3.0, 1, 2.0), _one_run(9.0, 2, 2.5), _one_run(4.0, 1, 2.2)]
    merged = bench._median_of(runs)
    assert merged["tasks"] == 7 and merged["run_cpu_seconds"] == 4.0 and merged["code_folder"] == "x"
    assert merged["measured_from_parent"] == {"child_cpu_seconds": 4.5}
    assert bench._varied(runs) == ["queue_messages"]  # a count that differs is named, never a median
    assert bench._varied(runs[::2]) == []
    assert bench._spread(runs)["run_cpu_seconds"] == [3.0, 9.0, 4.0]

    assert bench._overlap([3.0, 9.0], [4.0, 5.0]).startswith("overlap")
    assert bench._overlap([3.0, 3.5], [4.0, 5.0]) == (
        "apart: every run of one code beat every run of the other (1 in 3 by chance alone)"
    )
    assert bench._overlap([6.0, 5.5, 7.0], [4.0, 5.0, 4.5]).endswith("(1 in 10 by chance alone)")
    assert bench._overlap([6.0, 5.5, 7.0, 6.1, 6.2], [4.0, 5.0, 4.5, 3.0, 3.3]).endswith(
        "(1 in 126 by chance alone)"
    )
    assert bench._overlap([None], [4.0]) == ""

    theirs = {"runs": 3, "varied": ["queue_messages"], **bench._spread(runs)}
    ours = {"runs": 3, "varied": [], **bench._spread(runs[::-1])}
    lines = "\n".join(bench._spread_markdown("old", theirs, ours))
    assert "| run CPU, in the child (s) | 3.0, 9.0, 4.0 | 4.0, 9.0, 3.0 | overlap" in lines
    assert "**old's runs did not agree** on queue_messages" in lines
    assert "this code's runs did not agree" not in lines


def test_with_jobs_2_the_two_codes_run_at_once_and_count_the_same(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = _git("stash", "create") or "HEAD"
    monkeypatch.setattr(bench, "COMPARE_COLD_START_REPEATS", 0)
    spans: dict[str, tuple[float, float]] = {}
    labels: list[str] = []
    run_under = bench._run_under

    def timed(
        code: Path, feeds: Path, out: Path, *rest: Any, **named: Any
    ) -> tuple[dict[str, object] | None, str]:
        labels.append(rest[0])
        started = time.monotonic()
        try:
            return run_under(code, feeds, out, *rest, **named)
        finally:
            spans[out.name] = (started, time.monotonic())

    monkeypatch.setattr(bench, "_run_under", timed)
    out = tmp_path / "out"
    argv = ["--sizes", "12", "--compare", ref, "--seed", "3", "--jobs", "2", "--out", str(out)]
    assert bench.main(argv) == 0

    # At once: each child started before the other ended.
    assert sorted(spans) == ["ref", "this"] and sorted(labels) == ["12 ref", "12 this"]
    (ref_start, ref_end), (this_start, this_end) = spans["ref"], spans["this"]
    assert ref_start < this_end and this_start < ref_end
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["machine"]["jobs"] == 2 and report["compare"]["order"].startswith("both codes at once")
    (ours,), (theirs,) = report["sizes"], report["compare"]["sizes"]
    assert ours["messages_sent"] > 0 and ours["table_operations"] > 0
    for exact in ("messages_sent", "tasks", "table_operations_by", "queue_messages"):
        assert ours[exact] == theirs[exact], exact
    assert "Order: both codes at once" in (out / "report.md").read_text(encoding="utf-8")
    assert list(scratch.iterdir()) == []


def test_more_than_two_jobs_with_compare_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--sizes", "12", "--compare", "HEAD", "--jobs", "3", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "bench: --compare runs at most two children at once, one per code: --jobs 1 or 2\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_labelled_child_says_every_interval_that_it_goes_on_until_stopped() -> None:
    from shared.local import bench_driver

    stream, stop = io.StringIO(), threading.Event()
    beat = threading.Thread(target=bench_driver._heartbeat, args=("110000 ref", stop, 0.01, stream))
    beat.start()
    deadline = time.monotonic() + 10
    while stream.getvalue().count("\n") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    beat.join(timeout=10)
    assert not beat.is_alive()  # it stops when told
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3  # not once: it keeps saying so
    for line in lines:
        assert re.fullmatch(r"\[110000 ref\] progress: running, \d+\.\d min elapsed, \d+ s CPU", line), line
        assert bench._PROGRESS_LINE.match(line)  # and the parent never takes it for a reason


def _driver(folder: Path) -> Path:
    """A stand-in driver: REF's child fails at once; this code's marks its start and would run for
    a minute, then mark its end."""
    driver = folder / "driver.py"
    driver.write_text(
        "import pathlib, sys, time\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1])\n"
        "marks = pathlib.Path(__file__).parent\n"
        "if out.name.startswith('ref'):\n"
        "    print('ValueError: the sample is not one it can read', file=sys.stderr, flush=True)\n"
        "    sys.exit(1)\n"
        "(marks / 'this-started').touch()\n"
        "time.sleep(60)\n"
        "(marks / 'this-ended').touch()\n",
        encoding="utf-8",
    )
    return driver


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_ref_that_cannot_run_the_sample_ends_the_run_at_once_naming_it(
    jobs: str,
    tmp_path: Path,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(bench, "_DRIVER", _driver(marks))
    monkeypatch.setattr(bench, "COMPARE_COLD_START_REPEATS", 0)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--sizes", "12", "--compare", "HEAD", "--jobs", jobs, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    # The child's own words, passed through under its label; then the one line that ends the run.
    assert "[12 ref] ValueError: the sample is not one it can read" in lines
    err = lines[-1]
    assert err.endswith(
        "could not run the 12-crime sample this code generated: ValueError: the sample is not one it can"
        " read (exit status 1)"
    )
    assert not (marks / "this-ended").exists()  # this code's run was never waited for
    if jobs == "1":
        assert not (marks / "this-started").exists()  # REF runs first, and its failure ends the run
    assert list(scratch.iterdir()) == []


def test_a_child_that_dies_silently_is_reported_by_its_exit_status_not_its_progress_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child killed from outside (out of memory, a signal) after saying it goes on.
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import os, signal, sys\n"
        "print('[12 ref] progress: running, 0.1 min elapsed, 3 s CPU', file=sys.stderr, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(bench, "_DRIVER", driver)
    result, last = bench._run_under(tmp_path, tmp_path, tmp_path / "out", "12 ref")
    assert result is None and last == "exit status -9"
