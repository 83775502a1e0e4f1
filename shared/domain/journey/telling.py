"""Telling the person: how duties become one message, a task, or nothing (journey-rules.md §4, §8).

New duties wait in the coalescing window (so updates arriving minutes apart are
one message), then go by the route safeguarding allows; facts that change while a
message waits re-route it; at the moment of sending the message is checked again;
and what the provider did is recorded.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from shared.contracts.messages import MessageOutcome, OutboundMessage, Wake
from shared.domain.journey.duties import digest, message_key, template_for
from shared.domain.journey.safeguard import Route, excluded_reason, route, usable_channels
from shared.domain.journey.state import (
    Compliance,
    Decision,
    Duty,
    DutyStatus,
    Journey,
    Scheduled,
    WindowMessage,
    working_journey,
)
from shared.domain.journey.tasks import officer_task
from shared.domain.policy import Policy
from shared.domain.timing import in_quiet_hours, quiet_hours_end


def dispatch(
    journey: Journey,
    duties: list[Duty],
    policy: Policy,
    now: datetime,
    d: Decision,
    how: Route | None = None,
    *,
    at: datetime | None = None,
    noted: Collection[str] = (),
    taken: Collection[str] = (),
) -> None:
    """Route one group of duties (one feed change, one recipient) to a message, tasks or nothing
    (``how``: a route decided already, such as another channel after a failed delivery).

    A message goes at ``at`` (None: now), an SMS not before the quiet hours end if it falls in
    them; duties in ``noted`` were told the audit's ``deferred`` and ``fallback`` already (a
    window's duties sent again with one that joins it); ``taken``: message keys the journey has
    used already (a window sent again with the duties of a message it replaced needs a key of its
    own, or it would take itself for that one)."""
    if not duties:
        return
    how = how or route(journey, policy)
    if how.action == "suppress":
        for duty in duties:
            duty.status = DutyStatus.SUPPRESSED
            duty.reason = how.reason
            d.note(now, duty.key, "suppressed", how.reason)
            if how.reason == "opted_out" and duty.compliance == Compliance.PENDING:
                # The victim's choice discharges the duty (journey-rules.md §10).
                duty.compliance = Compliance.MET
                d.note(now, duty.key, "deadline_met", "opted_out")
        return
    if how.action == "task":
        # Excluded crimes: each duty its own task with its own deadline; otherwise one task for the group.
        groups = [[duty] for duty in duties] if how.reason.startswith("excluded_crime") else [duties]
        for group in groups:
            task = officer_task(journey, group, how.reason, policy, now)
            d.tasks.append(task)
            for duty in group:
                duty.status = DutyStatus.TASKED
                duty.task_id = task.task_id
                duty.reason = how.reason
                d.note(now, duty.key, "tasked", how.reason)
        return
    keys = [duty.key for duty in duties]
    goes = at or now
    for channel, _address in how.channels:
        key = message_key(journey.crime_reference, journey.person_id, keys, channel)
        again = 0
        while key in taken:
            again += 1
            key = digest(
                "msg", journey.crime_reference, journey.person_id, *sorted(keys), channel, f"again:{again}"
            )
        not_before = at
        if channel == "sms" and in_quiet_hours(goes, policy):
            not_before = quiet_hours_end(goes, policy)
            for duty in duties:
                if duty.key not in noted:
                    d.note(now, duty.key, "deferred", f"quiet_hours until {not_before.isoformat()}")
        d.messages.append(
            OutboundMessage(
                message_key=key,
                crime_reference=journey.crime_reference,
                person_id=journey.person_id,
                duties=keys,
                template=template_for(duties),
                channel=channel,
                decided_at=now,
                not_before=not_before,
            )
        )
        for duty in duties:
            duty.message_keys.append(key)
    for duty in duties:
        duty.status = DutyStatus.QUEUED
        duty.channels = [channel for channel, _ in how.channels]
        if how.fallback and duty.key not in noted:
            d.note(now, duty.key, "fallback", how.reason)


def wake(journey: Journey, purpose: str, at: datetime) -> Scheduled:
    event = Wake(
        event_id=digest("wake", journey.crime_reference, journey.person_id, purpose, at.isoformat()),
        crime_reference=journey.crime_reference,
        person_id=journey.person_id,
        purpose=purpose,
        at=at,
    )
    return Scheduled(event, at)


# How long a replaced window message is remembered: long after it was due, so that one not
# cancelled, arriving late or again, still knows it is not to go.
REPLACED_KEPT = timedelta(days=1)
# Why a window message is not to go: a later message of the window carries its duties (§8).
REPLACED = "replaced"


def window_open(journey: Journey, now: datetime) -> bool:
    return journey.window_closes_at is not None and journey.window_closes_at > now


def window_duties(journey: Journey, now: datetime) -> list[Duty]:
    """The duties waiting for the window's close: those its messages on the queue carry, and
    (a journey stored by earlier code) those WAITING for its ``send_window`` wake."""
    current = {m.message_key for m in journey.window_messages if not m.replaced}
    is_open = window_open(journey, now)
    return [
        duty
        for duty in journey.duties.values()
        if duty.status == DutyStatus.WAITING
        or (is_open and duty.status == DutyStatus.QUEUED and current.intersection(duty.message_keys))
    ]


def replaced_message(journey: Journey, key: str) -> WindowMessage | None:
    """The window message of this key if a later one replaced it (it is not to go)."""
    return next((m for m in journey.window_messages if m.replaced and m.message_key == key), None)


def took_back(journey: Journey, duty: Duty, event: MessageOutcome) -> bool:
    """A replaced window message that carried the duty was handed over, or may have been: it had
    claimed its ledger row before the later message did (its worker died between the claim and
    the provider), so the later message on its channel leaves the duty out, or left it out. The
    duty's fate is this message's: its key goes back among the duty's, the later one's leaves."""
    earlier = replaced_message(journey, event.message_key)
    if earlier is None or duty.key not in earlier.duties or duty.status != DutyStatus.QUEUED:
        return False
    if event.status != "sent" and not (event.reason or "").startswith(OUTCOME_UNKNOWN):
        # Refused or stopped: it told no one, and the later message, which waits for its end
        # before it leaves anything out (``sending.carried``), carries the duty.
        return False
    later = {
        m.message_key
        for m in journey.window_messages
        if not m.replaced and m.channel == earlier.channel and duty.key in m.duties
    }
    duty.message_keys = [*(k for k in duty.message_keys if k not in later), event.message_key]
    return True


def send_window(
    journey: Journey,
    duties: list[Duty],
    policy: Policy,
    now: datetime,
    d: Decision,
    *,
    at: datetime | None,
    joined: Collection[str],
) -> None:
    """Send the window's duties as one message (one per channel), to go at the window's close
    ``at`` (None: now), in place of the window's messages on the queue before, which are
    replaced (the step cancels them). ``joined``: the duties new to the window."""
    is_open = window_open(journey, now)
    kept: list[WindowMessage] = []
    for earlier in journey.window_messages:
        if earlier.replaced:
            if earlier.at + REPLACED_KEPT > now:
                kept.append(earlier)
            continue
        if not is_open:
            continue  # a window closed: its messages are going, or gone
        gone = earlier.model_copy(update={"replaced": True})
        kept.append(gone)
        d.withdrawn.append(gone)
        for key in earlier.duties:
            duty = journey.duties.get(key)
            if duty is not None and earlier.message_key in duty.message_keys:
                duty.message_keys = [k for k in duty.message_keys if k != earlier.message_key]
    first = len(d.messages)
    noted = [duty.key for duty in duties if duty.key not in joined]
    taken = {m.message_key for m in journey.window_messages}
    dispatch(journey, duties, policy, now, d, at=at, noted=noted, taken=taken)
    journey.window_closes_at = at
    if at is not None:
        kept.extend(
            WindowMessage(
                message_key=message.message_key,
                channel=message.channel,
                duties=list(message.duties),
                at=message.not_before or at,
            )
            for message in d.messages[first:]
        )
    journey.window_messages = kept


def offer(journey: Journey, duties: list[Duty], policy: Policy, now: datetime, d: Decision) -> None:
    """New duties go at the coalescing window's close (in one message with every duty that joins
    it), or now when waiting would miss a deadline."""
    if not duties:
        tidy_window(journey, policy, now, d)
        return
    if route(journey, policy).action != "send":
        dispatch(journey, duties, policy, now, d)  # tasks and suppressions need no window
        return
    joining = window_duties(journey, now)
    waiting = [*joining, *(duty for duty in duties if duty not in joining)]
    window = timedelta(minutes=policy.timing.coalesce_minutes)
    open_window = journey.window_closes_at if window_open(journey, now) else None
    closes = open_window or now + window
    joined = [duty.key for duty in duties]
    if window <= timedelta(0) or any(duty.due_by is not None and duty.due_by < closes for duty in waiting):
        send_window(journey, waiting, policy, now, d, at=None, joined=joined)
        return
    send_window(journey, waiting, policy, now, d, at=closes, joined=joined)
    if open_window is not None:
        for duty in duties:
            d.note(now, duty.key, "coalesced", f"joins the message due at {closes.isoformat()}")


def tidy_window(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """Duties that left the open window (a milestone withdrawn, a visit attended, a contact
    logged): its message goes again at its close without them, or, none left, not at all (the
    window stays open until its close, for a duty that joins it)."""
    current = [m for m in journey.window_messages if not m.replaced]
    if not current or not window_open(journey, now):
        return
    staying = window_duties(journey, now)
    keys = {duty.key for duty in staying}
    if all(keys.issuperset(m.duties) for m in current):
        return
    if staying:
        send_window(journey, staying, policy, now, d, at=journey.window_closes_at, joined=())
        return
    # One not cancelled in time comes and finds its duties decided, and stops.
    d.withdrawn.extend(current)
    journey.window_messages = [m for m in journey.window_messages if m.replaced]


def close_window(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """A journey stored by earlier code: send every WAITING duty of the recipient as one message,
    now (its window's ``send_window`` wake has come)."""
    journey.window_closes_at = None
    waiting = [duty for duty in journey.duties.values() if duty.status == DutyStatus.WAITING]
    dispatch(journey, waiting, policy, now, d)


def stop_waiting_messages(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """Facts changed (a flag, an opt-out): re-route every duty whose message is not yet sent."""
    waiting = [
        duty for duty in journey.duties.values() if duty.status in (DutyStatus.QUEUED, DutyStatus.WAITING)
    ]
    if not waiting:
        return
    how = route(journey, policy)
    in_window = window_duties(journey, now)
    if how.action == "send":
        # The window's messages go at its close by the channels the route now names, as they
        # would have gone had they waited for it to decide them (WAITING duties of a journey
        # stored by earlier code are routed when their wake comes, as before).
        current = {m.channel for m in journey.window_messages if not m.replaced}
        if window_open(journey, now) and in_window and current and current != {c for c, _ in how.channels}:
            if how.fallback:
                for duty in in_window:
                    d.note(now, duty.key, "fallback", how.reason)
            send_window(journey, in_window, policy, now, d, at=journey.window_closes_at, joined=())
        # A waiting message keeps its channel if that is still usable (the address is re-read at
        # send time); otherwise it goes again by the channel that now is, and the old one stops.
        stranded = [
            duty
            for duty in waiting
            if duty.status == DutyStatus.QUEUED
            and duty not in in_window
            and not set(allowed_channels(journey, [duty], policy)).intersection(duty.channels)
        ]
        for duty in stranded:
            d.note(now, duty.key, "fallback", "channel_no_longer_usable")
        dispatch(journey, stranded, policy, now, d)
        return
    for duty in waiting:
        if duty.status == DutyStatus.QUEUED and duty not in in_window:
            # The message keeps its key: at send time it finds the duty no longer queued and stops.
            d.note(now, duty.key, "suppressed", how.reason)
    if window_open(journey, now):
        # The window's messages are not to go: cancelled (one that comes all the same finds its
        # duties no longer queued, and stops).
        d.withdrawn.extend(m for m in journey.window_messages if not m.replaced)
        journey.window_messages = [m for m in journey.window_messages if m.replaced]
    journey.window_closes_at = None
    dispatch(journey, waiting, policy, now, d)


def too_late(duty: Duty, policy: Policy, now: datetime) -> bool:
    """An attendance message is pointless once the visit is under the notice period away."""
    appointment = duty.details.get("appointment")
    if duty.template != "attendance_booked" or not appointment:
        return False
    notice = timedelta(minutes=policy.timing.attendance_min_notice_minutes)
    return datetime.fromisoformat(appointment) - now < notice


def send_time_check(
    journey: Journey,
    message: OutboundMessage,
    policy: Policy,
    now: datetime,
    *,
    carried: Collection[str] = (),
) -> tuple[list[Duty], str | None]:
    """At the moment of sending: the duties still to be told, or the reason not to send at all
    (``carried``: for a replaced window message, the duties it was decided with that are still
    queued count as its own, though its key has left them)."""
    excluded = excluded_reason(journey, policy)
    if excluded:
        return [], excluded
    live = [
        duty
        for key in message.duties
        if (duty := journey.duties.get(key)) is not None
        and (
            (duty.status in (DutyStatus.QUEUED, DutyStatus.SENT) and message.message_key in duty.message_keys)
            or (duty.status == DutyStatus.QUEUED and key in carried)
        )
        and not too_late(duty, policy, now)
    ]
    if not live:
        duties = [journey.duties[k] for k in message.duties if k in journey.duties]
        if duties and all(too_late(duty, policy, now) for duty in duties):
            return [], "appointment_too_soon"
        return [], "no_live_duty:" + ",".join(sorted({duty.status.value for duty in duties}))
    how = route(journey, policy)
    if how.action != "send":
        return [], how.reason
    if message.channel not in allowed_channels(journey, live, policy):
        return [], f"{message.channel}_no_longer_usable"
    return live, None


def allowed_channels(journey: Journey, duties: list[Duty], policy: Policy) -> dict[str, str | None]:
    """The channels these duties may go by now, with their addresses: the route's, and for duties
    sent the other way after a failed delivery (§12), any channel still safe and valid."""
    how = route(journey, policy)
    if how.action != "send":
        return {}
    allowed: dict[str, str | None] = dict(how.channels)
    if duties and all(duty.redirected for duty in duties):
        usable = usable_channels(journey, policy)
        allowed.update({channel: address for channel, address in usable.items() if address})
    return allowed


def address_for(
    journey: Journey, channel: str, policy: Policy, duties: list[Duty] | None = None
) -> str | None:
    """The current address for a channel (E.164 mobile or normalised email) for these duties."""
    return allowed_channels(journey, duties or [], policy).get(channel)


# The reason of a MessageOutcome told by delivery_report, not send_message: a message whose
# outcome was unknown that the provider then reported delivered.
DELIVERY_REPORT = "delivery report says"


# The prefix of the reason of a message whose fate the provider cannot tell (journey-rules.md §9).
OUTCOME_UNKNOWN = "outcome_unknown"
# Why a message meant to go may not have: an earlier attempt may have reached the provider, which
# would no longer take a repeat as the same message, so none is made (domain/sending.py).
REPEAT_WINDOW_PASSED = "repeat_window_passed"
PROVIDER_REPEAT_EXPIRED = "provider_repeat_expired"
UNCONFIRMED = frozenset(f"{OUTCOME_UNKNOWN}:{why}" for why in (REPEAT_WINDOW_PASSED, PROVIDER_REPEAT_EXPIRED))
# The task for such a message's duty when no deadline will bring it to an officer.
DELIVERY_UNKNOWN = "delivery_unknown"


def evaluate_message_outcome(
    journey: Journey, event: MessageOutcome, policy: Policy, now: datetime, *, owned: bool = False
) -> Decision:
    """Record what send_message (or, for a message it could not account for, its delivery
    report) says became of a message.

    A message that may or may not have reached the person leaves its duty untold. A duty with a
    Victims' Code deadline goes to an officer when that deadline passes; one without (a check-in,
    a visit) goes to one now, or nobody would ever know the person may not have heard."""
    state = working_journey(journey, owned)
    d = Decision(state)
    unaccounted: list[Duty] = []
    if event.status == "suppressed" and event.reason == REPLACED:
        return d  # a window message not sent because a later one carries its duties (§8)
    for key in event.duties:
        duty = state.duties.get(key)
        if duty is None:
            continue
        if event.message_key not in duty.message_keys and not took_back(state, duty, event):
            continue
        if event.status == "sent":
            if event.message_key in duty.undelivered:
                continue  # handed over, but reported failed first: it told no one (§12)
            if event.reason and event.reason.startswith(DELIVERY_REPORT) and duty.handed_at is None:
                d.note(now, key, "sent", f"{event.channel}: {event.reason}")
            if duty.handed_at is None:
                duty.handed_at = event.at
            if duty.status == DutyStatus.TASKED and duty.reason == DELIVERY_UNKNOWN and duty.task_id:
                d.close_task(duty.task_id, "delivered")  # the report settles what the officer would ask
            duty.status = DutyStatus.SENT
            state.last_contact_at = max(filter(None, [state.last_contact_at, event.at]))
            if duty.compliance == Compliance.PENDING and duty.due_by and event.at <= duty.due_by:
                duty.compliance = Compliance.MET
                d.note(now, key, "deadline_met", "message_sent")
        elif duty.status == DutyStatus.QUEUED:
            others_waiting = [k for k in duty.message_keys if k != event.message_key]
            # A message that may have gone keeps its key: its delivery report may yet say it did.
            duty.message_keys = duty.message_keys if event.reason in UNCONFIRMED else others_waiting
            if not others_waiting:
                duty.status = DutyStatus.SUPPRESSED
                duty.reason = event.reason
                if event.reason in UNCONFIRMED and duty.due_by is None:
                    unaccounted.append(duty)
    if unaccounted:
        task = officer_task(state, unaccounted, DELIVERY_UNKNOWN, policy, now)
        d.tasks.append(task)
        for duty in unaccounted:
            duty.status = DutyStatus.TASKED
            duty.task_id = task.task_id
            duty.reason = DELIVERY_UNKNOWN
            d.note(now, duty.key, "tasked", DELIVERY_UNKNOWN)
    return d
