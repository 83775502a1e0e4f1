"""Delivery, not hand-over, on the pure rules (docs/journey-rules.md §12).

A message the provider reports failed for good did not tell the person: the duties
it alone carried are reopened, on the other channel once if it is safe and valid,
otherwise as an officer task with the duty's deadline; a duty it met is met no
longer. Built on journeys in memory; no host, no tables.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from shared.adapters.policy_file import load_policy
from shared.contracts.messages import MessageOutcome, MessageUndelivered, OutboundMessage
from shared.domain.journey import (
    Compliance,
    Decision,
    Duty,
    DutyStatus,
    Journey,
    evaluate_message_outcome,
    evaluate_undelivered,
)
from shared.domain.journey.duties import digest
from shared.domain.journey.telling import dispatch
from shared.domain.people import VictimFacts
from shared.domain.sending import check

POLICY = load_policy()
SENT_AT = datetime(2026, 11, 18, 10, 10, tzinfo=UTC)  # a Wednesday
DUE = datetime(2026, 11, 25, 23, 59, 59, tzinfo=UTC)


def _victim(
    channel: str = "sms", email: str | None = "alex@example.org", safe_email: bool = True, **prefs: object
) -> VictimFacts:
    return VictimFacts.model_validate(
        {
            "person_id": "P-1",
            "date_of_birth": "1990-01-01",
            "contact": {"email": email, "mobile": "07700 900123"},
            "preferences": {"channel": channel, **prefs},
            "safe_contact": {"sms": True, "email": safe_email},
        }
    )


def _journey(victim: VictimFacts, keys: tuple[str, ...] = ("k-sms",), **duty: object) -> Journey:
    arrest = Duty(
        key="m:M-1",
        template="suspect_arrested",
        event_at=SENT_AT - timedelta(minutes=10),
        change_id="c",
        due_by=DUE,
        status=DutyStatus.SENT,
        compliance=Compliance.MET,
        handed_at=SENT_AT,
        message_keys=list(keys),
        channels=["sms"],
    ).model_copy(update=duty)
    return Journey(
        crime_reference="HU/000001/26",
        person_id="P-1",
        role="victim",
        victim=victim,
        duties={arrest.key: arrest},
    )


def _failed(key: str = "k-sms", channel: str = "sms", status: str = "Failed") -> MessageUndelivered:
    return MessageUndelivered(
        event_id=f"u-{key}",
        crime_reference="HU/000001/26",
        person_id="P-1",
        message_key=key,
        duties=["m:M-1"],
        channel="sms" if channel == "sms" else "email",
        status=status,
        at=SENT_AT + timedelta(minutes=1),
    )


NOW = SENT_AT + timedelta(minutes=2)


def test_a_failed_text_goes_again_by_email_once_and_the_duty_is_met_no_longer() -> None:
    d = evaluate_undelivered(_journey(_victim()), _failed(), POLICY, NOW)
    duty = d.journey.duties["m:M-1"]
    [message] = d.messages
    assert (message.channel, message.duties) == ("email", ["m:M-1"])
    assert (
        duty.status == DutyStatus.QUEUED and duty.compliance == Compliance.PENDING and duty.handed_at is None
    )
    assert [(a.decision, a.reason) for a in d.audit] == [
        ("undelivered", "sms: Failed"),
        ("fallback", "delivery_failed"),
    ]
    assert not d.tasks


def test_the_message_on_the_other_channel_passes_the_check_at_sending_and_no_other_does() -> None:
    # The victim prefers texts: the email is allowed only because its duty was sent the other way.
    d = evaluate_undelivered(_journey(_victim()), _failed(), POLICY, NOW)
    [email] = d.messages
    checked = check(email, d.journey, POLICY, NOW)
    assert checked.ready and checked.address == "alex@example.org" and checked.reason is None
    # The same email for a duty never redirected is not the victim's channel, and does not go.
    plain = _journey(_victim(), keys=(email.message_key,))
    assert check(email, plain, POLICY, NOW).reason == "email_no_longer_usable"
    # Marked unsafe after the redirect: the email stops at sending, like any other.
    unsafe = d.journey.model_copy(update={"victim": _victim(safe_email=False)})
    assert check(email, unsafe, POLICY, NOW).reason == "email_no_longer_usable"


def test_when_the_other_channel_fails_too_an_officer_gets_a_task_due_with_the_duty() -> None:
    first = evaluate_undelivered(_journey(_victim()), _failed(), POLICY, NOW)
    [email] = first.messages
    sent = first.journey.model_copy(deep=True)
    duty = sent.duties["m:M-1"]
    duty.status, duty.handed_at = DutyStatus.SENT, NOW
    second = evaluate_undelivered(
        sent, _failed(email.message_key, "email", "Bounced"), POLICY, NOW + timedelta(hours=1)
    )
    [task] = second.tasks
    assert (task.reason, task.duties, task.due_by) == ("delivery_failed", ["m:M-1"], DUE)
    assert task.note == "email,sms"  # the text failed, then the email: the officer is told both
    assert not second.messages and second.journey.duties["m:M-1"].status == DutyStatus.TASKED


def test_with_no_safe_and_valid_other_channel_the_officer_is_asked_at_once() -> None:
    for victim in (_victim(email=None), _victim(safe_email=False), _victim(email="not an address")):
        d = evaluate_undelivered(_journey(victim), _failed(), POLICY, NOW)
        assert [t.reason for t in d.tasks] == ["delivery_failed"] and not d.messages
        assert [t.note for t in d.tasks] == ["sms"]  # the channel that failed, and only it


def test_the_task_names_the_channels_reported_failed_not_those_only_meant_to_be_used() -> None:
    # "both", but the text was stopped before it went (its number no longer safe): its key left
    # the duty, not its channel. The email then bounced: only the email failed, and the officer
    # is told so, not that two messages failed.
    journey = _journey(_victim(channel="both"), keys=("k-email",), channels=["email", "sms"])
    d = evaluate_undelivered(journey, _failed("k-email", "email", "Bounced"), POLICY, NOW)
    assert [(t.reason, t.note) for t in d.tasks] == [("delivery_failed", "email")] and not d.messages
    assert d.journey.duties["m:M-1"].failed_channels == ["email"]


def test_a_duty_another_message_still_carries_is_not_reopened() -> None:
    # "both": the email still stands, so the failed text leaves the duty met.
    journey = _journey(_victim(channel="both"), keys=("k-email", "k-sms"))
    d = evaluate_undelivered(journey, _failed(), POLICY, NOW)
    duty = d.journey.duties["m:M-1"]
    assert duty.status == DutyStatus.SENT and duty.compliance == Compliance.MET
    assert not d.messages and not d.tasks and duty.undelivered == ["k-sms"]


def test_a_repeated_report_changes_nothing() -> None:
    once = evaluate_undelivered(_journey(_victim()), _failed(), POLICY, NOW)
    again = evaluate_undelivered(once.journey, _failed(), POLICY, NOW + timedelta(minutes=5))
    assert again.unchanged and not again.messages and not again.tasks


def test_safeguarding_still_comes_first_when_a_message_failed() -> None:
    # Excluded since it was sent: a task for the excluded crime, never a message on the other channel.
    excluded = _journey(_victim()).model_copy(update={"flags": ["domestic_abuse"]})
    d = evaluate_undelivered(excluded, _failed(), POLICY, NOW)
    assert not d.messages and [t.reason for t in d.tasks] == ["excluded_crime:domestic_abuse"]
    # Opted out since: nothing, and the victim's choice meets the duty.
    opted = _journey(_victim(opted_out=True))
    d = evaluate_undelivered(opted, _failed(), POLICY, NOW)
    assert not d.messages and not d.tasks and d.journey.duties["m:M-1"].compliance == Compliance.MET


def test_a_failure_reported_after_the_deadline_is_decided_again_at_once() -> None:
    late = DUE + timedelta(days=1)
    d = evaluate_undelivered(_journey(_victim(email=None)), _failed(), POLICY, late)
    [check] = [s for s in d.scheduled if s.event.type == "deadline_check"]
    assert check.at == late and d.journey.duties["m:M-1"].compliance == Compliance.PENDING


def test_a_duty_met_no_longer_before_its_deadline_is_checked_again_at_the_deadline() -> None:
    # Its check was cancelled when it was met (issue 16): a new one at the deadline, with an id of
    # its own (the report's message), so duplicate detection does not take it for the old one.
    cancelled = digest("deadline", "HU/000001/26", "P-1", "m:M-1", DUE.isoformat())
    for victim in (_victim(), _victim(email=None)):  # again by email, or an officer's task
        d = evaluate_undelivered(_journey(victim), _failed(), POLICY, NOW)
        [check] = [s for s in d.scheduled if s.event.type == "deadline_check"]
        assert d.journey.duties["m:M-1"].compliance == Compliance.PENDING and check.at == DUE
        assert check.event.event_id != cancelled
        again = evaluate_undelivered(_journey(victim), _failed(), POLICY, NOW)
        assert [s.event.event_id for s in again.scheduled if s.event.type == "deadline_check"] == [
            check.event.event_id
        ]  # the same report, the same check


def test_a_duty_reopened_that_was_not_met_keeps_the_check_it_has() -> None:
    # Handed over, but send_message has not said so: nothing met it, so its check was not cancelled.
    queued = _journey(_victim(), status=DutyStatus.QUEUED, handed_at=None, compliance=Compliance.PENDING)
    d = evaluate_undelivered(queued, _failed(), POLICY, NOW)
    assert [s for s in d.scheduled if s.event.type == "deadline_check"] == []


def test_a_failure_reported_before_send_message_recorded_the_hand_over_still_reopens_the_duty() -> None:
    # The worker died after the hand-over: the duty is still queued on the message that failed.
    queued = _journey(_victim(), status=DutyStatus.QUEUED, handed_at=None, compliance=Compliance.PENDING)
    d = evaluate_undelivered(queued, _failed(), POLICY, NOW)
    [email] = d.messages
    assert email.channel == "email" and d.journey.duties["m:M-1"].status == DutyStatus.QUEUED
    # Then the retry finds the message handed over and says so: it told no one, so nothing is met.
    late = MessageOutcome(
        event_id="o-1",
        crime_reference="HU/000001/26",
        person_id="P-1",
        message_key="k-sms",
        duties=["m:M-1"],
        status="sent",
        channel="sms",
        at=NOW,
    )
    after = evaluate_message_outcome(d.journey, late, POLICY, NOW).journey.duties["m:M-1"]
    assert after.compliance == Compliance.PENDING and after.handed_at is None
    assert after.status == DutyStatus.QUEUED  # still waiting for the email


def test_a_message_reported_delivered_after_an_unknown_outcome_meets_the_duty_with_a_note() -> None:
    unknown = _journey(_victim(), status=DutyStatus.SUPPRESSED, handed_at=None, compliance=Compliance.PENDING)
    told = MessageOutcome(
        event_id="o-2",
        crime_reference="HU/000001/26",
        person_id="P-1",
        message_key="k-sms",
        duties=["m:M-1"],
        status="sent",
        channel="sms",
        reason="delivery report says Delivered",
        at=NOW,
    )
    d = evaluate_message_outcome(unknown, told, POLICY, NOW)
    duty = d.journey.duties["m:M-1"]
    assert duty.compliance == Compliance.MET and duty.handed_at == NOW
    assert ("sent", "sms: delivery report says Delivered") in [(a.decision, a.reason) for a in d.audit]


# --- a message whose fate the provider cannot tell (journey-rules.md §9) -------------------------


def _unknown(journey: Journey, reason: str) -> MessageOutcome:
    return MessageOutcome(
        event_id="o-3",
        crime_reference="HU/000001/26",
        person_id="P-1",
        message_key="k-sms",
        duties=list(journey.duties),
        status="suppressed",
        channel="sms",
        reason=reason,
        at=NOW,
    )


UNCONFIRMED_REASONS = ("outcome_unknown:repeat_window_passed", "outcome_unknown:provider_repeat_expired")


def test_an_unconfirmed_message_of_a_duty_without_a_deadline_goes_to_an_officer_at_once() -> None:
    seen = 0
    for reason in UNCONFIRMED_REASONS:
        for template in ("checkin", "attendance_booked"):  # duties the Code sets no deadline for
            queued = _journey(
                _victim(), status=DutyStatus.QUEUED, handed_at=None, compliance=Compliance.NONE, due_by=None
            )
            queued.duties["m:M-1"].template = template
            d = evaluate_message_outcome(queued, _unknown(queued, reason), POLICY, NOW)
            [task] = d.tasks
            duty = d.journey.duties["m:M-1"]
            assert task.reason == "delivery_unknown" and task.duties == ["m:M-1"]
            assert duty.status == DutyStatus.TASKED and duty.task_id == task.task_id
            assert ("tasked", "delivery_unknown") in [(a.decision, a.reason) for a in d.audit]
            seen += 1
    assert seen == 4


def test_an_unconfirmed_message_of_a_duty_with_a_deadline_is_left_to_its_deadline() -> None:
    for reason in UNCONFIRMED_REASONS:
        queued = _journey(_victim(), status=DutyStatus.QUEUED, handed_at=None, compliance=Compliance.PENDING)
        d = evaluate_message_outcome(queued, _unknown(queued, reason), POLICY, NOW)
        assert d.tasks == [] and d.journey.duties["m:M-1"].status == DutyStatus.SUPPRESSED


def test_a_message_held_back_by_the_rules_with_its_fate_unknown_raises_no_task() -> None:
    # Opted out since, or the crime excluded: nothing is to be sent, so nothing for an officer to chase.
    for reason in ("outcome_unknown:opted_out", "outcome_unknown:excluded_crime:domestic_abuse"):
        queued = _journey(
            _victim(), status=DutyStatus.QUEUED, handed_at=None, compliance=Compliance.NONE, due_by=None
        )
        d = evaluate_message_outcome(queued, _unknown(queued, reason), POLICY, NOW)
        assert d.tasks == [] and d.journey.duties["m:M-1"].status == DutyStatus.SUPPRESSED


def test_a_delivery_report_after_the_task_closes_it() -> None:
    queued = _journey(
        _victim(), status=DutyStatus.QUEUED, handed_at=None, compliance=Compliance.NONE, due_by=None
    )
    tasked = evaluate_message_outcome(queued, _unknown(queued, UNCONFIRMED_REASONS[0]), POLICY, NOW)
    [task] = tasked.tasks
    told = _unknown(queued, "delivery report says Delivered").model_copy(
        update={"event_id": "o-4", "status": "sent"}
    )
    d = evaluate_message_outcome(tasked.journey, told, POLICY, NOW)
    assert d.closed_tasks == {task.task_id: "delivered"}
    assert d.journey.duties["m:M-1"].status == DutyStatus.SENT


def test_a_delivery_report_after_an_unconfirmed_outcome_meets_the_duty_it_left_to_its_deadline() -> None:
    queued = _journey(_victim(), status=DutyStatus.QUEUED, handed_at=None, compliance=Compliance.PENDING)
    left = evaluate_message_outcome(queued, _unknown(queued, UNCONFIRMED_REASONS[1]), POLICY, NOW)
    assert left.journey.duties["m:M-1"].status == DutyStatus.SUPPRESSED
    told = _unknown(queued, "delivery report says Delivered").model_copy(
        update={"event_id": "o-5", "status": "sent"}
    )
    duty = evaluate_message_outcome(left.journey, told, POLICY, NOW).journey.duties["m:M-1"]
    assert duty.status == DutyStatus.SENT and duty.compliance == Compliance.MET and duty.handed_at == NOW


def test_no_channel_is_tried_again_once_it_failed_whatever_the_preference_or_order() -> None:
    # The rule: the other channel once, never one that already failed; then an officer. Each
    # preference is sent as the rules send it, then every message carrying the duty fails, in
    # every order, fallbacks included, until nothing is left to try.
    seen: list[tuple[str, tuple[str, ...]]] = []
    for preference in ("sms", "email", "both"):
        first = Decision(_journey(_victim(channel=preference), keys=(), status=DutyStatus.WAITING))
        dispatch(first.journey, list(first.journey.duties.values()), POLICY, NOW, first)
        for order in itertools.permutations(first.messages):
            journey, pending, tried = first.journey, list(order), []
            now = NOW
            while pending:
                message = pending.pop(0)
                assert message.channel not in tried, (preference, message.channel, tried)
                tried.append(message.channel)
                journey = _handed_over(journey, message)
                now += timedelta(minutes=5)
                event = _failed(message.message_key, message.channel, "Failed").model_copy(
                    update={"event_id": f"u-{len(tried)}"}
                )
                d = evaluate_undelivered(journey, event, POLICY, now)
                journey = d.journey
                pending.extend(d.messages)
                if not pending:
                    duty = journey.duties["m:M-1"]
                    assert [t.reason for t in d.tasks] == ["delivery_failed"], (preference, tried)
                    # The task names every channel that failed, in one order whatever the order of failing.
                    assert [t.note for t in d.tasks] == [",".join(sorted(set(tried)))], (preference, tried)
                    assert duty.status == DutyStatus.TASKED and duty.compliance == Compliance.PENDING
            assert sorted(tried) == ["email", "sms"], (preference, tried)  # each channel once
            seen.append((preference, tuple(tried)))
    # One order for a single channel (its fallback follows), two for "both".
    assert sorted(seen) == [
        ("both", ("email", "sms")),
        ("both", ("sms", "email")),
        ("email", ("email", "sms")),
        ("sms", ("sms", "email")),
    ]


def _handed_over(journey: Journey, message: OutboundMessage) -> Journey:
    """The journey once send_message recorded the message handed over (before its report)."""
    sent = journey.model_copy(deep=True)
    duty = sent.duties["m:M-1"]
    if duty.status == DutyStatus.QUEUED:
        duty.status, duty.handed_at, duty.compliance = DutyStatus.SENT, NOW, Compliance.MET
    assert message.message_key in duty.message_keys
    return sent
