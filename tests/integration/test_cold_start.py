"""A worker's start (import function_app, build the services) imports what the commonest path needs
(a case change through resolve_officer, evaluate_journey and send_message) and leaves what only
other functions need to their first call (docs/benchmark.md, the cold start). Checked in a fresh interpreter, on the bench's own snippet:
the embedded default, then one case change through resolve_officer, evaluate_journey and
send_message. Times are the bench's business, never a test's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from shared.local import bench

ROOT = Path(__file__).resolve().parents[2]

# Needed by one function only (or one service), imported on its first call.
ONE_FUNCTIONS = (
    "shared.web.http",  # victim_page
    "shared.web.site",
    "shared.web.victim_pages",
    "shared.steps.ingest",  # ingest_niche, ingest_storm
    "shared.steps.retention",  # retention
    "shared.steps.notify_officer",  # notify_officer
    "shared.steps.record_delivery",  # delivery_report
)
_PROBE = """
import sys as _sys
_modules = {modules!r}
print("probe", json.dumps({{"imported": sorted(m for m in _modules if m in _sys.modules)}}))
"""


def _start_then_first_message() -> tuple[dict[str, Any], dict[str, Any]]:
    built = "built = time.perf_counter() - t\n"
    assert built in bench._APP_IMPORT  # where the bench's figure of the start is taken
    probe = _PROBE.format(modules=("jinja2", *ONE_FUNCTIONS))
    code = bench._APP_IMPORT.replace(built, built + "import json\n" + probe) + probe
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    probes = [
        json.loads(line[len("probe ") :]) for line in done.stdout.splitlines() if line.startswith("probe ")
    ]
    assert len(probes) == 2
    return probes[0], probes[1]


def test_the_start_leaves_jinja2_the_page_and_the_other_steps_to_first_use() -> None:
    start, after_first_message = _start_then_first_message()

    assert start == {"imported": []}
    # The first message rendered its templates (Jinja2); the page and the other functions'
    # steps are still not imported.
    assert after_first_message["imported"] == ["jinja2"]


def test_the_compiled_copy_is_imported_from_its_own_checked_hash_bytecode(tmp_path: Path) -> None:
    # What the bench's "with the app's own bytecode" figure runs: the copy's modules load from the
    # .pyc beside them (python -v says "code object from" each), not compiled again, though this
    # environment never writes bytecode of its own; checked-hash ones, valid whatever a zip does to
    # file times (PEP 552: the flags word after the magic number is 0b11).
    app = bench.compiled_app(tmp_path)
    bootstrap_pyc = next((app / "shared" / "__pycache__").glob("bootstrap.*.pyc"))
    assert int.from_bytes(bootstrap_pyc.read_bytes()[4:8], "little") == 0b11
    done = subprocess.run(
        [sys.executable, "-v", "-c", "import function_app"],
        capture_output=True,
        text=True,
        cwd=app,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = [
        line
        for line in done.stderr.splitlines()
        if line.startswith("# code object from") and str(app) in line
    ]
    names = {Path(line.split("'")[1]).name.split(".")[0] for line in loaded}
    assert {"function_app", "bootstrap", "settings", "evaluate_journey"} <= names, sorted(names)
    assert not [
        line for line in done.stderr.splitlines() if "matches" not in line and f"# compiling {app}" in line
    ]


def test_the_sentence_gives_the_start_with_the_apps_bytecode_when_measured() -> None:
    cold = bench._cold_start_figures(7, 500.0, 700.0, 300.0, 420.0)
    assert cold["overhead_with_pyc_median_ms"] == 120.0
    assert "checked-hash .pyc" in bench._cold_start_sentence(
        cold
    ) and "overhead 120.0 ms." in bench._cold_start_sentence(cold)
    assert "bytecode" not in bench._cold_start_sentence(bench._cold_start_figures(7, 500.0, 700.0, 300.0))
