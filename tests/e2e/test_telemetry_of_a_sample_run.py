"""Telemetry of a whole local run: a generated sample logged at debug level shows no personal data."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from shared.telemetry import ALLOWED_DIMENSIONS, EVENTS, install_redaction
from tests.personal_data import personal_data


def test_a_generated_sample_logged_at_debug_shows_no_personal_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.local.generate import generate
    from shared.local.run import RunRequest, run

    monkeypatch.setenv("NICHE_POLL_SCHEDULE", "0 0 * * * *")
    monkeypatch.setenv("STORM_POLL_SCHEDULE", "0 0 * * * *")
    feeds = tmp_path / "feeds"
    generate(feeds, crimes=80, days=8, seed=5)
    install_redaction()
    caplog.set_level(logging.DEBUG)
    run(RunRequest(feeds, feeds / "officers.json", tmp_path / "out"))
    personal = personal_data(feeds)
    assert len(personal) > 100  # the sample really has people in it
    logged: list[str] = []
    for record in caplog.records:
        logged.append(record.getMessage())
        logged.append(json.dumps({k: getattr(record, k, None) for k in ALLOWED_DIMENSIONS}, default=str))
        if record.exc_text:
            logged.append(record.exc_text)
    text = "\n".join(logged)
    leaks = sorted(value for value in personal if value in text)
    assert leaks == []
    events = {record.getMessage() for record in caplog.records if record.name == EVENTS}
    assert {"MessageSent", "TaskCreated", "DutyMet", "RecordQuarantined", "FeedLag"} <= events
    sent: Any = next(r for r in caplog.records if r.name == EVENTS and r.getMessage() == "MessageSent")
    assert all(
        getattr(sent, key, None) for key in ("crime_reference", "person_id", "channel", "template", "event")
    )
