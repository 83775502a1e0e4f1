"""--state sqlite,azurite: one sample run with the state in SQLite and in Azurite, side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from shared.local import azurite, bench
from tests.azurite import needs_azurite


def test_the_same_sample_in_both_states_counts_the_same_and_reports_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    needs_azurite()
    # Hourly polls (the children inherit them): every idle poll is a cursor read over HTTP.
    monkeypatch.setenv("NICHE_POLL_SCHEDULE", "0 0 * * * *")
    monkeypatch.setenv("STORM_POLL_SCHEDULE", "0 0 * * * *")
    monkeypatch.setattr(bench, "cold_start", lambda: None)
    out = tmp_path / "out"
    assert bench.main(["--sizes", "12", "--state", "sqlite,azurite", "--seed", "3", "--out", str(out)]) == 0

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["states"] == ["sqlite", "azurite"] and "SQLite queues" in report["queues"]
    (sqlite,), (in_azurite,) = report["by_state"]["sqlite"], report["by_state"]["azurite"]
    assert report["sizes"] == [sqlite] and sqlite["state"] == "sqlite" and in_azurite["state"] == "azurite"
    assert sqlite["feed_records"] > 0 and sqlite["messages_sent"] > 0
    for exact in (
        "feed_records",
        "messages_sent",
        "tasks",
        "compliance",
        "table_operations",
        "queue_messages",
    ):
        assert sqlite[exact] == in_azurite[exact], exact
    assert sqlite["table_operations_by"] == in_azurite["table_operations_by"]
    assert sqlite["http_requests"] is None and in_azurite["http_requests"] >= in_azurite["table_operations"]
    assert in_azurite["azurite_cpu_seconds"] > 0 and sqlite.get("azurite_cpu_seconds") is None
    for side in (sqlite, in_azurite):
        assert side["run_wall_ms_per_feed_record"] > 0 and side["table_store_cpu_ms_per_feed_record"] > 0
    (ratio,) = report["ratios"]
    wall = in_azurite["run_wall_ms_per_feed_record"] / sqlite["run_wall_ms_per_feed_record"]
    assert ratio["crimes"] == 12 and ratio["run_wall_ms_per_feed_record"] == round(wall, 2)
    assert ratio["table_operations_per_feed_record"] == 1.0

    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "| figure | sqlite | azurite | azurite / sqlite |" in markdown
    operations = sqlite["table_operations"]
    assert f"| table operations | {operations} | {operations} | ×1.00 |" in markdown
    assert markdown in capsys.readouterr().out


def _watch_azurite(monkeypatch: pytest.MonkeyPatch) -> list[azurite.Azurite]:
    """Each Azurite the benchmark starts, kept to look at once it has stopped."""
    needs_azurite()
    seen: list[azurite.Azurite] = []
    real = azurite.started

    @contextmanager
    def watched(workspace: Path, seconds: float = 60) -> Iterator[azurite.Azurite]:
        with real(workspace, seconds) as running:
            seen.append(running)
            yield running

    monkeypatch.setattr(azurite, "started", watched)
    return seen


def test_azurite_is_stopped_when_the_run_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _watch_azurite(monkeypatch)

    def failing(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("the run failed")

    monkeypatch.setattr(bench, "measure_run", failing)
    monkeypatch.setenv("StateStorage", "UseDevelopmentStorage=true")
    with pytest.raises(RuntimeError, match="the run failed"):
        bench.measure_state(tmp_path / "feeds", tmp_path / "out", "azurite")
    (running,) = seen
    assert running.process.poll() is not None  # stopped
    assert "StateStorage" not in os.environ  # not left pointing at a stopped emulator


def test_a_kill_of_the_run_stops_azurite_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _watch_azurite(monkeypatch)

    def killed(*args: Any, **kwargs: Any) -> dict[str, Any]:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives before this ends
        return {}

    monkeypatch.setattr(bench, "measure_run", killed)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit):
        bench.measure_state(tmp_path / "feeds", tmp_path / "out", "azurite")
    (running,) = seen
    assert running.process.poll() is not None
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_azurite_ends_with_the_process_that_started_it_even_killed_outright(tmp_path: Path) -> None:
    needs_azurite()
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from shared.local import azurite\n"
            "with azurite.started(Path(sys.argv[1])) as running:\n"
            "    print(running.process.pid, flush=True); time.sleep(120)\n",
            str(tmp_path / "azurite"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(bench.__file__).resolve().parents[2],
    )
    assert starter.stdout is not None
    pid = int(starter.stdout.readline())
    starter.kill()  # SIGKILL: no finally block runs
    starter.wait()

    def running() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"  # a zombie has exited, waiting for init to reap it

    deadline = time.monotonic() + 20
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert not running()
    finally:
        if running():  # this test's own Azurite, never left behind
            os.kill(pid, signal.SIGTERM)


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--state", "cosmos"], "--state takes sqlite, azurite or both"),
        (["--state", "azurite", "--compare", "HEAD"], "--compare runs the SQLite state only"),
        (["--state", "sqlite,azurite", "--jobs", "2"], "--state runs one child at a time"),
    ],
)
def test_bad_state_arguments_get_one_line(
    args: list[str], complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--sizes", "12", *args, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert complaint in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_without_node_the_azurite_state_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(azurite, "missing", lambda: "Node.js is needed to run Azurite")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--sizes", "12", "--state", "sqlite,azurite", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "python -m shared.local.bench: error: --state azurite: Node.js is needed to run Azurite\n"
    )
