"""Officer tasks as the journey rules make them: for a person, due at a time, closed by a logged contact.

These call the pure rules directly (no host): a task names who it is for and the
address to reach them, always has a due time, and a `victim_contacted` milestone
closes the tasks it covers (docs/journey-rules.md, "A task reaches a person").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.policy_file import load_policy
from shared.contracts.feeds import NicheOccurrence
from shared.contracts.messages import (
    CaseChange,
    Change,
    ChangeKind,
    DeadlineCheck,
    Officer,
    ResolvedCaseChange,
)
from shared.domain.journey import (
    TEAM_ASSIGNEE,
    Decision,
    Journey,
    evaluate_case_change,
    evaluate_deadline,
)
from shared.domain.journey.tasks import note_is_theirs
from tests.builders import milestone, occurrence, victim

POLICY = load_policy()
OFFICER = Officer(
    employee_id="104233",
    collar_number="PC 1234",
    display_name="Jo Bloggs",
    rank="PC",
    email="jo.bloggs@example.police.uk",
)


def _change(
    record: dict[str, Any], n: int, *changes: Change, officer: Officer | None = OFFICER
) -> ResolvedCaseChange:
    niche = NicheOccurrence.model_validate(record)
    case = CaseChange(
        change_id=f"c{n}",
        feed="niche",
        crime_reference=niche.crime_reference,
        detected_at=niche.modified_at,
        changes=list(changes),
        niche=niche,
    )
    return ResolvedCaseChange(event_id=f"c{n}", case=case, officer=officer)


def _apply(journey: Journey | None, event: ResolvedCaseChange) -> Decision:
    return evaluate_case_change(journey, event, "P-1", "victim", POLICY, event.case.niche.modified_at)  # type: ignore[union-attr]


def _added(at: str) -> Change:
    return Change(kind=ChangeKind.VICTIM_ADDED, key="P-1", at=datetime.fromisoformat(at))


def test_a_task_goes_to_the_officer_in_charge_at_their_work_address_and_is_due_with_its_duty() -> None:
    record = occurrence("2026-11-19T10:00:00Z", flags=["domestic_abuse"])
    decision = _apply(None, _change(record, 1, _added("2026-11-19T10:00:00Z")))
    [task] = decision.tasks
    assert (task.assignee, task.assignee_email) == ("104233", "jo.bloggs@example.police.uk")
    assert task.due_by == decision.journey.duties["ack"].due_by is not None


def test_with_no_named_officer_a_task_goes_to_the_team_never_to_a_phrase_meant_for_victims() -> None:
    record = occurrence("2026-11-19T10:00:00Z", flags=["domestic_abuse"])
    for officer in (None, Officer(employee_id="team", display_name="your local policing team", generic=True)):
        [task] = _apply(None, _change(record, 1, _added("2026-11-19T10:00:00Z"), officer=officer)).tasks
        assert (task.assignee, task.assignee_email) == (TEAM_ASSIGNEE, None)


def test_every_task_has_a_due_time_even_for_a_duty_without_a_code_deadline() -> None:
    # A check-in of an excluded crime has no code deadline; its task is still due by a time.
    record = occurrence(
        "2026-11-19T10:00:00Z", flags=["domestic_abuse"], victims=[victim(email=None, mobile=None)]
    )
    decision = _apply(None, _change(record, 1, _added("2026-11-19T10:00:00Z")))
    assert all(task.due_by is not None for task in decision.tasks)


def test_a_logged_contact_closes_the_tasks_and_the_escalation_it_covers_and_no_others() -> None:
    arrest = milestone("M-1", "suspect_arrested", "2026-11-20T10:00:00Z")
    contact = milestone("M-2", "victim_contacted", "2026-11-27T09:00:00Z")
    later = milestone("M-3", "suspect_bailed", "2026-11-28T09:00:00Z")
    first = occurrence("2026-11-19T10:00:00Z", flags=["domestic_abuse"])
    d1 = _apply(None, _change(first, 1, _added("2026-11-19T10:00:00Z")))
    second = occurrence("2026-11-20T10:05:00Z", flags=["domestic_abuse"], milestones=[arrest])
    d2 = _apply(
        d1.journey, _change(second, 2, Change(kind=ChangeKind.MILESTONE_ADDED, key="M-1", at=arrest_at()))
    )
    ack_task, arrest_task = d1.tasks[0].task_id, d2.tasks[0].task_id
    # The acknowledgement's deadline passes: breached, escalated.
    ack = d2.journey.duties["ack"]
    assert ack.due_by is not None
    check = DeadlineCheck(event_id="d", crime_reference="HU/000001/26", person_id="P-1", duty="ack")
    d3 = evaluate_deadline(d2.journey, check, None, POLICY, ack.due_by)
    [escalation] = d3.tasks
    third = occurrence("2026-11-28T09:05:00Z", flags=["domestic_abuse"], milestones=[arrest, contact, later])
    d4 = _apply(
        d3.journey,
        _change(
            third,
            3,
            Change(
                kind=ChangeKind.MILESTONE_ADDED, key="M-2", at=datetime.fromisoformat("2026-11-27T09:00:00Z")
            ),
            Change(
                kind=ChangeKind.MILESTONE_ADDED, key="M-3", at=datetime.fromisoformat("2026-11-28T09:00:00Z")
            ),
        ),
    )
    assert d4.closed_tasks == dict.fromkeys([ack_task, arrest_task, escalation.task_id], "victim_contacted")
    # The bail after the contact is a new task, still open.
    assert [t.duties for t in d4.tasks] == [["m:M-3"]]
    assert d4.tasks[0].task_id not in d4.closed_tasks
    # A second contact closes nothing twice.
    again = milestone("M-4", "victim_contacted", "2026-11-27T10:00:00Z")
    fourth = occurrence(
        "2026-11-28T10:00:00Z", flags=["domestic_abuse"], milestones=[arrest, contact, later, again]
    )
    d5 = _apply(
        d4.journey,
        _change(
            fourth,
            4,
            Change(
                kind=ChangeKind.MILESTONE_ADDED, key="M-4", at=datetime.fromisoformat("2026-11-27T10:00:00Z")
            ),
        ),
    )
    assert d5.closed_tasks == {}


def arrest_at() -> datetime:
    return datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_a_visit_that_happened_closes_the_task_to_tell_the_caller_of_it() -> None:
    from shared.contracts.feeds import StormIncident
    from tests.builders import incident

    booked = incident(
        "2026-11-20T10:00:00Z", scheduled_for="2026-11-20T16:00:00Z", category="Domestic Incident"
    )
    attended = {**booked, "modified_at": "2026-11-20T16:40:00Z"}
    attended["attendance"] = {"scheduled_for": "2026-11-20T16:00:00Z", "attended_at": "2026-11-20T16:05:00Z"}

    def storm_change(record: dict[str, Any], n: int, *changes: Change) -> ResolvedCaseChange:
        storm = StormIncident.model_validate(record)
        case = CaseChange(
            change_id=f"s{n}",
            feed="storm",
            crime_reference=storm.incident_number,
            detected_at=storm.modified_at,
            changes=list(changes),
            storm=storm,
        )
        return ResolvedCaseChange(event_id=f"s{n}", case=case)

    at = datetime.fromisoformat("2026-11-20T10:00:00Z")
    first = evaluate_case_change(
        None,
        storm_change(
            booked, 1, Change(kind=ChangeKind.ATTENDANCE_BOOKED, key="2026-11-20T16:00:00+00:00", at=at)
        ),
        "C-77",
        "caller",
        POLICY,
        at,
    )
    [task] = first.tasks
    assert task.reason == "excluded_crime:storm:domestic_incident"
    assert task.due_by == datetime.fromisoformat("2026-11-20T16:00:00+00:00")  # before the visit
    later = datetime.fromisoformat("2026-11-20T16:40:00Z")
    second = evaluate_case_change(
        first.journey,
        storm_change(
            attended, 2, Change(kind=ChangeKind.ATTENDED, key="2026-11-20T16:05:00+00:00", at=later)
        ),
        "C-77",
        "caller",
        POLICY,
        later,
    )
    assert second.closed_tasks == {task.task_id: "attended"}
    duty = second.journey.duties[task.duties[0]]
    assert (duty.status, duty.reason) == ("discharged", "attended")


def test_a_visit_moved_closes_the_task_for_the_old_time_and_makes_one_for_the_new() -> None:
    from shared.contracts.feeds import StormIncident
    from tests.builders import incident

    def booked(at: str, visit: str) -> ResolvedCaseChange:
        storm = StormIncident.model_validate(incident(at, scheduled_for=visit, category="Domestic Incident"))
        change = Change(
            kind=ChangeKind.ATTENDANCE_BOOKED,
            key=storm.attendance.scheduled_for.isoformat(),
            at=storm.modified_at,
        )  # type: ignore[union-attr]
        case = CaseChange(
            change_id=at,
            feed="storm",
            crime_reference=storm.incident_number,
            detected_at=storm.modified_at,
            changes=[change],
            storm=storm,
        )
        return ResolvedCaseChange(event_id=at, case=case)

    first_at, moved_at = (
        datetime.fromisoformat("2026-11-20T10:00:00Z"),
        datetime.fromisoformat("2026-11-20T12:00:00Z"),
    )
    first = evaluate_case_change(
        None, booked("2026-11-20T10:00:00Z", "2026-11-21T16:00:00Z"), "C-77", "caller", POLICY, first_at
    )
    moved = evaluate_case_change(
        first.journey,
        booked("2026-11-20T12:00:00Z", "2026-11-22T10:00:00Z"),
        "C-77",
        "caller",
        POLICY,
        moved_at,
    )
    [old], [new] = first.tasks, moved.tasks
    assert moved.closed_tasks == {old.task_id: "appointment_moved"}
    assert new.due_by == datetime.fromisoformat("2026-11-22T10:00:00+00:00")
    assert moved.journey.duties[old.duties[0]].status == "superseded"
    # The new task's duty keeps the time the closed task was for, so its mail can say the visit moved
    # (seen in the demo: the old task closed silently and the new one read as a second visit); the
    # caller was never told that time by a message, so their own wording has nothing to move from.
    details = moved.journey.duties[new.duties[0]].details
    assert details["replaces_task_for"] == "2026-11-21T16:00:00+00:00" and "moved_from" not in details


@pytest.mark.parametrize(
    ("record", "tasked_because"),
    [
        (occurrence("2026-11-19T10:00:00Z", flags=["domestic_abuse"]), "excluded_crime:domestic_abuse"),
        (occurrence("2026-11-19T10:00:00Z", victims=[victim(email=None, mobile=None)]), "no_safe_channel"),
        (
            occurrence("2026-11-19T10:00:00Z", victims=[victim(date_of_birth="2015-01-01")]),
            "under_18_no_guardian",
        ),
        (occurrence("2026-11-19T10:00:00Z"), None),  # sent by message, not tasked: nothing to carry
    ],
)
def test_an_escalation_keeps_why_its_duty_was_with_an_officer(
    record: dict[str, Any], tasked_because: str | None
) -> None:
    # The supervisor told "contact them now" must still learn that automated contact was unsafe.
    d1 = _apply(None, _change(record, 1, _added("2026-11-19T10:00:00Z")))
    ack = d1.journey.duties["ack"]
    assert ack.due_by is not None
    assert [t.reason for t in d1.tasks] == ([tasked_because] if tasked_because else [])
    check = DeadlineCheck(event_id="d", crime_reference="HU/000001/26", person_id="P-1", duty="ack")
    [escalation] = evaluate_deadline(d1.journey, check, None, POLICY, ack.due_by).tasks
    assert escalation.reason == "deadline_breached" and escalation.note == tasked_because
    # A code, not the person's words: the reminder carries it and an erasure leaves it.
    assert not note_is_theirs(escalation.reason)
    if tasked_because is None:
        # Handed over, but after the deadline: breached, and still nothing an officer had.
        late = ack.due_by + timedelta(minutes=5)
        [escalation] = evaluate_deadline(d1.journey, check, late, POLICY, ack.due_by).tasks
        assert escalation.note is None


@pytest.mark.parametrize(
    ("born", "flags", "guardian_email", "via_guardian"),
    [
        ("2008-11-20", [], "dan@example.org", True),  # 17 on the day recorded (18 the next day)
        ("2008-11-19", [], "dan@example.org", False),  # 18 that very day: written to themselves
        ("1990-01-01", [], "dan@example.org", False),
        ("2012-05-01", [], None, False),  # no guardian to write to: under_18_no_guardian
        # An excluded crime's messages go to nobody: a parent or carer may be the one it is about.
        ("2012-05-01", ["domestic_abuse"], "dan@example.org", False),
    ],
)
def test_a_task_says_the_victims_updates_go_to_their_parent_or_carer_only_when_they_do(
    born: str, flags: list[str], guardian_email: str | None, via_guardian: bool
) -> None:
    # As route decides it (journey-rules.md §3, §4): under 18 on the (London) day the crime was
    # recorded, a guardian with an address, and a crime automated messages are allowed for.
    guardian = {"name": {"forename": "Dan", "surname": "Smith"}, "email": guardian_email, "mobile": None}
    kid = victim(date_of_birth=born, guardian=guardian, email=None, mobile=None, safe_email=False)
    record = occurrence("2026-11-19T10:00:00Z", flags=flags, victims=[kid])
    tasks = _apply(None, _change(record, 1, _added("2026-11-19T10:00:00Z"))).tasks
    assert tasks  # tasked: no safe channel, no guardian, or excluded
    assert {task.via_guardian for task in tasks} == {via_guardian}, [task.reason for task in tasks]


@pytest.mark.parametrize(
    ("first", "then", "tasked_because", "via_guardian"),
    [
        # A child's domestic abuse crime: the flag lifted before the deadline.
        ({"flags": ["domestic_abuse"]}, {"flags": []}, "excluded_crime:domestic_abuse", False),
        # No guardian's address at first: one added before the deadline.
        ({"guardian_email": None}, {"guardian_email": "dan@example.org"}, "under_18_no_guardian", False),
        # The guardian's address is there but not safe to use: it is they who are to be reached.
        ({"safe_email": False}, {"safe_email": False}, "no_safe_channel", True),
    ],
)
def test_a_childs_escalation_goes_through_the_parent_or_carer_only_if_the_duty_did(
    first: dict[str, Any], then: dict[str, Any], tasked_because: str, via_guardian: bool
) -> None:
    # An escalation is made at the deadline, when the facts may have changed since its duty went to
    # an officer; the officer had it on the earlier terms (never through a parent or carer who may be
    # the one an excluded crime is about, or who was not there to write to), so it keeps them.
    def record(modified_at: str, flags: list[str] | None = None, **kid: Any) -> dict[str, Any]:
        email = kid.pop("guardian_email", "dan@example.org")
        guardian = {"name": {"forename": "Dan", "surname": "Smith"}, "email": email, "mobile": None}
        child = victim(date_of_birth="2012-05-01", guardian=guardian, email=None, mobile=None, **kid)
        return occurrence(modified_at, recorded_at="2026-11-19T10:00:00Z", flags=flags, victims=[child])

    d1 = _apply(None, _change(record("2026-11-19T10:00:00Z", **first), 1, _added("2026-11-19T10:00:00Z")))
    assert [task.reason for task in d1.tasks] == [tasked_because]
    updated = Change(
        kind=ChangeKind.VICTIM_UPDATED, key="P-1", at=datetime.fromisoformat("2026-11-19T11:00:00Z")
    )
    d2 = _apply(d1.journey, _change(record("2026-11-19T11:00:00Z", **then), 2, updated))
    ack = d2.journey.duties["ack"]
    assert ack.due_by is not None and ack.status == "tasked"
    check = DeadlineCheck(event_id="d", crime_reference="HU/000001/26", person_id="P-1", duty="ack")
    [escalation] = evaluate_deadline(d2.journey, check, None, POLICY, ack.due_by).tasks
    assert escalation.note == tasked_because and escalation.via_guardian is via_guardian
