"""What a recipient does on their own page, on the pure rules (docs/journey-rules.md §13).

The rule, stated here on its own: a choice made on the page wins over the feed until the feed
changes that preference itself; it is audited in words of the page's own forms, takes effect for
messages already waiting, and asks the officer to update Niche. A message to the officer becomes a
task that carries its text. The same event applied twice changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.adapters.policy_file import load_policy
from shared.contracts.messages import MessageToOfficer, PreferencesChosen
from shared.domain.journey import (
    PREFERENCES_CHANGED,
    VICTIM_MESSAGE,
    Duty,
    DutyStatus,
    Journey,
    evaluate_message_to_officer,
    evaluate_preferences_chosen,
)
from shared.domain.journey.safeguard import refresh_facts
from shared.domain.people import VictimFacts
from tests.builders import incident, niche_change, occurrence, storm_change, victim

POLICY = load_policy()
AT = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


def _journey(channel: str = "email", queued: bool = False) -> Journey:
    facts = VictimFacts.model_validate(victim("P-1", channel=channel))
    duties = {}
    if queued:
        ack = Duty(
            key="ack", template="acknowledgement", event_at=AT, change_id="c1", due_by=AT + timedelta(days=5)
        )
        duties = {
            "ack": ack.model_copy(
                update={"status": DutyStatus.QUEUED, "channels": [channel], "message_keys": ["k1"]}
            )
        }
    return Journey(
        crime_reference="HU/000001/26", person_id="P-1", role="victim", victim=facts, duties=duties
    )


def _chosen(event_id: str = "e1", at: datetime = AT, **choice: object) -> PreferencesChosen:
    return PreferencesChosen(
        event_id=event_id, crime_reference="HU/000001/26", person_id="P-1", at=at, **choice
    )


def test_a_choice_is_used_audited_and_the_officer_is_asked_to_update_niche() -> None:
    d = evaluate_preferences_chosen(_journey("email"), _chosen(channel="sms", frequency_days=14), POLICY, AT)
    assert d.journey.victim is not None
    prefs = d.journey.victim.preferences
    assert (prefs.channel, prefs.frequency_days) == ("sms", 14)
    assert [(a.duty, a.decision, a.reason) for a in d.audit] == [
        ("page", "preferences_changed", "channel=sms, frequency_days=14")
    ]
    [task] = d.tasks
    assert task.reason.startswith(PREFERENCES_CHANGED + ":") and task.duties == []
    assert task.note == "channel=sms, frequency_days=14" and task.due_by is not None and task.due_by > AT
    again = evaluate_preferences_chosen(d.journey, _chosen(channel="sms", frequency_days=14), POLICY, AT)
    assert again.unchanged and not again.tasks  # the same event redelivered


def test_a_choice_stands_until_the_feed_changes_that_preference_itself() -> None:
    d = evaluate_preferences_chosen(_journey("email"), _chosen(channel="sms", opted_out=True), POLICY, AT)
    journey = d.journey
    # Niche sends the record again, its preferences as they were: the page's choices stand.
    same = niche_change(occurrence("2026-11-19T09:00:00Z", victims=[victim("P-1", channel="email")]))
    refresh_facts(journey, same.case, None, None)
    assert journey.victim is not None
    assert (journey.victim.preferences.channel, journey.victim.preferences.opted_out) == ("sms", True)
    # Niche changes the channel (to "both"), not the opt-out: the feed wins for the channel only.
    both = niche_change(occurrence("2026-11-20T09:00:00Z", victims=[victim("P-1", channel="both")]))
    refresh_facts(journey, both.case, None, None)
    assert journey.victim is not None
    assert (journey.victim.preferences.channel, journey.victim.preferences.opted_out) == ("both", True)
    assert journey.page_choice is not None and journey.page_choice.channel is None
    # Niche then records the opt-out itself, and lifts it: the feed has changed it, so the feed wins.
    lifted = victim("P-1", channel="both", opted_out=True)
    refresh_facts(
        journey, niche_change(occurrence("2026-11-21T09:00:00Z", victims=[lifted])).case, None, None
    )
    refresh_facts(
        journey,
        niche_change(occurrence("2026-11-22T09:00:00Z", victims=[victim("P-1", channel="both")])).case,
        None,
        None,
    )
    assert journey.victim is not None and journey.victim.preferences.opted_out is False
    assert journey.page_choice is None  # nothing of the page's choice is left


def test_stopping_on_the_page_stops_a_message_already_waiting() -> None:
    d = evaluate_preferences_chosen(_journey("email", queued=True), _chosen(opted_out=True), POLICY, AT)
    decisions = [(a.duty, a.decision) for a in d.audit]
    assert ("page", "preferences_changed") in decisions and ("ack", "suppressed") in decisions
    assert d.journey.duties["ack"].status != DutyStatus.QUEUED and not d.messages


def test_a_new_channel_takes_over_a_message_already_waiting() -> None:
    d = evaluate_preferences_chosen(_journey("email", queued=True), _chosen(channel="sms"), POLICY, AT)
    assert [m.channel for m in d.messages] == ["sms"] and d.messages[0].duties == ["ack"]
    assert ("ack", "fallback", "channel_no_longer_usable") in [
        (a.duty, a.decision, a.reason) for a in d.audit
    ]


def test_a_choice_that_changes_nothing_writes_no_task() -> None:
    d = evaluate_preferences_chosen(_journey("email"), _chosen(channel="email"), POLICY, AT)
    assert not d.tasks and not d.audit and d.journey.page_choice is None


def test_a_message_to_the_officer_is_a_task_that_carries_its_text() -> None:
    text = "I have remembered the registration: it was a blue van."
    event = MessageToOfficer(event_id="m1", crime_reference="HU/000001/26", person_id="P-1", text=text, at=AT)
    d = evaluate_message_to_officer(_journey(), event, POLICY, AT)
    [task] = d.tasks
    assert task.reason.startswith(VICTIM_MESSAGE + ":") and task.note == text
    assert [(a.decision, a.reason) for a in d.audit] == [
        ("message_to_officer", task.task_id)
    ]  # never the text
    second = MessageToOfficer(
        event_id="m2", crime_reference="HU/000001/26", person_id="P-1", text=text, at=AT
    )
    assert evaluate_message_to_officer(d.journey, second, POLICY, AT).tasks[0].task_id != task.task_id
    assert evaluate_message_to_officer(d.journey, event, POLICY, AT).unchanged


def test_a_new_check_in_frequency_moves_the_next_check_in_to_that_interval_from_now() -> None:
    journey = _journey("email", queued=True).model_copy(update={"next_checkin_at": AT + timedelta(days=28)})
    d = evaluate_preferences_chosen(journey, _chosen(frequency_days=14), POLICY, AT)
    assert d.journey.next_checkin_at == AT + timedelta(days=14)
    assert [(w.event.purpose, w.event.at) for w in d.scheduled] == [("checkin", AT + timedelta(days=14))]
    # Stopping cancels check-ins: the wake already set finds none expected and does nothing.
    stopped = evaluate_preferences_chosen(d.journey, _chosen("e2", opted_out=True), POLICY, AT)
    assert not stopped.scheduled


def _caller(consent: bool = True) -> Journey:
    journey = Journey(crime_reference="HU-20261120-0123", person_id="C-77", role="caller")
    refresh_facts(journey, storm_change(incident("2026-11-20T10:00:00Z", consent=consent)).case, None, None)
    return journey


def test_a_caller_can_stop_updates_and_it_stands_until_storm_changes_their_consent() -> None:
    event = PreferencesChosen(
        event_id="s1", crime_reference="HU-20261120-0123", person_id="C-77", opted_out=True, at=AT
    )
    d = evaluate_preferences_chosen(_caller(), event, POLICY, AT)
    assert d.journey.caller is not None and d.journey.caller.consent_to_updates is False
    assert [(a.decision, a.reason) for a in d.audit] == [("preferences_changed", "opted_out=true")]
    assert len(d.tasks) == 1 and d.tasks[0].reason.startswith(PREFERENCES_CHANGED)
    journey = d.journey
    # STORM sends the incident again with the consent as it was: the stop stands.
    refresh_facts(journey, storm_change(incident("2026-11-21T10:00:00Z", consent=True)).case, None, None)
    assert journey.caller is not None and journey.caller.consent_to_updates is False
    # STORM records the consent withdrawn, then given again: STORM has changed it, so STORM wins.
    refresh_facts(journey, storm_change(incident("2026-11-22T10:00:00Z", consent=False)).case, None, None)
    refresh_facts(journey, storm_change(incident("2026-11-23T10:00:00Z", consent=True)).case, None, None)
    assert journey.caller is not None and journey.caller.consent_to_updates is True
    assert journey.page_choice is None


def test_a_caller_who_never_agreed_to_updates_has_nothing_to_stop() -> None:
    event = PreferencesChosen(
        event_id="s1", crime_reference="HU-20261120-0123", person_id="C-77", opted_out=True, at=AT
    )
    d = evaluate_preferences_chosen(_caller(consent=False), event, POLICY, AT)
    assert not d.tasks and not d.audit and d.journey.page_choice is None
