"""Every "day" is the Europe/London calendar day (journey-rules.md §7), in the sample data too."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from shared.local.generate import generate

LONDON = ZoneInfo("Europe/London")


def test_storm_incidents_are_numbered_by_the_london_day_they_opened(tmp_path: Path) -> None:
    """In summer time an incident opened at 23:30 UTC opened on the next London day."""
    generate(tmp_path, crimes=600, days=10, seed=3, start=datetime(2026, 6, 25, tzinfo=UTC))
    first: dict[str, datetime] = {}
    for line in (tmp_path / "storm.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            first.setdefault(record["incident_number"], datetime.fromisoformat(record["opened_at"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line malformed on purpose
    late = {number: opened for number, opened in first.items() if opened.astimezone(UTC).hour == 23}
    assert late, "the sample has no incident opened between 23:00 and 00:00 UTC"
    for number, opened in first.items():
        assert number.split("-")[1] == f"{opened.astimezone(LONDON):%Y%m%d}", number
