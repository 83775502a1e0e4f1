"""The state tables' layout: their names, keys, and each domain object as a Table Storage entity.

Partition keys are crime references (an incident number for a STORM caller's
journey); nothing outside this module and the repositories knows a row key or
a property name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import date, datetime

from shared.contracts.messages import CrimeFacts
from shared.domain.facts import IncidentFacts
from shared.domain.journey import JOURNEY_SCHEMA, AuditEntry, Journey, OfficerTask, upgrade_journey
from shared.domain.ledger import LedgerEntry, LedgerStatus
from shared.ports import Entity

CURSORS = "Cursors"
SNAPSHOTS = "Snapshots"
OFFICERS = "Officers"
JOURNEYS = "Journeys"
MESSAGES = "Messages"
AUDIT = "Audit"
QUARANTINE = "Quarantine"
TASKS = "Tasks"
# The safety facts a crime's recipients share: one row per crime (FACTS_ROW) and one per STORM
# incident (INCIDENT_ROW, under the incident number).
CRIMES = "Crimes"
OFFICER_MAIL = "OfficerMail"  # ledger of officer mail: PartitionKey crime ref, RowKey "<task id>:<kind>"
# Delivery reports: PartitionKey the id a report carries (email operation id, SMS tag); RowKey
# "message" (which message it is) and "report:<Event Grid event id>" (each report, once).
DELIVERIES = "Deliveries"
# Personal links (journey-rules.md §13): PartitionKey the link id, RowKey "link" (whom it opens);
# and PartitionKey the crime reference, RowKey "person:<person id>" (the person's live link).
LINKS = "Links"
# What each recipient chose on their own page (journey-rules.md §13): PartitionKey the crime
# reference, RowKey "<person id>:<event id>", one row per choice, as they made it.
PAGE_CHOICES = "PageChoices"
# Who showed (or erased) personal data, when and why (journey-rules.md §15): PartitionKey the month
# ("2026-11"), RowKey "<ISO time>-<random>"; ids and the stated reason only.
ACCESS_LOG = "AccessLog"
# The retention index (journey-rules.md §16): PartitionKey the day a case was finalised
# ("2026-11-29"), RowKey a digest of the journey's keys; the journey's partition and person id.
# The retention timer reads the days whose personal data has been kept its policy days.
RETENTION = "Retention"

ALL_TABLES = (
    CURSORS,
    SNAPSHOTS,
    OFFICERS,
    JOURNEYS,
    MESSAGES,
    AUDIT,
    QUARANTINE,
    TASKS,
    CRIMES,
    OFFICER_MAIL,
    DELIVERIES,
    LINKS,
    PAGE_CHOICES,
    ACCESS_LOG,
    RETENTION,
)
FACTS_ROW = "facts"
INCIDENT_ROW = "incident"


def digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def time_key(at: datetime) -> str:
    """A RowKey prefix that sorts by time."""
    return at.strftime("%Y%m%dT%H%M%S.%fZ")


def audit_entity(entry: AuditEntry, cause: str) -> Entity:
    """An Audit row; the RowKey is deterministic so a redelivery rewrites the same row."""
    row = f"{time_key(entry.at)}-{digest(cause, entry.person_id, entry.duty, entry.decision, entry.reason)[:12]}"
    return Entity(
        entry.crime_reference,
        row,
        {
            "at": entry.at,
            "person_id": entry.person_id,
            "duty": entry.duty,
            "decision": entry.decision,
            "reason": entry.reason,
        },
    )


def task_entity(task: OfficerTask, reminder: tuple[int, datetime] | None = None) -> Entity:
    """A Tasks row: the task, and its reminder's sequence number and time while it is scheduled
    (``reminder``), so that closing the task can cancel it."""
    # ``via_guardian`` only when true: the version before, rolled back to, reads every other row.
    properties: dict[str, object] = {
        "task": task.model_dump_json(exclude=None if task.via_guardian else {"via_guardian"})
    }
    if reminder is not None:
        properties["reminder_sequence"], properties["reminder_at"] = reminder
    return Entity(task.crime_reference, task.task_id, properties)


def task_reminder(entity: Entity) -> tuple[int, datetime] | None:
    """The sequence number and time of a Tasks row's scheduled reminder (None: none kept)."""
    number, at = entity.properties.get("reminder_sequence"), entity.properties.get("reminder_at")
    if isinstance(number, int) and isinstance(at, datetime):
        return number, at
    return None


def closed_task_entity(entity: Entity, at: datetime, reason: str) -> Entity:
    """A Tasks row marked closed: ``closed_at`` and ``closed_reason`` beside the task as it was."""
    return Entity(
        entity.partition_key,
        entity.row_key,
        {**entity.properties, "closed_at": at, "closed_reason": reason},
    )


def task_is_closed(entity: Entity) -> bool:
    return entity.properties.get("closed_at") is not None


def journey_entity(journey: Journey) -> Entity:
    return Entity(journey.crime_reference, journey.person_id, {"state": journey.model_dump_json()})


_CURRENT = f'"schema_version":{JOURNEY_SCHEMA},'


def journey_from(entity: Entity) -> Journey:
    """A stored journey, upgraded to the current form if it was stored in an earlier one."""
    state = str(entity.properties["state"])
    if state.startswith("{" + _CURRENT):  # the current form: no upgrade to look for
        return Journey.model_validate_json(state)
    return Journey.model_validate(upgrade_journey(json.loads(state)))


def changed_at(journey: Journey, duties: Iterable[str]) -> datetime | None:
    """The feed record time of the earliest change behind these duties (None for a check-in)."""
    times = [d.noticed_at for key in duties if (d := journey.duties.get(key)) and d.noticed_at]
    return min(times) if times else None


def snapshot_entity(
    key: str, feed: str, raw: str, modified_at: datetime, erased: Iterable[str] = ()
) -> Entity:
    """A Snapshots row: the record as last read, and the people erased from it (taken out of it
    and of every later record of the key: journey-rules.md §16)."""
    properties: dict[str, object] = {"record": raw, "modified_at": modified_at}
    people = sorted(set(erased))
    if people:
        properties["erased"] = json.dumps(people)
    return Entity(key, feed, properties)


def erased_people(entity: Entity | None) -> frozenset[str]:
    """The people erased from a Snapshots row's record."""
    if entity is None or not entity.properties.get("erased"):
        return frozenset()
    return frozenset(json.loads(str(entity.properties["erased"])))


def retention_entity(day: date, partition: str, person_id: str) -> Entity:
    """The retention index row of one journey finalised on ``day``."""
    return Entity(
        day.isoformat(), digest(partition, person_id), {"partition": partition, "person_id": person_id}
    )


def facts_entity(facts: CrimeFacts, etag: str | None = None) -> Entity:
    return Entity(facts.crime_reference, FACTS_ROW, {"facts": facts.model_dump_json()}, etag)


def facts_from(entity: Entity) -> CrimeFacts:
    return CrimeFacts.model_validate_json(entity.properties["facts"])


def incident_entity(incident: IncidentFacts, etag: str | None = None) -> Entity:
    return Entity(incident.incident_number, INCIDENT_ROW, {"incident": incident.model_dump_json()}, etag)


def incident_from(entity: Entity) -> IncidentFacts:
    return IncidentFacts.model_validate_json(entity.properties["incident"])


# The Messages ledger: the property names ops and the compliance report read.
_LEDGER_TIMES = ("first_attempt_at", "decided_at", "sent_at", "reported_at")


def ledger_entity(entry: LedgerEntry) -> Entity:
    """A ledger entry as a Messages row; fields it does not have are left out."""
    properties: dict[str, object] = {"status": entry.status.value}
    for name, value in (
        ("channel", entry.channel),
        ("template", entry.template),
        ("duties", None if entry.duties is None else ",".join(entry.duties)),
        ("first_attempt_at", entry.first_attempt_at),
        ("decided_at", entry.decided_at),
        ("sent_at", entry.sent_at),
        ("provider_id", entry.provider_id),
        ("reason", entry.reason),
        ("segments", entry.segments),
        ("delivery_status", entry.delivery_status),
        ("reported_at", entry.reported_at),
    ):
        if value is not None:
            properties[name] = value
    return Entity(entry.crime_reference, entry.message_key, properties)


def ledger_from(entity: Entity) -> LedgerEntry:
    p = entity.properties
    duties = p.get("duties")
    times = {name: p.get(name) if isinstance(p.get(name), datetime) else None for name in _LEDGER_TIMES}
    segments = p.get("segments")
    return LedgerEntry(
        crime_reference=entity.partition_key,
        message_key=entity.row_key,
        status=LedgerStatus(str(p["status"])),
        channel=None if p.get("channel") is None else str(p["channel"]),
        template=None if p.get("template") is None else str(p["template"]),
        duties=None if duties is None else tuple(key for key in str(duties).split(",") if key),
        provider_id=None if p.get("provider_id") is None else str(p["provider_id"]),
        reason=None if p.get("reason") is None else str(p["reason"]),
        segments=None if segments is None else int(segments),
        delivery_status=None if p.get("delivery_status") is None else str(p["delivery_status"]),
        **times,
    )
