"""JOURNEY_POLICY_PATH is honoured by both command lines, and a bad policy stops them in one line.

``python -m shared.local run`` reads the policy from ``--policy``, else from the
``JOURNEY_POLICY_PATH`` app setting, else the shipped file; the operations commands read
the app setting. A malformed policy is exit status 2 and one line on stderr naming the file
and the field, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.adapters.policy_file import DEFAULT_POLICY_PATH
from shared.local.run import RunRequest, run
from tests.builders import OFFICER, occurrence, replay

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "tests" / "scenarios" / "first_journey"


def _policy(folder: Path, name: str, **changes: dict[str, object]) -> Path:
    """The shipped policy with some sections changed."""
    data = json.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    for section, values in changes.items():
        data[section].update(values)
    path = folder / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def bad_policy(tmp_path: Path) -> Path:
    return _policy(tmp_path, "typo.json", safeguarding={"excluded_flags": ["domestic_abuce"]})


def _command(env_policy: Path | None, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JOURNEY_POLICY_PATH"}
    if env_policy is not None:
        env["JOURNEY_POLICY_PATH"] = str(env_policy)
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def _assert_one_line_naming_the_field(
    done: subprocess.CompletedProcess[str], prog: str, policy: Path
) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line == (
        f"{prog}: error: journey policy {policy}: field safeguarding.excluded_flags.0: 'domestic_abuce' "
        "is not a crime flag (expected one of domestic_abuse, sexual_offence, hate_crime, stalking_harassment, "
        "honour_based_abuse, modern_slavery, terrorism, attempted_murder, kidnap, arson_endanger_life, "
        "bereaved, persistently_targeted)"
    )


LOCAL_RUN = ("-m", "shared.local", "run", "--feeds", SCENARIO, "--officers", SCENARIO / "officers.json")


# --- python -m shared.local run -------------------------------------------------------------------------


def test_local_run_with_a_bad_policy_option_exits_2_with_one_line(tmp_path: Path, bad_policy: Path) -> None:
    done = _command(None, *LOCAL_RUN, "--out", tmp_path / "out", "--policy", bad_policy)
    _assert_one_line_naming_the_field(done, "python -m shared.local run", bad_policy)


def test_local_run_with_a_bad_journey_policy_path_exits_2_with_one_line(
    tmp_path: Path, bad_policy: Path
) -> None:
    done = _command(bad_policy, *LOCAL_RUN, "--out", tmp_path / "out")
    _assert_one_line_naming_the_field(done, "python -m shared.local run", bad_policy)
    assert not (tmp_path / "out" / "queues.db").exists()


def test_local_run_without_policy_option_uses_journey_policy_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A force that excludes hate crime from automated messages gets a task for one, not an email."""
    hate_crime = [occurrence("2026-11-20T10:00:00Z", flags=["hate_crime"])]
    shipped = replay(tmp_path / "shipped", hate_crime, end="2026-11-21T12:00:00Z")
    assert [m["template"] for m in shipped["outbox"]] == ["acknowledgement"]

    stricter = _policy(
        tmp_path,
        "stricter.json",
        safeguarding={"excluded_flags": ["domestic_abuse", "sexual_offence", "bereaved", "hate_crime"]},
    )
    monkeypatch.setenv("JOURNEY_POLICY_PATH", str(stricter))
    forced = replay(tmp_path / "forced", hate_crime, end="2026-11-21T12:00:00Z")
    assert forced["outbox"] == []
    assert forced["summary"]["tasks"] >= 1


def test_the_policy_option_wins_over_journey_policy_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_policy: Path
) -> None:
    monkeypatch.setenv("JOURNEY_POLICY_PATH", str(bad_policy))
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "niche.jsonl").write_text(
        json.dumps(occurrence("2026-11-20T10:00:00Z")) + "\n", encoding="utf-8"
    )
    (feeds / "officers.json").write_text(json.dumps([OFFICER]), encoding="utf-8")
    end = datetime(2026, 11, 21, 12, tzinfo=UTC)
    summary = run(
        RunRequest(feeds, feeds / "officers.json", tmp_path / "out", end=end, policy=DEFAULT_POLICY_PATH)
    )
    assert summary["messages"]["email"] == 1  # the acknowledgement


# --- python -m shared.ops ---------------------------------------------------------------------------------


def test_ops_command_with_a_bad_journey_policy_path_exits_2_with_one_line(
    tmp_path: Path, bad_policy: Path
) -> None:
    args = ("-m", "shared.ops", "compliance", "--from", "2026-11-01", "--to", "2026-11-30")
    done = _command(bad_policy, *args, "--out", tmp_path / "report", "--data", tmp_path)
    _assert_one_line_naming_the_field(done, "python -m shared.ops compliance", bad_policy)


def test_ops_commands_read_the_policy_journey_policy_path_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.ops.context import Context

    monkeypatch.setenv(
        "JOURNEY_POLICY_PATH", str(_policy(tmp_path, "scotland.json", deadlines={"nation": "scotland"}))
    )
    with Context(tmp_path) as context:
        assert context.policy.deadlines.nation == "scotland"
