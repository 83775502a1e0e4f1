"""Keeping personal data no longer than needed (journey-rules.md §16): what erasing leaves behind.

A person is erased on request (``python -m shared.ops erase``) or, with everyone on the crime,
a policy number of days after the case is finalised (the ``retention`` timer). Erasing keeps ids
and decisions (the audit is id-only) and removes names, dates of birth, contact details and what
the person wrote: their journey becomes a tombstone that nothing moves again, and they are taken
out of the stored feed records, and out of every later record of the crime as it is read.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import Any, Literal

from shared.contracts.feeds import NicheOccurrence, StormIncident
from shared.domain.journey import Journey
from shared.domain.journey.tasks import note_is_theirs
from shared.domain.links import finalised_at
from shared.domain.policy import Policy

Because = Literal["request", "retention"]


def erased(journey: Journey, now: datetime, because: Because) -> Journey:
    """The journey as erasing leaves it: its keys, role, links and case dates, when and why it was
    erased; nothing else."""
    return Journey(
        crime_reference=journey.crime_reference,
        person_id=journey.person_id,
        role=journey.role,
        case_status=journey.case_status,
        recorded_at=journey.recorded_at,
        finalised_at=journey.finalised_at,
        incident_number=journey.incident_number,
        linked_crime=journey.linked_crime,
        erased_at=now,
        erased_because=because,
    )


def without_people(
    record: NicheOccurrence | StormIncident, person_ids: Collection[str]
) -> NicheOccurrence | StormIncident:
    """The record with the erased people taken out (a victim and their guardian; a caller)."""
    if not person_ids:
        return record
    if isinstance(record, NicheOccurrence):
        kept = [victim for victim in record.victims if victim.person_id not in person_ids]
        return record if len(kept) == len(record.victims) else record.model_copy(update={"victims": kept})
    if record.caller is not None and record.caller.person_id in person_ids:
        return record.model_copy(update={"caller": None})
    return record


def finalised_day(journey: Journey) -> date | None:
    """The day (UTC) the case was finalised, the key of the retention index; None while open."""
    at = finalised_at(journey)
    return None if at is None else at.date()


def retention_due(journey: Journey, policy: Policy, now: datetime) -> bool:
    """Whether the journey's personal data has been kept its policy days after finalisation."""
    if journey.erased_at is not None:
        return False
    at = finalised_at(journey)
    return at is not None and now >= at + timedelta(days=policy.retention.days_after_finalised)


# --- queue messages -------------------------------------------------------------------------
# Messages of these types are one person's own words or choices: an erased person's are dropped.
_PERSONAL_EVENTS = frozenset({"message_to_officer", "preferences_chosen"})


def _strip(node: Any, person_ids: Collection[str]) -> Any:
    """A message document with the erased people taken out of every feed record and task in it."""
    if isinstance(node, list):
        return [_strip(item, person_ids) for item in node]
    if not isinstance(node, dict):
        return node
    stripped = {key: _strip(value, person_ids) for key, value in node.items()}
    victims = stripped.get("victims")
    if isinstance(victims, list):
        stripped["victims"] = [
            v for v in victims if not (isinstance(v, dict) and v.get("person_id") in person_ids)
        ]
    caller = stripped.get("caller")
    if isinstance(caller, dict) and caller.get("person_id") in person_ids:
        stripped["caller"] = None
    if (
        stripped.get("person_id") in person_ids
        and "note" in stripped
        and note_is_theirs(str(stripped.get("reason")))
    ):
        stripped["note"] = None  # what they wrote, carried by an officer task's notice
    return stripped


def scrub_message(body: str | bytes, person_ids: Collection[str]) -> str | None:
    """A queue message's body without the erased people: unchanged if it holds none of them, None
    if it is wholly theirs (what they wrote or chose). A body that is not JSON is kept as it is:
    no step could read it, and a person's data cannot be found in it reliably."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if not any(person_id in text for person_id in person_ids):
        return text
    try:
        document = json.loads(text)
    except ValueError:
        return text
    personal = isinstance(document, dict) and document.get("type") in _PERSONAL_EVENTS
    if personal and document.get("person_id") in person_ids:
        return None
    stripped = _strip(document, person_ids)
    return text if stripped == document else json.dumps(stripped, separators=(",", ":"), ensure_ascii=False)
