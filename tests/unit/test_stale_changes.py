"""A case change of a feed record older than one its journey has applied changes nothing.

Ingest ignores a record older than its stored snapshot (journey-rules.md §4). A change can
still reach a journey after a newer one: an incident's changes go from ingest_storm straight to
evaluate_journey, so one left on case-changes by the version before (or a dead letter replayed
days later) arrives after its successor. The rule, checked for every earlier record of a
victim's and a caller's history: applied after the newest, it is audited as stale and leaves
the journey's facts, duties and plans as they were: no message, task or re-evaluation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from shared.contracts.messages import ResolvedCaseChange
from shared.domain.journey import Journey, evaluate_case_change
from shared.domain.policy import Policy
from tests.builders import incident, milestone, niche_change, occurrence, storm_change, victim

POLICY = Policy()


def _niche_history() -> list[dict[str, Any]]:
    person = victim(channel="both")
    arrest = milestone("M-1", "suspect_arrested", "2026-11-18T10:00:00Z")
    bailed = milestone("M-2", "suspect_bailed", "2026-11-19T10:00:00Z")
    return [
        occurrence("2026-11-17T09:00:00Z", victims=[person]),
        occurrence("2026-11-18T10:05:00Z", victims=[person], milestones=[arrest]),
        occurrence(
            "2026-11-19T10:05:00Z", victims=[person], milestones=[arrest, bailed], flags=["hate_crime"]
        ),
        occurrence("2026-11-20T10:05:00Z", victims=[victim(channel="none")], milestones=[arrest, bailed]),
    ]


def _storm_history() -> list[dict[str, Any]]:
    return [
        incident("2026-11-20T09:00:00Z"),
        incident("2026-11-20T09:30:00Z", scheduled_for="2026-11-21T15:00:00+00:00"),
        incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-22T15:00:00+00:00"),
        # The caller withdraws consent: nothing the older records said may bring it back.
        incident("2026-11-20T10:30:00Z", scheduled_for="2026-11-22T15:00:00+00:00", consent=False),
    ]


def _changes(feed: Literal["niche", "storm"]) -> list[ResolvedCaseChange]:
    history = _niche_history() if feed == "niche" else _storm_history()
    build = niche_change if feed == "niche" else storm_change
    return [build(record, history[n - 1] if n else None) for n, record in enumerate(history)]


def _apply(journey: Journey | None, event: ResolvedCaseChange, role: Literal["victim", "caller"]) -> Any:
    record = event.case.niche or event.case.storm
    assert record is not None
    now = datetime.fromisoformat("2026-11-20T11:00:00+00:00")
    person = "P-1" if role == "victim" else "C-77"
    return evaluate_case_change(journey, event, person, role, POLICY, max(now, record.modified_at))


def test_an_older_record_s_change_after_the_newest_changes_nothing_but_its_audit() -> None:
    checked = 0
    for feed, role in (("niche", "victim"), ("storm", "caller")):
        changes = _changes(feed)  # type: ignore[arg-type]
        journey: Journey | None = None
        for change in changes:
            journey = _apply(journey, change, role).journey  # type: ignore[arg-type]
        assert journey is not None and journey.record_modified_at is not None
        newest = journey.model_dump(exclude={"applied_events"})
        for late in changes[:-1]:
            # The same record's change under a new id (one an older version sent on another way).
            again = late.model_copy(update={"event_id": "late-" + late.event_id})
            d = _apply(journey, again, role)  # type: ignore[arg-type]
            assert not (d.messages or d.tasks or d.scheduled or d.closed_tasks), (feed, late.event_id)
            assert d.journey.model_dump(exclude={"applied_events"}) == newest, (feed, late.event_id)
            assert [(a.decision, a.reason.split(" ")[0]) for a in d.audit] == [("stale", feed)]
            assert again.event_id in d.journey.applied_events  # so it is not weighed again
            checked += 1
    assert checked == 6


def test_a_withdrawn_consent_is_not_brought_back_by_the_record_before_it() -> None:
    changes = _changes("storm")
    journey: Journey | None = None
    for change in [*changes[:2], changes[3], changes[2]]:  # the third record comes after the fourth
        journey = _apply(journey, change, "caller").journey
    assert journey is not None and journey.caller is not None
    assert journey.caller.consent_to_updates is False


def test_records_of_the_same_time_or_newer_are_applied() -> None:
    # Only an older record is stale: one of the same modified_at (a feed may correct a record
    # without moving the time) is applied, as ingest applies it.
    first, second = _changes("storm")[:2]
    journey = _apply(None, first, "caller").journey
    same_time = second.model_copy(
        update={
            "event_id": "same-time",
            "case": second.case.model_copy(
                update={
                    "storm": second.case.storm.model_copy(
                        update={"modified_at": first.case.storm.modified_at}
                    )
                }  # type: ignore[union-attr]
            ),
        }
    )
    d = _apply(journey, same_time, "caller")
    assert not any(a.decision == "stale" for a in d.audit)
    assert d.journey.duties != journey.duties  # the visit booked is told
