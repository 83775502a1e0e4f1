"""The generator's victims phoning for an update (shared/local/generate.py, the behaviour model of its
docstring): the less news a victim has had, the likelier a call."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shared.contracts.feeds import NicheOccurrence, StormIncident
from shared.domain.policy import Policy
from shared.local.generate import (
    CALL_HAZARD_CEILING,
    CALL_HAZARD_FLOOR,
    DAY,
    SYNTHETIC_MARKER,
    call_hazard,
    copy_synthetic_marker,
    generate,
    victim_calls,
)

LONDON = ZoneInfo("Europe/London")
OPENED = int(datetime(2026, 10, 5, 9, tzinfo=UTC).timestamp())


def test_the_daily_chance_of_a_call_rises_with_the_days_without_news() -> None:
    chances = [call_hazard(days) for days in range(0, 91)]
    assert chances[0] == CALL_HAZARD_FLOOR
    assert all(a < b for a, b in pairwise(chances))
    assert CALL_HAZARD_CEILING * 0.95 < chances[-1] < CALL_HAZARD_CEILING
    assert call_hazard(14) > 10 * call_hazard(0)


def _calls(
    news_every: int | None, victims: int = 2000, days: int = 42, checkin: int | None = None
) -> list[int]:
    rng = Random(1)
    calls: list[int] = []
    for _ in range(victims):
        news = [] if news_every is None else list(range(OPENED, OPENED + days * DAY, news_every * DAY))
        calls += victim_calls(rng, opened=OPENED, until=OPENED + days * DAY, news=news, checkin_every=checkin)
    return calls


def test_victims_without_news_call_far_more_often_than_victims_told_something_every_few_days() -> None:
    silent, told = len(_calls(None)), len(_calls(3))
    # Over six weeks: most victims left without news call (their call restarts the clock), about a
    # quarter of those told something every three days do.
    assert silent > 3 * told > 0
    assert 0.5 < silent / 2000 < 1.5


def test_a_check_in_every_fortnight_is_news_too() -> None:
    assert len(_calls(None, checkin=14 * DAY)) < 0.8 * len(_calls(None))


def test_calls_fall_in_calling_hours_on_different_days_while_the_crime_is_open() -> None:
    rng = Random(5)
    for _ in range(200):
        until = OPENED + rng.randint(1, 80) * DAY
        calls = victim_calls(rng, opened=OPENED, until=until, news=[], checkin_every=None)
        days = [datetime.fromtimestamp(at, LONDON) for at in calls]
        assert all(OPENED < at < until for at in calls)
        assert all(8 <= day.hour < 20 for day in days)
        assert len({day.date() for day in days}) == len(days) == len(calls)
        assert calls == sorted(calls)


# --- over a generated sample ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("feeds")
    generate(out, crimes=800, days=30, seed=13)
    return out


def _records(path: Path, model: type[NicheOccurrence] | type[StormIncident]) -> list[Any]:
    valid: list[Any] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            valid.append(model.model_validate_json(line))
        except ValidationError:
            continue
    return valid


def _news(snapshots: list[NicheOccurrence]) -> list[datetime]:
    """When a crime's victim had news, as the Niche feed shows it: the report itself, each milestone
    (an officer's logged contact among them) and each officer newly in charge."""
    times = {snapshots[0].recorded_at}
    officers: set[str] = set()
    for snapshot in snapshots:
        times |= {milestone.at for milestone in snapshot.milestones}
        if snapshot.oic is not None and snapshot.oic.employee_id not in officers:
            officers.add(snapshot.oic.employee_id)
            times.add(snapshot.modified_at)
    return sorted(times)


SILENCES = ((0, 7), (7, 14), (14, 10_000))  # days since the last news


def test_victims_without_news_for_longer_call_more_often_in_a_generated_sample(sample: Path) -> None:
    """Count it over the sample: calls per 100 open crime-weeks of one-victim crimes, by how many days
    the victim had then gone without news (as the Niche feed shows news: the service's check-ins are
    left out, so the long silences are a little quieter than the model's)."""
    policy = Policy()
    snapshots: dict[str, list[NicheOccurrence]] = defaultdict(list)
    for record in _records(sample / "niche.jsonl", NicheOccurrence):
        snapshots[record.crime_reference].append(record)
    calls: dict[str, list[datetime]] = defaultdict(list)
    for incident in _records(sample / "storm.jsonl", StormIncident):
        if incident.status == "closed" and policy.storm.is_update_request(incident.opening_category):
            assert incident.crime_reference in snapshots, "a call names a crime of the sample"
            calls[incident.crime_reference].append(incident.opened_at)
    feeds_end = max(record.modified_at for records in snapshots.values() for record in records)
    weeks: Counter[tuple[int, int]] = Counter()
    made: Counter[tuple[int, int]] = Counter()
    for reference, records in snapshots.items():
        final = records[-1]
        if len(final.victims) != 1:
            continue
        until = final.outcome.decided_at if final.outcome else feeds_end
        news = [at for at in _news(records) if at < until]
        for since, next_news in zip(news, [*news[1:], until], strict=True):
            gap = (next_news - since).total_seconds() / DAY
            for low, high in SILENCES:
                weeks[(low, high)] += max(0.0, min(gap, high) - low) / 7
        for at in calls[reference]:
            silence = (at - max(t for t in news if t <= at)).total_seconds() / DAY
            made[next(bucket for bucket in SILENCES if bucket[0] <= silence < bucket[1])] += 1
    rate = [100 * made[bucket] / weeks[bucket] for bucket in SILENCES]
    assert min(made.values()) >= 40, made
    assert rate[0] < rate[1] < rate[2], rate
    assert rate[2] > 2 * rate[0], rate


def test_each_call_is_opened_while_its_crime_is_open_and_closed_naming_it(sample: Path) -> None:
    policy = Policy()
    crimes = {r.crime_reference: r for r in _records(sample / "niche.jsonl", NicheOccurrence)}
    latest: dict[str, StormIncident] = {}
    for incident in _records(sample / "storm.jsonl", StormIncident):
        if policy.storm.is_update_request(incident.opening_category):
            latest[incident.incident_number] = incident
    assert len(latest) > 200
    assert {i.opening_category for i in latest.values()} == {"Update Request", "Caller Requesting Update"}
    for incident in latest.values():
        assert incident.status == "closed" and incident.crime_reference is not None
        crime = crimes[incident.crime_reference]
        assert incident.opened_at > crime.recorded_at
        if crime.outcome is not None:
            assert incident.opened_at < crime.outcome.decided_at
        assert incident.attendance is None and incident.caller is not None


def test_the_feeds_say_they_are_synthetic_and_a_run_folder_keeps_it(sample: Path, tmp_path: Path) -> None:
    marker = json.loads((sample / SYNTHETIC_MARKER).read_text(encoding="utf-8"))
    assert marker["synthetic"] is True
    assert marker["arguments"] == {
        "crimes": 800,
        "days": 30,
        "seed": 13,
        "start": "2026-10-05T08:00:00+00:00",
    }
    assert marker["behaviour_model"]["floor"] == CALL_HAZARD_FLOOR
    assert marker["update_calls"] > 200
    assert copy_synthetic_marker(sample, tmp_path / "run")
    assert (tmp_path / "run" / SYNTHETIC_MARKER).read_bytes() == (sample / SYNTHETIC_MARKER).read_bytes()
    assert not copy_synthetic_marker(tmp_path / "real-feeds", tmp_path / "other")
    assert not (tmp_path / "other").exists()
