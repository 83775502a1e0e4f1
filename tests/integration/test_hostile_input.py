"""Hostile feed input found by fuzzing: each is quarantined or made safe, never a crash or a stuck feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.adapters.jsonl_feed import JsonlFeedReader, record_time
from shared.adapters.table_layout import QUARANTINE, SNAPSHOTS
from shared.adapters.templates import render_sms
from shared.contracts.feeds import NicheOccurrence
from shared.contracts.messages import Officer
from shared.domain.journey import Duty, Journey
from shared.domain.policy import Policy
from shared.local.host import SimulatedClock
from shared.local.run import feed_span
from shared.settings import load_settings
from shared.steps.ingest import ingest_feed
from tests.builders import embedded, milestone, occurrence

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _ingest(tmp_path: Path, lines: list[bytes]) -> tuple[int, int]:
    """(quarantined, snapshots stored) after ingesting the lines to the end."""
    feeds = tmp_path / "feeds"
    feeds.mkdir(exist_ok=True)
    (feeds / "niche.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    services, _ = embedded(
        load_settings(LOCAL_DATA_DIR=tmp_path / "data", LOCAL_FEEDS_DIR=feeds), SimulatedClock(NOW)
    )
    while ingest_feed("niche", services).read:
        pass
    quarantined = len(list(services.tables.query_partition(QUARANTINE, "niche")))
    stored = sum(services.tables.get(SNAPSHOTS, f"HU/00000{n}/26", "niche") is not None for n in range(1, 10))
    return quarantined, stored


def _good(n: int) -> bytes:
    return json.dumps(occurrence(f"2026-11-20T10:0{n}:00Z", ref=f"HU/00000{n}/26")).encode()


@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "1999-12-31T23:00:00Z"]
)
def test_a_time_outside_2000_to_2100_is_rejected(stamp: str) -> None:
    with pytest.raises(ValidationError, match="between 2000 and 2100"):
        NicheOccurrence.model_validate(occurrence("2026-11-20T10:00:00Z") | {"modified_at": stamp})


def test_deeply_nested_milestone_details_are_rejected() -> None:
    details: dict[str, object] = {}
    node = details
    for _ in range(20):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    record = occurrence(
        "2026-11-20T10:00:00Z",
        milestones=[milestone("M-1", "suspect_arrested", "2026-11-20T09:00:00Z", details)],
    )
    with pytest.raises(ValidationError, match="nest deeper"):
        NicheOccurrence.model_validate(record)


def test_hostile_lines_are_quarantined_and_the_good_ones_around_them_stored(tmp_path: Path) -> None:
    wrong_type = json.dumps(
        occurrence("2026-11-20T10:00:00Z", ref="HU/000009/26") | {"crime_reference": 12345}
    )
    deep = b"[" * 100_000 + b"]" * 100_000
    bad_utf8 = _good(3).replace(b"Alex", b"Al\xffex")
    lines = [_good(1), deep, wrong_type.encode(), _good(2), bad_utf8, _good(4)]
    quarantined, stored = _ingest(tmp_path, lines)
    assert quarantined == 3
    assert stored == 3  # 1, 2 and 4; the altered 3 is not stored under a changed name


def test_a_record_is_timed_by_its_own_top_level_modified_at() -> None:
    record = occurrence("2026-11-20T10:00:00Z")
    nested = json.dumps(
        record
        | {
            "milestones": [
                milestone(
                    "M-1", "suspect_arrested", "2026-11-20T09:00:00Z", {"modified_at": "2099-01-01T00:00:00Z"}
                )
            ]
        }
    )
    duplicate = '{"modified_at": "2099-01-01T00:00:00Z", ' + json.dumps(record)[1:]
    assert record_time(nested.encode()) == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert record_time(duplicate.encode()) == datetime(
        2026, 11, 20, 10, tzinfo=UTC
    )  # the last key wins, as in the model


def test_a_reader_is_not_held_back_by_a_bad_line_with_a_far_future_time(tmp_path: Path) -> None:
    feed = tmp_path / "niche.jsonl"
    feed.write_text('{"modified_at": "9999-12-20T00:00:00Z", "junk": 1}\n' + _good(1).decode() + "\n")
    assert len(list(JsonlFeedReader(feed).read(None, NOW, 10))) == 2


def test_the_default_run_span_ignores_lines_the_model_would_reject(tmp_path: Path) -> None:
    (tmp_path / "niche.jsonl").write_text(
        '{"modified_at": "0001-01-01T00:00:00Z"}\n'
        + _good(1).decode()
        + '\n{"modified_at": "9999-12-20T00:00:00Z"}\n'
    )
    assert feed_span(tmp_path) == (
        datetime(2026, 11, 20, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 20, 10, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize("where", ["crime_reference", "collar_number"])
def test_an_sms_carries_no_control_character_from_data(where: str) -> None:
    hostile = "HU/000001/26\x07\x1b[2J\x00\u202e"
    journey = Journey(
        crime_reference=hostile if where == "crime_reference" else "HU/000001/26",
        person_id="P-1",
        role="victim",
        officer=Officer(
            employee_id="1", display_name="Jo", collar_number=hostile if where == "collar_number" else "PC 1"
        ),
    )
    duty = Duty(key="ack", template="acknowledgement", event_at=NOW, change_id="c")
    text = render_sms(journey, [duty], Policy()).text
    assert not any(ch in text for ch in "\x07\x1b\x00\u202e")
    assert text.startswith("Humberside Police: We have recorded your report.")


def test_a_hearing_time_that_cannot_be_read_does_not_stop_the_message() -> None:
    from shared.adapters.templates import render_email

    journey = Journey(crime_reference="HU/000001/26", person_id="P-1", role="victim")
    duty = Duty(
        key="m:M-1",
        template="suspect_charged",
        event_at=NOW,
        change_id="c",
        details={"court": "Hull", "hearing_at": "9999-12-31T23:00:00-05:00"},
    )
    text = render_email(journey, [duty], Policy()).text
    assert "The first hearing will be at Hull." in text and "a date we will confirm" not in text


def test_an_email_carries_no_control_or_bidi_character_from_data() -> None:
    from shared.adapters.templates import render_email
    from shared.contracts.feeds import Victim
    from tests.builders import victim

    person = victim() | {"name": {"title": "Ms", "surname": "Smith\x07\u202e"}}
    journey = Journey(
        crime_reference="HU/1/26\x00\x1b\u202e",
        person_id="P-1",
        role="victim",
        victim=Victim.model_validate(person),
    )
    email = render_email(
        journey, [Duty(key="ack", template="acknowledgement", event_at=NOW, change_id="c")], Policy()
    )
    for text in (email.subject, email.text, email.html):
        assert not any(ch in text for ch in "\x00\x07\x1b\u202e")
    assert "Dear Ms Smith" in email.text


def test_an_out_of_court_disposal_names_the_disposal_in_the_email(tmp_path: Path) -> None:
    from tests.builders import replay

    disposal = milestone(
        "M-1", "out_of_court_disposal", "2026-11-20T10:00:00Z", {"disposal": "community resolution"}
    )
    records = [occurrence("2026-11-19T10:00:00Z"), occurrence("2026-11-20T10:01:00Z", milestones=[disposal])]
    result = replay(tmp_path, records, end="2026-11-21T00:00:00Z")
    [email] = [m for m in result["outbox"] if m["template"] == "out_of_court_disposal"]
    assert "(community resolution)" in email["body"]
