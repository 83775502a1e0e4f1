"""Hostile contact details and quoted free text, end to end through the local host.

A victim whose mobile holds letters is emailed instead, never texted at the number a keypad
would make of it; a record quoting more than the contract allows is quarantined and the
records around it still flow; a court's name at the limit reaches the email whole. The rules
themselves are in ``tests/unit/test_hostile_contact.py``.
"""

from __future__ import annotations

from pathlib import Path

from tests.builders import occurrence, replay, victim
from tests.conftest import read_jsonl
from tests.unit.test_hostile_contact import HEARING, _charged


def test_a_victim_whose_mobile_has_letters_gets_no_sms_and_the_email_instead(tmp_path: Path) -> None:
    person = victim(channel="sms", mobile="07700 900 ABC")
    result = replay(
        tmp_path, [occurrence("2026-11-20T10:00:00Z", victims=[person])], end="2026-11-21T12:00:00Z"
    )
    assert [m["channel"] for m in result["outbox"]] == ["email"]
    assert not any(m["to"] == "+447700900222" for m in result["outbox"])
    assert any(a["decision"] == "fallback" for a in result["audit"])


def test_a_100_kb_court_name_is_quarantined_naming_the_field_and_no_email_carries_it(tmp_path: Path) -> None:
    huge = "Hull Magistrates' Court " * 4200
    records = [occurrence("2026-11-20T09:00:00Z"), _charged({"first_hearing": HEARING | {"court": huge}})]
    result = replay(tmp_path, records, end="2026-11-22T00:00:00Z")
    [quarantined] = read_jsonl(result["out"] / "quarantine.jsonl")
    assert "milestones.0.details.first_hearing.court" in quarantined["error"]
    assert [m["template"] for m in result["outbox"]] == ["acknowledgement"]  # the record before it went on
    assert all(len(m["body"]) < 5000 for m in result["outbox"])


def test_a_court_name_at_the_limit_reaches_the_email(tmp_path: Path) -> None:
    court = ("Kingston upon Hull Combined Court Centre, Lowgate " * 3)[:120]
    records = [occurrence("2026-11-20T09:00:00Z"), _charged({"first_hearing": HEARING | {"court": court}})]
    result = replay(tmp_path, records, end="2026-11-22T00:00:00Z")
    [email] = [m for m in result["outbox"] if m["template"] == "suspect_charged"]
    assert court in email["body"]
