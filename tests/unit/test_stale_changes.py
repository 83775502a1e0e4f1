"""An incident's change that comes after the change of a newer record of the same incident.

An incident's changes go from ingest_storm straight to evaluate_journey (they have no officer
to resolve), so one that an earlier version left on case-changes, or a dead letter replayed
late, can reach a caller's journey after its successor (journey-rules.md §9). The rule: what it
says happened is still taken (nothing is lost), but not the older record's facts (a withdrawn
consent is not given back), and not a booking that a newer record moved (the caller is not told
the old time). Checked for every earlier record of a caller's history, come late.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.contracts.messages import ResolvedCaseChange
from shared.domain.journey import Decision, Journey, evaluate_case_change
from shared.domain.policy import Policy
from tests.builders import incident, niche_change, occurrence, storm_change, victim

POLICY = Policy()
NOW = datetime.fromisoformat("2026-11-20T11:00:00+00:00")


def _history(*records: dict[str, Any]) -> list[ResolvedCaseChange]:
    """Each record's change as ingest finds it: the differences from the record before."""
    return [storm_change(record, records[n - 1] if n else None) for n, record in enumerate(records)]


def _apply(journey: Journey | None, event: ResolvedCaseChange) -> Decision:
    return evaluate_case_change(journey, event, "C-77", "caller", POLICY, NOW)


def _late(change: ResolvedCaseChange) -> ResolvedCaseChange:
    # The same record's change under another id: one an earlier version sent on another way.
    return change.model_copy(update={"event_id": "late-" + change.event_id})


def test_an_older_record_s_change_after_the_newest_takes_back_nothing_the_newer_said() -> None:
    changes = _history(
        incident("2026-11-20T09:00:00Z"),
        incident("2026-11-20T09:30:00Z", scheduled_for="2026-11-21T15:00:00+00:00"),
        incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-22T15:00:00+00:00"),  # moved
        incident(
            "2026-11-20T10:30:00Z",
            scheduled_for="2026-11-22T15:00:00+00:00",
            mobile="+447700900456",  # a new number
            closing_category="Violence",
        ),
    )
    journey: Journey | None = None
    for change in changes:
        journey = _apply(journey, change).journey
    assert journey is not None and journey.storm_record_at is not None
    newest = journey.model_dump(exclude={"applied_events"})
    checked = 0
    for change in changes[:-1]:
        d = _apply(journey, _late(change))
        assert not (d.messages or d.tasks or d.scheduled or d.closed_tasks), change.event_id
        assert d.journey.model_dump(exclude={"applied_events"}) == newest, change.event_id
        assert [a.decision for a in d.audit] == ["stale"], change.event_id
        assert d.journey.caller is not None and d.journey.caller.contact.mobile == "+447700900456"
        checked += 1
    assert checked == 3


def test_what_an_older_record_says_happened_is_still_taken_when_it_comes_late() -> None:
    # The visit was booked by the second record; the third only added a closing category, so its
    # change says nothing of the visit. The booking's change, come last, still tells the caller.
    first, booked, closed = _history(
        incident("2026-11-20T09:00:00Z"),
        incident("2026-11-20T09:30:00Z", scheduled_for="2026-11-21T15:00:00+00:00"),
        incident(
            "2026-11-20T10:00:00Z", scheduled_for="2026-11-21T15:00:00+00:00", closing_category="Violence"
        ),
    )
    journey = _apply(_apply(None, first).journey, closed).journey
    d = _apply(journey, booked)
    assert "attend:HU-20261120-0123:2026-11-21T15:00:00+00:00" in d.journey.duties
    assert any(a.decision == "stale" for a in d.audit)
    assert d.journey.incident_categories == ["Violence"]


def test_a_withdrawn_consent_is_not_given_back_by_the_record_before_it() -> None:
    first, booked, withdrawn = _history(
        incident("2026-11-20T09:00:00Z"),
        incident("2026-11-20T09:30:00Z", scheduled_for="2026-11-21T15:00:00+00:00"),
        incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-21T15:00:00+00:00", consent=False),
    )
    journey = _apply(_apply(None, first).journey, withdrawn).journey
    d = _apply(journey, booked)
    assert d.journey.caller is not None and d.journey.caller.consent_to_updates is False
    assert not d.messages  # the visit is not told to a caller who withdrew


def test_records_of_the_same_time_or_newer_are_applied_as_ever() -> None:
    # Only an older record is stale: one of the same modified_at (a feed may correct a record
    # without moving the time) is applied, as ingest applies it.
    first, second = _history(
        incident("2026-11-20T09:00:00Z"),
        incident("2026-11-20T09:00:00Z", scheduled_for="2026-11-21T15:00:00+00:00", mobile="+447700900456"),
    )
    # Its change id is another (ingest's digest covers the record's content).
    d = _apply(_apply(None, first).journey, second.model_copy(update={"event_id": "corrected"}))
    assert not any(a.decision == "stale" for a in d.audit)
    assert d.journey.caller is not None and d.journey.caller.contact.mobile == "+447700900456"
    assert "attend:HU-20261120-0123:2026-11-21T15:00:00+00:00" in d.journey.duties


def test_a_crime_s_changes_are_not_weighed_so_they_keep_their_order_as_before() -> None:
    # A crime's changes all go through resolve_officer in the crime's session, in order, as
    # before: nothing about them is stale here.
    person = victim()
    first, later = (
        occurrence("2026-11-17T09:00:00Z", victims=[person]),
        occurrence("2026-11-18T09:00:00Z", victims=[victim(channel="sms")]),
    )
    newer = evaluate_case_change(None, niche_change(later, first), "P-1", "victim", POLICY, NOW).journey
    d = evaluate_case_change(newer, niche_change(first), "P-1", "victim", POLICY, NOW)
    assert not any(a.decision == "stale" for a in d.audit) and d.journey.storm_record_at is None
