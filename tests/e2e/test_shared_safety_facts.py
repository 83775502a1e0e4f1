"""Every recipient of a crime shares its safety facts (docs/journey-rules.md, "Shared safety facts").

A crime's flags and the STORM categories of its incidents reach its victims and
the callers of its incidents alike, whichever record arrives first, including
messages already waiting; later facts bring open deadlines forward; every day is
a Europe/London day. Each rule is shown in both arrival orders where order can
matter.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import journey_from
from shared.domain.journey import Journey
from tests.builders import incident, milestone, occurrence, replay, victim

REF = "HU/000001/26"
CALL = "HU-20261120-0123"


def _journey(out: Path, partition: str, person: str) -> Journey:
    store = SqliteTableStore(out / "state.db")
    entity = store.get("Journeys", partition, person)
    assert entity is not None, f"no journey {partition}/{person}"
    return journey_from(entity)


def _to_caller(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in result["outbox"] if m["person_id"] == "C-77"]


def _caller_tasks(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in result["tasks"] if t["person_id"] == "C-77"]


# --- A crime's flags reach the caller, whichever record arrives first ---------------------


@pytest.mark.parametrize("link_by", ["niche", "storm"])
def test_a_caller_on_an_incident_of_a_domestic_abuse_crime_recorded_first_gets_no_message(
    tmp_path: Path, link_by: str
) -> None:
    niche = [
        occurrence(
            "2026-11-20T09:00:00Z",
            flags=["domestic_abuse"],
            incident_numbers=[CALL] if link_by == "niche" else [],
        )
    ]
    storm = [
        incident(
            "2026-11-20T10:00:00Z",
            scheduled_for="2026-11-20T16:00:00Z",
            crime_reference=REF if link_by == "storm" else None,
        )
    ]
    result = replay(tmp_path, niche, storm=storm, end="2026-11-21T00:00:00Z")
    assert _to_caller(result) == []
    [task] = _caller_tasks(result)
    assert task["reason"] == "excluded_crime:domestic_abuse"
    assert task["crime_reference"] == CALL and task["duties"][0].startswith(f"attend:{CALL}:")
    caller = _journey(result["out"], CALL, "C-77")
    assert caller.linked_crime == REF and "domestic_abuse" in caller.flags


@pytest.mark.parametrize("link_by", ["niche", "storm"])
def test_a_domestic_abuse_flag_recorded_after_the_booking_stops_the_waiting_text(
    tmp_path: Path, link_by: str
) -> None:
    # Booked at 21:00 for 14:00 tomorrow: the SMS waits for 08:00 (quiet hours). The crime, flagged
    # domestic abuse, is recorded at 22:00 and linked: the waiting text must not go.
    storm = [
        incident(
            "2026-11-20T21:00:00Z",
            scheduled_for="2026-11-21T14:00:00Z",
            crime_reference=None,
        )
    ]
    if link_by == "storm":
        storm.append(
            incident("2026-11-20T22:30:00Z", scheduled_for="2026-11-21T14:00:00Z", crime_reference=REF)
        )
    niche = [
        occurrence(
            "2026-11-20T22:00:00Z",
            flags=["domestic_abuse"],
            incident_numbers=[CALL] if link_by == "niche" else [],
        )
    ]
    result = replay(tmp_path, niche, storm=storm, end="2026-11-22T00:00:00Z")
    assert _to_caller(result) == []
    [task] = _caller_tasks(result)
    assert task["reason"] == "excluded_crime:domestic_abuse"
    assert any(
        a["person_id"] == "C-77"
        and a["decision"] == "suppressed"
        and a["reason"].startswith("excluded_crime")
        for a in result["audit"]
    )
    assert result["summary"]["dead_letters"] == 0


def test_a_caller_on_an_incident_of_an_ordinary_crime_is_still_told_of_the_visit(tmp_path: Path) -> None:
    niche = [occurrence("2026-11-20T09:00:00Z", incident_numbers=[CALL])]
    storm = [incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-20T16:00:00Z")]
    result = replay(tmp_path, niche, storm=storm, end="2026-11-21T00:00:00Z")
    [message] = _to_caller(result)
    assert message["template"] == "attendance_booked" and _caller_tasks(result) == []


# --- STORM safeguarding categories -----------------------------------------------------------


@pytest.mark.parametrize(
    ("opening", "closing"),
    [("Domestic Incident", None), ("Concern for Welfare", "Sexual Offence"), ("STALKING & HARASSMENT", None)],
)
def test_a_safeguarding_incident_with_no_crime_gets_a_task_not_a_text(
    tmp_path: Path, opening: str, closing: str | None
) -> None:
    storm = [
        incident(
            "2026-11-20T10:00:00Z", scheduled_for="2026-11-20T16:00:00Z", category="Concern for Welfare"
        ),
        incident(
            "2026-11-20T10:02:00Z",
            scheduled_for="2026-11-20T16:00:00Z",
            category=opening,
            closing_category=closing,
        ),
    ]
    result = replay(tmp_path, [], storm=storm, end="2026-11-21T00:00:00Z")
    assert _to_caller(result) == []
    [task] = _caller_tasks(result)
    assert task["reason"].startswith("excluded_crime:storm:")


def test_a_safeguarding_incident_stops_messages_to_the_victims_of_the_crime_it_is_linked_to(
    tmp_path: Path,
) -> None:
    # The crime carries no flag yet; its incident was opened as a domestic incident. Its victim's
    # acknowledgement waits for 08:00 (SMS); the incident arrives meanwhile.
    niche = [occurrence("2026-11-20T21:00:00Z", victims=[victim(channel="sms")], incident_numbers=[CALL])]
    storm = [incident("2026-11-20T21:30:00Z", category="Domestic Incident", consent=False)]
    result = replay(tmp_path, niche, storm=storm, end="2026-11-21T12:00:00Z")
    assert [m for m in result["outbox"] if m["person_id"] == "P-1"] == []
    assert any(
        t["person_id"] == "P-1" and t["reason"] == "excluded_crime:storm:domestic_incident"
        for t in result["tasks"]
    )
    assert "Domestic Incident" in _journey(result["out"], REF, "P-1").incident_categories


# --- Later facts move open deadlines ---------------------------------------------------------


def _untextable() -> dict[str, Any]:
    # No usable channel: each duty becomes a task, so it stays unmet and its deadline decides it.
    return victim(email=None, mobile=None)


def test_a_flag_that_arrives_later_brings_the_deadline_forward_and_the_breach_is_found_on_time(
    tmp_path: Path,
) -> None:
    # Arrested on Friday 18 December 2026: due Tuesday 29th (25, 26 and 28 are holidays). A hate crime
    # flag on Monday 21st gives enhanced rights: due by the end of Monday 21st instead.
    arrest = milestone("M-1", "suspect_arrested", "2026-12-18T10:00:00Z")
    records = [
        occurrence("2026-12-17T09:00:00Z", victims=[_untextable()]),
        occurrence("2026-12-18T10:05:00Z", victims=[_untextable()], milestones=[arrest]),
        occurrence(
            "2026-12-21T12:00:00Z", victims=[_untextable()], milestones=[arrest], flags=["hate_crime"]
        ),
    ]
    result = replay(tmp_path, records, end="2027-01-02T00:00:00Z")
    duty = _journey(result["out"], REF, "P-1").duties["m:M-1"]
    assert duty.due_by == datetime.fromisoformat("2026-12-21T23:59:59+00:00")
    [breach] = [a for a in result["audit"] if a["duty"] == "m:M-1" and a["decision"] == "deadline_breached"]
    assert datetime.fromisoformat(breach["at"]) == datetime.fromisoformat("2026-12-21T23:59:59+00:00")
    assert any(a["duty"] == "m:M-1" and a["decision"] == "deadline_moved" for a in result["audit"])


def test_a_date_of_birth_that_arrives_later_making_the_victim_a_child_brings_the_deadline_forward(
    tmp_path: Path,
) -> None:
    child = victim(email=None, mobile=None, date_of_birth="2012-05-01")
    records = [
        occurrence("2026-12-14T09:00:00Z", victims=[{**_untextable(), "date_of_birth": None}]),
        occurrence("2026-12-15T09:00:00Z", recorded_at="2026-12-14T09:00:00Z", victims=[child]),
    ]
    result = replay(tmp_path, records, end="2026-12-30T00:00:00Z")
    ack = _journey(result["out"], REF, "P-1").duties["ack"]
    assert ack.due_by == datetime.fromisoformat("2026-12-15T23:59:59+00:00")  # 1 working day, not 5


def test_a_deadline_is_never_moved_later(tmp_path: Path) -> None:
    # Enhanced from the start (hate crime); the flag is then removed: the deadline stays.
    records = [
        occurrence("2026-12-14T09:00:00Z", victims=[_untextable()], flags=["hate_crime"]),
        occurrence("2026-12-14T12:00:00Z", recorded_at="2026-12-14T09:00:00Z", victims=[_untextable()]),
    ]
    result = replay(tmp_path, records, end="2026-12-30T00:00:00Z")
    ack = _journey(result["out"], REF, "P-1").duties["ack"]
    assert ack.due_by == datetime.fromisoformat("2026-12-15T23:59:59+00:00")


# --- London days -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded_at", "guardian_told"),
    [
        # 23:30 UTC on 14 June is 00:30 on 15 June in London: the 18th birthday, an adult.
        ("2026-06-14T23:30:00Z", False),
        # 22:30 UTC on 14 June is 23:30 on 14 June in London: still 17, a child.
        ("2026-06-14T22:30:00Z", True),
    ],
)
def test_age_is_taken_on_the_london_day_the_crime_was_recorded(
    tmp_path: Path, recorded_at: str, guardian_told: bool
) -> None:
    guardian = {"name": {"title": "Mr", "surname": "Atkinson"}, "email": "parent@example.org", "mobile": None}
    person = victim(date_of_birth="2008-06-15", guardian=guardian)
    result = replay(tmp_path, [occurrence(recorded_at, victims=[person])], end="2026-06-16T12:00:00Z")
    [message] = result["outbox"]
    assert (message["to"] == "parent@example.org") is guardian_told


def test_journey_show_of_a_crime_includes_the_callers_of_its_incidents(tmp_path: Path) -> None:
    from shared.ops.journeys import journey_view

    niche = [occurrence("2026-11-20T09:00:00Z", flags=["domestic_abuse"], incident_numbers=[CALL])]
    storm = [incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-20T16:00:00Z")]
    result = replay(tmp_path, niche, storm=storm, end="2026-11-21T00:00:00Z")
    view = journey_view(SqliteTableStore(result["out"] / "state.db"), REF)
    assert view["linked_incidents"] == [CALL]
    assert sorted((j["person_id"], j["kept_under"]) for j in view["journeys"]) == [
        ("C-77", CALL),
        ("P-1", REF),
    ]
    assert {t["person_id"] for t in view["tasks"]} == {"P-1", "C-77"}
