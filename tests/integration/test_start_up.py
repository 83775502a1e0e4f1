"""A bad app setting or journey policy fails the app's start-up, when the worker indexes it (imports
function_app), naming what is wrong: not the first invocation, minutes or hours later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
_SECRET = "c2VjcmV0LWtleS12YWx1ZQ=="

# What the worker does at start-up: import the app and list its functions.
_INDEX = "import function_app\nprint('indexed', len(function_app.app.get_functions()))\n"


def _index(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("StateStorage", "ServiceBus", "ACS_", "GRAPH_", "FEED_", "NICHE_", "STORM_"))
    }
    env |= {"LOCAL_DATA_DIR": str(tmp_path / "data"), "JOURNEY_POLICY_PATH": "", **settings}
    return subprocess.run(
        [sys.executable, "-c", _INDEX], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_app_indexes_with_good_settings_and_touches_nothing(tmp_path: Path) -> None:
    done = _index(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("indexed ")
    assert not (tmp_path / "data").exists()  # checked, not built: nothing is opened at indexing


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("StateStorage", f"AccountKey={_SECRET}", "app setting StateStorage is invalid"),
        ("NICHE_POLL_SCHEDULE", "every five minutes", "app setting NICHE_POLL_SCHEDULE is invalid"),
        ("FEED_BATCH_SIZE", "0", "app setting FEED_BATCH_SIZE is invalid"),
        (
            "ServiceBusConnection",
            f"Endpoint=sb://bus.example/;SharedAccessKeyName=send;SharedAccessKey={_SECRET}",
            "StateStorage (or StateStorage__tableServiceUri) must be set with ServiceBusConnection",
        ),
    ],
)
def test_a_bad_setting_fails_indexing_naming_it_and_never_its_value(
    tmp_path: Path, setting: str, value: str, named: str
) -> None:
    done = _index(tmp_path, **{setting: value})
    assert done.returncode != 0 and "indexed" not in done.stdout
    assert named in done.stderr
    assert _SECRET not in done.stderr + done.stdout


def test_a_bad_journey_policy_fails_indexing_naming_the_field(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"timing": {"quiet_hours_start": "late"}}), encoding="utf-8")
    done = _index(tmp_path, JOURNEY_POLICY_PATH=str(policy))
    assert done.returncode != 0 and "indexed" not in done.stdout
    assert "timing.quiet_hours_start" in done.stderr
