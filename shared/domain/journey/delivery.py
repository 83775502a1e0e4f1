"""Delivery, not hand-over: a message the provider reports failed did not tell the person (journey-rules.md §12).

A permanent failure reopens the duties that message carried, unless another
message still carries them: the other channel once, if it is safe and valid
(audit ``fallback: delivery_failed``), otherwise an officer task (reason
``delivery_failed``) with the duty's deadline. A duty met by that message is met
no longer: its compliance is decided by what reopened it, and its deadline is
checked again, at once if it has passed, otherwise when it comes (the check it had
was cancelled when it was met).
"""

from __future__ import annotations

from datetime import datetime

from shared.contracts.messages import DeadlineCheck, MessageUndelivered
from shared.domain.journey.duties import digest
from shared.domain.journey.safeguard import Route, route, usable_channels
from shared.domain.journey.state import (
    APPLIED_EVENTS_KEPT,
    Compliance,
    Decision,
    Duty,
    DutyStatus,
    Journey,
    Scheduled,
    working_journey,
)
from shared.domain.journey.tasks import CHANNELS, DELIVERY_FAILED
from shared.domain.journey.telling import dispatch
from shared.domain.policy import Policy


def evaluate_undelivered(
    journey: Journey, event: MessageUndelivered, policy: Policy, now: datetime, *, owned: bool = False
) -> Decision:
    """The provider reports a message failed for good: reopen what it alone carried."""
    if event.event_id in journey.applied_events:
        return Decision(journey, unchanged=True)
    state = working_journey(journey, owned)
    state.applied_events = [*state.applied_events[-(APPLIED_EVENTS_KEPT - 1) :], event.event_id]
    d = Decision(state)
    reopened: list[Duty] = []
    unmet: set[str] = set()  # met by that message: their checks were cancelled, or came and went
    for key in event.duties:
        duty = state.duties.get(key)
        if (
            duty is None
            or event.message_key not in duty.message_keys
            or event.message_key in duty.undelivered
        ):
            continue
        duty.undelivered.append(event.message_key)
        if event.channel not in duty.failed_channels:
            duty.failed_channels.append(event.channel)
        d.note(now, key, "undelivered", f"{event.channel}: {event.status}")
        if duty.status not in (DutyStatus.SENT, DutyStatus.QUEUED):
            continue  # discharged, superseded or with an officer since: nothing to reopen
        # (QUEUED: handed over, as the report shows, though send_message has not said so yet.)
        if any(other not in duty.undelivered for other in duty.message_keys):
            continue  # another message (the other channel of "both") still carries it
        duty.handed_at = None
        if duty.compliance == Compliance.MET:
            duty.compliance = Compliance.PENDING  # that message did not meet it after all
            unmet.add(key)
        reopened.append(duty)
    if not reopened:
        return d
    dispatch(state, reopened, policy, now, d, _reroute(state, reopened, event, policy))
    for duty in reopened:
        if duty.compliance != Compliance.PENDING or duty.due_by is None:
            continue
        if duty.due_by <= now or duty.key in unmet:
            # Its deadline check came and went (it was met then), or was cancelled when it was
            # met: decide it again, now if the deadline has passed, else at the deadline.
            check = DeadlineCheck(
                event_id=digest(
                    "deadline", state.crime_reference, state.person_id, duty.key, event.message_key
                ),
                crime_reference=state.crime_reference,
                person_id=state.person_id,
                duty=duty.key,
            )
            d.scheduled.append(Scheduled(check, max(duty.due_by, now)))
    return d


def _reroute(journey: Journey, duties: list[Duty], event: MessageUndelivered, policy: Policy) -> Route:
    """The other channel once, if safe and valid and not already tried; else an officer task.
    Safeguarding first, as ever."""
    how = route(journey, policy)
    if how.action != "send":
        return how  # excluded or opted out since: a task, or the person's choice
    if not any(duty.redirected for duty in duties):
        # Every message that carried them failed, so each channel they went by did: for a "both"
        # message that is both, and there is no other channel left to try.
        tried = {event.channel}.union(*(duty.channels for duty in duties))
        others = [
            (channel, address)
            for channel, address in usable_channels(journey, policy).items()
            if address and channel not in tried
        ]
        if others:
            for duty in duties:
                duty.redirected = True
            return Route("send", DELIVERY_FAILED, channels=(others[0],), fallback=True)
    # The officer is told the channels the provider reported failed (the task's note), not those
    # only meant to be used (a message stopped before it went did not fail), never the addresses.
    failed = set().union(*(duty.failed_channels for duty in duties))  # this report's channel among them
    return Route("task", DELIVERY_FAILED, note=",".join(channel for channel in CHANNELS if channel in failed))
