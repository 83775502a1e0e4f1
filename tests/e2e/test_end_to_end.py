"""Hand-written scenarios replayed end to end through the local host and the real functions."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.sqlite_queue import SqliteQueueBroker
from tests.broker_faults import completion_lost_once, retry_after
from tests.builders import links_hidden

REPO = Path(__file__).resolve().parents[2]
ADULT = "HU/000101/26"
DOMESTIC = "HU/000202/26"


def test_adult_victim_is_told_of_the_report_the_arrest_and_the_charge(
    run_scenario: Callable[..., Any],
) -> None:
    result = run_scenario("first_journey")
    adult = [m for m in result["outbox"] if m["crime_reference"] == ADULT]
    assert [(m["template"], m["duties"], m["channel"]) for m in adult] == [
        ("acknowledgement", ["ack"], "email"),
        ("suspect_arrested", ["m:M-1"], "email"),
        ("suspect_charged", ["m:M-3"], "email"),
        ("checkin", ["checkin:1"], "email"),  # 28 days after the last message, the case still open
    ]
    assert all(m["to"] == "alex@example.org" and m["person_id"] == "P-1" for m in adult)
    charged = adult[2]
    assert "Hull Magistrates' Court" in charged["body"]
    assert "Wednesday 18 November 2026" in charged["body"]
    for message in adult:
        assert ADULT in message["body"] and "101" in message["body"]
        assert "bodily harm" not in message["body"].lower()  # never the offence


def test_domestic_abuse_crime_yields_tasks_and_no_message(run_scenario: Callable[..., Any]) -> None:
    result = run_scenario("first_journey")
    assert not [m for m in result["outbox"] if m["crime_reference"] == DOMESTIC]
    tasks = [
        t for t in result["tasks"] if t["crime_reference"] == DOMESTIC and t["reason"].startswith("excluded")
    ]
    assert sorted(t["duties"][0] for t in tasks) == ["ack", "checkin:1", "m:M-2"]
    assert {t["reason"] for t in tasks} == {"excluded_crime:domestic_abuse"}
    assert {t["assignee"] for t in tasks} == {"104233"}


def test_deadlines_are_met_for_messages_and_breached_for_tasks_alone(
    run_scenario: Callable[..., Any],
) -> None:
    summary = run_scenario("first_journey")["summary"]
    assert summary["duties"] == {"due": 5, "met": 3, "breached": 2}
    assert summary["compliance"] == 0.6
    assert summary["tasks_by_reason"] == {"deadline_breached": 2, "excluded_crime": 3}


def test_replaying_the_same_feed_twice_sends_nothing_twice(
    run_scenario: Callable[..., Any], tmp_path: Path
) -> None:
    first = run_scenario("first_journey", out=tmp_path / "same")
    second = run_scenario("first_journey", out=tmp_path / "same")
    assert len(first["outbox"]) == 4
    assert second["outbox"] == first["outbox"]
    assert len(second["tasks"]) == len(first["tasks"])


def test_redelivering_every_queue_message_sends_nothing_twice(
    run_scenario: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = run_scenario("first_journey", out=tmp_path / "plain")
    redelivered: Counter[str] = Counter()
    monkeypatch.setattr(SqliteQueueBroker, "complete", completion_lost_once(redelivered))
    result = run_scenario("first_journey", out=tmp_path / "twice")
    assert set(redelivered) == {
        "case-changes",
        "journey-events",
        "outbound-messages",
        "officer-tasks",
        "event-grid",  # the delivery reports: recorded once however often they come
    }
    assert links_hidden(result["outbox"]) == links_hidden(expected["outbox"])
    assert len({m["message_id"] for m in result["outbox"]}) == len(result["outbox"])
    assert sorted(t["task_id"] for t in result["tasks"]) == sorted(t["task_id"] for t in expected["tasks"])
    assert result["summary"]["duties"] == expected["summary"]["duties"]


def test_malformed_records_are_quarantined_with_a_reason_and_later_records_still_flow(
    run_scenario: Callable[..., Any],
) -> None:
    result = run_scenario("malformed")
    reasons = [q["error"] for q in result["quarantine"]]
    assert len(reasons) == 2
    assert "crime_reference" in reasons[0]
    assert "not valid JSON" in reasons[1]
    assert all(q["feed"] == "niche" for q in result["quarantine"])
    assert result["quarantine"][1]["record"].startswith(
        '{"schema":"niche.occurrence/1","occurrence_id":"HU-26-0004'
    )
    templates = [m["template"] for m in result["outbox"]]
    assert templates == ["acknowledgement", "suspect_arrested", "suspect_charged", "checkin"]
    assert result["summary"]["records"] == {"niche": 5, "storm": 0, "quarantined": 2}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.local", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_command_line_rejects_a_missing_feeds_folder_in_one_line(tmp_path: Path) -> None:
    officers = REPO / "tests/scenarios/first_journey/officers.json"
    done = _cli(
        "run", "--feeds", str(tmp_path / "nowhere"), "--officers", str(officers), "--out", str(tmp_path / "o")
    )
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0
    assert "feeds folder not found" in done.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["run", "--officers", "x", "--out", "y"], "--feeds"),
        (["run", "--feeds", ".", "--officers", "x", "--out", "y", "--start", "yesterday"], "ISO 8601"),
        (
            ["run", "--feeds", ".", "--officers", "x", "--out", "y", "--start", "2026-11-01T00:00:00"],
            "offset",
        ),
        (["generate", "--crimes", "0", "--days", "1", "--seed", "1", "--out", "y"], "at least 1"),
    ],
)
def test_command_line_rejects_bad_arguments_in_one_line(args: list[str], complaint: str) -> None:
    done = _cli(*args)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert complaint in done.stderr


def test_command_line_rejects_a_missing_officer_file(tmp_path: Path) -> None:
    feeds = REPO / "tests/scenarios/first_journey"
    done = _cli(
        "run", "--feeds", str(feeds), "--officers", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")
    )
    assert done.returncode == 2 and "officer directory file not found" in done.stderr


def test_generated_sample_run_writes_all_six_files(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    assert (
        _cli("generate", "--crimes", "120", "--days", "10", "--seed", "3", "--out", str(feeds)).returncode
        == 0
    )
    out = tmp_path / "run"
    done = _cli("run", "--feeds", str(feeds), "--officers", str(feeds / "officers.json"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    for name in (
        "outbox.jsonl",
        "tasks.jsonl",
        "audit.jsonl",
        "quarantine.jsonl",
        "dead-letter.jsonl",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    assert "compliance" in done.stdout
    assert (out / "outbox.jsonl").stat().st_size > 0


def test_an_identical_record_creates_nothing_and_an_older_one_is_audited_stale(tmp_path: Path) -> None:
    from tests.builders import occurrence, replay

    newer = occurrence("2026-11-20T10:00:00Z", status="under_investigation")
    older = occurrence("2026-11-19T10:00:00Z", status="recorded")
    result = replay(
        tmp_path, [newer, newer, older | {"modified_at": "2026-11-19T10:00:00Z"}], end="2026-11-21T00:00:00Z"
    )
    assert [m["template"] for m in result["outbox"]] == ["acknowledgement"]
    stale = [a for a in result["audit"] if a["decision"] == "stale"]
    assert len(stale) == 1 and stale[0]["reason"].startswith("modified_at 2026-11-19")


def test_a_throttled_provider_gets_the_message_later_and_it_is_never_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime, timedelta

    from shared.adapters.file_outbox import FileOutbox
    from shared.ports import ProviderThrottled
    from tests.builders import occurrence, replay

    real = FileOutbox.send_email
    refusals: list[str] = []

    def throttled_once(self: FileOutbox, **kwargs: Any) -> Any:
        if not refusals:
            refusals.append(kwargs["idempotency_key"])
            raise ProviderThrottled(retry_after_seconds=600)
        return real(self, **kwargs)

    monkeypatch.setattr(FileOutbox, "send_email", throttled_once)
    result = replay(tmp_path, [occurrence("2026-11-20T10:00:00Z")], end="2026-11-21T00:00:00Z")
    [message] = result["outbox"]
    assert message["message_id"] == refusals[0]
    first_try = datetime.fromisoformat("2026-11-20T10:15:00+00:00")  # ingest at 10:05, window of 10 minutes
    assert datetime.fromisoformat(message["sent_at"]) == first_try + timedelta(seconds=600)
    assert any(
        a["decision"] == "deferred" and a["reason"].startswith("provider_throttled") for a in result["audit"]
    )
    assert result["summary"]["dead_letters"] == 0


def test_a_message_the_provider_rejects_for_good_is_recorded_failed_and_the_duty_escalates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.adapters.file_outbox import FileOutbox
    from shared.ports import ProviderRejected
    from tests.builders import occurrence, replay

    def reject(self: FileOutbox, **kwargs: Any) -> Any:
        raise ProviderRejected("recipient address refused")

    monkeypatch.setattr(FileOutbox, "send_email", reject)
    result = replay(tmp_path, [occurrence("2026-11-20T10:00:00Z")], end="2026-11-30T00:00:00Z")
    assert result["outbox"] == []
    assert result["summary"]["dead_letters"] == 0
    assert any(a["reason"] == "provider_rejected:ProviderRejected" for a in result["audit"])
    assert [t["reason"] for t in result["tasks"]] == ["deadline_breached"]


def test_a_retry_the_provider_cannot_account_for_is_recorded_unknown_not_suppressed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the hand-over, a flag before the retry, and a provider that cannot say what it has."""
    from tests.builders import occurrence, replay

    crashed = _crash_after_the_first_hand_over_and_cannot_tell(monkeypatch)
    records = [
        occurrence("2026-11-20T10:02:00Z", recorded_at="2026-11-20T10:00:00Z"),
        occurrence("2026-11-20T10:12:00Z", recorded_at="2026-11-20T10:00:00Z", flags=["domestic_abuse"]),
    ]
    # The delivery report comes after the retry (a slow report): the retry cannot tell.
    slow = {"alex@example.org": {"status": "Delivered", "after_seconds": 3 * 3600}}
    result = replay(tmp_path, records, end="2026-11-21T00:00:00Z", delivery_reports=slow)
    assert [m["message_id"] for m in result["outbox"]] == crashed  # handed over once, never twice
    unknown = [a for a in result["audit"] if a["reason"].startswith("outcome_unknown:excluded_crime")]
    assert len(unknown) == 1
    # Then the provider reports it delivered: the victim was told after all, and the journey says so.
    [told] = [a for a in result["audit"] if a["decision"] == "sent"]
    assert told["reason"] == "email: delivery report says Delivered" and told["at"] > unknown[0]["at"]
    assert [d["status"] for d in result["deliveries"]] == ["Delivered"]


def test_a_delivery_report_that_comes_before_the_retry_shows_the_message_was_handed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the hand-over, then the provider's report, then the retry: sent, not unknown."""
    from tests.builders import occurrence, replay

    crashed = _crash_after_the_first_hand_over_and_cannot_tell(monkeypatch)
    for status in ("Delivered", "Bounced"):
        report = {"alex@example.org": {"status": status, "after_seconds": 20}}
        result = replay(
            tmp_path / status,
            [occurrence("2026-11-20T10:02:00Z")],
            end="2026-11-30T00:00:00Z",
            delivery_reports=report,
        )
        assert result["outbox"][0]["message_id"] == crashed[-1]  # handed over once, never twice
        assert not any(a["reason"].startswith("outcome_unknown") for a in result["audit"])
        sent = [a["reason"] for a in result["audit"] if a["decision"] == "sent"]
        assert f"email: its delivery report says {status}" in sent
        if status == "Bounced":
            # It reached the provider but not the victim: the text goes instead, and meets the duty.
            assert [m["channel"] for m in result["outbox"]] == ["email", "sms"]
            assert any(
                a["decision"] == "fallback" and a["reason"] == "delivery_failed" for a in result["audit"]
            )
        else:
            assert len(result["outbox"]) == 1
        assert result["summary"]["duties"] == {"due": 1, "met": 1, "breached": 0}, status
        crashed.clear()


def _crash_after_the_first_hand_over_and_cannot_tell(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The worker dies just after the provider took the first email; the provider cannot say
    what it has (no accepted() look-up, as ACS); the retry comes ten minutes later. Returns the
    keys of the emails handed over before a crash (the test may clear it between runs)."""
    from shared.adapters.file_outbox import FileOutbox
    from shared.ports import ProviderStatusUnknown

    real = FileOutbox.send_email
    crashed: list[str] = []

    def hand_over_then_crash(self: FileOutbox, **kwargs: Any) -> Any:
        receipt = real(self, **kwargs)
        if not crashed:
            crashed.append(kwargs["idempotency_key"])
            raise RuntimeError("worker died after the provider accepted")
        return receipt

    def cannot_tell(self: FileOutbox, idempotency_key: str) -> Any:
        raise ProviderStatusUnknown("no look-up")

    monkeypatch.setattr(FileOutbox, "send_email", hand_over_then_crash)
    monkeypatch.setattr(FileOutbox, "accepted", cannot_tell)
    monkeypatch.setattr(SqliteQueueBroker, "abandon", retry_after(timedelta(minutes=10)))
    return crashed
