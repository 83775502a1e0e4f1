"""A run in several processes splits the feeds by crime group (shared/local/parts.py), and each
process's feed reader passes over the lines that are not its own without losing its place."""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters import jsonl_feed
from shared.adapters.jsonl_feed import JsonlFeedReader, line_text
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.local.parts import NO_TIME, FeedLines, Parting, _Keep, _Lines, _merge_state
from shared.local.run import RunError, feed_span
from shared.ports import Entity
from tests.builders import occurrence

T0 = datetime(2026, 10, 5, 9, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _write(folder: Path, niche: list[dict[str, object]], storm: list[dict[str, object] | str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "niche.jsonl").write_text("".join(json.dumps(r) + "\n" for r in niche), encoding="utf-8")
    (folder / "storm.jsonl").write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in storm), encoding="utf-8"
    )


def test_a_crime_and_every_incident_linked_to_it_either_way_go_to_one_part(tmp_path: Path) -> None:
    niche = [
        {"crime_reference": "C1", "incident_numbers": ["I1"]},
        {"crime_reference": "C2"},
        {"crime_reference": "C3", "incident_numbers": ["I3"]},
        {"crime_reference": "C2", "incident_numbers": []},
    ]
    storm: list[dict[str, object] | str] = [
        {"incident_number": "I1"},
        {"incident_number": "I2", "crime_reference": "C2"},  # linked from STORM's side only
        {"incident_number": "I3", "crime_reference": "C1"},  # joins C3's group to C1's
        {"incident_number": "I4"},  # never linked: a group of its own
    ]
    _write(tmp_path, niche, storm)
    parting = Parting.of(tmp_path, 2)
    part = parting.part
    assert part["niche:C1"] == part["storm:I1"] == part["storm:I3"] == part["niche:C3"]
    assert part["niche:C2"] == part["storm:I2"]
    assert sum(parting.records) == len(niche) + len(storm)
    # The same files, the same parting.
    assert Parting.of(tmp_path, 2) == parting


def test_lines_without_a_key_are_spread_and_every_line_is_some_parts(tmp_path: Path) -> None:
    storm: list[dict[str, object] | str] = [f"not json {n}" for n in range(40)] + [
        {"incident_number": f"I{n}"} for n in range(40)
    ]
    _write(tmp_path, [], storm)
    parting = Parting.of(tmp_path, 3)
    lines = [line_text(raw) for raw in (tmp_path / "storm.jsonl").read_bytes().splitlines(keepends=True)]
    keeps = [_Keep(parting, k) for k in range(3)]
    owners = [[k for k in range(3) if keeps[k]("storm", text)] for text in lines]
    assert all(len(found) == 1 for found in owners), "each line is exactly one part's"
    unkeyed = [found[0] for text, found in zip(lines, owners, strict=True) if text.startswith("not")]
    assert set(unkeyed) == {0, 1, 2}, "unreadable lines are spread over the parts, not all on one"
    taken = [sum(1 for found in owners if found[0] == k) for k in range(3)]
    assert taken == list(parting.records)


# White space a line may carry that the reader strips (str.strip) but json.loads would refuse,
# and a line only the feed's model reads: each must go with its crime, as ingest reads it.
ODD = ["\u00a0", "\u2028", "\u0085", "\x0c", "\x1e", "\u3000"]


def test_a_line_goes_with_its_crime_however_it_is_wrapped(tmp_path: Path) -> None:
    crimes = [f"C{n}" for n in range(12)]
    lines = [json.dumps({"crime_reference": c}) for c in crimes]
    lines += [
        ODD[n % len(ODD)] + json.dumps({"crime_reference": c}) + ODD[n % len(ODD)]
        for n, c in enumerate(crimes)
    ]
    (tmp_path / "niche.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    parting = Parting.of(tmp_path, 3)
    assert len({parting.part[f"niche:{c}"] for c in crimes}) == 3, "the crimes are spread over the parts"
    seen = 0
    for raw in (tmp_path / "niche.jsonl").read_bytes().splitlines(keepends=True):
        text = line_text(raw)
        crime = json.loads(text)["crime_reference"]  # as ingest's model reads the stripped line
        owners = [k for k in range(3) if _Keep(parting, k)("niche", text)]
        assert owners == [parting.part[f"niche:{crime}"]], repr(text)
        seen += 1
    assert seen == 2 * len(crimes)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=40), st.integers(2, 4))
def test_parts_are_balanced_to_within_the_largest_group(sizes: list[int], parts: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        niche = [{"crime_reference": f"C{g}"} for g, size in enumerate(sizes) for _ in range(size)]
        _write(Path(folder), niche, [])
        parting = Parting.of(Path(folder), parts)
    assert sum(parting.records) == sum(sizes)
    assert max(parting.records) - min(parting.records) <= max(sizes)


def _feed(path: Path, count: int) -> list[bytes]:
    """``count`` records, several visible at the same minute (a backlog for a small batch), some
    with no time (visible at once), some ending in CRLF, blank lines between some; the records'
    lines returned."""
    lines, data = [], b""
    for n in range(count):
        record: dict[str, object] = {"crime_reference": f"C{n}"}
        if n % 5 != 4:
            record["modified_at"] = (T0 + timedelta(minutes=10 * (n // 3))).isoformat()
        raw = json.dumps(record).encode() + (b"\r\n" if n % 4 == 3 else b"\n")
        lines.append(raw)
        data += raw + (b"  \n" if n % 7 == 6 else b"")
    path.write_bytes(data)
    return lines


def _index(data: bytes, mine: list[bool]) -> FeedLines:
    """What the parting keeps of a file: each non-blank line's start, record_time and part."""
    starts, times, offset = array("q"), array("q"), 0
    for raw in data.splitlines(keepends=True):
        if line_text(raw):
            stamp = jsonl_feed.record_time(raw)
            starts.append(offset)
            times.append(NO_TIME if stamp is None else (stamp - EPOCH) // timedelta(microseconds=1))
        offset += len(raw)
    return FeedLines(starts, times, bytes(0 if m else 1 for m in mine))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=60),
    st.integers(1, 7),
    st.integers(1, 25),
    st.sampled_from(["by key", "by position"]),
)
def test_readers_passing_over_each_others_lines_read_what_one_reader_reads_tick_by_tick(
    mine: list[bool], limit: int, step: int, how: str
) -> None:
    """Two readers, each keeping the lines the other passes over, read tick by tick as the clock
    moves: at each tick, together, exactly the lines one reader alone reads (so a backlog is taken
    at the same times); each cursor's digest is that of the file's bytes before it; and no line is
    looked at twice. Told which lines are theirs either by ``keep`` (a line's text: a line added
    since the parting) or by ``lines`` (its position, as the parting read the file: then neither
    reader reads a line as JSON, nor asks ``keep``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        path = Path(folder) / "niche.jsonl"
        lines = _feed(path, len(mine))
        data = path.read_bytes()
        texts = [raw.decode().strip() for raw in lines]
        looked = [0, 0]
        timed = Counter[str]()
        record_time = jsonl_feed.record_time
        who = "setting up"

        def counted_record_time(raw: bytes) -> datetime | None:
            timed[who] += bool(line_text(raw))  # a record's line (a blank one is not read as one)
            return record_time(raw)

        patch.setattr(jsonl_feed, "record_time", counted_record_time)

        def keeper(part: int) -> Callable[[str], bool]:
            def keep(text: str) -> bool:
                looked[part] += 1
                return mine[texts.index(text)] == (part == 0)

            return keep

        alone, parts = JsonlFeedReader(path), [JsonlFeedReader(path), JsonlFeedReader(path)]
        for part, reader in enumerate(parts):
            if how == "by key":
                reader.keep = keeper(part)
            else:
                reader.keep = lambda text: pytest.fail("asked for a line it had by position")
                reader.lines = _Lines(_index(data, mine), part)
        cursors: list[str | None] = [None, None, None]
        ticks = backlog_ticks = 0
        now = T0
        # Past the last record, a tick for each line still to read (each takes at least one).
        while now <= T0 + timedelta(minutes=10 * len(mine) + 10 + step * len(mine)):
            who = "alone"
            read = list(alone.read(cursors[2], now, limit))
            one = [line.raw for line in read]
            cursors[2] = read[-1].position if read else cursors[2]
            together: list[str] = []
            who = "parts"
            for part, reader in enumerate(parts):
                for line in reader.read(cursors[part], now, limit):
                    together.append(line.raw)
                    cursors[part] = line.position
                    expected = hashlib.blake2b(data[: int(line.position)], digest_size=16).hexdigest()
                    assert reader.source(line.position) == f"jsonl:{expected}"
            assert sorted(together, key=texts.index) == one, f"tick {ticks}"
            backlog_ticks += len(one) == limit
            ticks += 1
            now += timedelta(minutes=step)
        assert timed["alone"] >= len(lines)
        if how == "by key":
            assert looked == [len(lines), len(lines)], (
                "each reader asks keep of each line once, however many ticks"
            )
        else:
            assert timed["parts"] == 0, "no line read as JSON by a reader that had it by position"
        assert ticks > 1
    COUNTED["backlog ticks"] += backlog_ticks
    COUNTED[how] += 1


COUNTED: Counter[str] = Counter()


def test_the_readers_property_test_saw_backlogs() -> None:
    """The property test above ran, both ways, and ticks took a full batch (a backlog) in it."""
    COUNTED.clear()
    test_readers_passing_over_each_others_lines_read_what_one_reader_reads_tick_by_tick()
    assert COUNTED["by key"] + COUNTED["by position"] == 40, COUNTED
    assert COUNTED["by key"] >= 10 and COUNTED["by position"] >= 10, COUNTED
    assert COUNTED["backlog ticks"] > 20, COUNTED


def test_the_parting_reads_each_line_s_place_time_and_part_and_the_feeds_span(tmp_path: Path) -> None:
    """What the parts look up by position is what reading the line would give: where it starts,
    record_time, the part of its crime group (blank lines left out, as the reader leaves them); and
    the span is feed_span's."""
    niche = [
        {"crime_reference": "C1", "modified_at": "2026-10-05T09:00:00Z", "incident_numbers": ["I1"]},
        {"crime_reference": "C2", "modified_at": "2026-10-05T10:00:00Z"},
        {"crime_reference": "C1", "modified_at": "not a time"},
        occurrence("2026-10-05T11:00:00Z", ref="HU/000005/26"),  # the one record the contract accepts
    ]
    storm: list[dict[str, object] | str] = ["", "not json", {"incident_number": "I1"}, "  "]
    storm += [{"incident_number": "I9", "location": "Café"}, "\ufeff" + json.dumps({"incident_number": "I1"})]
    _write(tmp_path, niche, storm)
    parting = Parting.of(tmp_path, 2)
    checked = 0
    for feed in ("niche", "storm"):
        data = (tmp_path / f"{feed}.jsonl").read_bytes()
        found = parting.lines[feed]
        offset, index = 0, 0
        for raw in data.splitlines(keepends=True):
            if line_text(raw):
                assert found.starts[index] == offset
                stamp = jsonl_feed.record_time(raw)
                assert found.times[index] == (
                    NO_TIME if stamp is None else (stamp - EPOCH) // timedelta(microseconds=1)
                )
                owners = [k for k in range(2) if _Keep(parting, k)(feed, line_text(raw))]
                assert owners == [found.parts[index]]
                index, checked = index + 1, checked + 1
            offset += len(raw)
        assert index == len(found.starts) == len(found.times) == len(found.parts)
    assert checked == 8
    assert parting.span == feed_span(tmp_path) == (datetime(2026, 10, 5, 11, tzinfo=UTC),) * 2


def test_a_line_added_after_the_parting_goes_with_its_crime_and_each_line_to_one_part(tmp_path: Path) -> None:
    niche = [{"crime_reference": f"C{n}", "modified_at": "2026-10-05T09:00:00Z"} for n in range(8)]
    _write(tmp_path, niche, [])
    parting = Parting.of(tmp_path, 2)
    added = [{"crime_reference": f"C{n}", "modified_at": "2026-10-05T09:30:00Z"} for n in (3, 5)] + [
        {"crime_reference": "C99", "modified_at": "2026-10-05T09:30:00Z"}
    ]  # a crime never seen: part 1
    with (tmp_path / "niche.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("\n" + "".join(json.dumps(r) + "\n" for r in added))
    read: dict[str, list[int]] = {}
    for part in range(2):
        reader = JsonlFeedReader(tmp_path / "niche.jsonl")
        parting.give(part)("niche", reader)
        cursor = None
        while batch := list(reader.read(cursor, T0 + timedelta(hours=1), 100)):
            for line in batch:
                read.setdefault(line.raw, []).append(part)
            cursor = batch[-1].position
    assert len(read) == len(niche) + len(added) and all(len(p) == 1 for p in read.values()), read
    for record in added[:2]:
        first = json.dumps(
            {"crime_reference": record["crime_reference"], "modified_at": "2026-10-05T09:00:00Z"}
        )
        assert read[json.dumps(record)] == read[first], "a crime's later line goes to its part"
    assert read[json.dumps(added[2])] == [0]


def _state(folder: Path, *rows: tuple[str, Entity]) -> Path:
    folder.mkdir(parents=True)
    store = SqliteTableStore(folder / "state.db")
    for table, entity in rows:
        store.upsert(table, entity)
    store.close()
    return folder


def test_merged_state_keeps_every_part_s_rows_the_furthest_cursor_and_the_officer_fetched_last(
    tmp_path: Path,
) -> None:
    fetched = [T0, T0 + timedelta(days=3)]
    parts = [
        _state(
            tmp_path / str(k),
            ("Journeys", Entity(f"C{k}", "victim:P1", {"journey": f"part {k}"})),
            (
                "Officers",
                Entity("officer", "E1", {"entry": f"as part {k} fetched", "fetched_at": fetched[k]}),
            ),
            (
                "Cursors",
                Entity(
                    "niche", "cursor", {"position": str(100 * (k + 1)), "source": f"s{k}", "records": 3 + k}
                ),
            ),
        )
        for k in (1, 0)  # the part that fetched the officer last comes first
    ]
    into = tmp_path / "state.db"
    _merge_state(parts, into)
    merged = SqliteTableStore(into)
    assert {e.partition_key for e in merged.export("Journeys")} == {"C0", "C1"}
    officer = merged.get("Officers", "officer", "E1")
    assert officer is not None and officer.properties["entry"] == "as part 1 fetched"
    cursor = merged.get("Cursors", "niche", "cursor")
    assert (
        cursor is not None and cursor.properties["position"] == "200" and cursor.properties["source"] == "s1"
    )
    assert cursor.properties["records"] == 3 + 4
    merged.close()


def test_state_of_one_crime_in_two_parts_is_never_merged_over(tmp_path: Path) -> None:
    parts = [
        _state(tmp_path / str(k), ("Journeys", Entity("C1", "victim:P1", {"journey": f"part {k}"})))
        for k in (0, 1)
    ]
    with pytest.raises(RunError, match=r"share rows they must not \(table, rows\): \[\('Journeys', 1\)\]"):
        _merge_state(parts, tmp_path / "state.db")


def test_a_last_line_being_written_is_read_whole_when_it_shows_by_its_crime_s_part(tmp_path: Path) -> None:
    """A last line without its newline (its writer still writing it) is not taken as the parting
    read it: once whole, it is read at its own time, by its crime group's part, as one reader would."""
    niche = [{"crime_reference": f"C{n}", "modified_at": "2026-10-05T09:00:00Z"} for n in range(6)]
    late = json.dumps({"crime_reference": "C1", "modified_at": "2026-10-05T12:00:00Z"})
    path = tmp_path / "niche.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in niche) + late[:20], encoding="utf-8")
    parting = Parting.of(tmp_path, 2)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(late[20:] + "\n")
    cursors: list[str | None] = [None, None]
    readers = [JsonlFeedReader(path) for _ in range(2)]
    for part, reader in enumerate(readers):
        parting.give(part)("niche", reader)
    for hour, expected in ((10, []), (12, [parting.part["niche:C1"]])):
        takers = []
        for part, reader in enumerate(readers):
            for line in reader.read(cursors[part], T0.replace(hour=hour), 100):
                cursors[part] = line.position
                takers += [part] if line.raw == late else []
        assert takers == expected, hour
