"""The reason a feed record is quarantined reads as a sentence: no doubled word ("at at"), for
every kind of fault a line can have (broken JSON anywhere, a contract violation, too large, too deep)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from shared.contracts.feeds import UNREAD_RECORD, unread_record
from shared.steps.ingest import _parse, _reason
from tests.builders import incident, milestone, occurrence, victim

DOUBLED = re.compile(r"\b(\w+)\s+\1\b", re.IGNORECASE)
AT = "2026-11-02T09:00:00+00:00"


def _records() -> dict[str, dict[str, Any]]:
    return {
        "niche": occurrence(AT, victims=[victim()], milestones=[milestone("m-1", "arrest", AT)]),
        "storm": incident(AT, scheduled_for=AT),
    }


def _why(feed: str, raw: str) -> str | None:
    try:
        _parse(feed, raw)
    except Exception as exc:  # each fault ingest quarantines is one of these
        return _reason(exc)
    return None


def _broken_lines(feed: str, record: dict[str, Any]) -> list[str]:
    """Every way the line can be broken: cut anywhere, a stray character anywhere, the JSON
    faults the parser names, each field missing or of the wrong type."""
    line = json.dumps(record)
    lines = [line[:cut] for cut in range(len(line))]
    lines += [line[:at] + stray + line[at:] for at in range(0, len(line), 3) for stray in ("x", ",", "\x01")]
    lines += [line + " {}", line.replace('"', "'", 2), line.replace("}", ",}", 1), '"\\q"', "[" * 100_000]
    for key in record:
        lines.append(json.dumps({k: v for k, v in record.items() if k != key}))
        for wrong in (None, 7, "", [], {}, True, "not at all a date"):
            lines.append(json.dumps({**record, key: wrong}))
    lines.append(json.dumps({UNREAD_RECORD: unread_record("at 12", 9_000_000, 1_000_000)}))
    return lines


@pytest.mark.parametrize("feed", ["niche", "storm"])
def test_no_quarantine_reason_has_a_doubled_word(feed: str) -> None:
    reasons = {why for raw in _broken_lines(feed, _records()[feed]) if (why := _why(feed, raw))}
    assert len(reasons) > 50  # the faults above are many kinds, not one
    doubled = sorted(reason for reason in reasons if DOUBLED.search(reason))
    assert doubled == []


def test_broken_json_names_the_column_it_breaks_at_once() -> None:
    line = json.dumps(_records()["niche"])
    reason = _why("niche", line[: line.index('"crime_reference"') + 5])
    assert reason == "not valid JSON: Unterminated string starting at column 67"
