"""The delivery_report function, as Event Grid calls it: at least once, in no order (journey-rules.md §12).

Real ``azure.functions.EventGridEvent`` objects with the published ``data`` of
Communication Services' two delivery-report events go to the function object of
``function_app.py``, with the state on the embedded table store and on Table Storage
(Azurite), so the conditional writes are the real service's. Reports come duplicated, in
both orders, not-final before and after final, for ids that are not ours, and
concurrently; the ledger only ever moves forward, and one permanent failure
reopens the duties once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

import function_app
from shared import bootstrap
from shared.adapters.azure_tables import AzureTableStore
from shared.adapters.table_layout import DELIVERIES, MESSAGES
from shared.bootstrap import Services
from shared.contracts.delivery_reports import EMAIL_REPORT, SMS_REPORT
from shared.domain.ledger import LedgerEntry, LedgerStatus
from shared.local.host import SimulatedClock
from shared.ports import DeliveryLink, Entity
from shared.settings import load_settings
from shared.steps.record_delivery import record_delivery
from tests.azurite import azurite_tables  # noqa: F401  (fixture)
from tests.builders import embedded

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
CRIME, KEY, OPERATION = "HU/000001/26", "a1b2c3d4e5f6a1b2c3d4e5f6", str(uuid.uuid4())


class _Recording:
    """The publisher, keeping the ids of what each queue was sent (the broker drops a repeated id)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.sent = inner, []

    def send(self, queue: str, messages: Any) -> None:
        self.sent.extend((queue, m) for m in messages)
        self.inner.send(queue, messages)

    def schedule(self, queue: str, messages: Any) -> list[int]:
        self.sent.extend((queue, m) for m in messages)
        return list(self.inner.schedule(queue, messages))

    def cancel_scheduled(self, queue: str, sequence_number: int) -> None:
        self.inner.cancel_scheduled(queue, sequence_number)


@pytest.fixture(params=["sqlite", "table_storage"])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """The embedded services, with the state on SQLite or on Table Storage (Azurite)."""
    settings, clock = load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(NOW)
    if request.param == "sqlite":
        built, broker = embedded(settings, clock)
    else:
        connection = request.getfixturevalue("azurite_tables")
        tables = AzureTableStore.from_connection_string(connection, prefix="d" + uuid.uuid4().hex[:10])
        broker = bootstrap.embedded_queues(settings, clock)
        built = bootstrap.bootstrap(settings, clock=clock, publisher=broker, files_only=True, tables=tables)
    built.publisher = _Recording(broker)
    bootstrap.install(built)
    try:
        yield built
    finally:
        bootstrap.install(None)
        broker.close()


def _sent(
    services: Services,
    channel: str = "email",
    report_key: str = OPERATION,
    status: LedgerStatus = LedgerStatus.SENT,
) -> None:
    entry = LedgerEntry.begin(
        CRIME,
        KEY,
        LedgerStatus.PENDING,
        channel=channel,
        template="suspect_arrested",
        duties=("m:M-1",),
        first_attempt_at=NOW,
    )
    if status is LedgerStatus.SENT:
        entry = entry.moved_to(LedgerStatus.SENT, provider_id="p", sent_at=NOW)
    elif status is not LedgerStatus.PENDING:
        entry = entry.moved_to(status, reason="outcome_unknown:excluded_crime:domestic_abuse")
    services.tables.upsert(MESSAGES, services.ledger.record(entry).entity)
    services.deliveries.remember(DeliveryLink(report_key, CRIME, KEY, "P-1", channel, ("m:M-1",)))


def _email(
    status: str, event_id: str | None = None, message_id: str = OPERATION, at: datetime = NOW
) -> func.EventGridEvent:
    data = {
        "sender": "DoNotReply@victims.example.police.uk",
        "recipient": "alex@example.org",
        "messageId": message_id,
        "status": status,
        "deliveryStatusDetails": {"statusMessage": "No such user"},
        "deliveryAttemptTimestamp": at.isoformat(),
    }
    return func.EventGridEvent(
        id=event_id or str(uuid.uuid4()),
        data=data,
        topic="/subscriptions/x/resourceGroups/y/providers/Microsoft.Communication/communicationServices/z",
        subject=f"sender/DoNotReply@victims.example.police.uk/message/{message_id}",
        event_type=EMAIL_REPORT,
        event_time=at,
        data_version="1.0",
    )


def _sms(status: str, tag: str | None = KEY, event_id: str | None = None) -> func.EventGridEvent:
    data: dict[str, Any] = {
        "messageId": "Outgoing_20261120103000_abc",
        "from": "VictimUpd",
        "to": "+447700900123",
        "deliveryStatus": status,
        "deliveryStatusDetails": "No route",
        "receivedTimestamp": NOW.isoformat(),
        "deliveryAttempts": [{"timestamp": NOW.isoformat(), "segmentsSucceeded": 0, "segmentsFailed": 1}],
    }
    if tag is not None:
        data["tag"] = tag
    return func.EventGridEvent(
        id=event_id or str(uuid.uuid4()),
        data=data,
        topic="/subscriptions/x/resourceGroups/y/providers/Microsoft.Communication/communicationServices/z",
        subject="phonenumber/+447700900123",
        event_type=SMS_REPORT,
        event_time=NOW,
        data_version="1.0",
    )


def _status(services: Services) -> LedgerStatus:
    entry = services.ledger.get(CRIME, KEY)
    assert entry is not None
    return entry.status


def _undelivered_events(services: Services) -> int:
    """How many distinct message_undelivered events went to evaluate_journey."""
    recording: Any = services.publisher
    return len(
        {
            m.message_id
            for queue, m in recording.sent
            if queue == services.settings.JOURNEY_EVENTS_QUEUE
            and json.loads(m.body)["type"] == "message_undelivered"
        }
    )


def test_a_delivered_report_moves_the_ledger_on_and_a_repeat_of_it_changes_nothing(
    services: Services,
) -> None:
    _sent(services)
    report = _email("Delivered", event_id="e-1")
    function_app.delivery_report(report)
    function_app.delivery_report(report)  # Event Grid: at least once
    assert _status(services) == LedgerStatus.DELIVERED
    reports = list(services.tables.query_partition(DELIVERIES, OPERATION))
    assert sorted(r.row_key for r in reports) == ["message", "report:e-1"]


@pytest.mark.parametrize("order", [("Bounced", "Delivered"), ("Delivered", "Bounced")])
def test_the_first_final_report_stands_whatever_order_they_come_in(
    services: Services, order: tuple[str, str]
) -> None:
    _sent(services)
    for status in order:
        function_app.delivery_report(_email(status))
    assert _status(services) == (
        LedgerStatus.UNDELIVERED if order[0] == "Bounced" else LedgerStatus.DELIVERED
    )
    assert _undelivered_events(services) == (1 if order[0] == "Bounced" else 0)


def test_a_permanent_failure_reported_twice_reopens_the_duties_once(services: Services) -> None:
    _sent(services)
    function_app.delivery_report(_email("Bounced", event_id="e-2"))
    function_app.delivery_report(_email("Bounced", event_id="e-2"))
    function_app.delivery_report(_email("Failed"))  # another report of the same failure
    entry = services.ledger.get(CRIME, KEY)
    assert entry is not None and (entry.status, entry.delivery_status) == (
        LedgerStatus.UNDELIVERED,
        "Bounced",
    )
    assert _undelivered_events(services) == 1


@pytest.mark.parametrize("interim", ["Expanded", "Retrying", "SomethingNewTheServiceSaysOneDay"])
def test_a_status_that_is_not_final_is_kept_and_waits_for_the_final_one(
    services: Services, interim: str
) -> None:
    _sent(services, "sms", KEY)
    function_app.delivery_report(_sms(interim))
    assert _status(services) == LedgerStatus.SENT
    function_app.delivery_report(_sms("Failed"))
    function_app.delivery_report(_sms(interim))  # a not-final report arriving after the final one
    assert _status(services) == LedgerStatus.UNDELIVERED
    assert (
        len([r for r in services.tables.query_partition(DELIVERIES, KEY) if r.row_key.startswith("report:")])
        == 3
    )


def test_a_report_for_a_message_that_is_not_ours_is_ignored_without_failing(services: Services) -> None:
    _sent(services)
    function_app.delivery_report(_email("Bounced", message_id=str(uuid.uuid4())))
    function_app.delivery_report(_sms("Failed", tag="someone-elses-tag"))
    assert _status(services) == LedgerStatus.SENT and _undelivered_events(services) == 0


def test_an_event_that_is_no_delivery_report_is_ignored(services: Services) -> None:
    _sent(services, "sms", KEY)
    function_app.delivery_report(_sms("Failed", tag=None))  # an SMS report without our tag
    other = func.EventGridEvent(
        id="x",
        data={},
        topic="t",
        subject="s",
        event_type="Microsoft.Communication.SMSReceived",
        event_time=NOW,
        data_version="1.0",
    )
    function_app.delivery_report(other)
    assert _status(services) == LedgerStatus.SENT


class _Interleaving:
    """Runs ``meanwhile`` once, just before the first conditional write of a Messages row."""

    def __init__(self, inner: Any, meanwhile: Any) -> None:
        self.inner, self.meanwhile, self.done = inner, meanwhile, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
        if table == MESSAGES and not self.done:
            self.done = True
            self.meanwhile()
        result: Entity = self.inner.update(table, entity, etag=etag)
        return result


def test_two_reports_handled_at_once_cannot_both_move_the_ledger(services: Services) -> None:
    _sent(services)
    inner = services.tables

    def delivered_meanwhile() -> None:
        services.tables = inner
        record_delivery("e-d", EMAIL_REPORT, NOW, _email("Delivered").get_json(), services)
        services.tables = racing

    racing = _Interleaving(inner, delivered_meanwhile)
    services.tables = racing
    record_delivery("e-b", EMAIL_REPORT, NOW + timedelta(seconds=1), _email("Bounced").get_json(), services)
    services.tables = inner
    assert _status(services) == LedgerStatus.DELIVERED  # the other won; ours re-read and stood down
    assert _undelivered_events(services) == 0


def _journey_events(services: Services, kind: str) -> list[dict[str, Any]]:
    recording: Any = services.publisher
    return [
        json.loads(m.body)
        for queue, m in recording.sent
        if queue == services.settings.JOURNEY_EVENTS_QUEUE and json.loads(m.body)["type"] == kind
    ]


def test_a_message_whose_outcome_was_unknown_and_is_reported_delivered_is_told_to_the_journey_as_sent(
    services: Services,
) -> None:
    _sent(services, status=LedgerStatus.UNKNOWN)
    for _ in range(2):  # at least once: the second changes nothing
        function_app.delivery_report(_email("Delivered"))
    assert _status(services) is LedgerStatus.DELIVERED
    told = _journey_events(services, "message_outcome")
    assert len({e["event_id"] for e in told}) == 1
    [event] = told[:1]
    assert (event["status"], event["duties"], event["reason"]) == (
        "sent",
        ["m:M-1"],
        "delivery report says Delivered",
    )


def test_a_report_for_a_message_still_pending_moves_it_and_leaves_the_journey_to_the_retry(
    services: Services,
) -> None:
    # A worker died after the hand-over: the ledger says pending until send_message is retried,
    # which finds it finished and tells the journey itself; a failure reopens the duties now.
    _sent(services, status=LedgerStatus.PENDING)
    function_app.delivery_report(_email("Bounced"))
    assert _status(services) is LedgerStatus.UNDELIVERED
    assert _undelivered_events(services) == 1 and not _journey_events(services, "message_outcome")
