"""Officer tasks reach a person (journey-rules.md §11), end to end through the local host.

The real function objects (``replay``) mail each task once to its assignee or the team
mailbox and, at its due time, to the supervisor; a generated sample's officer mail holds no
victim's personal data. The step, its ledger and its notifiers are in
``tests/integration/test_notify_officer.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.domain.policy import Policy
from tests.acs_stub import AcsStub, acs_stub  # noqa: F401  (fixture)
from tests.builders import OFFICER, milestone, occurrence, replay, victim
from tests.conftest import read_jsonl
from tests.personal_data import personal_data

POLICY = Policy()
TEAM = POLICY.force.team_mailbox
SUPERVISORS = POLICY.force.supervisor_mailbox
OFFICER_EMAIL = str(OFFICER["email"])
DESIGN_FIELDS = {"task_id", "crime_reference", "to", "kind", "subject", "body", "sent_at"}

DOMESTIC = "HU/000881/26"
# Recorded on Friday 18 December 2026; domestic abuse gives enhanced rights: due at the end of the
# 1st working day after, Monday 21 December 2026, 23:59:59 (GMT).
RECORDED = "2026-12-18T10:00:00Z"
DUE = datetime(2026, 12, 21, 23, 59, 59, tzinfo=UTC)


def _domestic_abuse_crime(**changes: Any) -> dict[str, Any]:
    record = occurrence(
        RECORDED,
        ref=DOMESTIC,
        flags=["domestic_abuse"],
        milestones=[milestone("M-881", "suspect_arrested", "2026-12-18T09:00:00Z")],
        victims=[victim("P-2201")],
    )
    return record | changes


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- end to end --------------------------------------------------------------------------------------


def test_each_task_of_a_domestic_abuse_crime_is_mailed_once_to_the_officers_directory_address(
    tmp_path: Path,
) -> None:
    result = replay(tmp_path, [_domestic_abuse_crime()], end="2026-12-21T12:00:00Z")

    tasks = [t for t in result["tasks"] if t["crime_reference"] == DOMESTIC]
    assert sorted(t["duties"][0] for t in tasks) == ["ack", "m:M-881"]
    mails = result["officer_mail"]
    assert sorted(m["task_id"] for m in mails) == sorted(t["task_id"] for t in tasks)  # one each
    for mail in mails:
        assert set(mail) == DESIGN_FIELDS
        assert (mail["kind"], mail["to"], mail["crime_reference"]) == ("task", OFFICER_EMAIL, DOMESTIC)
        assert _at(mail["sent_at"]).utcoffset() == timedelta(0)  # ISO 8601 with its offset
        assert "automated messages are not allowed for this crime (domestic abuse)" in mail["body"]
        assert "by 11:59pm on Monday 21 December 2026" in mail["subject"]
    # Nothing to the victim, and officer mail is never in the victims' outbox.
    assert not [m for m in result["outbox"] if m["crime_reference"] == DOMESTIC]
    assert result["summary"]["officer_mail"] == {"task": 2, "reminder": 0}


def test_a_crime_whose_officer_is_not_in_the_directory_is_mailed_to_the_team_mailbox(tmp_path: Path) -> None:
    unlisted = _domestic_abuse_crime(oic={"employee_id": "999999", "collar_number": None})
    result = replay(tmp_path, [unlisted], end="2026-12-21T12:00:00Z")

    mails = result["officer_mail"]
    assert len(mails) == len(result["tasks"]) == 2
    assert {m["to"] for m in mails} == {TEAM}
    assert all("please allocate it" in m["body"] for m in mails)


def test_an_open_task_goes_to_the_supervisor_at_its_due_time_and_not_before(tmp_path: Path) -> None:
    crime = [_domestic_abuse_crime()]
    just_before = replay(tmp_path / "before", crime, end=(DUE - timedelta(seconds=1)).isoformat())
    assert [m for m in just_before["officer_mail"] if m["kind"] == "reminder"] == []

    after = replay(tmp_path / "after", crime, end="2026-12-22T09:00:00Z")
    due = {t["task_id"]: _at(t["due_by"]) for t in after["tasks"] if t["reason"].startswith("excluded")}
    reminders = [m for m in after["officer_mail"] if m["kind"] == "reminder"]
    assert sorted(m["task_id"] for m in reminders) == sorted(due)  # one each
    for reminder in reminders:
        assert reminder["to"] == SUPERVISORS
        assert _at(reminder["sent_at"]) == due[reminder["task_id"]] == DUE
        assert "overdue" in reminder["body"] and f"officer 104233 ({OFFICER_EMAIL})" in reminder["body"]
    assert after["summary"]["officer_mail"]["reminder"] == 2
    assert SUPERVISORS not in {m["to"] for m in after["outbox"]}


def test_a_generated_sample_puts_no_victims_personal_data_in_any_officer_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.local.generate import generate
    from shared.local.run import RunRequest, run

    monkeypatch.setenv("NICHE_POLL_SCHEDULE", "0 0 * * * *")
    monkeypatch.setenv("STORM_POLL_SCHEDULE", "0 0 * * * *")
    feeds = tmp_path / "feeds"
    generate(feeds, crimes=200, days=20, seed=11)
    summary = run(RunRequest(feeds, feeds / "officers.json", tmp_path / "out"))
    personal = personal_data(feeds)
    assert len(personal) > 300  # the sample really has people in it, guardians among them

    mails = read_jsonl(tmp_path / "out" / "officer-mail.jsonl")
    checked = 0
    for mail in mails:
        text = "\n".join((mail["to"], mail["subject"], mail["body"]))
        assert sorted(value for value in personal if value in text) == [], mail["task_id"]
        assert mail["crime_reference"] in mail["subject"] and mail["crime_reference"] in mail["body"]
        checked += 1
    assert checked == len(mails) == sum(summary["officer_mail"].values())
    assert summary["officer_mail"]["task"] > 50 and summary["officer_mail"]["reminder"] > 10
    assert checked == summary["officer_mail"]["task"] + summary["officer_mail"]["reminder"]
    victims_told = {m["to"] for m in read_jsonl(tmp_path / "out" / "outbox.jsonl")}
    assert not victims_told & {m["to"] for m in mails}  # officer mail never in the victims' outbox


def test_the_printed_summary_counts_officer_mail(tmp_path: Path) -> None:
    from shared.local.report import format_summary

    result = replay(tmp_path, [_domestic_abuse_crime()], end="2026-12-22T09:00:00Z")
    printed = format_summary(result["summary"], result["out"])
    mail = result["summary"]["officer_mail"]
    assert mail["task"] == len([m for m in result["officer_mail"] if m["kind"] == "task"]) > 0
    assert (
        f"officer mail:      {mail['task']} tasks to officers or teams, {mail['reminder']} overdue" in printed
    )
    assert "officer-mail.jsonl" in printed
