"""A provider as forgetful as Azure Communication Services, through the whole local host.

``FaultPlan(acs_like=True)`` swaps the file outbox for its ACS-like mode: no ``accepted()``
look-up, a repeat recognised for 5 minutes only (an SMS's Repeatability-First-Sent older
than that is refused with 412; an email's Operation-Id is forgotten, so a late repeat is a
second email). These runs inject no fault of their own (rate 0); each test scripts the one
awkward moment it is about: a worker dying after the provider took a message, or a 429
whose Retry-After outlasts the repeat window.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.acs import ProviderRejected, RepeatabilityExpired
from shared.adapters.file_outbox import REPEAT_WINDOW, FileOutbox
from shared.adapters.sqlite_queue import SqliteQueueBroker
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import MESSAGES
from shared.local.faults import FaultPlan, install_faults
from shared.local.run import RunRequest, run
from shared.ports import EmailContent, ProviderStatusUnknown, ProviderThrottled
from tests.broker_faults import retry_after
from tests.builders import OFFICER, occurrence, victim
from tests.conftest import read_jsonl

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


# --- The stub itself ------------------------------------------------------------------------------


def _outbox(tmp_path: Path, clock: list[datetime]) -> FileOutbox:
    return FileOutbox(tmp_path / "outbox.jsonl", lambda: clock[0]).acting_as_acs()


def _sms(outbox: FileOutbox, first_sent_at: datetime | None) -> Any:
    return outbox.send_sms(
        idempotency_key="k-1", to="+447700900123", text="hello", metadata={}, first_sent_at=first_sent_at
    )


def _email(outbox: FileOutbox) -> Any:
    return outbox.send_email(
        idempotency_key="k-2", to="alex@example.org", content=EmailContent("s", "t", "<p>t</p>"), metadata={}
    )


def test_the_acs_like_outbox_cannot_be_asked_and_remembers_a_repeat_for_minutes_only(tmp_path: Path) -> None:
    clock = [NOW]
    outbox = _outbox(tmp_path, clock)
    with pytest.raises(ProviderStatusUnknown):
        outbox.accepted("k-1")
    first = _sms(outbox, NOW)
    clock[0] = NOW + timedelta(minutes=4)
    assert _sms(outbox, NOW) == first  # the same repeat, within the window: the same text
    with pytest.raises(ProviderRejected):  # the same id with another first-sent: refused
        _sms(outbox, NOW + timedelta(minutes=1))
    clock[0] = NOW + REPEAT_WINDOW + timedelta(seconds=1)
    with pytest.raises(RepeatabilityExpired) as expired:  # too old to tell: 412, sent or not
        _sms(outbox, NOW)
    assert expired.value.status == 412 and isinstance(expired.value, ProviderStatusUnknown)
    # An email's Operation-Id is forgotten after the window: a late repeat is a second email.
    clock[0] = NOW
    _email(outbox)
    clock[0] = NOW + timedelta(minutes=4)
    _email(outbox)
    clock[0] = NOW + REPEAT_WINDOW + timedelta(minutes=1)
    _email(outbox)
    lines = read_jsonl(tmp_path / "outbox.jsonl")
    assert [line["channel"] for line in lines] == ["sms", "email", "email"]


# --- Through the host ------------------------------------------------------------------------------


def _run(
    tmp_path: Path, records: list[dict[str, Any]], *, end: str, reports: dict[str, Any]
) -> dict[str, Any]:
    feeds = tmp_path / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    (feeds / "niche.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (feeds / "officers.json").write_text(json.dumps([OFFICER]), encoding="utf-8")
    (feeds / "reports.json").write_text(json.dumps(reports), encoding="utf-8")
    out = tmp_path / "out"
    acs_like = install_faults(FaultPlan(seed=1, rate=0.0, kinds=frozenset(), acs_like=True))
    summary = run(
        RunRequest(
            feeds,
            feeds / "officers.json",
            out,
            end=datetime.fromisoformat(end),
            delivery_reports=feeds / "reports.json",
            prepare=acs_like,
        )
    )
    store = SqliteTableStore(out / "state.db")
    try:
        ledger = {entity.row_key: dict(entity.properties) for entity in store.export(MESSAGES)}
    finally:
        store.close()
    return {
        "summary": summary,
        "outbox": read_jsonl(out / "outbox.jsonl"),
        "audit": read_jsonl(out / "audit.jsonl"),
        "tasks": read_jsonl(out / "tasks.jsonl"),
        "ledger": ledger,
    }


def _once(monkeypatch: pytest.MonkeyPatch, name: str, wrap: Callable[[Any], Any]) -> list[str]:
    """Wrap FileOutbox.<name> so that its first call does something awkward; returns the keys."""
    real = getattr(FileOutbox, name)
    seen: list[str] = []

    def first_only(self: FileOutbox, **kwargs: Any) -> Any:
        if seen:
            return real(self, **kwargs)
        seen.append(kwargs["idempotency_key"])
        return wrap(lambda: real(self, **kwargs))

    monkeypatch.setattr(FileOutbox, name, first_only)
    return seen


def test_a_retry_after_the_repeat_window_never_sends_a_second_email(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker dies just after ACS took the email; the queue retries ten minutes later, when
    ACS no longer knows the Operation-Id. Its delivery report is slow (half an hour)."""

    def accept_then_die(send: Callable[[], Any]) -> Any:
        send()
        raise RuntimeError("worker died after the provider accepted")

    crashed = _once(monkeypatch, "send_email", accept_then_die)
    monkeypatch.setattr(SqliteQueueBroker, "abandon", retry_after(timedelta(minutes=10)))
    slow = {"alex@example.org": {"status": "Delivered", "after_seconds": 1800}}
    result = _run(tmp_path, [occurrence("2026-11-20T10:02:00Z")], end="2026-11-21T00:00:00Z", reports=slow)

    emails = [m["message_id"] for m in result["outbox"]]
    assert emails == crashed, f"{len(emails)} emails for one message: {emails}"
    # Not sent again: the retry waited for the report, which shows it reached the victim.
    reasons = [(a["decision"], a["reason"]) for a in result["audit"]]
    assert ("sent", "email: its delivery report says Delivered") in reasons, reasons
    assert not any(reason.startswith("outcome_unknown") for _, reason in reasons)
    assert result["ledger"][crashed[0]]["status"] == "delivered"
    assert result["summary"]["duties"] == {"due": 1, "met": 1, "breached": 0}


def test_a_throttle_longer_than_the_repeat_window_delays_a_text_but_never_loses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt of a text is answered 429 with Retry-After 15 minutes: three times the
    window in which ACS accepts the attempt's Repeatability-First-Sent."""

    def throttle(send: Callable[[], Any]) -> Any:
        raise ProviderThrottled(900.0)

    throttled = _once(monkeypatch, "send_sms", throttle)
    texts = [victim(channel="sms")]
    result = _run(
        tmp_path, [occurrence("2026-11-20T10:02:00Z", victims=texts)], end="2026-11-21T00:00:00Z", reports={}
    )

    assert throttled, "the text was never throttled"
    [sms] = result["outbox"]  # sent, once
    assert sms["message_id"] == throttled[0] and sms["channel"] == "sms"
    assert datetime.fromisoformat(sms["sent_at"]) >= datetime(2026, 11, 20, 10, 20, tzinfo=UTC)
    assert not any(a["reason"].startswith("provider_rejected") for a in result["audit"])
    assert result["ledger"][sms["message_id"]]["status"] == "delivered"
    assert result["summary"]["duties"] == {"due": 1, "met": 1, "breached": 0}
