"""FeedStale: a feed that has produced nothing for FEED_STALE_MINUTES in working hours, whether one
process reads it or several (run --processes) each read their own crimes' lines of it."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.jsonl_feed import JsonlFeedReader
from shared.local.host import SimulatedClock
from shared.local.parts import Parting
from shared.settings import load_settings
from shared.steps.ingest import ingest_feed
from tests.builders import embedded, occurrence

MONDAY = datetime(2026, 10, 5, tzinfo=UTC)
TICKS = [MONDAY + timedelta(hours=7, minutes=5 * n) for n in range(12 * 12)]  # 07:00 to 18:55
STALE_MINUTES = 60
LONDON = ZoneInfo("Europe/London")


def _sample(folder: Path, seed: int) -> list[tuple[datetime, str]]:
    """A Monday's Niche lines for six crimes, each falling quiet at its own time, and a gap of
    some 90 minutes when none of them speaks (so one process finds the feed silent); a line's
    crime is "" where it is malformed."""
    rng = random.Random(seed)
    gap_from = MONDAY + timedelta(hours=rng.choice([10, 11, 13]))
    lines: list[tuple[datetime, str]] = []
    for crime in range(6):
        quiet_from = MONDAY + timedelta(hours=rng.uniform(8, 17))
        at = MONDAY + timedelta(hours=7, minutes=rng.randrange(30))
        while at < quiet_from:
            if not gap_from <= at < gap_from + timedelta(minutes=90):
                lines.append((at, f"HU/{crime:06d}/26"))
            at += timedelta(minutes=rng.randrange(10, 50))
    lines.sort()
    # Three malformed lines (no crime: quarantined by the part the parting spreads each to), each
    # read at the tick of the line before it, since a line with no time shows at once.
    for after in sorted(rng.sample(range(len(lines)), 3), reverse=True):
        lines.insert(after + 1, (lines[after][0], ""))
    folder.mkdir(parents=True)
    with (folder / "niche.jsonl").open("w", encoding="utf-8") as handle:
        for n, (at, crime) in enumerate(lines):
            record = json.dumps(occurrence(at.isoformat().replace("+00:00", "Z"), ref=crime)) if crime else ""
            handle.write((record or f"{{not json {n}") + "\n")
    (folder / "storm.jsonl").write_text("", encoding="utf-8")
    return lines


def _stale_ticks(state: Path, reader: JsonlFeedReader) -> tuple[list[datetime], int]:
    """The ticks at which ingest raised FeedStale for the Niche feed, read through ``reader``, and
    how many lines it quarantined."""
    clock = SimulatedClock(TICKS[0])
    services, _ = embedded(load_settings(LOCAL_DATA_DIR=state, FEED_STALE_MINUTES=STALE_MINUTES), clock)
    services.feeds["niche"] = reader
    stale, quarantined = [], 0
    for tick in TICKS:
        clock.advance_to(tick)
        report = ingest_feed("niche", services)
        quarantined += report.quarantined
        if any(name == "FeedStale" for name, _ in report.result.events):
            stale.append(tick)
    return stale, quarantined


def _working(tick: datetime) -> bool:
    """Working hours: a weekday (this Monday is no bank holiday), 08:00 to 18:00 in London."""
    return 8 <= tick.astimezone(LONDON).hour < 18


def _silent_too_long(times: list[datetime], tick: datetime) -> bool:
    """Whether no line had shown for STALE_MINUTES at ``tick``, counting from the tick that read
    the last one (lines are read at the first tick at or after their time)."""
    read_at = [min(t for t in TICKS if t >= at) for at in times if at <= tick]
    return bool(read_at) and tick - max(read_at) > timedelta(minutes=STALE_MINUTES)


@pytest.mark.parametrize("seed", range(4))
def test_a_process_whose_own_crimes_fell_quiet_calls_the_feed_stale_only_when_one_process_would(
    tmp_path: Path, seed: int
) -> None:
    feeds = tmp_path / "feeds"
    lines = _sample(feeds, seed)
    alone, quarantined = _stale_ticks(tmp_path / "one", JsonlFeedReader(feeds / "niche.jsonl"))
    assert quarantined == 3
    # The rule, in one process: stale at each tick in working hours with no line for an hour.
    assert alone == [t for t in TICKS if _working(t) and _silent_too_long([at for at, _ in lines], t)]
    assert alone, "the sample's gap makes the feed silent for a while"
    parting = Parting.of(feeds, 2)
    quiet_alone = 0  # ticks at which a part's own lines had been silent an hour but the feed's not
    for part in range(2):
        reader = JsonlFeedReader(feeds / "niche.jsonl")
        parting.give(part)("niche", reader)
        stale, quarantined_here = _stale_ticks(tmp_path / f"part{part}", reader)
        assert stale == alone, f"part {part}"
        quarantined -= quarantined_here
        own = [at for at, crime in lines if crime and parting.part[f"niche:{crime}"] == part]
        quiet_alone += sum(1 for t in TICKS if _working(t) and _silent_too_long(own, t) and t not in alone)
    assert quarantined == 0, "each malformed line quarantined by one part"
    assert quiet_alone > 0, "some part's own crimes fell quiet while the feed went on"


def test_a_part_reading_lines_added_after_the_parting_passes_over_others_as_the_feed_speaking(
    tmp_path: Path,
) -> None:
    """The other way a part tells its lines (by key, for lines the parting did not read)."""
    feeds = tmp_path / "feeds"
    lines = _sample(feeds, 7)
    parting = Parting.of(feeds, 2)
    parting.lines.clear()  # as if every line had been added to the file after the parting
    alone, _ = _stale_ticks(tmp_path / "one", JsonlFeedReader(feeds / "niche.jsonl"))
    for part in range(2):
        reader = JsonlFeedReader(feeds / "niche.jsonl")
        parting.give(part)("niche", reader)
        assert reader.lines is None
        assert _stale_ticks(tmp_path / f"part{part}", reader)[0] == alone, f"part {part}"
    assert alone and len({crime for _, crime in lines if crime}) == 6


def test_a_tick_that_reads_only_lines_it_quarantines_finds_the_feed_speaking(tmp_path: Path) -> None:
    """A malformed line is the feed producing something (RecordQuarantined tells of it): not silence."""
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    niche = feeds / "niche.jsonl"
    niche.write_text(json.dumps(occurrence("2026-10-05T07:00:00Z")) + "\n", encoding="utf-8")
    clock = SimulatedClock(TICKS[0])
    services, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path, FEED_STALE_MINUTES=STALE_MINUTES), clock)
    services.feeds["niche"] = JsonlFeedReader(niche)
    garbled_at = MONDAY + timedelta(hours=10, minutes=30)
    seen: dict[datetime, tuple[int, set[str]]] = {}
    for tick in TICKS:
        if tick == garbled_at:
            with niche.open("a", encoding="utf-8") as handle:
                handle.write("{not json\n")
        clock.advance_to(tick)
        report = ingest_feed("niche", services)
        seen[tick] = (report.quarantined, {name for name, _ in report.result.events})
    assert seen[garbled_at] == (1, {"RecordQuarantined"})
    stale = [t for t in TICKS if "FeedStale" in seen[t][1]]
    hour = timedelta(hours=1)
    first_read = TICKS[0]
    expected = [
        t for t in TICKS if _working(t) and t - (garbled_at if t >= garbled_at else first_read) > hour
    ]
    assert stale == expected and garbled_at - timedelta(minutes=5) in stale
