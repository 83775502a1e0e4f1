"""A run's default span is the earliest and latest modified_at among the feed lines their contract
accepts (shared/local/run.py, feed_span): found in one reading of each line's time, with only a few
lines at each end checked against the contract, and the files read through where those all fail."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.jsonl_feed import record_time
from shared.contracts.feeds import accepts
from shared.local import run
from shared.local.run import feed_span
from tests.builders import occurrence

T0 = datetime(2026, 10, 5, 9, tzinfo=UTC)
SAW: Counter[str] = Counter()

# A line: good (the contract accepts it), timed but rejected, unreadable, or blank; at a minute.
LINE = st.tuples(st.sampled_from(["good", "rejected", "junk", "blank"]), st.integers(0, 30))


def _line(kind: str, minute: int, n: int) -> bytes:
    stamp = (T0 + timedelta(minutes=minute)).isoformat()
    if kind == "good":
        return json.dumps(occurrence(stamp, ref=f"HU/{n:06d}/26")).encode()
    if kind == "rejected":  # timed, so it may be among the candidates, but no record
        return json.dumps({"modified_at": stamp, "crime_reference": f"HU/{n:06d}/26"}).encode()
    return b"not json" if kind == "junk" else b"   "


def _reference(folder: Path) -> tuple[datetime | None, datetime | None]:
    """The rule itself: every line read, each timed one checked against its contract."""
    stamps = [
        stamp
        for name in ("niche", "storm")
        if (folder / f"{name}.jsonl").exists()
        for raw in (folder / f"{name}.jsonl").read_bytes().splitlines(keepends=True)
        if (stamp := record_time(raw)) is not None and accepts(name, raw)
    ]
    return (min(stamps), max(stamps)) if stamps else (None, None)


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(st.lists(LINE, max_size=30), st.integers(1, 4), st.booleans())
def test_the_span_is_that_of_the_lines_the_contract_accepts(
    lines: list[tuple[str, int]], candidates: int, in_order: bool
) -> None:
    if in_order:  # as a force's extract comes, in modified_at order; else as a test may write one
        lines = sorted(lines, key=lambda line: line[1])
    read_through = run._span_checking_every_line
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "SPAN_CANDIDATES", candidates)

        def counted(feeds: Path) -> tuple[datetime | None, datetime | None]:
            SAW["read through"] += 1
            return read_through(feeds)

        patch.setattr(run, "_span_checking_every_line", counted)
        path = Path(folder) / "niche.jsonl"
        path.write_bytes(b"".join(_line(kind, minute, n) + b"\n" for n, (kind, minute) in enumerate(lines)))
        expected = _reference(Path(folder))
        assert feed_span(Path(folder)) == expected
    SAW["cases"] += 1
    SAW["with a span"] += expected != (None, None)
    SAW["rejected lines at an end"] += bool(lines) and any(
        kind == "rejected" and minute in (min(m for _, m in lines), max(m for _, m in lines))
        for kind, minute in lines
    )


def test_the_property_test_saw_rejected_ends_and_the_files_read_through() -> None:
    """The property test above ran, and its cases had rejected lines at an end of the span, spans
    found among the candidates, and spans found only by reading the files through."""
    SAW.clear()
    test_the_span_is_that_of_the_lines_the_contract_accepts()
    assert SAW["cases"] == 80, SAW
    assert SAW["with a span"] > 20 and SAW["rejected lines at an end"] > 10, SAW
    assert 0 < SAW["read through"] < SAW["cases"] // 2, SAW


def test_both_feeds_count_and_each_line_is_checked_against_its_own_feed_s_contract(tmp_path: Path) -> None:
    # A Niche record in the STORM file is timed but not a STORM record: it moves no end.
    early = json.dumps(occurrence("2026-10-01T00:00:00Z")).encode()
    (tmp_path / "storm.jsonl").write_bytes(early + b"\n")
    (tmp_path / "niche.jsonl").write_bytes(
        json.dumps(occurrence("2026-10-05T09:00:00Z")).encode()
        + b"\n"
        + json.dumps(occurrence("2026-10-06T09:00:00Z", ref="HU/000002/26")).encode()
        + b"\n"
    )
    assert feed_span(tmp_path) == (datetime(2026, 10, 5, 9, tzinfo=UTC), datetime(2026, 10, 6, 9, tzinfo=UTC))
