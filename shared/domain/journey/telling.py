"""Telling the person: how duties become one message, a task, or nothing (journey-rules.md §4, §8).

New duties wait in the coalescing window (so updates arriving minutes apart are
one message), then go by the route safeguarding allows; facts that change while a
message waits re-route it; at the moment of sending the message is checked again;
and what the provider did is recorded.
"""

from __future__ import annotations

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
    working_journey,
)
from shared.domain.journey.tasks import officer_task
from shared.domain.policy import Policy
from shared.domain.timing import in_quiet_hours, quiet_hours_end


def dispatch(
    journey: Journey, duties: list[Duty], policy: Policy, now: datetime, d: Decision, how: Route | None = None
) -> None:
    """Route one group of duties (one feed change, one recipient) to a message, tasks or nothing
    (``how``: a route decided already, such as another channel after a failed delivery)."""
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
            task = officer_task(journey, group, how.reason, policy, now, note=how.note)
            d.tasks.append(task)
            for duty in group:
                duty.status = DutyStatus.TASKED
                duty.task_id = task.task_id
                duty.reason = how.reason
                d.note(now, duty.key, "tasked", how.reason)
        return
    keys = [duty.key for duty in duties]
    for channel, _address in how.channels:
        key = message_key(journey.crime_reference, journey.person_id, keys, channel)
        not_before = None
        if channel == "sms" and in_quiet_hours(now, policy):
            not_before = quiet_hours_end(now, policy)
            for duty in duties:
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
        if how.fallback:
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


def offer(journey: Journey, duties: list[Duty], policy: Policy, now: datetime, d: Decision) -> None:
    """New duties wait in the coalescing window, or go now when waiting would miss a deadline."""
    if not duties:
        return
    if route(journey, policy).action != "send":
        dispatch(journey, duties, policy, now, d)  # tasks and suppressions need no window
        return
    for duty in duties:
        duty.status = DutyStatus.WAITING
    waiting = [duty for duty in journey.duties.values() if duty.status == DutyStatus.WAITING]
    window = timedelta(minutes=policy.timing.coalesce_minutes)
    open_window = (
        journey.window_closes_at if journey.window_closes_at and journey.window_closes_at > now else None
    )
    closes = open_window or now + window
    if window <= timedelta(0) or any(duty.due_by is not None and duty.due_by < closes for duty in waiting):
        close_window(journey, policy, now, d)
        return
    if open_window is None:
        journey.window_closes_at = closes
        d.scheduled.append(wake(journey, "send_window", closes))
    else:
        for duty in duties:
            d.note(now, duty.key, "coalesced", f"joins the message due at {closes.isoformat()}")


def close_window(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """Send every waiting duty of the recipient as one message."""
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
    if how.action == "send":
        # A waiting message keeps its channel if that is still usable (the address is re-read at
        # send time); otherwise it goes again by the channel that now is, and the old one stops.
        stranded = [
            duty
            for duty in waiting
            if duty.status == DutyStatus.QUEUED
            and not set(allowed_channels(journey, [duty], policy)).intersection(duty.channels)
        ]
        for duty in stranded:
            d.note(now, duty.key, "fallback", "channel_no_longer_usable")
        dispatch(journey, stranded, policy, now, d)
        return
    for duty in waiting:
        if duty.status == DutyStatus.QUEUED:
            # The message keeps its key: at send time it finds the duty no longer queued and stops.
            d.note(now, duty.key, "suppressed", how.reason)
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
    journey: Journey, message: OutboundMessage, policy: Policy, now: datetime
) -> tuple[list[Duty], str | None]:
    """At the moment of sending: the duties still to be told, or the reason not to send at all."""
    excluded = excluded_reason(journey, policy)
    if excluded:
        return [], excluded
    live = [
        journey.duties[key]
        for key in message.duties
        if key in journey.duties
        and journey.duties[key].status in (DutyStatus.QUEUED, DutyStatus.SENT)
        and message.message_key in journey.duties[key].message_keys
        and not too_late(journey.duties[key], policy, now)
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
    for key in event.duties:
        duty = state.duties.get(key)
        if duty is None or event.message_key not in duty.message_keys:
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
