"""What to do with one outbound message: the decisions of send_message, without the I/O.

The step gathers what it knows — the journey (if it records the message), the
ledger entry (claimed now, or left by an earlier delivery), what the provider
says of an earlier attempt — and these functions say what follows:

- ``Finish``: the message's end (sent, suppressed, failed, unknown, or finished
  before): its ledger entry, its audit notes, and the outcomes the journey records;
- ``Later``: come back at a time (quiet hours, the provider's throttling, or a
  journey that does not record the message yet);
- ``HandOver``: give it to the provider now, with this ledger entry.

After a hand-over, ``handed_over``, ``refused``, ``throttled`` and ``cannot_tell`` say what
follows from the provider's answer. Every decision follows journey-rules.md §4, §8 and §9.

A provider that cannot be asked what it has (ACS) recognises a repeat for minutes only
(``REPEAT_WINDOW``), so a pending entry says what is known of the attempts behind it:

- ``reason`` None: an attempt may have reached the provider (the claim is written before the
  call, and a worker can die at any point after it). It is repeated only within
  ``SAFE_REPEAT`` of ``first_attempt_at`` (the Repeatability-First-Sent of every repeat), when
  the provider takes the repeat as the same message. Later than that a repeat could be a second
  message to the person, so none is made: the message waits up to ``REPORT_WAIT`` for the
  delivery report of the attempt that may have gone (which, if it comes, finishes the entry and
  the journey is told it was sent); without one it is recorded ``unknown`` (journey-rules.md
  §12) and its duty is left to its deadline, which escalates it to an officer.
- ``reason`` ``NOT_HANDED_OVER``: every attempt so far was answered "not done" (429, throttled):
  nothing can have reached the provider. Its retry is a fresh hand-over: the entry is written
  again first (conditionally), with a new ``first_attempt_at`` once the window has passed. So a
  throttle that outlasts the window delays the message; it neither loses it nor sends it twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from shared.contracts.messages import MessageOutcome, OutboundMessage
from shared.domain.journey import Duty, Journey, address_for, send_time_check, template_for
from shared.domain.journey.telling import OUTCOME_UNKNOWN, PROVIDER_REPEAT_EXPIRED, REPEAT_WINDOW_PASSED
from shared.domain.ledger import LedgerEntry, LedgerStatus, ProviderReceipt, check_transition
from shared.domain.policy import Policy
from shared.domain.timing import in_quiet_hours, quiet_hours_end

# How long a message waits for evaluate_journey to record it before it is taken as orphaned
# (its decision was never committed: the journey moved on after a conflicting write).
RECORD_WAIT = timedelta(minutes=10)
RECORD_POLL = timedelta(seconds=30)

UNKNOWN: Literal["unknown"] = "unknown"  # the provider cannot say whether it has the message
ProviderAnswer = ProviderReceipt | None | Literal["unknown"]

# How long the provider takes a repeat (same key, same first-sent) for the same message: ACS
# tracks a repeatable SMS for 5 minutes from its Repeatability-First-Sent and refuses an older one
# (412); it documents no longer for an email's Operation-Id. A repeat is made only within
# SAFE_REPEAT of the first attempt, a minute short of it, for clocks and time on the wire.
REPEAT_WINDOW = timedelta(minutes=5)
SAFE_REPEAT = timedelta(minutes=4)
# A pending entry's reason when no attempt so far can have reached the provider (it answered 429).
NOT_HANDED_OVER = "not_handed_over:provider_throttled"
# How long such a message waits for the delivery report of an attempt that may have gone, from
# that attempt, and how often it looks (ACS reports a message within seconds to minutes).
REPORT_WAIT = timedelta(hours=1)
REPORT_POLL = timedelta(minutes=5)


@dataclass(frozen=True)
class Note:
    """An audit note about some of the message's duties."""

    at: datetime
    decision: str
    reason: str
    duties: tuple[str, ...]


@dataclass(frozen=True)
class Sent:
    """A message handed over, for the MessageSent event."""

    duties: tuple[str, ...]
    template: str
    segments: int
    at: datetime


@dataclass(frozen=True)
class Finish:
    ledger: LedgerEntry | None  # None: the ledger already says it
    notes: tuple[Note, ...] = ()
    outcomes: tuple[MessageOutcome, ...] = ()  # what the journey is to record
    sent: Sent | None = None


@dataclass(frozen=True)
class Later:
    at: datetime
    message_id: str
    message: OutboundMessage
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class HandOver:
    entry: LedgerEntry  # pending, with the template and duties it goes with
    live: tuple[Duty, ...]
    template: str
    address: str
    # A retry: ``entry`` is written (conditionally, on the entry as read) before the provider is called.
    retry: bool = False
    # No earlier attempt can have reached the provider (a fresh claim, or only 429s before).
    clean: bool = True


Action = Finish | Later | HandOver


@dataclass(frozen=True)
class Check:
    """The message against the journey now, before the ledger is looked at."""

    live: tuple[Duty, ...]
    reason: str | None  # why it must not go (None: it may)
    address: str | None
    hold_until: datetime | None  # an SMS in quiet hours
    template: str
    recorded: bool = field(default=True)  # the journey records this message

    @property
    def ready(self) -> bool:
        """Nothing stands in the way of handing it over now (so the ledger entry is claimed)."""
        return self.recorded and self.reason is None and self.address is not None and self.hold_until is None


def records(journey: Journey | None, message: OutboundMessage) -> bool:
    """Whether the journey records this message for every duty it carries."""
    if journey is None:
        return False
    return all(
        (duty := journey.duties.get(key)) is not None and message.message_key in duty.message_keys
        for key in message.duties
    )


def check(message: OutboundMessage, journey: Journey | None, policy: Policy, now: datetime) -> Check:
    """Consent, safeguarding and channel at the moment of sending (journey-rules.md §4)."""
    recorded = records(journey, message)
    live: list[Duty] = []
    reason: str | None = None
    address: str | None = None
    if journey is not None and recorded:
        live, reason = send_time_check(journey, message, policy, now)
        address = address_for(journey, message.channel, policy, live) if reason is None else None
        if reason is None and address is None:
            reason = f"{message.channel}_address_unusable"
    hold = message.channel == "sms" and in_quiet_hours(now, policy)
    return Check(
        live=tuple(live),
        reason=reason,
        address=address,
        hold_until=quiet_hours_end(now, policy) if hold else None,
        template=template_for(live) if live else message.template,
        recorded=recorded,
    )


def claim_entry(message: OutboundMessage, checked: Check, now: datetime) -> LedgerEntry:
    """The ledger entry claimed before the provider is called."""
    return LedgerEntry.begin(
        message.crime_reference,
        message.message_key,
        LedgerStatus.PENDING,
        channel=message.channel,
        template=checked.template,
        duties=tuple(duty.key for duty in checked.live),
        first_attempt_at=now,
    )


def decide(
    message: OutboundMessage,
    checked: Check,
    earlier: LedgerEntry | None,
    provider: ProviderAnswer,
    policy: Policy,
    now: datetime,
) -> Action:
    """What follows, given the ledger entry an earlier delivery left (``earlier``) and, for one
    still pending, whether the provider has the message."""
    if earlier is not None and earlier.status.finished:
        return _finished_before(message, earlier, now)
    if earlier is not None and isinstance(provider, ProviderReceipt):
        # An earlier delivery got as far as the provider, which has it: it was handed over then,
        # whatever has changed since. Record it as sent; never suppress it.
        return handed_over(message, earlier, provider, 0)
    if not checked.recorded:
        return _wait_for_journey(message, earlier, now)
    unknown = provider == UNKNOWN and in_doubt(earlier)
    if checked.reason is not None or checked.address is None:
        return _suppress(message, checked.reason or "no_address", earlier, unknown, now)
    if checked.hold_until is not None:
        # Late (a retry, a slow queue) into quiet hours: hold it until they end.
        until = checked.hold_until
        held = message.model_copy(update={"not_before": until})
        note = Note(now, "deferred", f"quiet_hours until {until.isoformat()}", tuple(message.duties))
        return Later(until, f"{message.message_key}@{until.isoformat()}", held, (note,))
    if earlier is None:
        return HandOver(claim_entry(message, checked, now), checked.live, checked.template, checked.address)
    first = earlier.first_attempt_at
    if unknown and (first is None or now - first > SAFE_REPEAT):
        # An earlier attempt may have reached the provider, which would no longer take a repeat
        # for the same message: no second send. Wait a while for its delivery report (which
        # finishes the entry: then the journey is told it was sent); none, and it is unknown.
        last = earlier.decided_at or first
        if last is not None and now - last < REPORT_WAIT:
            again = now + REPORT_POLL
            return Later(again, f"{message.message_key}@report:{again.isoformat()}", message)
        return _suppress(message, REPEAT_WINDOW_PASSED, earlier, True, now)
    clean = not in_doubt(earlier)
    if clean and (first is None or now - first > SAFE_REPEAT):
        first = now  # nothing went before: a new repeat window, recorded before the call
    entry = earlier.with_fields(
        template=checked.template,
        duties=tuple(duty.key for duty in checked.live),
        first_attempt_at=first,
        reason=None,  # from here an attempt may reach the provider
        decided_at=now,  # this attempt's start
    )
    return HandOver(entry, checked.live, checked.template, checked.address, retry=True, clean=clean)


def in_doubt(earlier: LedgerEntry | None) -> bool:
    """Whether an earlier attempt of this pending entry may have reached the provider."""
    return (
        earlier is not None and earlier.status is LedgerStatus.PENDING and earlier.reason != NOT_HANDED_OVER
    )


def not_handed_over(entry: LedgerEntry) -> LedgerEntry:
    """The pending entry after the provider answered 429 to an attempt no earlier one may have
    preceded into it: nothing has reached the provider."""
    return entry.with_fields(reason=NOT_HANDED_OVER)


def handed_over(
    message: OutboundMessage, entry: LedgerEntry, receipt: ProviderReceipt, segments: int
) -> Finish:
    """The provider has the message: sent, for the duties still live when it was handed over."""
    at = receipt.accepted_at
    sent_entry = entry.moved_to(
        LedgerStatus.SENT,
        provider_id=receipt.provider_id,
        sent_at=at,
        segments=segments or entry.segments,
    )
    template = entry.template or message.template
    sent_duties = tuple(entry.duties) if entry.duties else tuple(message.duties)
    dropped = tuple(key for key in message.duties if key not in sent_duties)
    notes: list[Note] = []
    outcomes: list[MessageOutcome] = []
    if dropped:
        # Duties that stopped being live while the message waited (withdrawn, or a visit now too close).
        notes.append(Note(at, "suppressed", "not_live_at_send", dropped))
        outcomes.append(outcome(message, "suppressed", at, "not_live_at_send", dropped))
    notes.append(Note(at, "sent", f"{message.channel}:{template}", sent_duties))
    outcomes.append(outcome(message, "sent", at, None, sent_duties))
    return Finish(sent_entry, tuple(notes), tuple(outcomes), Sent(sent_duties, template, segments, at))


def refused(message: OutboundMessage, entry: LedgerEntry, refusal: str, now: datetime) -> Finish:
    """The provider refused it for good: the duty stays unmet (its deadline check escalates it)."""
    why = f"provider_rejected:{refusal}"
    failed = entry.moved_to(LedgerStatus.FAILED, reason=why, decided_at=now)
    note = Note(now, "suppressed", why, tuple(message.duties))
    return Finish(failed, (note,), (outcome(message, "suppressed", now, why, tuple(message.duties)),))


def cannot_tell(message: OutboundMessage, entry: LedgerEntry, now: datetime) -> Finish:
    """The provider would not take the repeat (its first-sent too old, 412) and cannot say whether
    the first went: recorded unknown, never sent again; its delivery report settles it."""
    return _suppress(message, PROVIDER_REPEAT_EXPIRED, entry, True, now)


def throttled(message: OutboundMessage, retry_after_seconds: float, now: datetime) -> Later:
    """Come back when the provider says: a scheduled copy of this message, never a lost one."""
    retry_at = now + timedelta(seconds=max(1.0, retry_after_seconds))
    later = message.model_copy(update={"not_before": retry_at})
    note = Note(now, "deferred", f"provider_throttled until {retry_at.isoformat()}", tuple(message.duties))
    return Later(retry_at, f"{message.message_key}@{retry_at.isoformat()}", later, (note,))


def outcome(
    message: OutboundMessage,
    status: Literal["sent", "suppressed"],
    at: datetime,
    reason: str | None,
    duties: tuple[str, ...],
) -> MessageOutcome:
    """What became of the message, for exactly the duties it carried."""
    return MessageOutcome(
        event_id=outcome_id(message.message_key, status),
        crime_reference=message.crime_reference,
        person_id=message.person_id,
        message_key=message.message_key,
        duties=list(duties),
        status=status,
        channel=message.channel,
        reason=reason,
        at=at,
    )


def outcome_id(message_key: str, status: str) -> str:
    """The MessageOutcome's event id: one per message and status, whichever step tells it."""
    return _digest("outcome", message_key, status)


def _finished_before(message: OutboundMessage, earlier: LedgerEntry, now: datetime) -> Finish:
    """Finished by an earlier delivery: make sure the journey knows, in case that one died first.

    An attempt that died after the hand-over leaves no time of sending; if the provider's
    delivery report came first, the message was handed over by then at the latest.
    """
    at = earlier.sent_at or earlier.reported_at or earlier.decided_at or now
    carried = tuple(earlier.duties) if earlier.duties else tuple(message.duties)
    told: Literal["sent", "suppressed"] = "sent" if earlier.status.handed_over else "suppressed"
    notes: tuple[Note, ...] = ()
    if earlier.status.handed_over and earlier.sent_at is None:
        reported = f"{message.channel}: its delivery report says {earlier.delivery_status}"
        notes = (Note(at, "sent", reported, carried),)
    return Finish(None, notes, (outcome(message, told, at, earlier.reason, carried),))


def _wait_for_journey(message: OutboundMessage, earlier: LedgerEntry | None, now: datetime) -> Action:
    """The journey does not record this message (yet): wait a while, then take it as orphaned."""
    if now - message.decided_at < RECORD_WAIT:
        again = now + RECORD_POLL
        return Later(again, f"{message.message_key}@wait:{again.isoformat()}", message)
    why = "not_recorded_by_journey"
    check_transition(None if earlier is None else earlier.status, LedgerStatus.SUPPRESSED)
    entry = LedgerEntry(
        message.crime_reference,
        message.message_key,
        LedgerStatus.SUPPRESSED,
        channel=message.channel,
        reason=why,
        decided_at=now,
    )
    return Finish(entry, (Note(now, "suppressed", why, tuple(message.duties)),))


def _suppress(
    message: OutboundMessage, reason: str, earlier: LedgerEntry | None, unknown: bool, now: datetime
) -> Finish:
    """Not to be sent (a reason of the rules), or, if an earlier attempt may have reached the
    provider and it cannot say, recorded as unknown (the audit says so)."""
    why = f"{OUTCOME_UNKNOWN}:{reason}" if unknown else reason
    status = LedgerStatus.UNKNOWN if unknown else LedgerStatus.SUPPRESSED
    check_transition(None if earlier is None else earlier.status, status)
    duties = tuple(message.duties)
    entry = LedgerEntry(
        message.crime_reference,
        message.message_key,
        status,
        channel=message.channel,
        duties=duties,
        reason=why,
        decided_at=now,
    )
    note = Note(now, "suppressed", why, duties)
    return Finish(entry, (note,), (outcome(message, "suppressed", now, why, duties),))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]
