"""The ingest step: what a timer tick keeps when the feed fails part-way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.http import RetryPolicy
from shared.adapters.http_feed import BearerAuth, HttpFeedReader
from shared.adapters.table_layout import CURSORS, QUARANTINE, SNAPSHOTS
from shared.local.host import SimulatedClock
from shared.ports import FeedLine, FeedUnavailable
from shared.settings import load_settings
from shared.steps.ingest import ingest_feed
from tests.builders import embedded, occurrence
from tests.http_stubs import FeedStub, Reply, feed_stub_fixture  # noqa: F401  (fixture)


class _FailingAfter:
    """A feed that serves some records and then fails, as an HTTP feed does on a 500."""

    def __init__(self, records: list[str], fail_after: int) -> None:
        self.records = records
        self.fail_after = fail_after

    def read(self, cursor: str | None, now: datetime, limit: int) -> Iterator[FeedLine]:
        start = int(cursor or 0)
        for index in range(start, min(start + limit, len(self.records))):
            if index == self.fail_after:
                raise FeedUnavailable("HTTP 500 from the feed")
            yield FeedLine(self.records[index], str(index + 1))

    passed_at: datetime | None = None  # a feed of one process: nothing passed over

    def source(self, cursor: str) -> str:
        return "test: these records"


def test_a_feed_failing_part_way_keeps_what_was_read_and_moves_the_cursor_only_that_far(
    tmp_path: Path,
) -> None:
    settings = load_settings(LOCAL_DATA_DIR=tmp_path)
    services, broker = embedded(settings, SimulatedClock(datetime(2026, 11, 21, tzinfo=UTC)))
    records = [
        json.dumps(occurrence("2026-11-20T10:00:00Z", ref="HU/000001/26")),
        "{not json",
        json.dumps(occurrence("2026-11-20T10:05:00Z", ref="HU/000002/26")),
        json.dumps(occurrence("2026-11-20T10:10:00Z", ref="HU/000003/26")),
    ]
    services.feeds["niche"] = _FailingAfter(records, fail_after=3)
    with pytest.raises(FeedUnavailable):
        ingest_feed("niche", services)
    cursor = services.tables.get(CURSORS, "niche", "cursor")
    assert cursor is not None and cursor.properties["position"] == "3"
    assert services.tables.get(SNAPSHOTS, "HU/000002/26", "niche") is not None
    assert services.tables.get(SNAPSHOTS, "HU/000003/26", "niche") is None
    assert len(list(services.tables.query_partition(QUARANTINE, "niche"))) == 1
    assert broker.pending("case-changes") == 2
    services.feeds["niche"] = _FailingAfter(records, fail_after=99)
    report = ingest_feed("niche", services)
    assert (report.read, report.changes) == (1, 1)
    assert broker.pending("case-changes") == 3


def test_ingest_from_the_feed_api_survives_a_500_mid_feed_and_loses_nothing(
    tmp_path: Path,
    feed_stub: FeedStub,
) -> None:
    refs = [f"HU/{n:06d}/26" for n in range(7)]
    feed_stub.items = [occurrence(f"2026-11-20T10:0{n}:00Z", ref=ref) for n, ref in enumerate(refs)]
    for nth in (2, 3, 4):  # the second page and both its retries
        feed_stub.on(nth, Reply(500, {"error": "boom"}))
    settings = load_settings(LOCAL_DATA_DIR=tmp_path)
    services, broker = embedded(settings, SimulatedClock(datetime(2026, 11, 21, tzinfo=UTC)))
    services.feeds["niche"] = HttpFeedReader(
        feed_stub.url,
        auth=BearerAuth(lambda: "feed-token"),
        page_size=3,
        retry=RetryPolicy(attempts=3, backoff=0.01),
        sleep=lambda seconds: None,
    )
    with pytest.raises(FeedUnavailable):
        ingest_feed("niche", services)
    assert broker.pending("case-changes") == 3  # the first page is kept
    report = ingest_feed("niche", services)  # the next tick reads on from there
    assert report.changes == 4
    assert broker.pending("case-changes") == 7
    assert all(services.tables.get(SNAPSHOTS, ref, "niche") is not None for ref in refs)


def _feed(services: Any, records: list[str]) -> None:
    services.feeds["niche"] = _FailingAfter(records, fail_after=len(records) + 1)


def test_an_empty_tick_reads_no_table_and_a_cursor_moved_elsewhere_is_never_moved_back(
    tmp_path: Path,
) -> None:
    settings = load_settings(LOCAL_DATA_DIR=tmp_path)
    services, _ = embedded(settings, SimulatedClock(datetime(2026, 11, 21, tzinfo=UTC)))
    store = services.tables
    records = [json.dumps(occurrence("2026-11-20T10:00:00Z", ref=f"HU/00000{n}/26")) for n in range(1, 4)]
    _feed(services, records[:2])
    ingest_feed("niche", services)
    operations = store.operations  # type: ignore[attr-defined]
    ingest_feed("niche", services)  # nothing new: the worker remembers its cursor
    assert store.operations == operations  # type: ignore[attr-defined]
    # Another worker (the timer moved) read on to the end and wrote the cursor.
    from shared.ports import Entity

    moved = {"position": "3", "at": services.clock.now(), "records": 3, "quarantined": 0}
    store.upsert(CURSORS, Entity("niche", "cursor", moved))
    _feed(services, records)
    ingest_feed("niche", services)  # re-reads record 3 from its stale cursor: absorbed, not written back
    cursor = store.get(CURSORS, "niche", "cursor")
    assert cursor is not None and cursor.properties["position"] == "3" and cursor.properties["records"] == 3
    assert "niche" not in services.memory.cursors
    ingest_feed("niche", services)  # and the next tick starts from the table
    assert services.memory.cursors["niche"].properties["position"] == "3"


def test_a_storm_incident_s_snapshot_and_crime_link_are_one_read(tmp_path: Path) -> None:
    from tests.builders import incident

    settings = load_settings(LOCAL_DATA_DIR=tmp_path)
    services, _ = embedded(settings, SimulatedClock(datetime(2026, 11, 21, tzinfo=UTC)))
    store = services.tables
    linked = occurrence("2026-11-20T10:00:00Z", ref="HU/000001/26")
    linked["incident_numbers"] = ["STM-1"]
    _feed(services, [json.dumps(linked)])
    ingest_feed("niche", services)
    call = incident("2026-11-20T10:05:00Z", number="STM-1")
    services.feeds["storm"] = _FailingAfter([json.dumps(call)], fail_after=5)
    before = dict(store.operations_by)  # type: ignore[attr-defined]
    report = ingest_feed("storm", services)
    after = store.operations_by  # type: ignore[attr-defined]
    assert after["Snapshots.query_partition"] - before.get("Snapshots.query_partition", 0) == 1
    assert after["Snapshots.get"] == before.get("Snapshots.get", 0)
    [change] = report.result.emit
    body = json.loads(change.message.body)["case"]
    # The caller's journey is the incident's; the crime it is linked to travels with the change.
    assert (body["crime_reference"], body["linked_crime"]) == ("STM-1", "HU/000001/26")
    assert change.message.session_id == "STM-1"


def test_an_incident_s_change_goes_on_as_resolve_officer_would_send_it_and_a_crime_s_to_resolve_officer(
    tmp_path: Path,
) -> None:
    # An incident has no officer in charge to resolve, so ingest_storm sends its change to
    # evaluate_journey itself: the body, id and session resolve_officer would have sent on, and
    # nothing on case-changes. A crime's change still goes to resolve_officer.
    from shared.contracts.messages import CaseChange, ResolvedCaseChange
    from shared.steps.resolve_officer import resolve_officer
    from tests.builders import incident

    settings = load_settings(LOCAL_DATA_DIR=tmp_path)
    services, _ = embedded(settings, SimulatedClock(datetime(2026, 11, 21, tzinfo=UTC)))
    linked = occurrence("2026-11-20T10:00:00Z", ref="HU/000001/26")
    linked["incident_numbers"] = ["STM-1", "STM-2"]
    _feed(services, [json.dumps(linked)])
    [to_resolve] = ingest_feed("niche", services).result.emit
    assert to_resolve.queue == "case_changes" and to_resolve.message.session_id == "HU/000001/26"
    calls = [
        incident("2026-11-20T10:05:00Z", number="STM-1"),
        incident("2026-11-20T10:06:00Z", number="STM-2", crime_reference=None),
        incident("2026-11-20T10:07:00Z", number="STM-3", crime_reference=None),
    ]
    services.feeds["storm"] = _FailingAfter([json.dumps(call) for call in calls], fail_after=5)
    emitted = ingest_feed("storm", services).result.emit
    assert [e.message.session_id for e in emitted] == ["STM-1", "STM-2", "STM-3"]
    for sent in emitted:
        assert sent.queue == "journey_events"
        resolved = ResolvedCaseChange.model_validate_json(sent.message.body)
        assert resolved.officer is None and resolved.officer_note is None
        # What resolve_officer makes of the same case change, had it gone through it:
        case = CaseChange.model_validate_json(json.dumps(json.loads(sent.message.body)["case"]))
        [passed_on] = resolve_officer(case.model_dump_json(by_alias=True), services).emit
        assert passed_on.queue == "journey_events"
        assert (passed_on.message.message_id, passed_on.message.session_id) == (
            sent.message.message_id,
            sent.message.session_id,
        )
        assert json.loads(passed_on.message.body) == json.loads(sent.message.body)
    linked_to = {e.message.session_id: json.loads(e.message.body)["case"]["linked_crime"] for e in emitted}
    assert linked_to == {"STM-1": "HU/000001/26", "STM-2": "HU/000001/26", "STM-3": None}


def test_a_case_change_carries_only_the_milestones_it_adds(tmp_path: Path) -> None:
    from shared.contracts.messages import CaseChange
    from tests.builders import milestone

    settings = load_settings(LOCAL_DATA_DIR=tmp_path)
    services, broker = embedded(settings, SimulatedClock(datetime(2026, 11, 21, tzinfo=UTC)))
    history = [
        milestone(f"M-{n}", "suspect_interviewed", "2026-11-01T09:00:00Z", {"notes": "n" * 500})
        for n in range(300)
    ]
    first = occurrence("2026-11-20T10:00:00Z", milestones=history)
    later = occurrence(
        "2026-11-20T11:00:00Z",
        milestones=[*history, milestone("M-new", "suspect_charged", "2026-11-20T10:30:00Z")],
        status="finalised",
    )
    services.feeds["niche"] = _FailingAfter([json.dumps(first), json.dumps(later)], fail_after=99)
    assert ingest_feed("niche", services).changes == 2
    bodies = []
    while (message := broker.receive("case-changes", receiver="t", now=services.clock.now())) is not None:
        bodies.append(message.body)
        broker.complete(message, now=services.clock.now())
    cases = [CaseChange.model_validate_json(body) for body in bodies]
    assert [len(case.niche.milestones) for case in cases if case.niche] == [300, 1]  # the first: all new
    assert cases[1].niche is not None and cases[1].niche.milestones[0].id == "M-new"
    assert cases[1].niche.status.value == "finalised" and len(cases[1].niche.victims) == 1
    assert len(bodies[1]) < len(bodies[0]) / 50
    snapshot = services.tables.get(SNAPSHOTS, "HU/000001/26", "niche")
    assert (
        snapshot is not None
        and json.loads(str(snapshot.properties["record"]))["milestones"][-1]["id"] == "M-new"
    )
