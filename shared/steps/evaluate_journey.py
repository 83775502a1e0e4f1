"""evaluate_journey: apply the journey rules to one event, one crime at a time.

Loads each recipient's journey, asks the domain for a decision, emits its
messages and scheduled re-evaluations, then writes tasks, audit and the new
state (the state with an ETag check: a concurrent change means a retry).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from shared.adapters.table_layout import (
    CRIMES,
    FACTS_ROW,
    INCIDENT_ROW,
    facts_entity,
    facts_from,
    incident_entity,
    incident_from,
)
from shared.contracts.messages import (
    AnyJourneyEvent,
    CrimeFacts,
    DeadlineCheck,
    MessageOutcome,
    MessageToOfficer,
    MessageUndelivered,
    PreferencesChosen,
    ResolvedCaseChange,
    SharedFacts,
    parse_journey_event,
)
from shared.domain import facts as crime_facts
from shared.domain.facts import IncidentFacts
from shared.domain.journey import (
    Compliance,
    Decision,
    Journey,
    evaluate_case_change,
    evaluate_deadline,
    evaluate_message_outcome,
    evaluate_message_to_officer,
    evaluate_preferences_chosen,
    evaluate_shared_facts,
    evaluate_undelivered,
    evaluate_wake,
)
from shared.domain.ledger import LedgerStatus
from shared.ports import Entity, OutgoingMessage, StoredJourney, Write
from shared.steps.decisions import record_decision
from shared.steps.dependencies import JourneyNeeds
from shared.steps.results import Emit, StepResult, apply, retry_on_conflict
from shared.tracing import annotate, incoming


def _recipients(event: ResolvedCaseChange) -> list[tuple[str, Literal["victim", "caller"]]]:
    case = event.case
    if case.niche is not None:
        return [(victim.person_id, "victim") for victim in case.niche.victims]
    if case.storm is not None and case.storm.caller is not None:
        return [(case.storm.caller.person_id, "caller")]
    return []


CONFLICT_ATTEMPTS = 3


def evaluate_journey(
    body: bytes | str, services: JourneyNeeds, properties: Mapping[str, Any] | None = None
) -> StepResult:
    """Handle one journey-events message; a concurrent write (412) means read again and re-apply."""
    event = parse_journey_event(body)
    crime = event.case.crime_reference if isinstance(event, ResolvedCaseChange) else event.crime_reference
    annotate(crime, getattr(event, "person_id", None))
    trace = incoming(properties)
    # After the last conflict Service Bus redelivers; the next delivery starts again from the table.
    return retry_on_conflict(lambda _: _evaluate(event, services, trace), CONFLICT_ATTEMPTS)


def _conditional(table: str, entity: Entity, stored: Entity | None) -> Write:
    """A write that fails if another worker wrote the row since it was read (insert, or replace by ETag)."""
    if stored is None:
        return Write(table, entity, mode="insert")
    return Write(table, entity, mode="replace", etag=stored.etag)


def _share_facts(event: ResolvedCaseChange, services: JourneyNeeds, result: StepResult) -> CrimeFacts | None:
    """Merge this change into its crime's safety facts and tell every journey linked to it.

    A Niche record and a STORM incident of one crime are evaluated in different
    sessions, so they meet in two rows written ETag-checked before anything else:
    the incident's row (its categories, and the crime a Niche record linked it to)
    and the crime's row. Whichever side writes second sees the other's facts and
    tells them on, so every recipient hears them whichever record arrives first
    (journey-rules.md §7). A conflicting write fails the attempt, which starts again.
    """
    case = event.case
    tables = services.tables
    writes: list[Write] = []
    told: list[str] = []
    if case.niche is not None:
        crime = case.crime_reference
        stored = tables.get(CRIMES, crime, FACTS_ROW)
        known = facts_from(stored) if stored else None
        facts = crime_facts.with_occurrence(known, case.niche)
        for number in case.niche.incident_numbers:
            row = tables.get(CRIMES, number, INCIDENT_ROW)
            incident = incident_from(row) if row else IncidentFacts(incident_number=number)
            facts = crime_facts.with_categories(facts, crime, number, incident.categories)
            if incident.crime_reference != crime:
                linked = incident.model_copy(update={"crime_reference": crime})
                writes.append(_conditional(CRIMES, incident_entity(linked), row))
        # Each incident's caller, unless only the status changed and the crime is neither finalised
        # nor reopened by it (nothing in a caller's journey depends on that).
        told = list(facts.incidents) if crime_facts.told_to_callers(known, facts) else []
    elif case.storm is not None:
        number = case.storm.incident_number
        row = tables.get(CRIMES, number, INCIDENT_ROW)
        incident = incident_from(row) if row else IncidentFacts(incident_number=number)
        categories = sorted({*incident.categories, *crime_facts.storm_categories(case.storm)})
        crime_or_none = case.linked_crime or incident.crime_reference
        updated = incident.model_copy(update={"categories": categories, "crime_reference": crime_or_none})
        if updated != incident:
            writes.append(_conditional(CRIMES, incident_entity(updated), row))
        if crime_or_none is None:
            result.writes[0:0] = writes
            return None
        crime = crime_or_none
        stored = tables.get(CRIMES, crime, FACTS_ROW)
        known = facts_from(stored) if stored else None
        facts = crime_facts.with_categories(known, crime, number, categories)
        storm = services.policy.storm

        def safeguarding(f: CrimeFacts | None) -> set[str]:
            return {name for c in (f.categories() if f else []) if (name := storm.safeguarding_category(c))}

        if safeguarding(facts) - safeguarding(known):
            # A safeguarding incident: the crime's victims and its other callers must hear of it.
            told = [crime, *(other for other in facts.incidents if other != number)]
    else:
        return None
    if facts != known:
        writes.append(_conditional(CRIMES, facts_entity(facts), stored))
        for partition in told:
            shared = crime_facts.tell(facts, partition, event.event_id)
            message = OutgoingMessage(shared.model_dump_json(), shared.event_id, session_id=partition)
            result.emit.append(Emit("journey_events", message))
    result.writes[0:0] = writes  # before the journeys: a conflict here must stop the whole attempt
    return facts


def _evaluate(event: AnyJourneyEvent, services: JourneyNeeds, trace: str | None) -> StepResult:
    now = services.clock.now()
    policy = services.policy
    journeys = services.journeys
    result = StepResult(trace=trace)

    # Each journey read here is handed to its rule as the rule's own (``owned``: changed, not
    # copied) and never looked at again; record_decision reads only what was kept beside it.
    def record(decision: Decision, read: StoredJourney | None, cause: str) -> None:
        record_decision(result, decision, read, cause, now=now, journeys=journeys, tables=services.tables)

    if isinstance(event, ResolvedCaseChange):
        facts = _share_facts(event, services, result)
        for person_id, role in _recipients(event):
            read = journeys.get(event.case.crime_reference, person_id)
            journey = read.journey if read is not None else None
            if journey is not None and journey.erased_at is not None:
                continue  # erased (journey-rules.md §16): nothing moves it, nothing reaches them
            record(
                evaluate_case_change(journey, event, person_id, role, policy, now, facts, owned=True),
                read,
                event.event_id,
            )
    elif isinstance(event, SharedFacts):
        for read in journeys.in_partition(event.crime_reference):
            if read.journey.erased_at is not None:
                continue
            record(evaluate_shared_facts(read.journey, event, policy, now, owned=True), read, event.event_id)
    else:
        read = journeys.get(event.crime_reference, event.person_id)
        if read is None or read.journey.erased_at is not None:
            return apply(result, services)
        if isinstance(event, DeadlineCheck):
            handed_at = _handed_at(read.journey, event, services)
            record(
                evaluate_deadline(read.journey, event, handed_at, policy, now, owned=True),
                read,
                event.event_id,
            )
        elif isinstance(event, MessageOutcome):
            record(
                evaluate_message_outcome(read.journey, event, policy, now, owned=True), read, event.event_id
            )
        elif isinstance(event, MessageUndelivered):
            record(evaluate_undelivered(read.journey, event, policy, now, owned=True), read, event.event_id)
        elif isinstance(event, PreferencesChosen):
            record(
                evaluate_preferences_chosen(read.journey, event, policy, now, owned=True),
                read,
                event.event_id,
            )
        elif isinstance(event, MessageToOfficer):
            record(
                evaluate_message_to_officer(read.journey, event, policy, now, owned=True),
                read,
                event.event_id,
            )
        else:
            record(evaluate_wake(read.journey, event, policy, now, owned=True), read, event.event_id)
    return apply(result, services)


def _handed_at(journey: Journey, event: DeadlineCheck, services: JourneyNeeds) -> datetime | None:
    """When the ledger says a message of the duty was first handed over, while its fate is open."""
    duty = journey.duties.get(event.duty)
    if duty is None or duty.compliance != Compliance.PENDING or duty.handed_at is not None:
        return None
    # A message the provider reported undelivered did not tell the person (journey-rules.md §12).
    sent = [
        entry.sent_at
        for key in duty.message_keys
        if (entry := services.ledger.get(event.crime_reference, key)) is not None
        and entry.sent_at is not None
        and entry.status != LedgerStatus.UNDELIVERED
    ]
    return min(sent) if sent else None
