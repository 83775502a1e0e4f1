"""The benchmark tool on a tiny sample: the figures it reports hang together (never timed here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.local import bench

REPO = Path(__file__).resolve().parents[2]


def test_one_size_reports_consistent_counts(tmp_path: Path) -> None:
    result = bench.measure_one(40, tmp_path, seed=3)
    records = result["feed_records"]
    assert records == result["records_by_feed"]["niche"] + result["records_by_feed"]["storm"] > 0
    assert result["table_operations"] == sum(result["table_operations_by"].values())
    assert result["table_operations_per_feed_record"] == round(result["table_operations"] / records, 2)
    in_adapters = result["step_cpu_ms_per_feed_record_in_embedded_adapters"]
    without = result["step_cpu_ms_per_feed_record_excluding_embedded_adapters"]
    assert 0 < in_adapters < result["step_cpu_ms_per_feed_record"]
    assert abs(in_adapters + without - result["step_cpu_ms_per_feed_record"]) < 0.01
    # Every function object (the delivery reports, officer mail and retention too) spends at least
    # what the five steps do; the host's settling of messages is counted apart from both.
    assert result["every_function_cpu_ms_per_feed_record"] >= result["step_cpu_ms_per_feed_record"]
    assert result["host_settle_cpu_ms_per_feed_record"] > 0
    cpu_ms = 1000 * result["run_cpu_seconds"] / records
    assert (
        result["every_function_cpu_ms_per_feed_record"]
        + result["host_settle_cpu_ms_per_feed_record"]
        + result["host_receive_cpu_ms_per_feed_record"]
        < cpu_ms
    )
    # Every queue-triggered invocation ran a message a receive took; a receive takes several at
    # once, as the Functions host does, and a drain asks each queue until one finds it empty.
    queued = ("resolve_officer", "evaluate_journey", "send_message", "notify_officer", "delivery_report")
    assert result["host_messages_received"] == sum(result["invocations"].get(name, 0) for name in queued)
    assert 0 < result["host_receives_empty"] < result["host_receives"]
    assert result["host_receives"] - result["host_receives_empty"] < result["host_messages_received"]
    assert result["host_receive_cpu_ms_per_feed_record"] > 0
    assert result["dead_letters"] == 0 and result["messages_sent"] > 0
    # Every journey event received, or cancelled before it fell due, was counted as sent: the
    # deadline checks scheduled to be cancellable too (duplicates dropped make sent the larger);
    # and so was every officer notice (a closed task's reminder is cancelled).
    cancelled = result["scheduled_messages_cancelled_by_queue"]
    assert result["scheduled_messages_cancelled"] == sum(cancelled.values())
    received = result["invocations"]["evaluate_journey"]
    assert cancelled["journey-events"] > 0
    assert result["queue_messages"]["journey-events"] >= received + cancelled["journey-events"]
    notices = result["invocations"]["notify_officer"]
    assert result["queue_messages"]["officer-tasks"] >= notices + cancelled.get("officer-tasks", 0)


def test_a_run_in_two_processes_counts_what_each_process_did_and_the_same_work_as_one(tmp_path: Path) -> None:
    """--processes 2: the counts made inside each process come back and are added up; the run's
    CPU is both processes'. Run as make bench runs a size, in a process of its own."""
    one = bench.measure_one(40, tmp_path / "one", seed=3)
    done = subprocess.run(
        [sys.executable, "-m", "shared.local.bench", "--one", "40", "--seed", "3", "--processes", "2",
         "--out", str(tmp_path / "two")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    two = json.loads((tmp_path / "two" / "result.json").read_text(encoding="utf-8"))
    assert (one["processes"], two["processes"]) == (1, 2)
    for figure in ("feed_records", "quarantined", "messages_sent", "tasks", "compliance", "dead_letters",
                   "queue_messages", "scheduled_messages_cancelled_by_queue", "host_messages_received"):  # fmt: skip
        assert two[figure] == one[figure], figure
    assert one["messages_sent"] > 0 and sum(one["queue_messages"].values()) > 0
    # Both processes' table operations: the journeys are read and written as often as in one.
    assert two["table_operations"] == sum(two["table_operations_by"].values()) > 0
    for kind in ("Journeys.get", "Journeys.update", "Snapshots.upsert_many", "Audit.upsert_many"):
        assert two["table_operations_by"][kind] == one["table_operations_by"][kind], kind
    # The run's CPU is both processes': more than every function's and the host's in them.
    inside = sum(
        two[f] for f in ("every_function_cpu_ms_per_feed_record", "host_settle_cpu_ms_per_feed_record",
                         "host_receive_cpu_ms_per_feed_record")
    )  # fmt: skip
    assert inside < two["run_cpu_ms_per_feed_record"]


def test_the_profile_splits_all_of_the_steps_time_into_categories(tmp_path: Path) -> None:
    profile = bench.profile_one(40, tmp_path, seed=3)
    by_category = profile["ms_per_feed_record_by_category"]
    total_ms = 1000 * profile["profiled_step_seconds"] / profile["feed_records"]
    assert abs(sum(by_category.values()) - total_ms) < 0.05 * total_ms
    assert by_category["embedded SQLite tables and queues"] > 0
    assert by_category["journey rules and deadlines"] > 0
    assert (tmp_path / "steps.prof").is_file()
    # Again into the same folder: a sample of its own, not a resumed run that profiles nothing.
    again = bench.profile_one(40, tmp_path, seed=3)
    assert again["invocations"]["send_message"] == profile["invocations"]["send_message"] > 0


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--sizes", "ten"], "--sizes must be whole numbers"),
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--compare", "HEAD", "--repeat", "0"], "--repeat must be at least 1"),
        (["--repeat", "3"], "--repeat goes with --compare REF"),
        (["--processes", "0"], "--processes must be at least 1"),
        (["--state", "azurite", "--processes", "2"], "--processes runs the SQLite state only"),
    ],
)
def test_bad_arguments_get_one_line(
    args: list[str], complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main([*args, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert complaint in err and len(err.strip().splitlines()) == 1
