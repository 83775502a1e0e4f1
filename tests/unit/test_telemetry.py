"""Telemetry: custom events with dimensions, and never personal data in any log."""

from __future__ import annotations

import pytest

from shared.telemetry import redact, track


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
