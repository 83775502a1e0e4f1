"""send_message's decisions (shared/domain/sending.py, journey-rules.md §4, §8, §9), as a property.

Each example is one delivery of one message: a journey (or none) that may or may not record
it, whose duties are in any state, whose crime may be excluded, whose victim may have opted
out or marked the channel unsafe, at any hour; a ledger entry an earlier delivery left (or
none), and what the provider says of an earlier attempt. ``check`` looks at the journey and
``decide`` says what follows. The property: a message is handed over only when its journey
records it, the check finds nothing against it and no earlier delivery finished it; a
finished entry is never changed; and every ledger entry decided is a move the status
machine allows from the one before.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts.messages import OutboundMessage
from shared.domain import sending
from shared.domain.journey import DutyStatus, Journey, send_time_check
from shared.domain.ledger import TRANSITIONS, LedgerEntry, LedgerStatus, ProviderReceipt
from tests.builders import duty, journey, outbound, victim
from tests.unit.pipeline import POLICY

EXAMPLES = 500
LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 20, tzinfo=UTC)
KEY = "msg-1"
REPORTED = (LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED)  # what a delivery report moves a message on to
TEMPLATES = ["acknowledgement", "suspect_arrested", "attendance_booked"]


@dataclass(frozen=True)
class Delivery:
    journey: Journey | None
    message: OutboundMessage
    earlier: LedgerEntry | None
    provider: sending.ProviderAnswer
    now: datetime


# Strategies built once (Hypothesis validates a strategy each time one is made).
_MINUTE = st.integers(0, 3 * 24 * 60)
_DUTIES = st.integers(1, 3)
_TEMPLATE = st.sampled_from(TEMPLATES)
_NOTICE = st.sampled_from([20, 59, 61, 300])  # minutes before a visit: too soon to tell of it, or not
_STATUS = st.sampled_from([DutyStatus.QUEUED] * 16 + list(DutyStatus))
# Mostly the message's own key; now and then another message of the duty's, or none.
_KEYS = st.sampled_from([[KEY]] * 12 + [[KEY, "msg-2"], ["msg-2"], []])
_CHANNEL_PREFERRED = st.sampled_from(["both", "email", "sms", "both", "none"])
_OPTED_OUT = st.sampled_from([False] * 9 + [True])
_SAFE = st.sampled_from([True] * 5 + [False])
_EMAIL = st.sampled_from(["x@example.org"] * 4 + ["nope"])
_MOBILE = st.sampled_from(["07700 900123"] * 4 + [None])
_FLAGS = st.sampled_from([[]] * 7 + [["hate_crime"], ["domestic_abuse"], ["sexual_offence"]])
_CHANNEL = st.sampled_from(["email", "sms"])
_DECIDED = st.sampled_from([0, 5, 30])
_EARLIER = st.sampled_from([None] * 7 + [LedgerStatus.PENDING] * 2 + list(LedgerStatus))
_NO_JOURNEY = st.sampled_from([False] * 11 + [True])


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    now = NOW + timedelta(minutes=draw(_MINUTE))
    duties = []
    for n in range(draw(_DUTIES)):
        template = draw(_TEMPLATE)
        details = {}
        if template == "attendance_booked":
            details["appointment"] = (now + timedelta(minutes=draw(_NOTICE))).isoformat()
        duties.append(
            duty(
                f"d{n}",
                template=template,
                event_at=now - timedelta(hours=1),
                status=draw(_STATUS),
                message_keys=draw(_KEYS),
                details=details,
            )
        )
    person = victim(
        channel=draw(_CHANNEL_PREFERRED),
        opted_out=draw(_OPTED_OUT),
        safe_sms=draw(_SAFE),
        safe_email=draw(_SAFE),
        email=draw(_EMAIL),
        mobile=draw(_MOBILE),
    )
    recipient = journey(*duties, person=person, flags=draw(_FLAGS))
    # The duties it carries: the first, or all of them, or one the journey does not know.
    keys = list(recipient.duties)
    carried = draw(st.sampled_from([keys[:1], keys[:1], keys, keys, keys[-1:], [*keys[:1], "d9"]]))
    message = outbound(
        KEY, recipient, carried, draw(_CHANNEL), decided_at=now - timedelta(minutes=draw(_DECIDED))
    )
    status = draw(_EARLIER)
    earlier = None
    if status is not None:
        reported = status in REPORTED
        # A report may come before send_message wrote its result: then there is no time of sending.
        sent = status == LedgerStatus.SENT or (reported and draw(st.booleans()))
        earlier = LedgerEntry(
            message.crime_reference,
            KEY,
            status,
            channel=message.channel,
            duties=tuple(message.duties),
            first_attempt_at=now - timedelta(minutes=2),
            sent_at=now - timedelta(minutes=1) if sent else None,
            reason=None if status in (LedgerStatus.SENT, LedgerStatus.PENDING) or reported else "earlier",
            delivery_status=("Delivered" if status == LedgerStatus.DELIVERED else "Bounced")
            if reported
            else None,
            reported_at=now - timedelta(seconds=30) if reported else None,
        )
    provider: sending.ProviderAnswer = None
    if status == LedgerStatus.PENDING:  # only a pending one is asked about
        receipt = ProviderReceipt("p-1", now - timedelta(minutes=1))
        provider = draw(st.sampled_from([receipt, receipt, None, sending.UNKNOWN]))
    return Delivery(
        journey=None if draw(_NO_JOURNEY) else recipient,
        message=message,
        earlier=earlier,
        provider=provider,
        now=now,
    )


def _records(journey: Journey | None, message: OutboundMessage) -> bool:
    """The journey holds every duty of the message, each with this message's key."""
    return journey is not None and all(
        key in journey.duties and message.message_key in journey.duties[key].message_keys
        for key in message.duties
    )


def test_a_message_is_handed_over_only_when_recorded_allowed_and_not_finished_before() -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(deliveries())
    def check(delivery: Delivery) -> None:
        message, journey, earlier, now = delivery.message, delivery.journey, delivery.earlier, delivery.now
        checked = sending.check(message, journey, POLICY, now)
        action = sending.decide(message, checked, earlier, delivery.provider, POLICY, now)
        finished = earlier is not None and earlier.status.finished
        seen["examples"] += 1

        if isinstance(action, sending.HandOver):
            assert journey is not None and _records(journey, message), "handed over, but not recorded"
            assert not finished, f"handed over again after it finished: {earlier}"
            _, reason = send_time_check(journey, message, POLICY, now)
            assert reason is None and checked.reason is None, f"handed over though {reason or checked.reason}"
            assert not set(journey.flags) & set(POLICY.safeguarding.excluded_flags)
            assert journey.victim is not None and not journey.victim.preferences.opted_out
            safe = journey.victim.safe_contact
            assert safe.sms if message.channel == "sms" else safe.email, "on an unsafe channel"
            local = now.astimezone(LONDON)
            assert message.channel == "email" or 8 <= local.hour < 20, "an SMS in quiet hours"
            assert action.entry.status == LedgerStatus.PENDING
            assert set(action.entry.duties or ()) <= set(message.duties) and action.live
            assert all(d.status in (DutyStatus.QUEUED, DutyStatus.SENT) for d in action.live)
            seen["handed_over"] += 1
        if finished:
            assert earlier is not None
            # Finished before: the entry is left as it is, and the journey told what it was.
            assert isinstance(action, sending.Finish) and action.ledger is None, action
            # The provider had it if it was sent, or if a delivery report has come in for it.
            had_it = earlier.status == LedgerStatus.SENT or earlier.status in REPORTED
            told = {outcome.status for outcome in action.outcomes}
            assert told == {"sent" if had_it else "suppressed"}
            notes = [(n.decision, n.reason) for n in action.notes]
            if had_it and earlier.sent_at is None:
                # Handed over, but only the report says so: the audit says what the report said.
                assert notes == [
                    ("sent", f"{message.channel}: its delivery report says {earlier.delivery_status}")
                ]
                seen["finished_before_known_from_its_report"] += 1
            else:
                assert notes == [], notes
            seen["finished_before_left_alone"] += 1
        elif isinstance(delivery.provider, ProviderReceipt):
            # The provider has it from an earlier delivery: recorded as sent, whatever changed since.
            assert isinstance(action, sending.Finish) and action.sent is not None, action
            assert action.ledger is not None and action.ledger.status == LedgerStatus.SENT
            seen["provider_had_it_recorded_sent"] += 1
        if isinstance(action, sending.Finish) and action.ledger is not None:
            before = None if earlier is None else earlier.status
            assert action.ledger.status in TRANSITIONS[before], (before, action.ledger.status)
        if not isinstance(action, sending.HandOver) and not finished:
            if not _records(journey, message):
                seen["not_handed_over:not_recorded"] += 1
            elif checked.reason:
                seen[f"not_handed_over:{checked.reason.split(':')[0]}"] += 1
            elif checked.hold_until:
                seen["not_handed_over:quiet_hours"] += 1

    check()
    assert seen["examples"] == EXAMPLES and seen["handed_over"] >= 40, seen
    assert seen["finished_before_known_from_its_report"] >= 10, seen
    assert seen["finished_before_left_alone"] >= 40 and seen["provider_had_it_recorded_sent"] >= 10, seen
    for reason in (
        "not_recorded",
        "excluded_crime",
        "opted_out",
        "no_live_duty",
        "appointment_too_soon",
        "quiet_hours",
    ):
        assert seen[f"not_handed_over:{reason}"] >= 10, (reason, seen)
    assert (
        seen["not_handed_over:sms_no_longer_usable"] + seen["not_handed_over:email_no_longer_usable"] >= 10
    ), seen
