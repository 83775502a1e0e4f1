"""delivery_report: record what Communication Services says became of a message (journey-rules.md §9).

Event Grid delivers each report at least once and in no order. So each report is
kept once (a row per event id), and the Messages ledger only moves forward: sent
(or pending, or unknown) to delivered or undelivered, and never again, so a late
"delivered" after "failed", or a repeated report, changes nothing. The ledger
write is conditional on the ETag it was read at: two reports of one message
handled at once cannot both move it. A report whose id names no message we sent
is logged (ids only) and ignored. A permanent failure goes to evaluate_journey as
``message_undelivered``, in the crime's session, to reopen the duties.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from shared.contracts.delivery_reports import DeliveryReport, NotADeliveryReport, parse_report
from shared.contracts.messages import MessageUndelivered
from shared.domain.journey.duties import digest
from shared.domain.ledger import TRANSITIONS, DeliveryOutcome, LedgerStatus, delivery_outcome
from shared.ports import DeliveryLink, OutgoingMessage
from shared.steps.dependencies import DeliveryNeeds
from shared.steps.results import Emit, StepResult, apply, retry_on_conflict
from shared.tracing import annotate

log = logging.getLogger("victim_updates.delivery_report")

CONFLICT_ATTEMPTS = 3
_MOVES = {DeliveryOutcome.DELIVERED: LedgerStatus.DELIVERED, DeliveryOutcome.FAILED: LedgerStatus.UNDELIVERED}


def record_delivery(
    event_id: str, event_type: str, event_time: datetime | None, data: Any, services: DeliveryNeeds
) -> StepResult:
    """Handle one Event Grid event (its id, type, time and ``data``)."""
    try:
        report = parse_report(event_id, event_type, event_time or services.clock.now(), data)
    except NotADeliveryReport as exc:
        log.warning("event %s is not a delivery report we can use: %s", event_id, exc)
        result = StepResult()
        result.track("DeliveryReportIgnored", event_id=event_id, reason=str(exc)[:200])
        return apply(result, services)
    link = services.deliveries.find(report.report_key)
    if link is None:
        # Not a message of ours (another sender on the same resource), or one sent before links
        # were kept: nothing to move. Event Grid is told it arrived, so it does not retry.
        log.warning("delivery report %s names no message of ours: ignored", event_id)
        result = StepResult()
        result.track("DeliveryReportUnmatched", event_id=event_id, channel=report.channel)
        return apply(result, services)
    annotate(link.crime_reference, link.person_id)
    return retry_on_conflict(lambda _: _record(report, link, services), CONFLICT_ATTEMPTS)


def _record(report: DeliveryReport, link: DeliveryLink, services: DeliveryNeeds) -> StepResult:
    result = StepResult()
    outcome = delivery_outcome(report.status)
    kept = {"status": report.status, "outcome": outcome.value, "at": report.at, "channel": report.channel}
    result.writes.append(services.deliveries.store(report.report_key, report.event_id, kept))
    read = services.ledger.read(link.crime_reference, link.message_key)
    target = _MOVES.get(outcome)
    if read is None or target is None:
        return apply(result, services)  # not final yet (wait for the final report), or no ledger entry
    entry, etag = read
    if target not in TRANSITIONS[entry.status]:
        return apply(result, services)  # already delivered or undelivered: a late or repeated report
    moved = entry.moved_to(target, delivery_status=report.status, reported_at=report.at)
    result.writes.append(services.ledger.record(moved, etag))
    result.track(
        "DeliveryReported",
        crime_reference=link.crime_reference,
        person_id=link.person_id,
        message_id=link.message_key,
        channel=report.channel,
        outcome=outcome.value,
        status=report.status,
    )
    if target is LedgerStatus.UNDELIVERED:
        failed = MessageUndelivered(
            event_id=digest("undelivered", link.message_key),
            crime_reference=link.crime_reference,
            person_id=link.person_id,
            message_key=link.message_key,
            duties=list(entry.duties or link.duties),
            channel="email" if report.channel == "email" else "sms",
            status=report.status,
            at=report.at,
        )
        message = OutgoingMessage(failed.model_dump_json(), failed.event_id, session_id=link.crime_reference)
        result.emit.append(Emit("journey_events", message))
    return apply(result, services)
