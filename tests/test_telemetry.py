"""Telemetry: custom events with dimensions, and never personal data in any log."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from shared.telemetry import ALLOWED_DIMENSIONS, EVENTS, install_redaction, redact, track


@pytest.mark.parametrize(
    "text",
    [
        "alex.smith@example.org",
        "07700 900123",
        "07700900123",
        "+447700900123",
        "+44 7700 900123",
        "(01482) 220 000",
        "01482-220-000",
    ],
)
def test_emails_and_uk_phone_numbers_are_redacted(text: str) -> None:
    cleaned = redact(f"contact {text} now")
    assert text not in cleaned and ("[email]" in cleaned or "[phone]" in cleaned)


@pytest.mark.parametrize(
    "text",
    [
        "HU/004512/26",
        "HU-20261120-0123",
        "2026-11-20T10:00:00+00:00",
        "0c2bd8f0bcf62f098c746d22",
        "P-2201",
        "104233",
    ],
)
def test_references_ids_and_times_are_left_alone(text: str) -> None:
    assert redact(f"crime {text} done") == f"crime {text} done"


def test_an_event_outside_the_catalogue_or_with_an_unknown_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown telemetry event"):
        track("SomethingElse")
    with pytest.raises(ValueError, match="not allowed"):
        track("MessageSent", email="alex@example.org")


def _personal_data(feeds: Path) -> set[str]:
    """Every name, email, phone number and date of birth in the generated feeds."""
    found: set[str] = set()
    for name in ("niche.jsonl", "storm.jsonl"):
        for line in (feeds / name).read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            people = [v for v in record.get("victims") or [] if isinstance(v, dict)]
            if isinstance(record.get("caller"), dict):
                people.append(record["caller"])
            for person in people:
                for part in ("forename", "surname"):
                    value = (
                        (person.get("name") or {}).get(part) if isinstance(person.get("name"), dict) else None
                    )
                    if isinstance(value, str) and len(value) > 3:
                        found.add(value)
                contact = person.get("contact") if isinstance(person.get("contact"), dict) else {}
                for value in (contact.get("email"), contact.get("mobile"), person.get("date_of_birth")):
                    if isinstance(value, str) and len(value) > 5:
                        found.add(value)
    return found


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
    personal = _personal_data(feeds)
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
