"""The embedded adapters: JSON Lines feed reader, JSON officer directory, file outbox."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.adapters.file_outbox import FileOutbox
from shared.adapters.json_directory import JsonOfficerDirectory
from shared.adapters.jsonl_feed import JsonlFeedReader
from shared.ports import EmailContent

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _line(n: int, modified_at: str) -> str:
    return json.dumps({"n": n, "modified_at": modified_at}) + "\n"


def test_reader_resumes_from_its_cursor_without_rereading(tmp_path: Path) -> None:
    feed = tmp_path / "niche.jsonl"
    feed.write_text("".join(_line(n, "2026-11-20T10:00:00Z") for n in range(5)))
    reader = JsonlFeedReader(feed)
    first = list(reader.read(None, NOW, limit=3))
    assert [json.loads(line.raw)["n"] for line in first] == [0, 1, 2]
    rest = list(reader.read(first[-1].position, NOW, limit=10))
    assert [json.loads(line.raw)["n"] for line in rest] == [3, 4]
    assert list(reader.read(rest[-1].position, NOW, limit=10)) == []


def test_reader_never_touches_what_lies_before_the_cursor(tmp_path: Path) -> None:
    # Work grows with new records, not with the feed: bytes before the cursor are never read.
    feed = tmp_path / "niche.jsonl"
    already_read = b"\xff\xfe not even text \n" * 1000
    feed.write_bytes(already_read + _line(7, "2026-11-20T10:00:00Z").encode())
    [line] = JsonlFeedReader(feed).read(str(len(already_read)), NOW, limit=10)
    assert json.loads(line.raw)["n"] == 7


def test_reader_stops_at_the_first_record_still_in_the_future(tmp_path: Path) -> None:
    feed = tmp_path / "niche.jsonl"
    feed.write_text(
        _line(1, "2026-11-20T11:00:00Z") + _line(2, "2026-11-20T13:00:00Z") + _line(3, "2026-11-20T11:30:00Z")
    )
    reader = JsonlFeedReader(feed)
    seen = list(reader.read(None, NOW, limit=10))
    assert [json.loads(line.raw)["n"] for line in seen] == [1]
    later = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    assert [json.loads(line.raw)["n"] for line in reader.read(seen[-1].position, later, limit=10)] == [2, 3]


def test_reader_yields_a_broken_line_at_once_for_quarantine(tmp_path: Path) -> None:
    feed = tmp_path / "niche.jsonl"
    feed.write_text('{"schema": "niche.occ\n' + _line(2, "2026-11-20T10:00:00Z"))
    lines = list(JsonlFeedReader(feed).read(None, NOW, limit=10))
    assert lines[0].raw == '{"schema": "niche.occ' and len(lines) == 2


def test_reader_of_a_missing_feed_reads_nothing(tmp_path: Path) -> None:
    assert list(JsonlFeedReader(tmp_path / "storm.jsonl").read(None, NOW, limit=10)) == []


def test_directory_finds_officers_and_rejects_a_malformed_file_naming_the_field(tmp_path: Path) -> None:
    good = tmp_path / "officers.json"
    good.write_text(json.dumps([{"employee_id": "1", "display_name": "Jo Bloggs", "collar_number": "PC 1"}]))
    directory = JsonOfficerDirectory(good)
    officer = directory.lookup("1")
    assert officer is not None and officer.display_name == "Jo Bloggs"
    assert directory.lookup("2") is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"employee_id": "1"}]))
    with pytest.raises(ValueError, match=r"0\.display_name"):
        JsonOfficerDirectory(bad)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"", "is not JSON: Expecting value at line 1, column 1"),
        (b"officers", "is not JSON: Expecting value at line 1, column 1"),
        (
            b'[\n  {"employee_id": "1",\n  "display_name": "Jo',
            "is not JSON: Unterminated string starting at line 3",
        ),
        (b"[1,]", "is not JSON: "),
        (b"\xff\xfe[]", "is not UTF-8 text"),
        (b"{}", "is malformed: Input should be a valid list"),
        (b'[{"employee_id": "1"}]', "is malformed at 0.display_name: Field required"),
    ],
)
def test_a_directory_file_that_is_not_a_list_of_officers_says_what_is_wrong_in_one_line(
    tmp_path: Path, content: bytes, complaint: str
) -> None:
    bad = tmp_path / "officers.json"
    bad.write_bytes(content)
    with pytest.raises(ValueError) as raised:
        JsonOfficerDirectory(bad)
    message = str(raised.value)
    assert message.startswith(f"officer directory {bad} ") and complaint in message
    assert "\n" not in message
    # "at" is always followed by where: never by nothing, a colon, or another "at".
    assert not re.search(r"\bat(?= *:| *$| at\b)", message), message


def test_outbox_accepts_the_same_idempotency_key_once_even_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = FileOutbox(path, lambda: NOW)
    first = outbox.send_sms(
        idempotency_key="k1", to="+447700900123", text="hello", metadata={"message_id": "k1"}
    )
    again = outbox.send_sms(
        idempotency_key="k1", to="+447700900123", text="hello", metadata={"message_id": "k1"}
    )
    assert first == again
    reopened = FileOutbox(path, lambda: NOW)
    reopened.send_email(
        idempotency_key="k1", to="a@example.org", content=EmailContent("s", "t", "<p>t</p>"), metadata={}
    )
    reopened.send_email(
        idempotency_key="k2", to="a@example.org", content=EmailContent("s", "t", "<p>t</p>"), metadata={}
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["idempotency_key"], line["channel"]) for line in lines] == [("k1", "sms"), ("k2", "email")]


def test_the_outbox_remembers_keys_for_its_retention_window_only(tmp_path: Path) -> None:
    from shared.adapters.file_outbox import RETENTION

    now = [NOW]
    outbox = FileOutbox(tmp_path / "outbox.jsonl", lambda: now[0])
    outbox.send_sms(idempotency_key="old", to="+447700900123", text="hi", metadata={})
    now[0] = NOW + RETENTION - timedelta(minutes=1)
    outbox.send_sms(idempotency_key="recent", to="+447700900123", text="hi", metadata={})
    assert outbox.accepted("old") is not None  # a retry inside the window is recognised
    now[0] = NOW + RETENTION + timedelta(minutes=1)
    outbox.send_sms(idempotency_key="new", to="+447700900123", text="hi", metadata={})
    assert outbox.accepted("old") is None and len(outbox) == 2  # memory holds the window, not the year
    assert outbox.accepted("recent") is not None
    reopened = FileOutbox(tmp_path / "outbox.jsonl", lambda: now[0])
    assert reopened.accepted("old") is None and reopened.accepted("new") is not None
