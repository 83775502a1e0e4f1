"""The coalescing window sends its own message (journey-rules.md §8, issue 16).

A window's duties go at once to the queue as one message per channel, scheduled for the
window's close; a duty that joins sends them all again as one new message at the same close,
and the one before is replaced (the step cancels it). Nothing wakes evaluate_journey for it.

The properties drive the pure rules and send_message's decisions through ``tests/unit/pipeline.py``,
where a replaced message is never cancelled: it always comes, and must change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts.messages import MessageOutcome, OutboundMessage, Wake
from shared.domain import sending
from shared.domain.journey import (
    Duty,
    DutyStatus,
    Journey,
    evaluate_case_change,
    evaluate_message_outcome,
    evaluate_wake,
    message_key,
)
from shared.domain.journey.telling import REPLACED
from shared.domain.ledger import LedgerEntry, LedgerStatus, ProviderReceipt
from shared.domain.timing import in_quiet_hours, quiet_hours_end
from tests.builders import milestone, niche_change, occurrence, victim
from tests.unit.pipeline import POLICY, Recipient

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CRIME = "HU/000001/26"
BASE = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
WINDOW = timedelta(minutes=POLICY.timing.coalesce_minutes)
NOTIFIABLE = ["suspect_arrested", "suspect_interviewed", "suspect_bailed", "suspect_charged"]
GAPS = [0.5, 1, 4, 9, 9.9, 10, 12, 30, 200, 700]


@dataclass(frozen=True)
class History:
    channel: str
    start: datetime
    gaps: tuple[float, ...]
    latency: timedelta


HISTORIES = st.builds(
    History,
    channel=st.sampled_from(["email", "sms", "both"]),
    start=st.builds(
        lambda day, minute: BASE + timedelta(days=day, minutes=minute),
        st.integers(0, 200),
        st.integers(0, 24 * 60 - 1),
    ),
    gaps=st.lists(st.sampled_from(GAPS), min_size=1, max_size=5).map(tuple),
    latency=st.sampled_from([timedelta(0), timedelta(seconds=20)]),
)


def _changes(history: History) -> list[tuple[datetime, list[str]]]:
    """Each change brings one duty (the acknowledgement, then a milestone each)."""
    times = [history.start]
    for gap in history.gaps:
        times.append(times[-1] + timedelta(minutes=gap))
    return [(at, ["ack"] if n == 0 else [f"m:M-{n}"]) for n, at in enumerate(times)]


def _windows(changes: list[tuple[datetime, list[str]]]) -> list[tuple[datetime, set[str]]]:
    """The windows the rules promise: one opens with a duty when none is open, and every duty
    brought before it closes joins it."""
    windows: list[tuple[datetime, set[str]]] = []
    for at, duties in changes:
        if windows and at < windows[-1][0]:
            windows[-1][1].update(duties)
        else:
            windows.append((at + WINDOW, set(duties)))
    return windows


def _expected_at(channel: str, close: datetime, latency: timedelta) -> datetime:
    if channel != "sms":
        return close + latency
    if in_quiet_hours(close, POLICY):
        return quiet_hours_end(close, POLICY) + latency  # scheduled for the morning
    if in_quiet_hours(close + latency, POLICY):
        return quiet_hours_end(close + latency, POLICY)  # late into the night: held at send time
    return close + latency


def _run(history: History) -> tuple[Recipient, set[str]]:
    """The recipient after the history, and the messages the decisions replaced."""
    one = Recipient("P-1", send_latency=history.latency)
    replaced: set[str] = set()
    person = victim(channel=history.channel)
    milestones: list[dict[str, object]] = []
    before = None
    for n, (at, _) in enumerate(_changes(history)):
        if n:
            kind = NOTIFIABLE[n % len(NOTIFIABLE)]
            milestones = [*milestones, milestone(f"M-{n}", kind, (at - timedelta(seconds=30)).isoformat())]
        record = occurrence(at.isoformat(), ref=CRIME, milestones=milestones, victims=[person])
        decision = one.case_change(niche_change(record, before), at)
        # No wake of its own: a window's message is on the queue from the moment it opens.
        assert not [
            s for s in decision.scheduled if isinstance(s.event, Wake) and s.event.purpose != "checkin"
        ]
        replaced |= {m.message_key for m in decision.withdrawn}
        before = record
    one.run_until(history.start + timedelta(days=3))
    return one, replaced


@PROPERTY
@given(HISTORIES)
def test_each_window_is_one_message_per_channel_with_every_duty_that_joined_it_sent_at_its_close(
    history: History,
) -> None:
    one, _ = _run(history)
    windows = _windows(_changes(history))
    channels = ["email", "sms"] if history.channel == "both" else [history.channel]
    for channel in channels:
        sent = [h for h in one.handed_over if h.message.channel == channel]
        assert [set(h.duties) for h in sent] == [duties for _, duties in windows], (channel, sent)
        assert [h.at for h in sent] == [_expected_at(channel, close, history.latency) for close, _ in windows]
        for h in sent:
            assert h.message.message_key == message_key(CRIME, "P-1", list(h.duties), channel)
            if channel == "sms":
                assert not in_quiet_hours(h.at, POLICY), h
    # Exactly once: no duty reached the person twice on a channel, and none was left untold.
    assert all(calls == 1 for calls in one.hand_over_calls.values()), one.hand_over_calls
    assert one.journey is not None
    for duty in one.journey.duties.values():
        assert duty.status == DutyStatus.SENT, duty


@PROPERTY
@given(HISTORIES)
def test_a_replaced_message_that_comes_all_the_same_changes_nothing_and_is_audited_as_replaced(
    history: History,
) -> None:
    one, replaced = _run(history)
    sent = {h.message.message_key for h in one.handed_over}
    assert not replaced & sent
    for key in replaced:
        # It came (the pipeline never cancels) and was stopped as replaced, never as suppressed.
        entry = one.ledger[key]
        assert entry.status == LedgerStatus.SUPPRESSED and entry.reason == REPLACED, entry
    joins = sum(len(duties) - 1 for _, duties in _windows(_changes(history)))
    channels = 2 if history.channel == "both" else 1
    assert len(replaced) == joins * channels


# --- a replaced message at the moment of sending ---------------------------------------------------

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # a Tuesday morning


def _joined() -> tuple[Journey, str, str]:
    """A victim's acknowledgement in its window, and an arrest joining it: the two messages' keys."""
    first = occurrence(NOW.isoformat(), ref=CRIME)
    one = evaluate_case_change(None, niche_change(first), "P-1", "victim", POLICY, NOW)
    (k1,) = [m.message_key for m in one.messages]
    at = NOW + timedelta(minutes=3)
    second = occurrence(
        at.isoformat(), ref=CRIME, milestones=[milestone("M-1", "suspect_arrested", NOW.isoformat())]
    )
    two = evaluate_case_change(one.journey, niche_change(second, first), "P-1", "victim", POLICY, at)
    (k2,) = [m.message_key for m in two.messages]
    assert [m.message_key for m in two.withdrawn] == [k1]
    assert two.messages[0].not_before == NOW + WINDOW == one.messages[0].not_before
    return two.journey, k1, k2


def _message(key: str, duties: list[str]) -> OutboundMessage:
    return OutboundMessage(
        message_key=key,
        crime_reference=CRIME,
        person_id="P-1",
        duties=duties,
        template="acknowledgement" if len(duties) == 1 else "combined_update",
        channel="email",
        decided_at=NOW,
        not_before=NOW + WINDOW,
    )


def test_the_replaced_message_is_not_sent_and_its_audit_says_replaced_not_suppressed() -> None:
    journey, k1, _ = _joined()
    message = _message(k1, ["ack"])
    checked = sending.check(message, journey, POLICY, NOW + WINDOW)
    assert checked.replaced is not None and checked.replaced.message_key == k1
    claim = sending.replaced_entry(message, checked.replaced, NOW + WINDOW)
    assert claim.status == LedgerStatus.SUPPRESSED and claim.reason == REPLACED
    action = sending.replaced_claim(message, checked, None, NOW + WINDOW)  # its row claimed just now
    assert isinstance(action, sending.Finish) and action.sent is None
    assert action.ledger is None  # the claim wrote it
    assert [(n.decision, n.reason) for n in action.notes] == [(REPLACED, REPLACED)]
    assert action.outcomes == ()  # the journey is not told: its duties go in the other message
    # Claimed as replaced by the later message first: it stops, and says nothing more.
    again = sending.replaced_claim(message, checked, claim, NOW + WINDOW)
    assert again == sending.Finish(None)


def test_a_replaced_message_whose_own_row_was_claimed_first_goes_on_as_a_retry_with_its_row_s_duties() -> (
    None
):
    """Its worker died between its claim and the provider while the join was decided: the later
    message leaves its duties out, so it must go with them when it comes again."""
    journey, k1, _ = _joined()
    at = NOW + WINDOW + timedelta(seconds=30)
    message = _message(k1, ["ack"])
    checked = sending.check(message, journey, POLICY, at)
    own = LedgerEntry.begin(
        CRIME, k1, LedgerStatus.PENDING, channel="email", duties=("ack",), first_attempt_at=NOW + WINDOW
    )
    goes = sending.replaced_claim(message, checked, own, at)
    assert isinstance(goes, sending.Check) and goes.ready and [d.key for d in goes.live] == ["ack"]
    action = sending.decide(message, goes, own, None, POLICY, at)
    assert isinstance(action, sending.HandOver) and action.retry
    assert [d.key for d in action.live] == ["ack"]
    # Its outcome takes the duty back from the later message, which left it out.
    outcome = MessageOutcome(
        event_id="o1",
        crime_reference=CRIME,
        person_id="P-1",
        message_key=k1,
        duties=["ack"],
        status="sent",
        channel="email",
        at=at,
    )
    after = evaluate_message_outcome(journey, outcome, POLICY, at).journey
    assert after.duties["ack"].status == DutyStatus.SENT and after.duties["ack"].message_keys == [k1]
    # Refused instead, it tells no one: the replacing message carries the duty (the next test).


def test_the_replacing_message_claims_the_replaced_one_first_and_carries_every_duty() -> None:
    journey, k1, k2 = _joined()
    checked = sending.check(_message(k2, ["ack", "m:M-1"]), journey, POLICY, NOW + WINDOW)
    assert checked.ready and [m.message_key for m in checked.replaces] == [k1]
    claim = sending.replaced_entry(_message(k2, ["ack", "m:M-1"]), checked.replaces[0], NOW + WINDOW)
    assert claim.status == LedgerStatus.SUPPRESSED and claim.reason == REPLACED
    message = _message(k2, ["ack", "m:M-1"])
    assert (
        sending.told_by_replaced(message, [(checked.replaces[0], None)], NOW + WINDOW) == ()
    )  # it will not go


def test_a_replaced_message_handed_over_first_keeps_its_duties_and_the_other_leaves_them_out() -> None:
    """The join decided a moment before the close, the replaced message taken at the close: it
    claimed its ledger row first, so the replacing message tells only what it did not."""
    journey, k1, k2 = _joined()
    later = _message(k2, ["ack", "m:M-1"])
    checked = sending.check(later, journey, POLICY, NOW + WINDOW)
    claimed = LedgerEntry.begin(CRIME, k1, LedgerStatus.PENDING, channel="email", duties=("ack",))
    # While its attempt goes on, the replacing message waits for it to end, up to an hour.
    assert sending.told_by_replaced(later, [(checked.replaces[0], claimed)], NOW + WINDOW) is None
    wait = sending.wait_for_replaced(later, NOW + WINDOW)
    assert wait.at == NOW + WINDOW + sending.RECORD_POLL and wait.message == later
    # Handed over (or in doubt: it may have been): its duties are left out of the replacing one.
    for status in (LedgerStatus.SENT, LedgerStatus.UNKNOWN):
        ended = claimed.moved_to(status, decided_at=NOW + WINDOW)
        assert sending.told_by_replaced(later, [(checked.replaces[0], ended)], NOW + WINDOW) == ("ack",)
    # Refused or stopped: they go in the replacing one.
    for status in (LedgerStatus.FAILED, LedgerStatus.SUPPRESSED):
        ended = claimed.moved_to(status, decided_at=NOW + WINDOW)
        assert sending.told_by_replaced(later, [(checked.replaces[0], ended)], NOW + WINDOW) == ()
    # Still not ended an hour after the close (dead-lettered): taken as told, as an attempt in doubt is.
    late = NOW + WINDOW + sending.REPLACED_WAIT
    told = sending.told_by_replaced(later, [(checked.replaces[0], claimed)], late)
    assert told == ("ack",)
    narrowed = sending.without(checked, told)
    assert [d.key for d in narrowed.live] == ["m:M-1"] and narrowed.ready
    # The first message's hand-over tells the journey; the duty is sent, once.
    outcome = MessageOutcome(
        event_id="o1",
        crime_reference=CRIME,
        person_id="P-1",
        message_key=k1,
        duties=["ack"],
        status="sent",
        channel="email",
        at=NOW + WINDOW,
    )
    after = evaluate_message_outcome(journey, outcome, POLICY, NOW + WINDOW).journey
    assert after.duties["ack"].status == DutyStatus.SENT and k1 in after.duties["ack"].message_keys
    entry = LedgerEntry.begin(CRIME, k2, LedgerStatus.PENDING, channel="email", duties=("m:M-1",))
    receipt = ProviderReceipt("p-2", NOW + WINDOW)
    finish = sending.handed_over(later, entry, receipt, 0, told)
    assert [(o.status, o.duties) for o in finish.outcomes] == [("sent", ["m:M-1"])]
    assert ("replaced", "told_by_replaced_message", ("ack",)) in [
        (n.decision, n.reason, n.duties) for n in finish.notes
    ]


def test_a_replaced_message_refused_or_stopped_leaves_its_duties_to_the_replacing_one() -> None:
    """Its outcome does not take a duty back unless it told it, or may have: the replacing
    message, which waited for its end, carries the duty and tells it."""
    journey, k1, k2 = _joined()
    close = NOW + WINDOW
    for status, reason in (("suppressed", "provider_rejected:EmailRejected"), ("suppressed", "opted_out")):
        refused = MessageOutcome(
            event_id=f"o-{reason}",
            crime_reference=CRIME,
            person_id="P-1",
            message_key=k1,
            duties=["ack"],
            status=status,
            channel="email",
            reason=reason,
            at=close,
        )
        after = evaluate_message_outcome(journey, refused, POLICY, close).journey
        assert after.duties["ack"].status == DutyStatus.QUEUED and after.duties["ack"].message_keys == [k2]
        checked = sending.check(_message(k2, ["ack", "m:M-1"]), after, POLICY, close)
        assert [d.key for d in checked.live] == ["ack", "m:M-1"]


@PROPERTY
@given(
    tail=st.lists(st.sampled_from(["join", "withdraw"]), max_size=5),
    channel=st.sampled_from(["email", "sms", "both"]),
)
def test_a_window_sent_again_never_takes_the_key_of_a_message_it_replaced(
    tail: list[str], channel: str
) -> None:
    """Milestones joining the window and withdrawn from it, in any order, send it again each
    time: with the duties of a message it replaced, too (an arrest joins, then is withdrawn). Each
    message keeps a key of its own, the window's duties are told once at its close, and none is
    left queued."""
    joins = ["join", "withdraw", *tail]  # the window sent again with the duties it had first
    one = Recipient("P-1")
    person = victim(channel=channel)
    start = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    record = occurrence(start.isoformat(), ref=CRIME, victims=[person])
    one.case_change(niche_change(record), start)
    milestones: list[dict[str, object]] = []
    keys: list[str] = [m.message_key for m in one.emitted]
    for n, what in enumerate(joins, start=1):
        at = start + timedelta(seconds=60 * n)
        if what == "join":
            milestones = [*milestones, milestone(f"M-{n}", "suspect_arrested", at.isoformat())]
        elif milestones:
            milestones = milestones[:-1]
        before = record
        record = occurrence(at.isoformat(), ref=CRIME, victims=[person], milestones=milestones)
        decision = one.case_change(niche_change(record, before), at)
        keys.extend(m.message_key for m in decision.messages)
    # The same duties on the same channel went to the queue more than once, each time by a key
    # of its own.
    sent_as = [(m.channel, tuple(sorted(m.duties))) for m in one.emitted]
    assert len(set(sent_as)) < len(sent_as)
    assert len(keys) == len(set(keys)), keys
    one.run_until(start + timedelta(days=2))
    assert one.journey is not None
    told = [duty for h in one.handed_over for duty in h.duties]
    channels = 2 if channel == "both" else 1
    assert sorted(told) == sorted(
        duty.key
        for duty in one.journey.duties.values()
        for _ in range(channels)
        if duty.status == DutyStatus.SENT
    )
    assert not [d for d in one.journey.duties.values() if d.status == DutyStatus.QUEUED]
    assert "ack" in told


# --- journeys stored by earlier code ---------------------------------------------------------------


def _legacy() -> Journey:
    """A journey as earlier code left it: the acknowledgement WAITING in its window, a wake due."""
    first = occurrence(NOW.isoformat(), ref=CRIME)
    journey = evaluate_case_change(None, niche_change(first), "P-1", "victim", POLICY, NOW).journey
    ack = journey.duties["ack"]
    journey.duties["ack"] = Duty.model_validate(
        ack.model_dump() | {"status": DutyStatus.WAITING, "message_keys": [], "channels": []}
    )
    journey.window_messages = []
    journey.window_closes_at = NOW + WINDOW
    return journey


def _send_window() -> Wake:
    return Wake(event_id="w", crime_reference=CRIME, person_id="P-1", purpose="send_window", at=NOW + WINDOW)


def test_a_send_window_wake_scheduled_by_earlier_code_still_sends_the_waiting_duties() -> None:
    decision = evaluate_wake(_legacy(), _send_window(), POLICY, NOW + WINDOW)
    assert [(m.duties, m.not_before) for m in decision.messages] == [(["ack"], None)]
    assert decision.journey.duties["ack"].status == DutyStatus.QUEUED


def test_a_duty_joining_a_window_of_earlier_code_takes_its_waiting_duties_and_the_wake_then_does_nothing() -> (
    None
):
    journey = _legacy()
    first = occurrence(NOW.isoformat(), ref=CRIME)
    at = NOW + timedelta(minutes=4)
    second = occurrence(
        at.isoformat(), ref=CRIME, milestones=[milestone("M-1", "suspect_arrested", NOW.isoformat())]
    )
    joined = evaluate_case_change(journey, niche_change(second, first), "P-1", "victim", POLICY, at)
    assert [(sorted(m.duties), m.not_before) for m in joined.messages] == [(["ack", "m:M-1"], NOW + WINDOW)]
    wake = evaluate_wake(joined.journey, _send_window(), POLICY, NOW + WINDOW)
    assert wake.unchanged and not wake.messages


# --- a duty leaving the window ---------------------------------------------------------------------


def test_a_milestone_withdrawn_in_its_window_takes_its_message_off_the_queue_or_out_of_it() -> None:
    """As when the window's message was decided at its close: a withdrawn milestone is not in it."""
    first = occurrence(NOW.isoformat(), ref=CRIME)
    journey = evaluate_case_change(None, niche_change(first), "P-1", "victim", POLICY, NOW).journey
    later = NOW + timedelta(hours=2)  # the acknowledgement's window long closed
    arrested = occurrence(
        later.isoformat(), ref=CRIME, milestones=[milestone("M-1", "suspect_arrested", later.isoformat())]
    )
    one = evaluate_case_change(journey, niche_change(arrested, first), "P-1", "victim", POLICY, later)
    (alone,) = one.messages
    withdrawn_at = later + timedelta(minutes=5)
    gone = occurrence(withdrawn_at.isoformat(), ref=CRIME)
    two = evaluate_case_change(
        one.journey, niche_change(gone, arrested), "P-1", "victim", POLICY, withdrawn_at
    )
    assert two.messages == [] and [m.message_key for m in two.withdrawn] == [alone.message_key]
    assert two.journey.duties["m:M-1"].status == DutyStatus.SUPERSEDED

    # With another update in the window, the window goes again at its close without the withdrawn one.
    both = occurrence(
        later.isoformat(),
        ref=CRIME,
        milestones=[
            milestone("M-1", "suspect_arrested", later.isoformat()),
            milestone("M-2", "suspect_interviewed", later.isoformat()),
        ],
    )
    three = evaluate_case_change(journey, niche_change(both, first), "P-1", "victim", POLICY, later)
    (pair,) = three.messages
    only = occurrence(
        withdrawn_at.isoformat(),
        ref=CRIME,
        milestones=[milestone("M-2", "suspect_interviewed", later.isoformat())],
    )
    four = evaluate_case_change(
        three.journey, niche_change(only, both), "P-1", "victim", POLICY, withdrawn_at
    )
    assert [(m.duties, m.not_before) for m in four.messages] == [(["m:M-2"], later + WINDOW)]
    assert [m.message_key for m in four.withdrawn] == [pair.message_key]
