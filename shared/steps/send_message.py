"""send_message: re-check, claim the ledger entry, hand to the provider, record what happened.

What to do is decided in ``shared/domain/sending.py`` from what this step learns;
the step only fetches and writes. The ledger entry is claimed (created, failing
if it exists) *before* the provider is called, and the provider gets an
idempotency key derived from the ledger key, so a retry after a crash at any
point never reaches the victim twice; the failed create is also how a
redelivery is recognised, so the common path reads nothing but the journey.
What became of the message is written once, with its audit, into the ledger and
the journey itself (ETag-checked; on a conflict the journey is read again and the
outcomes re-applied, and if it keeps conflicting they go to evaluate_journey).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any

from shared.adapters.table_layout import AUDIT, audit_entity
from shared.contracts.messages import OutboundMessage
from shared.domain import sending
from shared.domain.journey import AuditEntry, Decision, Journey, evaluate_message_outcome
from shared.domain.ledger import LedgerEntry
from shared.domain.links import link_url
from shared.ports import (
    DeliveryLink,
    EmailContent,
    EtagMismatch,
    OutgoingMessage,
    ProviderReceipt,
    ProviderRejected,
    ProviderStatusUnknown,
    ProviderThrottled,
    StoredJourney,
    Write,
)
from shared.steps.decisions import record_decision
from shared.steps.dependencies import SendNeeds
from shared.steps.results import Emit, StepResult, apply, retry_on_conflict
from shared.tracing import annotate, incoming


def send_message(
    body: bytes | str, services: SendNeeds, properties: Mapping[str, Any] | None = None
) -> StepResult:
    """Handle one outbound-messages message (``properties``: its application properties)."""
    message = OutboundMessage.model_validate_json(body)
    annotate(message.crime_reference, message.person_id)
    now = services.clock.now()
    trace = incoming(properties)
    read = services.journeys.get(message.crime_reference, message.person_id)
    journey = read.journey if read is not None else None
    checked = sending.check(message, journey, services.policy, now)
    etag: str | None = None
    if checked.ready:
        earlier = services.ledger.claim(sending.claim_entry(message, checked, now))
        if earlier is not None and not earlier.status.finished:
            # A retry: read it with its ETag, so the retry's own write can be conditional on it.
            earlier, etag = _read(message, services)
    else:
        # Not sending now: first learn whether an earlier delivery already reached the provider.
        earlier = services.ledger.get(message.crime_reference, message.message_key)
    provider: sending.ProviderAnswer = None
    if earlier is not None and not earlier.status.finished:
        try:
            provider = services.provider.accepted(message.message_key)
        except ProviderStatusUnknown:
            provider = sending.UNKNOWN
    action = sending.decide(message, checked, earlier, provider, services.policy, now)
    if isinstance(action, sending.HandOver):
        assert journey is not None  # a message is handed over only when its journey records it
        if action.retry:
            # The retry's attempt, written before the call: a concurrent delivery's write wins (the
            # ETag fails, and this delivery is retried and decides again from what that one wrote).
            apply(StepResult(writes=[services.ledger.record(action.entry, etag)]), services)
        action = _hand_over(message, action, journey, services, now)
    if isinstance(action, sending.Later):
        return _later(message, action, services, trace)
    return _finish(message, action, read, services, now, trace)


def _hand_over(
    message: OutboundMessage, handover: sending.HandOver, journey: Journey, services: SendNeeds, now: datetime
) -> sending.Finish | sending.Later:
    """Render, hand to the provider, and say what follows from its answer."""
    language, fell_back = services.renderer.choose_language(journey, services.policy)
    notes: tuple[sending.Note, ...] = ()
    if fell_back:
        reason = f"unsupported language; sent in {language}"
        notes = (sending.Note(now, "language_fallback", reason, tuple(message.duties)),)
    live = list(handover.live)
    metadata = {
        "message_id": message.message_key,
        "crime_reference": message.crime_reference,
        "person_id": message.person_id,
        "template": handover.template,
        "duties": [duty.key for duty in live],
    }
    # Which message its delivery reports will be about: kept before it is handed over, since a
    # report can come back at once (journey-rules.md §12).
    link = DeliveryLink(
        report_key=services.provider.report_key(message.message_key, message.channel),
        crime_reference=message.crime_reference,
        message_key=message.message_key,
        person_id=message.person_id,
        channel=message.channel,
        duties=tuple(duty.key for duty in live),
    )
    services.deliveries.remember(link)
    # The person's own page (journey-rules.md §13): the same link in every message to them.
    page = link_url(
        services.policy, services.links.for_person(message.crime_reference, message.person_id, now)
    )
    segments = 0
    receipt: ProviderReceipt
    try:
        if message.channel == "sms":
            sms = services.renderer.sms(journey, live, services.policy, language, link=page)
            segments = sms.segments
            receipt = services.provider.send_sms(
                idempotency_key=message.message_key,
                to=handover.address,
                text=sms.text,
                metadata=metadata | {"segments": segments},
                first_sent_at=handover.entry.first_attempt_at,
            )
        else:
            email = services.renderer.email(journey, live, services.policy, language, link=page)
            receipt = services.provider.send_email(
                idempotency_key=message.message_key,
                to=handover.address,
                content=EmailContent(email.subject, email.text, email.html, unsubscribe_url=page),
                metadata=metadata,
            )
    except ProviderStatusUnknown:
        # It would not take the repeat (412) and cannot say whether the first attempt went.
        if handover.clean:
            finish = sending.refused(message, handover.entry, "RepeatabilityExpired", now)
        else:
            finish = sending.cannot_tell(message, handover.entry, now)
        return sending.Finish(finish.ledger, notes + finish.notes, finish.outcomes, finish.sent)
    except ProviderRejected as rejected:
        finish = sending.refused(message, handover.entry, type(rejected).__name__, now)
        return sending.Finish(finish.ledger, notes + finish.notes, finish.outcomes, finish.sent)
    except ProviderThrottled as throttling:
        if handover.clean:
            _not_handed_over(message, handover.entry, services)
        later = sending.throttled(message, throttling.retry_after_seconds, now)
        return sending.Later(later.at, later.message_id, later.message, notes + later.notes)
    done = sending.handed_over(message, handover.entry, receipt, segments)
    return sending.Finish(done.ledger, notes + done.notes, done.outcomes, done.sent)


def _read(message: OutboundMessage, services: SendNeeds) -> tuple[LedgerEntry, str | None]:
    read = services.ledger.read(message.crime_reference, message.message_key)
    if read is None:  # claimed a moment ago by another delivery, gone now: let the queue retry
        raise LookupError(f"ledger entry {message.message_key} vanished while being read")
    return read


def _not_handed_over(message: OutboundMessage, attempt: LedgerEntry, services: SendNeeds) -> None:
    """Record that nothing has reached the provider (its 429 says this attempt was not done, and
    no earlier one may have been): the retry may then open a new repeat window.

    Only if the entry is still this attempt's (ETag-checked): had another delivery begun an
    attempt meanwhile, that one may have reached the provider, and the entry stays in doubt.
    """
    entry, etag = _read(message, services)
    same = (entry.status, entry.reason, entry.first_attempt_at, entry.decided_at) == (
        attempt.status,
        attempt.reason,
        attempt.first_attempt_at,
        attempt.decided_at,
    )
    if not same:
        return
    with suppress(EtagMismatch):  # another delivery wrote it since: it stays in doubt
        apply(StepResult(writes=[services.ledger.record(sending.not_handed_over(entry), etag)]), services)


def _audit(result: StepResult, message: OutboundMessage, notes: tuple[sending.Note, ...]) -> None:
    for note in notes:
        for duty in note.duties:
            entry = AuditEntry(
                note.at, message.crime_reference, message.person_id, duty, note.decision, note.reason
            )
            result.writes.append(Write(AUDIT, audit_entity(entry, message.message_key)))
        if note.decision == "suppressed":
            result.track(
                "MessageSuppressed",
                crime_reference=message.crime_reference,
                person_id=message.person_id,
                duties=",".join(note.duties),
                channel=message.channel,
                reason=note.reason,
            )


def _later(
    message: OutboundMessage, later: sending.Later, services: SendNeeds, trace: str | None
) -> StepResult:
    """Come back at a time: a scheduled copy of the message, and the notes saying why."""
    result = StepResult(trace=trace)
    copy = OutgoingMessage(later.message.model_dump_json(), later.message_id, scheduled_at=later.at)
    result.emit.append(Emit("outbound_messages", copy))
    _audit(result, message, later.notes)
    return apply(result, services)


CONFLICT_ATTEMPTS = 3


def _finish(
    message: OutboundMessage,
    finish: sending.Finish,
    read: StoredJourney | None,
    services: SendNeeds,
    now: datetime,
    trace: str | None,
) -> StepResult:
    """Write the message's end once: its ledger entry, its audit, and its outcomes in the journey.

    The journey is written last, ETag-checked (evaluate_journey may be changing it):
    on a conflict it is read again and the outcomes re-applied; the ledger and audit
    rows written again are the same rows. If it keeps conflicting, the outcomes go to
    evaluate_journey as events, to be applied in the crime's session. Recording an
    outcome twice changes nothing.
    """

    def own() -> StepResult:
        result = StepResult(trace=trace)
        if finish.ledger is not None:
            result.writes.append(services.ledger.record(finish.ledger))
        _audit(result, message, finish.notes)
        if finish.sent is not None:
            sent = finish.sent
            result.track(
                "MessageSent",
                crime_reference=message.crime_reference,
                person_id=message.person_id,
                duties=",".join(sent.duties),
                channel=message.channel,
                template=sent.template,
                segments=sent.segments or None,
                message_id=message.message_key,
                seconds_since_change=_since(message.changed_at, sent.at),
            )
        return result

    def attempt(number: int) -> StepResult:
        result = own()
        # The journey as this step read it, or, after a conflict, as it is now.
        stored = read if number == 1 else services.journeys.get(message.crime_reference, message.person_id)
        if stored is not None and finish.outcomes:
            # The journey read is the rules' own (changed, not copied): nothing reads it after
            # them, and a retry reads the journey again.
            decision = Decision(stored.journey)
            for outcome in finish.outcomes:
                step = evaluate_message_outcome(decision.journey, outcome, services.policy, now, owned=True)
                decision = decision.then(step)
            record_decision(
                result,
                decision,
                stored,
                message.message_key,
                now=now,
                journeys=services.journeys,
                tables=services.tables,
            )
        return apply(result, services)

    def hand_off() -> StepResult:
        result = own()
        for outcome in finish.outcomes:
            event = OutgoingMessage(
                outcome.model_dump_json(), outcome.event_id, session_id=message.crime_reference
            )
            result.emit.append(Emit("journey_events", event))
        return apply(result, services)

    return retry_on_conflict(attempt, CONFLICT_ATTEMPTS, exhausted=hand_off)


def _since(changed_at: datetime | None, at: datetime) -> int | None:
    return None if changed_at is None else max(0, round((at - changed_at).total_seconds()))
