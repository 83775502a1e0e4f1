"""evaluate_journey: apply the journey rules to one event, one crime at a time.

Loads each recipient's journey, asks the domain for a decision, emits its
messages and scheduled re-evaluations, then writes tasks, audit and the new
state (the state with an ETag check: a concurrent change means a retry).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from shared.bootstrap import Services
from shared.contracts.messages import (
    DeadlineCheck,
    MessageOutcome,
    ResolvedCaseChange,
    Wake,
    parse_journey_event,
)
from shared.domain.journey import (
    Compliance,
    Journey,
    evaluate_case_change,
    evaluate_deadline,
    evaluate_message_outcome,
    evaluate_wake,
)
from shared.ports import Entity, EntityExists, EtagMismatch
from shared.steps.decisions import record_decision
from shared.steps.records import JOURNEYS, MESSAGES, journey_from
from shared.steps.results import StepResult, apply
from shared.steps.trace import annotate, incoming


def _load(services: Services, crime: str, person: str) -> tuple[Journey | None, Entity | None]:
    entity = services.tables.get(JOURNEYS, crime, person)
    return (journey_from(entity), entity) if entity else (None, None)


def _recipients(event: ResolvedCaseChange) -> list[tuple[str, Literal["victim", "caller"]]]:
    case = event.case
    if case.niche is not None:
        return [(victim.person_id, "victim") for victim in case.niche.victims]
    if case.storm is not None and case.storm.caller is not None:
        return [(case.storm.caller.person_id, "caller")]
    return []


CONFLICT_ATTEMPTS = 3


def evaluate_journey(
    body: bytes | str, services: Services, properties: Mapping[str, Any] | None = None
) -> StepResult:
    """Handle one journey-events message; a concurrent write (412) means read again and re-apply."""
    event = parse_journey_event(body)
    crime = event.case.crime_reference if isinstance(event, ResolvedCaseChange) else event.crime_reference
    annotate(crime, getattr(event, "person_id", None))
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return _evaluate(event, services, incoming(properties))
        except (EtagMismatch, EntityExists):
            if attempt == CONFLICT_ATTEMPTS:
                raise  # Service Bus redelivers; the next delivery starts again from the table
    raise AssertionError("unreachable")


def _evaluate(
    event: ResolvedCaseChange | DeadlineCheck | MessageOutcome | Wake, services: Services, trace: str | None
) -> StepResult:
    now = services.clock.now()
    policy = services.policy
    result = StepResult(trace=trace)
    if isinstance(event, ResolvedCaseChange):
        for person_id, role in _recipients(event):
            journey, stored = _load(services, event.case.crime_reference, person_id)
            decision = evaluate_case_change(journey, event, person_id, role, policy, now)
            record_decision(result, decision, stored, event.event_id, now=now, tables=services.tables)
    elif isinstance(event, DeadlineCheck):
        journey, stored = _load(services, event.crime_reference, event.person_id)
        if journey is not None:
            duty = journey.duties.get(event.duty)
            handed_at = None
            # The ledger only matters while the duty's fate is open.
            pending = duty is not None and duty.compliance == Compliance.PENDING and duty.handed_at is None
            for key in duty.message_keys if duty is not None and pending else []:
                ledger = services.tables.get(MESSAGES, event.crime_reference, key)
                sent_at = ledger.properties.get("sent_at") if ledger else None
                if sent_at is not None and (handed_at is None or sent_at < handed_at):
                    handed_at = sent_at
            decision = evaluate_deadline(journey, event, handed_at, policy, now)
            record_decision(result, decision, stored, event.event_id, now=now, tables=services.tables)
    elif isinstance(event, MessageOutcome):
        journey, stored = _load(services, event.crime_reference, event.person_id)
        if journey is not None:
            decision = evaluate_message_outcome(journey, event, now)
            record_decision(result, decision, stored, event.event_id, now=now, tables=services.tables)
    elif isinstance(event, Wake):
        journey, stored = _load(services, event.crime_reference, event.person_id)
        if journey is not None:
            decision = evaluate_wake(journey, event, policy, now)
            record_decision(result, decision, stored, event.event_id, now=now, tables=services.tables)
    return apply(result, services)
