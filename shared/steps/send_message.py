"""send_message: re-check, record in the ledger, hand to the provider, mark sent.

The ledger entry is written *before* the provider is called and the provider
gets an idempotency key derived from the ledger key, so a retry after a crash at
any point never reaches the victim twice. Claiming the entry (a create that
fails if it exists) is also how a redelivery is recognised, so the common path
reads nothing but the journey. What became of the message is then recorded in
the journey itself, ETag-checked, rather than by a further event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.bootstrap import Services
from shared.contracts.messages import MessageOutcome, OutboundMessage
from shared.domain.journey import (
    AuditEntry,
    Decision,
    Duty,
    Journey,
    address_for,
    evaluate_message_outcome,
    send_time_check,
    template_for,
)
from shared.domain.render import choose_language, render_email, render_sms
from shared.domain.timing import in_quiet_hours, quiet_hours_end
from shared.ports import (
    EmailContent,
    Entity,
    EntityExists,
    EtagMismatch,
    OutgoingMessage,
    ProviderReceipt,
    ProviderRejected,
    ProviderStatusUnknown,
    ProviderThrottled,
)
from shared.steps.decisions import record_decision
from shared.steps.records import AUDIT, JOURNEYS, MESSAGES, audit_entity, digest, journey_from
from shared.steps.results import Emit, StepResult, Write, apply
from shared.tracing import annotate, incoming


def _outcome(
    message: OutboundMessage, status: str, at: datetime, reason: str | None, duties: list[str]
) -> MessageOutcome:
    """What became of the message, for exactly the duties it carried."""
    return MessageOutcome(
        event_id=digest("outcome", message.message_key, status),
        crime_reference=message.crime_reference,
        person_id=message.person_id,
        message_key=message.message_key,
        duties=duties,
        status=status,
        channel=message.channel,
        reason=reason,
        at=at,
    )


CONFLICT_ATTEMPTS = 3


def _tell_journey(
    services: Services,
    result: StepResult,
    message: OutboundMessage,
    outcomes: list[MessageOutcome],
    journey: Journey | None,
    stored: Entity | None,
    now: datetime,
) -> StepResult:
    """Write the ledger and audit, then record the outcomes in the journey itself.

    The outcomes' audit rows join the step's own (one batch per crime); the
    journey is written last, ETag-checked (evaluate_journey may be changing the
    same journey): on a conflict it is read again and the outcomes re-applied
    (audit rows have deterministic keys, so a row written again is the same
    row). If it still conflicts, the outcomes go to evaluate_journey as events,
    to be applied in the crime's session. Recording an outcome twice changes nothing.
    """
    applied = False
    for _ in range(CONFLICT_ATTEMPTS):
        if journey is None or stored is None:
            entity = services.tables.get(JOURNEYS, message.crime_reference, message.person_id)
            if entity is None:
                break  # no journey to tell (an orphaned message)
            journey, stored = journey_from(entity), entity
        decision = Decision(journey)
        for outcome in outcomes:
            step = evaluate_message_outcome(decision.journey, outcome, now)
            decision = Decision(step.journey, audit=[*decision.audit, *step.audit])
        follow = StepResult(trace=result.trace)
        record_decision(follow, decision, stored, message.message_key, now=now, tables=services.tables)
        state = [write for write in follow.writes if write.table == JOURNEYS]
        audit = [write for write in follow.writes if write.table != JOURNEYS]
        if not applied:
            result.emit.extend(follow.emit)  # what the first decision emits, once (today: nothing)
            result.writes.extend(audit)
            result.events.extend(follow.events)  # the events of the first decision only, once
            apply(result, services)
            applied = True
        elif audit:
            apply(StepResult(trace=result.trace, writes=audit), services)
        try:
            apply(StepResult(trace=result.trace, writes=state), services)
        except EtagMismatch:
            journey = stored = None
            continue
        result.writes.extend(state)
        return result
    if not applied:
        apply(result, services)
        if journey is None:
            return result
    handoff = StepResult(trace=result.trace)
    for outcome in outcomes:
        handoff.emit.append(
            Emit(
                "journey_events",
                OutgoingMessage(
                    outcome.model_dump_json(), outcome.event_id, session_id=message.crime_reference
                ),
            )
        )
    apply(handoff, services)
    result.emit.extend(handoff.emit)
    return result


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


def _journey(services: Services, message: OutboundMessage) -> tuple[Journey | None, Entity | None]:
    """The recipient's journey and its entity, or (None, None) while it does not record this message."""
    entity = services.tables.get(JOURNEYS, message.crime_reference, message.person_id)
    if entity is None:
        return None, None
    journey = journey_from(entity)
    for key in message.duties:
        duty = journey.duties.get(key)
        if duty is None or message.message_key not in duty.message_keys:
            return None, None
    return journey, entity


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


FINISHED = ("sent", "suppressed", "failed", "unknown")


def send_message(
    body: bytes | str, services: Services, properties: Mapping[str, Any] | None = None
) -> StepResult:
    """Handle one outbound-messages message (``properties``: its application properties)."""
    message = OutboundMessage.model_validate_json(body)
    annotate(message.crime_reference, message.person_id)
    now = services.clock.now()
    tables = services.tables
    result = StepResult(trace=incoming(properties))
    journey, stored = _journey(services, message)
    live: list[Duty] = []
    reason: str | None = None
    address: str | None = None
    if journey is not None:
        live, reason = send_time_check(journey, message, services.policy, now)
        address = address_for(journey, message.channel, services.policy) if reason is None else None
        if reason is None and address is None:
            reason = f"{message.channel}_address_unusable"
    hold = message.channel == "sms" and in_quiet_hours(now, services.policy)
    template = template_for(live) if live else message.template
    pending: dict[str, Any] = {
        "status": "pending",
        "channel": message.channel,
        "template": template,
        "duties": ",".join(duty.key for duty in live),
        "first_attempt_at": now,
    }
    ledger: Entity | None = None
    if journey is not None and reason is None and not hold:
        # The common path: the ledger entry exists before the provider is called. Creating it is
        # also how a redelivery is found (the entry is there), so no read comes first.
        try:
            tables.create(MESSAGES, Entity(message.crime_reference, message.message_key, pending))
        except EntityExists:
            ledger = tables.get(MESSAGES, message.crime_reference, message.message_key)
    else:
        # Not sending now: first learn whether an earlier delivery already reached the provider.
        ledger = tables.get(MESSAGES, message.crime_reference, message.message_key)

    unknown = False
    if ledger is not None:
        status = ledger.properties["status"]
        if status in FINISHED:
            # Finished by an earlier delivery; make sure the journey knows, in case that one died first.
            at = ledger.properties.get("sent_at") or ledger.properties.get("decided_at") or now
            carried = str(ledger.properties.get("duties") or ",".join(message.duties)).split(",")
            told = "sent" if status == "sent" else "suppressed"
            outcome = _outcome(message, told, at, ledger.properties.get("reason"), carried)
            return _tell_journey(services, result, message, [outcome], journey, stored, now)
        # An earlier delivery got as far as the provider. If the provider has the message, it was
        # handed over then, whatever has changed since: record it as sent, never suppress it.
        try:
            receipt = services.provider.accepted(message.message_key)
        except ProviderStatusUnknown:
            receipt, unknown = None, True
        if receipt is not None:
            earlier = dict(ledger.properties)
            return _record_sent(message, earlier, receipt, 0, services, result, journey, stored, now)
        # The first attempt's time goes to the provider again, so it can recognise the retry.
        pending = dict(ledger.properties) | {"template": template, "duties": pending["duties"]}

    if journey is None:
        return _wait_for_journey(message, services, now, result)
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
        outcome = _outcome(message, "suppressed", now, why, message.duties)
        return _tell_journey(services, result, message, [outcome], journey, stored, now)

    if hold:
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
    metadata = {
        "message_id": message.message_key,
        "crime_reference": message.crime_reference,
        "person_id": message.person_id,
        "template": template,
        "duties": [duty.key for duty in live],
    }
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
        outcome = _outcome(message, "suppressed", now, why, message.duties)
        return _tell_journey(services, result, message, [outcome], journey, stored, now)
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
    return _record_sent(message, pending, receipt, segments, services, result, journey, stored, now)


def _since(changed_at: datetime | None, at: datetime) -> int | None:
    return None if changed_at is None else max(0, round((at - changed_at).total_seconds()))


def _record_sent(
    message: OutboundMessage,
    pending: dict[str, Any],
    receipt: ProviderReceipt,
    segments: int,
    services: Services,
    result: StepResult,
    journey: Journey | None,
    stored: Entity | None,
    now: datetime,
) -> StepResult:
    """The provider has the message: mark the ledger sent, audit it, and record it in the journey."""
    sent = pending | {"status": "sent", "provider_id": receipt.provider_id, "sent_at": receipt.accepted_at}
    if segments:
        sent["segments"] = segments
    result.writes.append(Write(MESSAGES, Entity(message.crime_reference, message.message_key, sent)))
    template = str(pending.get("template") or message.template)
    sent_duties = [key for key in str(pending.get("duties") or ",".join(message.duties)).split(",") if key]
    dropped = [key for key in message.duties if key not in sent_duties]
    outcomes = []
    if dropped:
        # Duties that stopped being live while the message waited (withdrawn, or a visit now too close).
        _audit(result, message, receipt.accepted_at, "suppressed", "not_live_at_send", dropped)
        outcomes.append(_outcome(message, "suppressed", receipt.accepted_at, "not_live_at_send", dropped))
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
    outcomes.append(_outcome(message, "sent", receipt.accepted_at, None, sent_duties))
    return _tell_journey(services, result, message, outcomes, journey, stored, now)
