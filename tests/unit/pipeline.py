"""One recipient's journey driven as evaluate_journey and send_message drive it, in memory.

The steps' decisions without their I/O: the journey rules (``shared.domain.journey``) for
each event, and ``shared.domain.sending`` for each message, with a dict for the Messages
ledger and one for what the provider has accepted (by idempotency key, as ACS keeps it).
Messages and scheduled events wait in one agenda and are taken in time order when the test
moves the clock on. What the provider was handed, and when, is kept for the test to read.

The faults a real worker meets can be asked for: a step that emits and then dies before its
write (``crash_after_emit``, ``crash_on_wakes``: the event comes again and is evaluated again
from the old state, which must decide the same), ``send_message`` dying after the provider
took a message (``crash_after_send``: the message comes again), and every message delivered
twice (``redeliver_messages``). Two invariants are asserted as it runs: a redelivered event
decides what it decided the first time, and a finished ledger entry is never written again.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Literal

from shared.contracts.messages import DeadlineCheck, OutboundMessage, ResolvedCaseChange, SharedFacts, Wake
from shared.domain import sending
from shared.domain.journey import (
    Compliance,
    Decision,
    Journey,
    OfficerTask,
    evaluate_case_change,
    evaluate_deadline,
    evaluate_message_outcome,
    evaluate_shared_facts,
    evaluate_wake,
)
from shared.domain.ledger import LedgerEntry, ProviderReceipt
from shared.domain.policy import Policy

POLICY = Policy()


@dataclass(frozen=True)
class HandedOver:
    """A message the provider accepted for the first time: it reached the recipient."""

    message: OutboundMessage
    duties: tuple[str, ...]
    address: str
    at: datetime
    events_applied: int  # how many case changes and shared facts had reached the journey by then


Agendum = OutboundMessage | Wake | DeadlineCheck


@dataclass
class Recipient:
    """One recipient's journey, its messages and scheduled events, the ledger and the provider."""

    person_id: str
    role: Literal["victim", "caller"] = "victim"
    policy: Policy = POLICY
    send_latency: timedelta = timedelta(0)  # how long a message waits on its queue before send_message
    journey: Journey | None = None
    agenda: list[tuple[datetime, int, Agendum]] = field(default_factory=list)
    ledger: dict[str, LedgerEntry] = field(default_factory=dict)
    accepted: dict[str, ProviderReceipt] = field(default_factory=dict)
    emitted: list[OutboundMessage] = field(default_factory=list)
    handed_over: list[HandedOver] = field(default_factory=list)
    held: list[tuple[OutboundMessage, datetime]] = field(default_factory=list)  # put off to a later time
    tasks: list[OfficerTask] = field(default_factory=list)
    events_applied: int = 0
    # What each delivery of a message came to: handed_over, provider_had_it, finished_before, later, stopped.
    deliveries: Counter[str] = field(default_factory=Counter)
    hand_over_calls: Counter[str] = field(default_factory=Counter)  # provider calls, by message key
    redeliver_messages: bool = False  # every message is delivered twice (a lock lost after the step ran)
    crash_after_send: bool = False  # send_message dies after the provider took each message the first time
    crashed: set[str] = field(default_factory=set)  # messages whose first hand-over died
    crash_on_wakes: bool = False  # evaluate_journey dies after emitting, on every scheduled wake-up
    redecided: int = 0  # events evaluated again after a crash, and found to decide the same
    _order: itertools.count[int] = field(default_factory=itertools.count)

    # --- events into evaluate_journey -------------------------------------------------------------

    def case_change(
        self, event: ResolvedCaseChange, now: datetime, *, crash_after_emit: bool = False
    ) -> Decision:
        """A Niche or STORM change reaches this recipient's journey."""
        self.run_until(now)
        self.events_applied += 1

        evaluate = partial(
            evaluate_case_change, self.journey, event, self.person_id, self.role, self.policy, now
        )
        return self._evaluate(evaluate, now, crash_after_emit)

    def shared_facts(self, event: SharedFacts, now: datetime, *, crash_after_emit: bool = False) -> Decision:
        """The crime's safety facts reach this recipient's journey (which must exist)."""
        self.run_until(now)
        assert self.journey is not None
        self.events_applied += 1
        evaluate = partial(evaluate_shared_facts, self.journey, event, self.policy, now)
        return self._evaluate(evaluate, now, crash_after_emit)

    def _evaluate(self, evaluate: Callable[[], Decision], now: datetime, crash_after_emit: bool) -> Decision:
        """Evaluate and apply; after a crash, evaluate again from the same state, as the redelivery does."""
        if not crash_after_emit:
            return self._apply(evaluate(), now)
        crashed = evaluate()
        self._emit(crashed, now)
        again = evaluate()
        # The same event from the same state decides the same: the redelivery emits the same ids.
        assert (again.journey, again.messages, again.tasks, again.scheduled) == (
            crashed.journey,
            crashed.messages,
            crashed.tasks,
            crashed.scheduled,
        ), "a redelivered event decided differently"
        self.redecided += 1
        return self._apply(again, now)

    def _emit(self, decision: Decision, now: datetime) -> None:
        """What a step emits before it writes: its messages and scheduled events go on the queues."""
        for message in decision.messages:
            self.emitted.append(message)
            self._put(max(message.not_before or now, now) + self.send_latency, message)
            if self.redeliver_messages:
                self._put(
                    max(message.not_before or now, now) + self.send_latency + timedelta(seconds=1), message
                )
        for scheduled in decision.scheduled:
            self._put(scheduled.at, scheduled.event)

    def _apply(self, decision: Decision, now: datetime) -> Decision:
        """Emit, then write the new state (tasks included)."""
        if decision.unchanged:
            return decision
        self._emit(decision, now)
        self.journey = decision.journey
        self.tasks += decision.tasks
        return decision

    def _put(self, at: datetime, item: Agendum) -> None:
        self.agenda.append((at, next(self._order), item))

    # --- the clock ----------------------------------------------------------------------------------

    def run_until(self, until: datetime) -> None:
        """Deliver, in time order, everything due by ``until``."""
        while True:
            due = [entry for entry in self.agenda if entry[0] <= until]
            if not due:
                return
            entry = min(due, key=lambda e: (e[0], e[1]))
            self.agenda.remove(entry)
            at, _, item = entry
            if isinstance(item, OutboundMessage):
                self.send(item, at)
            elif isinstance(item, Wake):
                assert self.journey is not None
                self._evaluate(
                    partial(evaluate_wake, self.journey, item, self.policy, at), at, self.crash_on_wakes
                )
            else:
                assert self.journey is not None
                handed_at = self._handed_at(item)
                self._apply(evaluate_deadline(self.journey, item, handed_at, self.policy, at), at)

    def _handed_at(self, check: DeadlineCheck) -> datetime | None:
        """What evaluate_journey reads from the ledger for a deadline check."""
        assert self.journey is not None
        duty = self.journey.duties.get(check.duty)
        if duty is None or duty.compliance != Compliance.PENDING or duty.handed_at is not None:
            return None
        sent = [
            entry.sent_at
            for key in duty.message_keys
            if (entry := self.ledger.get(key)) is not None and entry.sent_at is not None
        ]
        return min(sent) if sent else None

    # --- send_message -------------------------------------------------------------------------------

    def send(self, message: OutboundMessage, now: datetime) -> sending.Action:
        """send_message for one delivery of the message, as the step does it, with the ledger in a dict."""
        checked = sending.check(message, self.journey, self.policy, now)
        earlier = self.ledger.get(message.message_key)
        if checked.ready and earlier is None:
            self.ledger[message.message_key] = sending.claim_entry(message, checked, now)
        provider: sending.ProviderAnswer = None
        if earlier is not None and not earlier.status.finished:
            provider = self.accepted.get(message.message_key)
        action = sending.decide(message, checked, earlier, provider, self.policy, now)
        if earlier is not None and earlier.status.finished:
            self.deliveries["finished_before"] += 1
        elif isinstance(provider, ProviderReceipt):
            self.deliveries["provider_had_it"] += 1
        if isinstance(action, sending.HandOver):
            assert self.journey is not None
            self.hand_over_calls[message.message_key] += 1
            self.deliveries["handed_over"] += 1
            receipt = self.accepted.get(message.message_key)
            if receipt is None:  # the provider's idempotency key: a second hand-over reaches no one
                receipt = ProviderReceipt(f"provider-{len(self.accepted)}", now)
                self.accepted[message.message_key] = receipt
                live = tuple(duty.key for duty in action.live)
                self.handed_over.append(HandedOver(message, live, action.address, now, self.events_applied))
            if self.crash_after_send and message.message_key not in self.crashed:
                self.crashed.add(message.message_key)
                self._put(now + timedelta(seconds=30), message)  # the lock expires; delivered again
                return action
            action = sending.handed_over(message, action.entry, receipt, 1)
        if isinstance(action, sending.Later):
            self.deliveries["later"] += 1
            self.held.append((message, action.at))
            self._put(action.at, action.message)
            return action
        if action.ledger is not None:
            before = self.ledger.get(message.message_key)
            assert before is None or not before.status.finished, f"a finished entry rewritten: {before}"
            self.ledger[message.message_key] = action.ledger
        if action.sent is None and action.ledger is not None:
            self.deliveries["stopped"] += 1
        if self.journey is not None and action.outcomes:
            journey = self.journey
            for outcome in action.outcomes:
                journey = evaluate_message_outcome(journey, outcome, POLICY, now).journey
            self.journey = journey
        return action

    # --- reading it ---------------------------------------------------------------------------------

    def waiting_messages(self) -> list[OutboundMessage]:
        """Messages emitted and not yet finished in the ledger (on the queue, or held)."""
        waiting: dict[str, OutboundMessage] = {}
        for _, _, item in self.agenda:
            if isinstance(item, OutboundMessage):
                entry = self.ledger.get(item.message_key)
                if entry is None or not entry.status.finished:
                    waiting.setdefault(item.message_key, item)
        return list(waiting.values())
