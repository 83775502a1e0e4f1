"""delivery_report: record what Communication Services says became of a message (journey-rules.md §12).

Event Grid delivers each report at least once and in no order. So each report is
kept once (a row per event id), and the Messages ledger only moves forward: sent
(or pending, or unknown) to delivered or undelivered, and never again, so a late
"delivered" after "failed", or a repeated report, changes nothing. The ledger
write is conditional on the ETag it was read at: two reports of one message
handled at once cannot both move it, and only the one that does may reopen the
duties. A report whose id names no message we sent is logged (ids only) and
ignored. A permanent failure goes to evaluate_journey as ``message_undelivered``,
in the crime's session, to reopen the duties; a message whose outcome send_message
could not establish (ledger ``unknown``) that is reported delivered goes to it as
sent, since it did reach the person.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from shared.contracts.delivery_reports import DeliveryReport, NotADeliveryReport, parse_report
from shared.contracts.messages import MessageOutcome, MessageUndelivered
from shared.domain.journey.duties import digest
from shared.domain.journey.telling import DELIVERY_REPORT
from shared.domain.ledger import TRANSITIONS, DeliveryOutcome, LedgerEntry, LedgerStatus, delivery_outcome
from shared.domain.sending import outcome_id
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
    """Keep the report, move the ledger on if it may, then tell evaluate_journey of a failure.

    Unlike the other steps this one writes before it emits: the ledger write is
    conditional, and only the report that wins it may reopen the duties. Whenever
    the ledger says undelivered the failure is told again (its id is the message's,
    so a repeat is dropped), so a crash between the write and the telling loses nothing.
    """
    result = StepResult()
    outcome = delivery_outcome(report.status)
    kept = {"status": report.status, "outcome": outcome.value, "at": report.at, "channel": report.channel}
    result.writes.append(services.deliveries.store(report.report_key, report.event_id, kept))
    read = services.ledger.read(link.crime_reference, link.message_key)
    target = _MOVES.get(outcome)
    entry = read[0] if read is not None else None
    if read is not None and target is not None and target in TRANSITIONS[read[0].status]:
        entry = read[0].moved_to(target, delivery_status=report.status, reported_at=report.at)
        result.writes.append(services.ledger.record(entry, read[1]))
        if read[0].status is LedgerStatus.UNKNOWN and target is LedgerStatus.DELIVERED:
            # send_message could not tell whether the provider had it and told the journey so;
            # the provider now says it reached the person, so the journey records it as sent.
            result.emit.append(Emit("journey_events", _told(link, entry, report)))
        result.track(
            "DeliveryReported",
            crime_reference=link.crime_reference,
            person_id=link.person_id,
            message_id=link.message_key,
            channel=report.channel,
            outcome=outcome.value,
            status=report.status,
        )
    apply(result, services)  # a conflict here raises: read again, decide again
    if entry is None or entry.status is not LedgerStatus.UNDELIVERED:
        return result
    failed = MessageUndelivered(
        event_id=digest("undelivered", link.message_key),
        crime_reference=link.crime_reference,
        person_id=link.person_id,
        message_key=link.message_key,
        duties=list(entry.duties or link.duties),
        channel="email" if entry.channel == "email" else "sms",
        status=entry.delivery_status or report.status,
        at=entry.reported_at or report.at,
    )
    message = OutgoingMessage(failed.model_dump_json(), failed.event_id, session_id=link.crime_reference)
    told = StepResult(emit=[Emit("journey_events", message)])
    apply(told, services)
    result.emit.extend(told.emit)
    return result


def _told(link: DeliveryLink, entry: LedgerEntry, report: DeliveryReport) -> OutgoingMessage:
    """The MessageOutcome of a message whose outcome was unknown until it was reported delivered."""
    told = MessageOutcome(
        event_id=outcome_id(link.message_key, "sent"),
        crime_reference=link.crime_reference,
        person_id=link.person_id,
        message_key=link.message_key,
        duties=list(entry.duties or link.duties),
        status="sent",
        channel=entry.channel,
        reason=f"{DELIVERY_REPORT} {report.status}",
        at=report.at,
    )
    return OutgoingMessage(told.model_dump_json(), told.event_id, session_id=link.crime_reference)
