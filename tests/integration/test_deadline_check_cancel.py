"""A duty's deadline check is cancelled once the duty is decided (issue 16), through the steps.

The embedded broker and the steps, driven as the local host drives them (journey events and
outbound messages; officer notices are left on their queue). The rules: a check still to come
is kept in its duty (its sequence number) and cancelled after the write that decides the duty,
so evaluate_journey never wakes for it; a duty an undelivered report reopens before its
deadline is checked again at the deadline; and a cancellation that fails changes nothing but
letting the check come and find the duty decided.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.sqlite_queue import SqliteQueueBroker
from shared.adapters.table_layout import JOURNEYS, TASKS, journey_from
from shared.bootstrap import Services
from shared.contracts.feeds import NicheOccurrence
from shared.contracts.messages import (
    CaseChange,
    Change,
    ChangeKind,
    DeadlineCheck,
    MessageUndelivered,
    ResolvedCaseChange,
)
from shared.domain.journey import Compliance, Decision, Duty, Journey, KeptCheck, evaluate_deadline
from shared.domain.ledger import LedgerStatus
from shared.local.host import SimulatedClock
from shared.ports import OutgoingMessage, ScheduledMessageGone
from shared.settings import load_settings
from shared.steps.decisions import record_decision
from shared.steps.evaluate_journey import evaluate_journey
from shared.steps.results import StepResult, apply
from shared.steps.send_message import send_message
from tests.builders import embedded, occurrence, victim

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)  # a Friday
CRIME, PERSON = "HU/000001/26", "P-1"
END = NOW + timedelta(days=14)  # well past the acknowledgement's deadline


class _Run:
    """The services on the embedded broker, and the journey events evaluate_journey was given."""

    def __init__(self, tmp_path: Path) -> None:
        clock = SimulatedClock(NOW)
        self.services: Services
        self.services, self.broker = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), clock)
        self.clock = clock
        self.evaluated: list[dict[str, Any]] = []
        self.cancelled: list[int] = []
        self.services.publisher = _Watching(self.broker, self.cancelled)

    def publish(self, queue: str, body: str, message_id: str) -> None:
        self.broker.send(queue, [OutgoingMessage(body, message_id, session_id=CRIME)])

    def case_change(self, record: dict[str, Any], change: Change, n: int) -> None:
        niche = NicheOccurrence.model_validate(record)
        case = CaseChange(
            change_id=f"c{n}",
            feed="niche",
            crime_reference=niche.crime_reference,
            detected_at=self.clock.now(),
            changes=[change],
            niche=niche,
        )
        event = ResolvedCaseChange(event_id=f"c{n}", case=case)
        self.publish(
            self.services.settings.JOURNEY_EVENTS_QUEUE, event.model_dump_json(by_alias=True), f"c{n}"
        )

    def run_until(self, end: datetime) -> None:
        """Take each message as it falls due, in time order, until ``end``."""
        settings = self.services.settings
        steps = (
            (settings.JOURNEY_EVENTS_QUEUE, evaluate_journey),
            (settings.OUTBOUND_MESSAGES_QUEUE, send_message),
        )
        while True:
            progressed = False
            for queue, step in steps:
                message = self.broker.receive(queue, receiver="test", now=self.clock.now())
                if message is None:
                    continue
                if queue == settings.JOURNEY_EVENTS_QUEUE:
                    self.evaluated.append(json.loads(message.body))
                step(message.body, self.services)
                self.broker.complete(message, now=self.clock.now())
                progressed = True
            if progressed:
                continue
            at = self.broker.next_visible_at(self.clock.now())
            if at is None or at > end:
                break
            self.clock.advance_to(at)
        self.clock.advance_to(max(end, self.clock.now()))

    def duty(self, key: str = "ack") -> Duty:
        stored = self.services.tables.get(JOURNEYS, CRIME, PERSON)
        assert stored is not None
        return journey_from(stored).duties[key]

    def checks_evaluated(self) -> list[dict[str, Any]]:
        return [event for event in self.evaluated if event["type"] == "deadline_check"]

    def scheduled_checks(self) -> int:
        """Deadline checks left on the broker (read through ``rewrite``, changing nothing)."""
        bodies: list[str] = []

        def look(body: str) -> str:
            bodies.append(body)
            return body

        self.broker.rewrite(look)
        return sum(json.loads(body).get("type") == "deadline_check" for body in bodies)


class _Watching:
    """The broker as publisher, noting what was cancelled (``fail``: every cancel raises it instead)."""

    def __init__(self, inner: SqliteQueueBroker, cancelled: list[int], fail: Exception | None = None) -> None:
        self.inner, self.cancelled, self.fail = inner, cancelled, fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def cancel_scheduled(self, queue: str, sequence_number: int) -> None:
        if self.fail is not None:
            raise self.fail
        self.inner.cancel_scheduled(queue, sequence_number)
        self.cancelled.append(sequence_number)


def _victim_added(run: _Run, **contact: Any) -> None:
    record = occurrence("2026-11-20T10:00:00Z", victims=[victim(**contact)])
    run.case_change(record, Change(kind=ChangeKind.VICTIM_ADDED, key=PERSON, at=NOW), 1)


def _first_evaluation(run: _Run) -> None:
    """Only the case change: the acknowledgement's duty, with its check kept."""
    settings = run.services.settings
    message = run.broker.receive(settings.JOURNEY_EVENTS_QUEUE, receiver="test", now=run.clock.now())
    assert message is not None
    evaluate_journey(message.body, run.services)
    run.broker.complete(message, now=run.clock.now())


def test_a_check_still_to_come_is_kept_in_its_pending_duty(tmp_path: Path) -> None:
    run = _Run(tmp_path)
    _victim_added(run)
    _first_evaluation(run)
    ack = run.duty()
    assert ack.compliance == Compliance.PENDING and ack.due_by is not None
    [kept] = ack.checks
    assert kept.at == ack.due_by
    assert run.scheduled_checks() == 1


def test_a_met_duty_has_its_check_cancelled_and_never_evaluated(tmp_path: Path) -> None:
    run = _Run(tmp_path)
    _victim_added(run)
    _first_evaluation(run)
    [kept] = run.duty().checks
    run.run_until(END)
    ack = run.duty()
    assert ack.compliance == Compliance.MET and ack.checks == []
    assert run.cancelled == [kept.sequence_number]
    assert run.checks_evaluated() == []  # evaluate_journey never woke for it
    assert run.scheduled_checks() == 0


def test_a_failed_cancel_changes_nothing_but_the_check_coming(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cancelling, failing = _Run(tmp_path / "cancelling"), _Run(tmp_path / "failing")
    # What an error says is never logged: it could hold anything.
    failing.services.publisher = _Watching(failing.broker, [], RuntimeError("alex@example.org"))
    for run in (cancelling, failing):
        _victim_added(run)
        with caplog.at_level(logging.INFO, logger="victim_updates.results"):
            run.run_until(END)
    assert failing.duty() == cancelling.duty()  # met, nothing kept
    assert failing.duty().compliance == Compliance.MET
    [check] = failing.checks_evaluated()  # it came, and found the duty met
    assert check["duty"] == "ack" and cancelling.checks_evaluated() == []
    assert _state(failing) == _state(cancelling)
    assert _outputs(failing) == _outputs(cancelling)
    assert "could not cancel scheduled message" in caplog.text and "RuntimeError" in caplog.text
    assert "alex@example.org" not in caplog.text


def test_a_check_gone_already_is_tolerated(tmp_path: Path) -> None:
    run = _Run(tmp_path)
    run.services.publisher = _Watching(run.broker, [], ScheduledMessageGone("gone"))
    _victim_added(run)
    run.run_until(END)
    assert run.duty().compliance == Compliance.MET
    assert len(run.checks_evaluated()) == 1


def _undelivered(run: _Run, at: datetime) -> None:
    """The provider reports the acknowledgement bounced: the ledger moves, and the journey is told
    (as record_delivery does)."""
    ack = run.duty()
    [key] = ack.message_keys
    read = run.services.ledger.read(CRIME, key)
    assert read is not None
    moved = read[0].moved_to(LedgerStatus.UNDELIVERED, delivery_status="Bounced", reported_at=at)
    apply(StepResult(writes=[run.services.ledger.record(moved, read[1])]), run.services)
    event = MessageUndelivered(
        event_id="report-1",
        crime_reference=CRIME,
        person_id=PERSON,
        message_key=key,
        duties=["ack"],
        channel="email",
        status="Bounced",
        at=at,
    )
    run.publish(run.services.settings.JOURNEY_EVENTS_QUEUE, event.model_dump_json(), "report-1")


def test_a_duty_reopened_before_its_deadline_is_checked_again_and_breached(tmp_path: Path) -> None:
    run = _Run(tmp_path)
    _victim_added(run, channel="email", mobile=None)  # no other channel: an officer task, then the deadline
    _first_evaluation(run)
    run.run_until(NOW + timedelta(hours=2))
    ack = run.duty()
    assert ack.compliance == Compliance.MET and ack.due_by is not None
    assert len(run.cancelled) == 1 and run.checks_evaluated() == []
    _undelivered(run, run.clock.now())
    run.run_until(ack.due_by - timedelta(minutes=1))
    reopened = run.duty()
    assert reopened.compliance == Compliance.PENDING and reopened.reason == "delivery_failed"
    [kept] = reopened.checks
    assert kept.at == ack.due_by
    run.run_until(END)
    breached = run.duty()
    assert breached.compliance == Compliance.BREACHED and breached.escalation_task_id is not None
    [check] = run.checks_evaluated()
    assert check["event_id"] != _first_check_id(run)  # a new check, not the cancelled one again
    assert run.services.tables.get(TASKS, CRIME, breached.escalation_task_id) is not None


def test_a_duty_reopened_before_its_deadline_and_then_met_has_that_check_cancelled_too(
    tmp_path: Path,
) -> None:
    run = _Run(tmp_path)
    _victim_added(run, channel="email")  # an SMS is the other channel, tried once
    run.run_until(NOW + timedelta(hours=2))
    assert run.duty().compliance == Compliance.MET and len(run.cancelled) == 1
    _undelivered(run, run.clock.now())
    run.run_until(END)
    ack = run.duty()
    assert ack.compliance == Compliance.MET and ack.redirected and ack.checks == []
    assert len(run.cancelled) == 2  # the first check, and the one the reopening scheduled
    assert run.checks_evaluated() == []
    assert run.scheduled_checks() == 0


def _first_check_id(run: _Run) -> str:
    from shared.domain.journey.duties import digest

    ack = run.duty()
    assert ack.due_by is not None
    return digest("deadline", CRIME, PERSON, "ack", ack.due_by.isoformat())


def _state(run: _Run) -> dict[str, Any]:
    stored = run.services.tables.get(JOURNEYS, CRIME, PERSON)
    assert stored is not None
    return json.loads(str(stored.properties["state"]))


# What differs between two runs by chance: each person's link is random (and so the body
# that carries it).
_RANDOM = {"body", "headers"}


def _outputs(run: _Run) -> dict[str, list[dict[str, Any]]]:
    out = Path(run.services.settings.LOCAL_DATA_DIR)
    found: dict[str, list[dict[str, Any]]] = {}
    for name in ("outbox.jsonl", "tasks.jsonl"):
        path = out / name
        lines = path.read_text().splitlines() if path.exists() else []
        records = [json.loads(line) for line in lines if line]
        found[name] = [{k: v for k, v in record.items() if k not in _RANDOM} for record in records]
    return found


def _pending_acknowledgement(due_by: datetime, checks: list[tuple[int, datetime]]) -> Journey:
    """A victim's journey with a pending acknowledgement and these kept checks (number, time)."""
    duty = Duty(
        key="ack",
        template="acknowledgement",
        event_at=NOW,
        change_id="c1",
        due_by=due_by,
        compliance=Compliance.PENDING,
        checks=[KeptCheck(sequence_number=number, at=at) for number, at in checks],
    )
    return Journey(crime_reference=CRIME, person_id=PERSON, role="victim", duties={"ack": duty})


def test_a_decided_duty_cancels_only_its_checks_still_to_come(tmp_path: Path) -> None:
    # A deadline brought forward leaves two checks; the earlier one, arriving, decides the duty.
    run = _Run(tmp_path)
    earlier, later = NOW + timedelta(days=1), NOW + timedelta(days=3)
    journey = _pending_acknowledgement(earlier, [(7, later), (9, earlier)])
    check = DeadlineCheck(event_id="d1", crime_reference=CRIME, person_id=PERSON, duty="ack")
    decision = evaluate_deadline(journey, check, None, run.services.policy, earlier)
    result = StepResult()
    services = run.services
    record_decision(
        result, decision, None, "d1", now=earlier, journeys=services.journeys, tables=services.tables
    )
    assert [(c.queue, c.sequence_number) for c in result.cancel] == [("journey_events", 7)]
    assert decision.journey.duties["ack"].compliance == Compliance.BREACHED
    assert decision.journey.duties["ack"].checks == []  # written without them
    # A pending duty keeps its checks, and nothing is cancelled.
    pending = journey.model_copy(deep=True)
    quiet = StepResult()
    record_decision(
        quiet, Decision(pending), None, "x", now=NOW, journeys=services.journeys, tables=services.tables
    )
    assert quiet.cancel == [] and len(pending.duties["ack"].checks) == 2


def test_a_pending_duty_keeps_only_the_numbers_of_checks_still_to_come(tmp_path: Path) -> None:
    """A check that has come cannot be cancelled: a new check's number replaces it in the duty."""
    from shared.steps.decisions import _numbered

    come, next_one = NOW - timedelta(hours=1), NOW + timedelta(days=2)
    journey = _pending_acknowledgement(next_one, [(7, come)])
    check = DeadlineCheck(event_id="d2", crime_reference=CRIME, person_id=PERSON, duty="ack")
    keep = _numbered(journey, check, next_one, NOW)
    assert keep is not None
    keep(11)
    assert journey.duties["ack"].checks == [KeptCheck(sequence_number=11, at=next_one)]
