"""Checking in: a victim not told anything for a while hears that the case is still open (journey-rules.md §8)."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.contracts.messages import Wake
from shared.domain.journey.duties import DutyKind
from shared.domain.journey.state import Decision, Duty, DutyStatus, Journey, working_journey
from shared.domain.journey.telling import close_window, offer, wake
from shared.domain.policy import Policy


def checkin_interval(journey: Journey, policy: Policy) -> timedelta:
    days = (
        journey.victim.preferences.frequency_days if journey.victim else policy.timing.default_frequency_days
    )
    return timedelta(days=days)


def checkins_stop(journey: Journey) -> bool:
    victim = journey.victim
    opted_out = victim is not None and (victim.preferences.opted_out or victim.preferences.channel == "none")
    return journey.role != "victim" or journey.case_status == "finalised" or opted_out


def ensure_checkin(journey: Journey, policy: Policy, now: datetime, d: Decision) -> None:
    """Schedule the next check-in wake if none is pending and the case is open."""
    if (
        journey.next_checkin_at is not None
        or checkins_stop(journey)
        or DutyKind.ACKNOWLEDGE.key() not in journey.duties
    ):
        return
    basis = max(filter(None, [journey.last_contact_at, now]))
    journey.next_checkin_at = basis + checkin_interval(journey, policy)
    d.scheduled.append(wake(journey, "checkin", journey.next_checkin_at))


def evaluate_wake(
    journey: Journey, event: Wake, policy: Policy, now: datetime, *, owned: bool = False
) -> Decision:
    """A scheduled re-evaluation: the end of a coalescing window, or a check-in."""
    state = working_journey(journey, owned)
    d = Decision(state)
    if event.purpose == "send_window":
        if any(duty.status == DutyStatus.WAITING for duty in state.duties.values()):
            close_window(state, policy, now, d)
        else:
            state.window_closes_at = None
        return d
    if event.purpose != "checkin" or state.next_checkin_at != event.at:
        return Decision(journey, unchanged=True)  # superseded by a later schedule
    state.next_checkin_at = None
    if checkins_stop(state):
        return d
    frequency = checkin_interval(state, policy)
    if state.last_contact_at is not None and state.last_contact_at + frequency > now:
        # Someone was in touch since: the clock restarts from that contact.
        state.next_checkin_at = state.last_contact_at + frequency
        d.scheduled.append(wake(state, "checkin", state.next_checkin_at))
        return d
    if any(duty.status in (DutyStatus.WAITING, DutyStatus.QUEUED) for duty in state.duties.values()):
        # An update is about to go (held for the morning, or in its window): that is the contact,
        # and a "no news yet" check-in beside it would contradict it. The clock restarts now.
        state.next_checkin_at = now + frequency
        d.scheduled.append(wake(state, "checkin", state.next_checkin_at))
        return d
    state.checkins += 1
    key = DutyKind.CHECKIN.key(str(state.checkins))
    duty = Duty(key=key, template="checkin", event_at=now, change_id=event.event_id)
    state.duties[duty.key] = duty
    offer(state, [duty], policy, now, d)
    state.next_checkin_at = now + frequency
    d.scheduled.append(wake(state, "checkin", state.next_checkin_at))
    return d
