"""Shared fixtures: local runs through the real host and the real function objects."""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import shared
from shared.local.run import RunRequest, run

SCENARIOS = Path(__file__).parent / "scenarios"


def _load_every_module_of_the_service() -> None:
    """Import every module of ``shared`` and the function app, once, before any test runs.

    Hypothesis draws some values from the constants of the project's modules loaded so far
    (its "local constants"), so a derandomized property would draw other examples depending on
    which tests ran before it in the same process, or in which pytest-xdist worker it ran; and
    the properties count what their examples exercised. With every module loaded first, each
    property draws the same examples however the suite is run.
    """
    for module in pkgutil.walk_packages(shared.__path__, "shared."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    importlib.import_module("function_app")


_load_every_module_of_the_service()

# azure-functions warns about HTTP auth levels for apps without HTTP triggers; irrelevant here.
logging.getLogger().addFilter(lambda record: "Auth level is not applied" not in record.getMessage())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def run_scenario(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Replay a scenario folder (or any feeds folder) and return its outputs."""

    def _run(feeds: Path | str, out: Path | None = None, **options: Any) -> dict[str, Any]:
        folder = SCENARIOS / feeds if isinstance(feeds, str) else feeds
        target = out or tmp_path / "out"
        summary = run(RunRequest(folder, folder / "officers.json", target, **options))
        return {
            "summary": summary,
            "outbox": read_jsonl(target / "outbox.jsonl"),
            "tasks": read_jsonl(target / "tasks.jsonl"),
            "audit": read_jsonl(target / "audit.jsonl"),
            "quarantine": read_jsonl(target / "quarantine.jsonl"),
            "dead_letters": read_jsonl(target / "dead-letter.jsonl"),
            "out": target,
        }

    return _run
