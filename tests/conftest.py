"""Shared fixtures: local runs through the real host and the real function objects."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.local.run import RunRequest, run

SCENARIOS = Path(__file__).parent / "scenarios"

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
