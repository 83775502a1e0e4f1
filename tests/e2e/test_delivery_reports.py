"""Delivery, not hand-over, end to end: the embedded provider's reports through the real functions.

``run --delivery-reports`` makes the embedded provider report some addresses failed;
the reports reach the ``delivery_report`` function as Event Grid events on the
simulated clock (some twice, some out of order), and a failed message reopens its
duties: the other channel once, else an officer task (docs/journey-rules.md §12).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from shared.local.__main__ import main
from shared.local.report import format_summary
from shared.ops.__main__ import main as ops_main
from tests.builders import milestone, occurrence, replay, victim

MOBILE, EMAIL = "+447700900123", "alex@example.org"


def test_a_text_that_failed_is_sent_again_by_email_and_meets_the_duty(tmp_path: Path) -> None:
    result = replay(
        tmp_path,
        [occurrence("2026-11-18T10:00:00Z", victims=[victim(channel="sms")])],
        end="2026-11-30T00:00:00Z",
        delivery_reports={MOBILE: {"status": "Failed", "after_seconds": 120}},
    )
    sms, email = result["outbox"]
    assert (sms["channel"], email["channel"]) == ("sms", "email") and sms["duties"] == email["duties"] == [
        "ack"
    ]
    assert any(a["decision"] == "fallback" and a["reason"] == "delivery_failed" for a in result["audit"])
    statuses = {d["message_id"]: d["status"] for d in result["deliveries"]}
    assert statuses == {sms["message_id"]: "Failed", email["message_id"]: "Delivered"}
    assert result["summary"]["delivery"] == {
        "delivered": 1,
        "failed": 1,
        "pending": 0,
        "fallbacks": 1,
        "tasks": 0,
    }
    assert result["summary"]["duties"]["met"] == 1 and result["summary"]["dead_letters"] == 0
    printed = format_summary(result["summary"], result["out"])
    assert (
        "delivery reports:  1 delivered, 1 not delivered, 0 awaiting a report; after a failure,"
        " 1 sent again on the other channel and 0 handed to an officer"
    ) in printed


def test_an_email_that_bounced_with_no_other_channel_goes_to_the_officer_and_is_not_met(
    tmp_path: Path,
) -> None:
    # No mobile: each message that bounces has no other channel, so each of its duties goes to
    # an officer as delivery_failed, with the duty's deadline, and a task alone meets nothing.
    arrest = milestone("M-1", "suspect_arrested", "2026-11-18T10:00:00Z")
    only_email = victim(channel="email", mobile=None)
    result = replay(
        tmp_path,
        [
            occurrence("2026-11-17T09:00:00Z", victims=[only_email]),
            occurrence("2026-11-18T10:05:00Z", victims=[only_email], milestones=[arrest]),
        ],
        end="2026-11-30T00:00:00Z",
        delivery_reports={EMAIL: {"status": "Bounced", "after_seconds": 30}},
    )
    sent = {tuple(m["duties"]): m for m in result["outbox"]}
    assert set(sent) == {("ack",), ("m:M-1",)} and all(m["channel"] == "email" for m in sent.values())
    failed = {tuple(t["duties"]): t for t in result["tasks"] if t["reason"] == "delivery_failed"}
    assert set(failed) == set(sent)  # one task per message that failed, for exactly its duties
    for task in failed.values():
        [mail] = [
            m for m in result["officer_mail"] if m["task_id"] == task["task_id"] and m["kind"] == "task"
        ]
        assert "could not be delivered" in mail["body"] and EMAIL not in mail["body"]
        # The channel that failed, named (never its address), and why no other was tried.
        assert "An automatic message to this victim by email could not be delivered" in mail["body"]
        assert "no other channel that is safe and valid is left to try" in mail["body"]
    breached = {a["duty"] for a in result["audit"] if a["decision"] == "deadline_breached"}
    assert breached == {"ack", "m:M-1"}  # met when sent, met no longer once it bounced
    assert result["summary"]["delivery"] == {
        "delivered": 0,
        "failed": 2,
        "pending": 0,
        "fallbacks": 0,
        "tasks": 2,
    }
    assert not any(a["decision"] == "fallback" for a in result["audit"])  # nothing else was safe and valid


def test_both_channels_failing_goes_to_the_officer_and_neither_address_is_tried_again(
    tmp_path: Path,
) -> None:
    # "both": the text and the email each carry the duty; once both have failed there is no other
    # channel to try, so the officer is asked, and neither failed address gets a second message.
    both = victim(channel="both")
    result = replay(
        tmp_path,
        [occurrence("2026-11-18T10:00:00Z", victims=[both])],
        end="2026-11-30T00:00:00Z",
        delivery_reports={
            MOBILE: {"status": "Failed", "after_seconds": 60},
            EMAIL: {"status": "Bounced", "after_seconds": 300},
        },
    )
    assert sorted((m["channel"], tuple(m["duties"])) for m in result["outbox"]) == [
        ("email", ("ack",)),
        ("sms", ("ack",)),
    ]
    [task] = [t for t in result["tasks"] if t["reason"] == "delivery_failed"]
    assert task["duties"] == ["ack"]
    [mail] = [m for m in result["officer_mail"] if m["task_id"] == task["task_id"] and m["kind"] == "task"]
    assert (
        "could not be delivered" in mail["body"] and EMAIL not in mail["body"] and MOBILE not in mail["body"]
    )
    assert (
        "Automatic messages to this victim by email and by text message could not be delivered,"
        " so an officer needs to tell them what the messages said." in mail["body"]
    )
    assert not any(a["decision"] == "fallback" for a in result["audit"])
    assert result["summary"]["delivery"] == {
        "delivered": 0,
        "failed": 2,
        "pending": 0,
        "fallbacks": 0,
        "tasks": 1,
    }
    assert result["summary"]["dead_letters"] == 0


def test_an_unusable_delivery_reports_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "officers.json").write_text("[]", encoding="utf-8")
    (feeds / "niche.jsonl").write_text("", encoding="utf-8")  # a feed folder, if an empty one
    bad = tmp_path / "reports.json"
    for content, said in (
        ('{"+447700900123": {"status": "Lost"}}', "status 'Lost' is not one of"),
        ('{"+447700900123": {"after_seconds": -5}}', "after_seconds must be"),
        ("[1, 2]", "expected an object"),
        ("{not json", "not valid JSON"),
    ):
        bad.write_text(content, encoding="utf-8")
        code = main(
            [
                "run",
                "--feeds",
                str(feeds),
                "--officers",
                str(feeds / "officers.json"),
                "--out",
                str(tmp_path / "out"),
                "--delivery-reports",
                str(bad),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and said in err, err
    missing = main(
        [
            "run",
            "--feeds",
            str(feeds),
            "--officers",
            str(feeds / "officers.json"),
            "--out",
            str(tmp_path / "out"),
            "--delivery-reports",
            str(tmp_path / "none.json"),
        ]
    )
    assert missing == 2 and "delivery reports file not found" in capsys.readouterr().err


def test_reports_arrive_at_least_once_and_out_of_order_and_nothing_changes_twice(tmp_path: Path) -> None:
    # Many victims, a few failing: the embedded Event Grid repeats some reports and delivers a
    # not-final report after the final one; every message ends in exactly one final status.
    victims = [victim(f"P-{n}", channel="sms", mobile=f"07700 900{n:03d}") for n in range(40)]
    failing = {f"+447700900{n:03d}": {"status": "Failed", "after_seconds": 45} for n in range(0, 40, 7)}
    result = replay(
        tmp_path,
        [occurrence("2026-11-18T10:00:00Z", victims=victims)],
        end="2026-11-25T00:00:00Z",
        delivery_reports=failing,
    )
    invocations = result["summary"]["invocations"]["delivery_report"]
    sms_sent = [m for m in result["outbox"] if m["channel"] == "sms"]
    assert invocations > len(sms_sent) + len(
        [m for m in result["outbox"] if m["channel"] == "email"]
    )  # repeats came
    final = {d["message_id"] for d in result["deliveries"]}
    assert len(final) == len(result["deliveries"]) == len(result["outbox"])  # one final status each
    assert sum(d["status"] == "Failed" for d in result["deliveries"]) == len(failing)
    fallbacks = [
        a for a in result["audit"] if a["decision"] == "fallback" and a["reason"] == "delivery_failed"
    ]
    assert len(fallbacks) == len(failing) == result["summary"]["delivery"]["fallbacks"]
    assert result["summary"]["dead_letters"] == 0 and not result["summary"]["failures"]
    assert datetime.fromisoformat(result["deliveries"][0]["at"]).tzinfo is not None


def test_the_compliance_report_says_what_was_done_after_each_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two victims of one crime: P-1's texts fail and go again by email; P-2 has only an email
    # address, which bounces, so each of P-2's messages becomes a delivery_failed task.
    texts_fail = victim("P-1", channel="sms", email="sam@example.org", mobile="07700 900201")
    bounces = victim("P-2", channel="email", email="bo@example.org", mobile=None)
    arrest = milestone("M-1", "suspect_arrested", "2026-11-18T10:00:00Z")
    result = replay(
        tmp_path,
        [
            occurrence("2026-11-17T09:00:00Z", victims=[texts_fail, bounces]),
            occurrence("2026-11-18T10:05:00Z", victims=[texts_fail, bounces], milestones=[arrest]),
        ],
        end="2026-11-30T00:00:00Z",
        delivery_reports={
            "+447700900201": {"status": "Failed", "after_seconds": 60},
            "bo@example.org": {"status": "Bounced", "after_seconds": 60},
        },
    )
    delivery = result["summary"]["delivery"]
    texts = [m for m in result["outbox"] if m["channel"] == "sms"]
    assert delivery["fallbacks"] == len(texts) == 2 and delivery["tasks"] == 2
    code = ops_main(
        [
            "compliance",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--data",
            str(result["out"]),
            "--out",
            str(tmp_path / "report"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    page = (tmp_path / "report" / "compliance.html").read_text(encoding="utf-8")
    [said] = re.findall(r'<p id="after-failures">(.*?)</p>', page, flags=re.S)
    open_tasks = sum(1 for t in result["tasks"] if t["reason"] == "delivery_failed")  # no contact was logged
    assert said == (
        "After a message was reported not delivered: 2 sent again on the other channel, and 2 handed"
        " to an officer because no other channel was safe and valid"
        f" ({open_tasks} of those tasks still open)."
    )
    # Nothing in the range: every figure is there, and zero.
    assert (
        ops_main(
            [
                "compliance",
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-31",
                "--data",
                str(result["out"]),
                "--out",
                str(tmp_path / "empty"),
            ]
        )
        == 0
    )
    empty = (tmp_path / "empty" / "compliance.html").read_text(encoding="utf-8")
    assert "2026-01" in empty and ": 0 sent again on the other channel, and 0 handed" in empty
