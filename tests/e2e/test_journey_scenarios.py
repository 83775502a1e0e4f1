"""The journey rules of docs/journey-rules.md, each shown end to end through the local host."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import journey_from
from shared.domain.journey import Journey
from tests.builders import incident, milestone, occurrence, replay, victim

REF = "HU/000001/26"


def _sent_at(message: dict[str, str]) -> datetime:
    return datetime.fromisoformat(message["sent_at"])


def test_sms_falling_due_at_half_past_ten_at_night_is_sent_at_eight_next_morning(tmp_path: Path) -> None:
    result = replay(
        tmp_path,
        [occurrence("2026-11-19T22:30:00Z", victims=[victim(channel="sms")])],
        end="2026-11-21T00:00:00Z",
    )
    [message] = result["outbox"]
    assert message["channel"] == "sms" and message["to"] == "+447700900123"
    assert _sent_at(message) == datetime.fromisoformat("2026-11-20T08:00:00+00:00")
    assert any(a["decision"] == "deferred" and a["reason"].startswith("quiet_hours") for a in result["audit"])


def test_email_falling_due_at_half_past_ten_at_night_is_not_held(tmp_path: Path) -> None:
    result = replay(
        tmp_path,
        [occurrence("2026-11-19T22:30:00Z", victims=[victim(channel="email")])],
        end="2026-11-21T00:00:00Z",
    )
    [message] = result["outbox"]
    assert message["channel"] == "email"
    assert _sent_at(message) < datetime.fromisoformat("2026-11-19T23:00:00+00:00")
    assert not any(a["decision"] == "deferred" for a in result["audit"])


def test_three_milestones_within_ten_minutes_produce_one_message_that_names_all_three(tmp_path: Path) -> None:
    arrested = milestone("M-1", "suspect_arrested", "2026-11-20T10:00:00Z")
    interviewed = milestone("M-2", "suspect_interviewed", "2026-11-20T10:04:00Z")
    bailed = milestone("M-3", "suspect_bailed", "2026-11-20T10:08:00Z")
    records = [
        occurrence("2026-11-19T09:00:00Z"),
        occurrence("2026-11-20T10:01:00Z", milestones=[arrested]),
        occurrence("2026-11-20T10:05:00Z", milestones=[arrested, interviewed]),
        occurrence("2026-11-20T10:09:00Z", milestones=[arrested, interviewed, bailed]),
    ]
    result = replay(tmp_path, records, end="2026-11-21T00:00:00Z")
    assert [m["template"] for m in result["outbox"]] == ["acknowledgement", "combined_update"]
    combined = result["outbox"][1]
    assert sorted(combined["duties"]) == ["m:M-1", "m:M-2", "m:M-3"]
    body = combined["body"]
    assert "arrested someone" in body and "interviewed a suspect" in body and "released on bail" in body
    assert sum(a["decision"] == "coalesced" for a in result["audit"]) == 2


def test_domestic_abuse_flag_arriving_while_a_message_waits_to_be_sent_stops_it(tmp_path: Path) -> None:
    # The acknowledgement is an SMS held for quiet hours; the flag arrives before 08:00.
    records = [
        occurrence("2026-11-19T21:00:00Z", victims=[victim(channel="sms")]),
        occurrence("2026-11-19T23:00:00Z", victims=[victim(channel="sms")], flags=["domestic_abuse"]),
    ]
    result = replay(tmp_path, records, end="2026-11-21T12:00:00Z")
    assert result["outbox"] == []
    # The flag also gives enhanced rights: the acknowledgement is now due by the end of Friday, and a
    # task alone does not meet it, so by Saturday it is breached and escalated too.
    assert sorted((t["duties"], t["reason"]) for t in result["tasks"]) == [
        (["ack"], "deadline_breached"),
        (["ack"], "excluded_crime:domestic_abuse"),
    ]
    assert _journey(result["out"], REF, "P-1").duties["ack"].due_by == datetime.fromisoformat(
        "2026-11-20T23:59:59+00:00"
    )
    assert result["summary"]["dead_letters"] == 0
    assert any(
        a["decision"] == "suppressed" and a["reason"].startswith("excluded_crime") for a in result["audit"]
    )


def test_domestic_abuse_flag_arriving_in_the_coalescing_window_yields_a_task_and_no_message(
    tmp_path: Path,
) -> None:
    records = [
        occurrence("2026-11-19T10:00:00Z"),
        occurrence("2026-11-19T10:03:00Z", flags=["domestic_abuse"]),
    ]
    result = replay(tmp_path, records, end="2026-11-21T12:00:00Z")
    assert result["outbox"] == []
    # Enhanced rights by the flag: due by the end of Friday 20th, so breached by Saturday.
    assert sorted(t["reason"] for t in result["tasks"]) == [
        "deadline_breached",
        "excluded_crime:domestic_abuse",
    ]


def test_an_opt_out_arriving_while_a_message_waits_stops_it(tmp_path: Path) -> None:
    records = [
        occurrence("2026-11-19T21:00:00Z", victims=[victim(channel="sms")]),
        occurrence("2026-11-19T23:00:00Z", victims=[victim(channel="sms", opted_out=True)]),
    ]
    result = replay(tmp_path, records, end="2026-11-21T12:00:00Z")
    assert result["outbox"] == []
    assert result["tasks"] == []
    assert any(a["decision"] == "suppressed" and a["reason"] == "opted_out" for a in result["audit"])
    assert result["summary"]["duties"]["met"] == 1  # the victim's choice discharges the duty


def test_an_unsafe_preferred_channel_falls_back_to_the_other_safe_channel(tmp_path: Path) -> None:
    records = [occurrence("2026-11-19T10:00:00Z", victims=[victim(channel="sms", safe_sms=False)])]
    result = replay(tmp_path, records, end="2026-11-20T12:00:00Z")
    assert [(m["channel"], m["to"]) for m in result["outbox"]] == [("email", "alex@example.org")]
    assert any(a["decision"] == "fallback" for a in result["audit"])


def test_no_safe_channel_gives_an_officer_task(tmp_path: Path) -> None:
    records = [
        occurrence(
            "2026-11-19T10:00:00Z", victims=[victim(channel="sms", safe_sms=False, email="not-an-email")]
        )
    ]
    result = replay(tmp_path, records, end="2026-11-20T12:00:00Z")
    assert result["outbox"] == []
    assert [t["reason"] for t in result["tasks"]] == ["no_safe_channel"]


def test_a_victim_under_18_is_reached_through_the_guardian(tmp_path: Path) -> None:
    child = victim(date_of_birth="2012-03-01", guardian={"email": "parent@example.org", "mobile": None})
    result = replay(
        tmp_path, [occurrence("2026-11-19T10:00:00Z", victims=[child])], end="2026-11-20T12:00:00Z"
    )
    assert [(m["channel"], m["to"]) for m in result["outbox"]] == [("email", "parent@example.org")]


def test_a_victim_under_18_without_a_guardian_gives_a_task(tmp_path: Path) -> None:
    child = victim(date_of_birth="2012-03-01", guardian=None)
    result = replay(
        tmp_path, [occurrence("2026-11-19T10:00:00Z", victims=[child])], end="2026-11-20T12:00:00Z"
    )
    assert result["outbox"] == []
    assert [t["reason"] for t in result["tasks"]] == ["under_18_no_guardian"]


def test_a_milestone_withdrawn_before_sending_is_superseded_and_nothing_is_sent(tmp_path: Path) -> None:
    arrested = milestone("M-9", "suspect_arrested", "2026-11-20T10:00:00Z")
    records = [
        occurrence("2026-11-19T10:00:00Z"),
        occurrence("2026-11-20T10:01:00Z", milestones=[arrested]),
        occurrence("2026-11-20T10:05:00Z", milestones=[]),
    ]
    result = replay(tmp_path, records, end="2026-11-21T12:00:00Z")
    assert [m["template"] for m in result["outbox"]] == ["acknowledgement"]
    assert any(a["duty"] == "m:M-9" and a["decision"] == "superseded" for a in result["audit"])


def test_check_ins_repeat_every_frequency_days_and_stop_at_finalisation(tmp_path: Path) -> None:
    person = victim(frequency_days=14)
    records = [
        occurrence("2026-10-01T10:00:00Z", victims=[person]),
        occurrence(
            "2026-11-16T10:00:00Z",
            victims=[person],
            status="finalised",
            outcome={"code": "18", "decided_at": "2026-11-16T10:00:00Z"},
        ),
    ]
    result = replay(tmp_path, records, end="2027-01-31T00:00:00Z")
    checkins = [m for m in result["outbox"] if m["template"] == "checkin"]
    assert [_sent_at(m).date().isoformat() for m in checkins] == ["2026-10-15", "2026-10-29", "2026-11-12"]
    assert result["outbox"][-1]["template"] == "case_closed"


def test_check_ins_stop_when_the_victim_opts_out(tmp_path: Path) -> None:
    records = [
        occurrence("2026-10-01T10:00:00Z", victims=[victim(frequency_days=14)]),
        occurrence("2026-10-20T10:00:00Z", victims=[victim(frequency_days=14, opted_out=True)]),
    ]
    result = replay(tmp_path, records, end="2026-12-31T00:00:00Z")
    assert [m["template"] for m in result["outbox"]] == ["acknowledgement", "checkin"]


def test_a_manual_contact_discharges_open_duties_and_restarts_the_check_in_clock(tmp_path: Path) -> None:
    arrested = milestone("M-1", "suspect_arrested", "2026-10-02T09:00:00Z")
    contacted = milestone("M-2", "victim_contacted", "2026-10-02T12:00:00Z")
    records = [
        occurrence("2026-10-01T10:00:00Z", flags=["domestic_abuse"]),
        occurrence("2026-10-02T09:30:00Z", flags=["domestic_abuse"], milestones=[arrested]),
        occurrence("2026-10-02T12:30:00Z", flags=["domestic_abuse"], milestones=[arrested, contacted]),
    ]
    result = replay(tmp_path, records, end="2026-10-20T00:00:00Z")
    assert result["outbox"] == []
    assert result["summary"]["duties"] == {"due": 2, "met": 2, "breached": 0}
    assert {a["duty"] for a in result["audit"] if a["decision"] == "deadline_met"} == {"ack", "m:M-1"}


def test_attendance_booked_hours_ahead_is_sent_to_a_consenting_caller(tmp_path: Path) -> None:
    storm = [incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-20T16:00:00Z")]
    result = replay(tmp_path, [], storm=storm, end="2026-11-21T00:00:00Z")
    [message] = result["outbox"]
    assert (message["template"], message["channel"], message["to"]) == (
        "attendance_booked",
        "sms",
        "+447700900123",
    )
    assert message["duties"] == ["attend:HU-20261120-0123:2026-11-20T16:00:00+00:00"]
    assert "on Friday 20 November at 4pm" in message["body"]


def test_attendance_less_than_an_hour_away_is_not_sent(tmp_path: Path) -> None:
    storm = [incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-20T10:45:00Z")]
    result = replay(tmp_path, [], storm=storm, end="2026-11-21T00:00:00Z")
    assert result["outbox"] == []
    assert any(
        a["decision"] == "suppressed" and a["reason"] == "appointment_too_soon" for a in result["audit"]
    )


def test_attendance_held_by_quiet_hours_past_the_visit_is_not_sent(tmp_path: Path) -> None:
    # Booked at 21:00 for 23:30: the SMS would wait until 08:00, after the visit.
    storm = [incident("2026-11-20T21:00:00Z", scheduled_for="2026-11-20T23:30:00Z")]
    result = replay(tmp_path, [], storm=storm, end="2026-11-21T12:00:00Z")
    assert result["outbox"] == []
    assert any(a["reason"] == "appointment_too_soon" for a in result["audit"])


def test_a_moved_appointment_is_a_new_message_and_a_caller_without_consent_gets_none(tmp_path: Path) -> None:
    storm = [
        incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-20T16:00:00Z"),
        incident("2026-11-20T12:00:00Z", scheduled_for="2026-11-20T18:00:00Z"),
        incident(
            "2026-11-20T12:00:00Z",
            number="HU-20261120-0999",
            scheduled_for="2026-11-20T18:00:00Z",
            consent=False,
        ),
    ]
    result = replay(tmp_path, [], storm=storm, end="2026-11-21T00:00:00Z")
    visits = ("Friday 20 November at 4pm", "Friday 20 November at 6pm")
    assert [any(v in m["body"] for v in visits) for m in result["outbox"]] == [True, True]
    assert {m["duties"][0].split(":")[1] for m in result["outbox"]} == {"HU-20261120-0123"}


def test_enhanced_rights_bring_the_deadline_to_the_next_working_day(tmp_path: Path) -> None:
    # A hate crime recorded on Friday 20 November 2026 must be acknowledged by Monday 23rd.
    result = replay(
        tmp_path, [occurrence("2026-11-20T10:00:00Z", flags=["hate_crime"])], end="2026-11-25T00:00:00Z"
    )
    journey = _journey(result["out"], REF, "P-1")
    assert journey.duties["ack"].due_by == datetime.fromisoformat("2026-11-23T23:59:59+00:00")
    assert [m["template"] for m in result["outbox"]] == ["acknowledgement"]  # hate crime is not excluded


def test_an_unknown_language_is_sent_in_english_with_an_audit_note(tmp_path: Path) -> None:
    result = replay(
        tmp_path,
        [occurrence("2026-11-20T10:00:00Z", victims=[victim(language="xx")])],
        end="2026-11-21T00:00:00Z",
    )
    assert [m["template"] for m in result["outbox"]] == ["acknowledgement"]
    assert any(a["decision"] == "language_fallback" for a in result["audit"])


def _journey(out: Path, crime: str, person: str) -> Journey:
    store = SqliteTableStore(out / "state.db")
    try:
        entity = store.get("Journeys", crime, person)
        assert entity is not None
        return journey_from(entity)
    finally:
        store.close()


def test_a_held_sms_whose_channel_becomes_unsafe_goes_by_the_other_safe_channel(tmp_path: Path) -> None:
    records = [
        occurrence("2026-11-19T21:00:00Z", victims=[victim(channel="sms")]),
        occurrence("2026-11-19T23:00:00Z", victims=[victim(channel="sms", safe_sms=False)]),
    ]
    result = replay(tmp_path, records, end="2026-11-21T12:00:00Z")
    assert [(m["channel"], m["duties"]) for m in result["outbox"]] == [("email", ["ack"])]
    assert _sent_at(result["outbox"][0]) < datetime.fromisoformat("2026-11-20T00:00:00+00:00")
    assert result["summary"]["duties"] == {"due": 1, "met": 1, "breached": 0}


def test_a_visit_moved_after_the_caller_was_told_is_a_new_message_that_says_it_moved(tmp_path: Path) -> None:
    storm = [
        incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-20T16:00:00Z"),
        incident("2026-11-20T12:00:00Z", scheduled_for="2026-11-20T18:00:00Z"),
    ]
    result = replay(tmp_path, [], storm=storm, end="2026-11-21T00:00:00Z")
    assert len(result["outbox"]) == 2
    caller = _journey(result["out"], "HU-20261120-0123", "C-77")
    moved = caller.duties["attend:HU-20261120-0123:2026-11-20T18:00:00+00:00"]
    assert moved.details["moved_from"] == "2026-11-20T16:00:00+00:00"
    assert "Your visit moved to Friday 20 November at 6pm" in result["outbox"][1]["body"]


def test_a_visit_moved_before_the_caller_was_told_sends_only_the_new_time(tmp_path: Path) -> None:
    # Booked at 21:00 for 14:00 tomorrow: the text waits for 08:00. Moved at 22:00 to 15:00.
    storm = [
        incident("2026-11-20T21:00:00Z", scheduled_for="2026-11-21T14:00:00Z"),
        incident("2026-11-20T22:00:00Z", scheduled_for="2026-11-21T15:00:00Z"),
    ]
    result = replay(tmp_path, [], storm=storm, end="2026-11-22T00:00:00Z")
    [message] = result["outbox"]
    assert message["duties"] == ["attend:HU-20261120-0123:2026-11-21T15:00:00+00:00"]
    caller = _journey(result["out"], "HU-20261120-0123", "C-77")
    assert "moved_from" not in caller.duties[message["duties"][0]].details
    assert caller.duties["attend:HU-20261120-0123:2026-11-21T14:00:00+00:00"].status == "superseded"
