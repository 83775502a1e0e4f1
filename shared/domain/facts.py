"""A crime's safety facts, shared by every journey linked to it (journey-rules.md §7).

The facts of one crime (its flags, status, recording time and the STORM
categories of its incidents) are kept in one place, whichever record arrives
first: a Niche occurrence brings the flags and names incidents; a STORM incident
names its crime and brings its categories. Each change is told to every
partition of journeys linked to the crime: the crime's own (its victims) and
each incident's (its caller).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.feeds import CaseStatus, NicheOccurrence, StormIncident
from shared.contracts.messages import CrimeFacts, SharedFacts


def finalised_time(record: NicheOccurrence) -> datetime | None:
    """When a Niche record says the case was finalised (its outcome's decision, else the record's
    time), or None while it is open: the start of the retention period (journey-rules.md §16)."""
    if record.status != CaseStatus.FINALISED:
        return None
    return record.outcome.decided_at if record.outcome is not None else record.modified_at


def with_occurrence(known: CrimeFacts | None, record: NicheOccurrence) -> CrimeFacts:
    """The facts once this Niche record is known: its flags and status, and its incidents added."""
    incidents = dict(known.incidents) if known else {}
    for number in record.incident_numbers:
        incidents.setdefault(number, [])
    return CrimeFacts(
        crime_reference=record.crime_reference,
        flags=sorted(flag.value for flag in record.flags),
        status=record.status.value,
        recorded_at=record.recorded_at,
        finalised_at=finalised_time(record),
        incidents=incidents,
    )


def told_to_callers(known: CrimeFacts | None, facts: CrimeFacts) -> bool:
    """Whether a change of a crime's facts is told to the callers of its incidents (journey-rules.md §7).

    Every change is, but one of status alone that neither finalises the crime nor reopens it: a
    caller's journey uses the status only to know whether the case is finalised (its page, its
    erasure), and hears the status as it then is with the next change that is told.
    """
    if known is None:
        return True
    return _for_callers(known) != _for_callers(facts)


def _for_callers(facts: CrimeFacts) -> tuple[object, ...]:
    finalised = facts.status == CaseStatus.FINALISED.value
    return (facts.flags, facts.recorded_at, facts.finalised_at, finalised, facts.incidents)


def with_categories(
    known: CrimeFacts | None, crime_reference: str, incident_number: str, categories: list[str]
) -> CrimeFacts:
    """The facts once this incident is linked to the crime: its categories join the crime's."""
    base = known or CrimeFacts(crime_reference=crime_reference)
    merged = sorted({*base.incidents.get(incident_number, []), *categories})
    return base.model_copy(update={"incidents": {**base.incidents, incident_number: merged}})


class IncidentFacts(BaseModel):
    """What is known of one STORM incident: its categories so far, and the crime it is linked to.

    Kept under the incident number. Both feeds write it, ETag-checked: a Niche
    record that links the incident sets the crime, a STORM record adds its
    categories; whichever writes second sees the other's (journey-rules.md §7).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_number: str
    categories: list[str] = Field(default_factory=list)
    crime_reference: str | None = None


def storm_categories(incident: StormIncident) -> list[str]:
    return [c for c in (incident.opening_category, incident.closing_category) if c]


def tell(facts: CrimeFacts, partition: str, cause: str) -> SharedFacts:
    """The event that tells one linked partition these facts because of ``cause`` (the id of the
    case change that made them).

    The same change telling the same facts again (a redelivery) makes the same id, which the
    queue drops and the journey knows it applied. Facts that come back to what they were before
    (a flag removed, a crime reopened) are told with a new id: with the facts' id alone, the
    journey took that telling for the earlier one it had applied and kept the facts in between.
    """
    body = "\x1f".join((facts.model_dump_json(), partition, cause)).encode("utf-8")
    return SharedFacts(
        event_id="facts-" + hashlib.sha256(body).hexdigest()[:24], crime_reference=partition, facts=facts
    )
