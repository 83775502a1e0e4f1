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
from shared.local.parts import Parting
from shared.local.run import feed_span
from tests.builders import incident, occurrence

T0 = datetime(2026, 10, 5, 9, tzinfo=UTC)
SAW: Counter[str] = Counter()

# A line: its feed; good (its contract accepts it), timed but rejected, unreadable, blank, with a
# byte order mark, or good but ending in CRLF; at a minute (few: lines often tie).
LINE = st.tuples(
    st.sampled_from(["niche", "storm"]),
    st.sampled_from(["good", "rejected", "junk", "blank", "bom", "crlf"]),
    st.integers(0, 6),
)
# The n-th line is written with the UTC offset OFFSETS[n % 3]: lines at one instant differ in it.
OFFSETS = ("+00:00", "+01:00", "-05:00")
OFFSET = {"+00:00": 0, "+01:00": 60, "-05:00": -300}


def _line(feed: str, kind: str, minute: int, n: int) -> bytes:
    # The same instant whatever the offset: lines at one minute tie, however written.
    offset = OFFSETS[n % 3]
    stamp = (T0 + timedelta(minutes=minute + OFFSET[offset])).strftime("%Y-%m-%dT%H:%M:%S") + offset
    good = occurrence(stamp, ref=f"HU/{n:06d}/26") if feed == "niche" else incident(stamp, number=f"I-{n}")
    if kind in ("good", "bom", "crlf"):
        line = json.dumps(good).encode()
        return b"\xef\xbb\xbf" + line if kind == "bom" else line + b"\r" if kind == "crlf" else line
    if kind == "rejected":  # timed, so it may be among the candidates, but no record
        return json.dumps({"modified_at": stamp, "crime_reference": f"HU/{n:06d}/26"}).encode()
    return b"not json" if kind == "junk" else b"   "


def _reference(folder: Path) -> tuple[datetime | None, datetime | None]:
    """The rule itself: every line read, each timed one checked against its contract; of lines at
    one instant, the first in the files (Niche's, then STORM's) is the one shown."""
    stamps = [
        stamp
        for name in ("niche", "storm")
        if (folder / f"{name}.jsonl").exists()
        for raw in (folder / f"{name}.jsonl").read_bytes().splitlines(keepends=True)
        if (stamp := record_time(raw)) is not None and accepts(name, raw)
    ]
    if not stamps:
        return None, None
    return min(stamps), next(stamp for stamp in stamps if stamp == max(stamps))


def _shown(span: tuple[datetime | None, datetime | None]) -> tuple[str | None, str | None]:
    return (span[0] and span[0].isoformat(), span[1] and span[1].isoformat())


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(st.lists(LINE, max_size=30), st.integers(1, 4), st.booleans(), st.booleans())
def test_the_span_is_that_of_the_lines_the_contract_accepts(
    lines: list[tuple[str, str, int]], candidates: int, in_order: bool, ended: bool
) -> None:
    """feed_span, and the parting's reading of the same files (run --processes), give the rule's
    span, to the UTC offset the line was written with."""
    if in_order:  # as a force's extract comes, in modified_at order; else as a test may write one
        lines = sorted(lines, key=lambda line: line[2])
    read_through = run._span_checking_every_line
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "SPAN_CANDIDATES", candidates)

        def counted(feeds: Path) -> tuple[datetime | None, datetime | None]:
            SAW["read through"] += 1
            return read_through(feeds)

        patch.setattr(run, "_span_checking_every_line", counted)
        for feed in ("niche", "storm"):
            mine = [_line(*line, n) for n, line in enumerate(lines) if line[0] == feed]
            # Each file's last line without its newline, in some cases, as a hand-written file may end.
            data = b"\n".join(mine) + (b"\n" if ended and mine else b"")
            (Path(folder) / f"{feed}.jsonl").write_bytes(data)
        expected = _reference(Path(folder))
        assert _shown(feed_span(Path(folder))) == _shown(expected)
        assert _shown(Parting.of(Path(folder), 2).span) == _shown(expected)
    SAW["cases"] += 1
    SAW["with a span"] += expected != (None, None)
    SAW["rejected lines at an end"] += bool(lines) and any(
        kind == "rejected" and minute in (min(line[2] for line in lines), max(line[2] for line in lines))
        for _, kind, minute in lines
    )
    # Lines the contract accepts at one instant, written with different offsets, at an end.
    good = [(minute, OFFSETS[n % 3]) for n, (_, kind, minute) in enumerate(lines) if kind in ("good", "crlf")]
    SAW["ties at an end"] += any(
        len({offset for minute, offset in good if minute == end}) > 1
        for end in ({min(good)[0], max(good)[0]} if good else set())
    )


def test_the_property_test_saw_rejected_ends_and_the_files_read_through() -> None:
    """The property test above ran, and its cases had rejected lines at an end of the span, spans
    found among the candidates, and spans found only by reading the files through."""
    SAW.clear()
    test_the_span_is_that_of_the_lines_the_contract_accepts()
    assert SAW["cases"] == 80, SAW
    assert SAW["with a span"] > 20 and SAW["rejected lines at an end"] > 10 and SAW["ties at an end"] > 10, (
        SAW
    )
    # Twice a case: feed_span's, then the parting's.
    assert 0 < SAW["read through"] < SAW["cases"], SAW


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
