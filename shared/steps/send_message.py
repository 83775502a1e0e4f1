"""send_message: re-check, record in the ledger, hand to the provider, mark sent.

The ledger entry is written *before* the provider is called and the provider
gets an idempotency key derived from the ledger key, so a retry after a crash at
any point never reaches the victim twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.bootstrap import Services
from shared.contracts.messages import MessageOutcome, OutboundMessage
from shared.domain.journey import AuditEntry, Journey, address_for, send_time_check, template_for
from shared.domain.render import choose_language, render_email, render_sms
from shared.domain.timing import in_quiet_hours, quiet_hours_end
from shared.ports import (
    EmailContent,
    Entity,
    EntityExists,
    OutgoingMessage,
    ProviderReceipt,
    ProviderRejected,
    ProviderStatusUnknown,
    ProviderThrottled,
)
from shared.steps.records import AUDIT, JOURNEYS, MESSAGES, audit_entity, digest, journey_from
from shared.steps.results import Emit, StepResult, Write, apply
from shared.steps.trace import annotate, incoming


class NotYetCommitted(Exception):
    """The journey does not yet record this message; evaluate_journey has not finished. Retry."""


def _outcome(
    message: OutboundMessage, status: str, now: datetime, reason: str | None, channel: str, duties: list[str]
) -> Emit:
    """Tell evaluate_journey what became of the message, for exactly the duties it carried."""
    event = MessageOutcome(
        event_id=digest("outcome", message.message_key, status),
        crime_reference=message.crime_reference,
        person_id=message.person_id,
        message_key=message.message_key,
        duties=duties,
        status=status,
        channel=channel,
        reason=reason,
        at=now,
    )
    return Emit(
        "journey_events",
        OutgoingMessage(event.model_dump_json(), event.event_id, session_id=message.crime_reference),
    )


def _audit(
    result: StepResult,
    message: OutboundMessage,
    now: datetime,
    decision: str,
    reason: str,
    duties: list[str] | None = None,
) -> None:
    for duty in message.duties if duties is None else duties:
        entry = AuditEntry(now, message.crime_reference, message.person_id, duty, decision, reason)
        result.writes.append(Write(AUDIT, audit_entity(entry, message.message_key)))
    if decision == "suppressed":
        result.track(
            "MessageSuppressed",
            crime_reference=message.crime_reference,
            person_id=message.person_id,
            duties=",".join(message.duties if duties is None else duties),
            channel=message.channel,
            reason=reason,
        )


def _journey(services: Services, message: OutboundMessage) -> Journey:
    entity = services.tables.get(JOURNEYS, message.crime_reference, message.person_id)
    if entity is None:
        raise NotYetCommitted(f"no journey yet for {message.crime_reference}/{message.person_id}")
    journey = journey_from(entity)
    for key in message.duties:
        duty = journey.duties.get(key)
        if duty is None or message.message_key not in duty.message_keys:
            raise NotYetCommitted(
                f"journey {message.crime_reference} does not yet record message {message.message_key}"
            )
    return journey


# How long a message waits for evaluate_journey to record it before it is taken as orphaned
# (its decision was never committed: the journey moved on after a conflicting write).
RECORD_WAIT = timedelta(minutes=10)
RECORD_POLL = timedelta(seconds=30)


def _wait_for_journey(
    message: OutboundMessage, services: Services, now: datetime, result: StepResult
) -> StepResult:
    if now - message.decided_at < RECORD_WAIT:
        again = now + RECORD_POLL
        result.emit.append(
            Emit(
                "outbound_messages",
                OutgoingMessage(
                    message.model_dump_json(),
                    f"{message.message_key}@wait:{again.isoformat()}",
                    scheduled_at=again,
                ),
            )
        )
        return apply(result, services)
    why = "not_recorded_by_journey"
    entity = Entity(
        message.crime_reference,
        message.message_key,
        {"status": "suppressed", "reason": why, "decided_at": now, "channel": message.channel},
    )
    result.writes.append(Write(MESSAGES, entity))
    _audit(result, message, now, "suppressed", why)
    return apply(result, services)


def send_message(
    body: bytes | str, services: Services, properties: Mapping[str, Any] | None = None
) -> StepResult:
    """Handle one outbound-messages message (``properties``: its application properties)."""
    message = OutboundMessage.model_validate_json(body)
    annotate(message.crime_reference, message.person_id)
    now = services.clock.now()
    tables = services.tables
    result = StepResult(trace=incoming(properties))
    ledger = tables.get(MESSAGES, message.crime_reference, message.message_key)
    if ledger is not None and ledger.properties["status"] in ("sent", "suppressed", "failed", "unknown"):
        # Finished by an earlier delivery; repeat its report in case that delivery died before it.
        status = "sent" if ledger.properties["status"] == "sent" else "suppressed"
        at = ledger.properties.get("sent_at") or ledger.properties.get("decided_at") or now
        reason = ledger.properties.get("reason")
        carried = str(ledger.properties.get("duties") or ",".join(message.duties)).split(",")
        result.emit.append(_outcome(message, status, at, reason, message.channel, carried))
        return apply(result, services)

    if ledger is not None and ledger.properties["status"] == "pending":
        # An earlier delivery got as far as the provider. If the provider has the message, it was
        # handed over then, whatever has changed since: record it as sent, never suppress it.
        try:
            receipt = services.provider.accepted(message.message_key)
        except ProviderStatusUnknown:
            receipt = None
            unknown = True
        else:
            unknown = False
        if receipt is not None:
            return _record_sent(message, dict(ledger.properties), receipt, 0, services, result)
    else:
        unknown = False

    try:
        journey = _journey(services, message)
    except NotYetCommitted:
        return _wait_for_journey(message, services, now, result)
    live, reason = send_time_check(journey, message, services.policy, now)
    address = address_for(journey, message.channel, services.policy) if reason is None else None
    if reason is None and address is None:
        reason = f"{message.channel}_address_unusable"
    if reason is not None or address is None:
        why = reason or "no_address"
        if unknown:
            # The provider may already have it; we cannot tell, so say so in the ledger and audit.
            why = f"outcome_unknown:{why}"
        _audit(result, message, now, "suppressed", why)
        entity = Entity(
            message.crime_reference,
            message.message_key,
            {
                "status": "unknown" if unknown else "suppressed",
                "reason": why,
                "decided_at": now,
                "channel": message.channel,
                "duties": ",".join(message.duties),
            },
        )
        result.writes.append(Write(MESSAGES, entity))
        result.emit.append(_outcome(message, "suppressed", now, why, message.channel, message.duties))
        return apply(result, services)

    if message.channel == "sms" and in_quiet_hours(now, services.policy):
        # Late (a retry, a slow queue) into quiet hours: hold it until they end.
        until = quiet_hours_end(now, services.policy)
        held = message.model_copy(update={"not_before": until})
        result.emit.append(
            Emit(
                "outbound_messages",
                OutgoingMessage(
                    held.model_dump_json(), f"{message.message_key}@{until.isoformat()}", scheduled_at=until
                ),
            )
        )
        _audit(result, message, now, "deferred", f"quiet_hours until {until.isoformat()}")
        return apply(result, services)

    language, fell_back = choose_language(journey, services.policy)
    if fell_back:
        _audit(result, message, now, "language_fallback", f"unsupported language; sent in {language}")
    template = template_for(live)
    metadata = {
        "message_id": message.message_key,
        "crime_reference": message.crime_reference,
        "person_id": message.person_id,
        "template": template,
        "duties": [duty.key for duty in live],
    }
    pending: dict[str, Any] = {
        "status": "pending",
        "channel": message.channel,
        "template": template,
        "duties": ",".join(duty.key for duty in live),
        "first_attempt_at": now,
    }
    # The ledger entry exists before the provider is called; a retry finds it and reuses its
    # first-attempt time, which the SMS provider needs to recognise the retry.
    if ledger is None:
        try:
            tables.create(MESSAGES, Entity(message.crime_reference, message.message_key, pending))
        except EntityExists:
            ledger = tables.get(MESSAGES, message.crime_reference, message.message_key)
    if ledger is not None:
        pending = dict(ledger.properties)

    segments = 0
    try:
        if message.channel == "sms":
            sms = render_sms(journey, live, services.policy, language)
            segments = sms.segments
            receipt = services.provider.send_sms(
                idempotency_key=message.message_key,
                to=address,
                text=sms.text,
                metadata=metadata | {"segments": segments},
                first_sent_at=pending.get("first_attempt_at"),
            )
        else:
            email = render_email(journey, live, services.policy, language)
            receipt = services.provider.send_email(
                idempotency_key=message.message_key,
                to=address,
                content=EmailContent(email.subject, email.text, email.html),
                metadata=metadata,
            )
    except ProviderRejected as rejected:
        # Permanent: the duty stays unmet (its deadline check escalates it); the reason is kept.
        why = f"provider_rejected:{type(rejected).__name__}"
        failed = pending | {"status": "failed", "reason": why, "decided_at": now}
        result.writes.append(Write(MESSAGES, Entity(message.crime_reference, message.message_key, failed)))
        _audit(result, message, now, "suppressed", why)
        result.emit.append(_outcome(message, "suppressed", now, why, message.channel, message.duties))
        return apply(result, services)
    except ProviderThrottled as throttled:
        # Come back when the provider says: a scheduled copy of this message, never a lost one.
        retry_at = now + timedelta(seconds=max(1.0, throttled.retry_after_seconds))
        later = message.model_copy(update={"not_before": retry_at})
        result.emit.append(
            Emit(
                "outbound_messages",
                OutgoingMessage(
                    later.model_dump_json(),
                    f"{message.message_key}@{retry_at.isoformat()}",
                    scheduled_at=retry_at,
                ),
            )
        )
        _audit(result, message, now, "deferred", f"provider_throttled until {retry_at.isoformat()}")
        return apply(result, services)
    pending["duties"] = ",".join(duty.key for duty in live)
    return _record_sent(message, pending, receipt, segments, services, result)


def _since(changed_at: datetime | None, at: datetime) -> int | None:
    return None if changed_at is None else max(0, round((at - changed_at).total_seconds()))


def _record_sent(
    message: OutboundMessage,
    pending: dict[str, Any],
    receipt: ProviderReceipt,
    segments: int,
    services: Services,
    result: StepResult,
) -> StepResult:
    """The provider has the message: mark the ledger sent, audit it, and tell the journey."""
    sent = pending | {"status": "sent", "provider_id": receipt.provider_id, "sent_at": receipt.accepted_at}
    if segments:
        sent["segments"] = segments
    result.writes.append(Write(MESSAGES, Entity(message.crime_reference, message.message_key, sent)))
    template = str(pending.get("template") or message.template)
    sent_duties = [key for key in str(pending.get("duties") or ",".join(message.duties)).split(",") if key]
    dropped = [key for key in message.duties if key not in sent_duties]
    if dropped:
        # Duties that stopped being live while the message waited (withdrawn, or a visit now too close).
        _audit(result, message, receipt.accepted_at, "suppressed", "not_live_at_send", dropped)
        result.emit.append(
            _outcome(message, "suppressed", receipt.accepted_at, "not_live_at_send", message.channel, dropped)
        )
    _audit(result, message, receipt.accepted_at, "sent", f"{message.channel}:{template}", sent_duties)
    result.track(
        "MessageSent",
        crime_reference=message.crime_reference,
        person_id=message.person_id,
        duties=",".join(sent_duties),
        channel=message.channel,
        template=template,
        segments=segments or None,
        message_id=message.message_key,
        seconds_since_change=_since(message.changed_at, receipt.accepted_at),
    )
    result.emit.append(_outcome(message, "sent", receipt.accepted_at, None, message.channel, sent_duties))
    return apply(result, services)
