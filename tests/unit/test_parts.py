"""A run in several processes splits the feeds by crime group (shared/local/parts.py), and each
process's feed reader passes over the lines that are not its own without losing its place."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.jsonl_feed import JsonlFeedReader
from shared.local.parts import Parting

T0 = datetime(2026, 10, 5, 9, tzinfo=UTC)


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
    lines = (tmp_path / "storm.jsonl").read_bytes().splitlines(keepends=True)
    keeps = [parting.keep(k) for k in range(3)]
    owners = [[k for k in range(3) if keeps[k]("storm", raw)] for raw in lines]
    assert all(len(found) == 1 for found in owners), "each line is exactly one part's"
    unkeyed = [found[0] for raw, found in zip(lines, owners, strict=True) if raw.startswith(b"not")]
    assert set(unkeyed) == {0, 1, 2}, "unreadable lines are spread over the parts, not all on one"
    taken = [sum(1 for found in owners if found[0] == k) for k in range(3)]
    assert taken == list(parting.records)


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
    lines = []
    for n in range(count):
        stamp = (T0 + timedelta(minutes=10 * n)).isoformat()
        lines.append(json.dumps({"crime_reference": f"C{n}", "modified_at": stamp}).encode() + b"\n")
    path.write_bytes(b"".join(lines))
    return lines


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(1, 7), st.integers(1, 5))
def test_a_reader_passing_over_other_lines_yields_its_own_once_and_keeps_the_digest_true(
    mine: list[bool], limit: int, step: int
) -> None:
    """Read tick by tick as the clock moves: every own line once, in order; each cursor's digest is
    the digest of the file's bytes before it; no line is looked at twice."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "niche.jsonl"
        lines = _feed(path, len(mine))
        data = path.read_bytes()
        looked: list[bytes] = []

        def keep(raw: bytes) -> bool:
            looked.append(raw)
            return mine[lines.index(raw)]

        reader = JsonlFeedReader(path)
        reader.keep = keep
        cursor: str | None = None
        got: list[str] = []
        ticks = 0
        now = T0
        while now <= T0 + timedelta(minutes=10 * len(mine) + 10):
            for line in reader.read(cursor, now, limit):
                got.append(line.raw)
                cursor = line.position
                expected = hashlib.blake2b(data[: int(cursor)], digest_size=16).hexdigest()
                assert reader.source(cursor) == f"jsonl:{expected}"
            ticks += 1
            now += timedelta(minutes=step)
        own = [raw.decode().strip() for raw, is_mine in zip(lines, mine, strict=True) if is_mine]
        assert got == own
        assert len(looked) == len(lines), "each line is looked at once, however many ticks pass"
        assert ticks > 1
