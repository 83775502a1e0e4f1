"""The recipient's own page: what they choose there, and a message to their officer (journey-rules.md §13).

A choice made on the page wins over the feed until the feed changes that preference itself: the
journey keeps what the feed said when the choice was made, and a later feed record with a
different value for that preference ends the choice for it. A change is audited (the new values
are words of the page's own forms, never personal data), takes effect for messages already waiting
(they are routed again, as an opt-out in the feed would), and asks the officer for Niche to be
updated. A message to the officer becomes an officer task that carries its text.
"""

from __future__ import annotations

from datetime import datetime

from shared.contracts.messages import MessageToOfficer, PreferencesChosen
from shared.domain.journey.checkin import ensure_checkin
from shared.domain.journey.state import (
    APPLIED_EVENTS_KEPT,
    CHOICES,
    Decision,
    Journey,
    PageChoice,
    apply_page_choice,
    working_journey,
)
from shared.domain.journey.tasks import officer_task
from shared.domain.journey.telling import stop_waiting_messages
from shared.domain.people import Preferences
from shared.domain.policy import Policy

PREFERENCES_CHANGED = "preferences_changed_on_page"  # the task asking for Niche to be updated
VICTIM_MESSAGE = "victim_message"  # the task carrying a message the recipient sent from their page
PAGE_DUTY = "page"  # the audit's duty column for what happens on the page (it discharges no duty)


def _feed_preferences(journey: Journey) -> Preferences:
    """What the feed says of the preferences (under any earlier choice)."""
    assert journey.victim is not None
    if journey.page_choice is None:
        return journey.victim.preferences
    return journey.page_choice.feed.model_copy(
        update={
            name: getattr(journey.victim.preferences, name)
            for name in CHOICES
            if getattr(journey.page_choice, name) is None
        }
    )


def evaluate_preferences_chosen(
    journey: Journey, event: PreferencesChosen, policy: Policy, now: datetime, *, owned: bool = False
) -> Decision:
    if event.event_id in journey.applied_events:
        return Decision(journey, unchanged=True)
    if journey.role == "caller":
        return _caller_chose(journey, event, policy, now, owned=owned)
    if journey.victim is None:
        return Decision(journey, unchanged=True)
    state = working_journey(journey, owned)
    d = Decision(state)
    assert state.victim is not None
    chosen = {name: getattr(event, name) for name in CHOICES if getattr(event, name) is not None}
    before = state.victim.preferences
    changed = {name: value for name, value in chosen.items() if getattr(before, name) != value}
    state.applied_events = [*state.applied_events[-(APPLIED_EVENTS_KEPT - 1) :], event.event_id]
    if not changed:
        return d
    earlier = state.page_choice
    kept = {} if earlier is None else {n: v for n in CHOICES if (v := getattr(earlier, n)) is not None}
    feed = _feed_preferences(state)
    state.page_choice = PageChoice(changed_at=event.at, feed=feed, **(kept | changed))
    state.victim = state.victim.model_copy(update={"preferences": feed})
    apply_page_choice(state)
    if "frequency_days" in changed or changed.get("opted_out") is False:
        # The next check-in at the new interval from now (the wake at the old time is ignored).
        state.next_checkin_at = None
        ensure_checkin(state, policy, now, d)
    return _changed(d, changed, event, policy, now)


def _caller_chose(
    journey: Journey, event: PreferencesChosen, policy: Policy, now: datetime, *, owned: bool = False
) -> Decision:
    """A STORM caller can stop updates on their page (or start them again), nothing else."""
    state = working_journey(journey, owned)
    d = Decision(state)
    state.applied_events = [*state.applied_events[-(APPLIED_EVENTS_KEPT - 1) :], event.event_id]
    caller = state.caller
    if caller is None or event.opted_out is None:
        return d
    if event.opted_out and caller.consent_to_updates:
        state.page_choice = PageChoice(
            opted_out=True, changed_at=event.at, feed=Preferences(), feed_consent=caller.consent_to_updates
        )
        apply_page_choice(state)
    elif not event.opted_out and state.page_choice is not None:
        state.caller = caller.model_copy(update={"consent_to_updates": state.page_choice.feed_consent})
        state.page_choice = None
    else:
        return d
    return _changed(d, {"opted_out": event.opted_out}, event, policy, now)


def _changed(
    d: Decision, changed: dict[str, object], event: PreferencesChosen, policy: Policy, now: datetime
) -> Decision:
    """What every change made on the page brings, whoever made it: the audit in the form's words,
    messages already waiting routed again (or stopped), and a task asking for Niche to be updated."""
    words = ", ".join(f"{name}={str(value).lower()}" for name, value in sorted(changed.items()))
    d.note(now, PAGE_DUTY, "preferences_changed", words)
    stop_waiting_messages(d.journey, policy, now, d)
    task = officer_task(d.journey, [], f"{PREFERENCES_CHANGED}:{event.event_id[:12]}", policy, now)
    d.tasks.append(task.model_copy(update={"note": words}))
    return d


def evaluate_message_to_officer(
    journey: Journey, event: MessageToOfficer, policy: Policy, now: datetime, *, owned: bool = False
) -> Decision:
    if event.event_id in journey.applied_events:
        return Decision(journey, unchanged=True)
    state = working_journey(journey, owned)
    d = Decision(state)
    state.applied_events = [*state.applied_events[-(APPLIED_EVENTS_KEPT - 1) :], event.event_id]
    task = officer_task(state, [], f"{VICTIM_MESSAGE}:{event.event_id[:12]}", policy, now)
    d.tasks.append(task.model_copy(update={"note": event.text}))
    d.note(now, PAGE_DUTY, "message_to_officer", task.task_id)
    return d
