"""retention: personal data kept no longer than needed, and a person erased on request.

Two ways in (journey-rules.md §16): the ``retention`` timer function erases everyone on a
crime a policy number of days after it is finalised, and purges quarantined records and dead
letters after theirs; ``python -m shared.ops erase`` erases one person now. Both erase a
person the same way, partition by partition (a crime reference, or a STORM incident number):

- the journey becomes a tombstone (ids, role, when and why: ``domain.retention.erased``);
- the person is taken out of the stored feed records, and named in the snapshot row as erased,
  so ingest takes them out of every later record too;
- what they wrote to their officer leaves the Tasks rows; their page choices and personal
  link go;
- an Audit row (ids only) says the journey was erased, when and why.

The Messages, OfficerMail, Deliveries and Audit tables hold ids, codes and times only, and stay.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable

from shared.adapters.table_layout import (
    AUDIT,
    PAGE_CHOICES,
    QUARANTINE,
    RETENTION,
    SNAPSHOTS,
    TASKS,
    audit_entity,
    erased_people,
    snapshot_entity,
)
from shared.contracts.feeds import FEED_MODELS
from shared.domain.journey import AuditEntry
from shared.domain.journey.tasks import note_is_theirs
from shared.domain.retention import Because, erased, finalised_day, retention_due, without_people
from shared.ports import BlobStore, Entity, PersonalLinks, TableStore, Write
from shared.steps.dependencies import JourneyNeeds
from shared.steps.results import CONFLICTS, StepResult, apply, retry_on_conflict

log = logging.getLogger("victim_updates.retention")

FEEDS = ("niche", "storm")


class RetentionNeeds(JourneyNeeds, Protocol):
    @property
    def links(self) -> PersonalLinks: ...

    @property
    def blobs(self) -> BlobStore: ...


CONFLICT_ATTEMPTS = 3


@dataclass
class Erased:
    """What erasing one person in one partition changed (counts, ids only)."""

    partition: str
    person_id: str
    journey: bool = False
    snapshots: int = 0
    tasks: int = 0
    choices: int = 0
    links: int = 0


def _erase_snapshots(partition: str, person_id: str, services: RetentionNeeds) -> int:
    """Take the person out of the partition's stored records, and name them as erased there."""
    changed = 0
    for row in services.tables.query_partition(SNAPSHOTS, partition):
        if row.row_key not in FEED_MODELS:
            continue  # an incident's link row: no person in it
        record = FEED_MODELS[row.row_key].model_validate_json(str(row.properties["record"]))
        people = erased_people(row) | {person_id}
        if people == erased_people(row) and without_people(record, people) == record:
            continue
        kept = without_people(record, people)
        entity = snapshot_entity(
            partition, row.row_key, kept.model_dump_json(by_alias=True), kept.modified_at, people
        )
        if row.etag is None:
            raise ValueError("a Snapshots row read from the store has an ETag")
        services.tables.update(SNAPSHOTS, entity, etag=row.etag)  # ingest may be writing: conditional
        changed += 1
    return changed


def _erase_tasks(partition: str, person_id: str, services: RetentionNeeds) -> int:
    """What the person wrote to their officer leaves the tasks that carried it."""
    changed = 0
    for row in services.tables.query_partition(TASKS, partition):
        task = json.loads(str(row.properties["task"]))
        if task.get("person_id") != person_id or task.get("note") is None:
            continue
        if not note_is_theirs(str(task.get("reason"))):
            continue  # it names the channels a message failed by: nothing the person wrote or chose
        task["note"] = None
        entity = Entity(row.partition_key, row.row_key, {**row.properties, "task": json.dumps(task)})
        if row.etag is None:
            raise ValueError("a Tasks row read from the store has an ETag")
        services.tables.update(TASKS, entity, etag=row.etag)
        changed += 1
    return changed


def erase_in(
    partition: str, person_id: str, services: RetentionNeeds, now: datetime, because: Because
) -> Erased:
    """Erase one person's data in one partition (idempotent: a second call changes nothing)."""
    done = Erased(partition, person_id)

    def journey(_: int) -> StepResult:
        result = StepResult()
        read = services.journeys.get(partition, person_id)
        if read is None or read.journey.erased_at is not None:
            return result
        tomb = erased(read.journey, now, because)
        entry = AuditEntry(now, partition, person_id, "", "erased", because)
        result.writes.append(Write(AUDIT, audit_entity(entry, f"erased:{because}")))
        save = services.journeys.save(tomb, read)
        if save is not None:
            result.writes.append(save)
        done.journey = True
        return apply(result, services)

    retry_on_conflict(journey, CONFLICT_ATTEMPTS)
    done.snapshots = _retried(lambda: _erase_snapshots(partition, person_id, services))
    done.tasks = _retried(lambda: _erase_tasks(partition, person_id, services))
    for row in list(services.tables.query_partition(PAGE_CHOICES, partition)):
        if row.row_key.startswith(f"{person_id}:"):
            services.tables.delete(PAGE_CHOICES, row.partition_key, row.row_key)
            done.choices += 1
    done.links = services.links.forget(partition, person_id)
    return done


def _retried(attempt: Callable[[], int]) -> int:
    """An idempotent pass over a partition's rows, again after a concurrent write (a conflict)."""
    for number in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return attempt()
        except CONFLICTS:
            if number == CONFLICT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


# --- the retention timer --------------------------------------------------------------------


@runtime_checkable
class PurgesDeadLetters(Protocol):
    """A queue publisher that can also purge its dead letters (the embedded queues; Service Bus)."""

    def purge_dead_letters(self, before: datetime) -> int: ...


@dataclass
class RetentionReport:
    """What one run of the retention timer did (counts only)."""

    journeys: int = 0  # journeys erased
    skipped: int = 0  # index rows dropped: reopened, finalised again later, or already erased
    deferred: int = 0  # index rows left for the next run (a concurrent write)
    quarantined: int = 0  # quarantined records purged
    dead_letters: int = 0  # dead letters purged
    erased: list[Erased] = field(default_factory=list)


def retention(services: RetentionNeeds) -> RetentionReport:
    """One run of the retention timer (daily): erase what has been kept its policy days."""
    now = services.clock.now()
    keep = services.policy.retention
    report = RetentionReport()
    last_day: date = (now - timedelta(days=keep.days_after_finalised)).date()
    for row in list(services.tables.query_through(RETENTION, last_day.isoformat())):
        partition, person_id = str(row.properties["partition"]), str(row.properties["person_id"])
        read = services.journeys.get(partition, person_id)
        day = finalised_day(read.journey) if read is not None else None
        if (
            read is None
            or read.journey.erased_at is not None
            or day is None
            or day.isoformat() != row.partition_key
        ):
            # Gone, erased on request, reopened, or finalised again later (that day has its own row).
            services.tables.delete(RETENTION, row.partition_key, row.row_key)
            report.skipped += 1
            continue
        if not retention_due(read.journey, services.policy, now):
            continue  # finalised late on the last day: the next run comes to it
        try:
            report.erased.append(erase_in(partition, person_id, services, now, "retention"))
        except CONFLICTS:
            report.deferred += 1
            continue
        services.tables.delete(RETENTION, row.partition_key, row.row_key)
        report.journeys += 1
    report.quarantined = purge_quarantine(services, now - timedelta(days=keep.quarantine_days))
    if isinstance(services.publisher, PurgesDeadLetters):
        report.dead_letters = services.publisher.purge_dead_letters(
            now - timedelta(days=keep.dead_letter_days)
        )
    return report


def purge_quarantine(services: RetentionNeeds, before: datetime) -> int:
    """Remove the quarantined records set aside before ``before``; how many.

    Then any blob written before then that no Quarantine row names: ingest writes a record's blob
    before its row, so a tick that failed in between, and never met that line at that position
    again, left a record nothing would otherwise purge.
    """
    purged = 0
    named: set[str] = set()
    for feed in FEEDS:
        for row in list(services.tables.query_partition(QUARANTINE, feed)):
            at = row.properties.get("at")
            if isinstance(at, datetime) and at < before:
                remove_quarantined(row, services.tables, services.blobs)
                purged += 1
            elif (blob := row.properties.get("record_blob")) is not None:
                named.add(str(blob))
    for name in list(services.blobs.written_before(before)):
        if name not in named:
            services.blobs.delete(name)
    return purged


def remove_quarantined(row: Entity, tables: TableStore, blobs: BlobStore) -> None:
    """A quarantined record gone: its blob first (if it was kept by reference), then its row, so a
    failure in between leaves the row to find the next time, never a blob nothing names."""
    blob = row.properties.get("record_blob")
    if blob is not None:
        blobs.delete(str(blob))
    tables.delete(QUARANTINE, row.partition_key, row.row_key)


def quarantined_record(row: Entity, blobs: BlobStore) -> str:
    """A quarantined row's whole record: in the row, or in its blob when kept by reference
    (the row's head only, should the blob be gone)."""
    blob = row.properties.get("record_blob")
    data = blobs.get(str(blob)) if blob is not None else None
    if data is not None:
        return data.decode("utf-8", errors="replace")
    return str(row.properties.get("record", ""))


def quarantined_of(rows: Iterable[Entity], person_ids: Iterable[str], blobs: BlobStore) -> list[Entity]:
    """The quarantined rows whose record (whole, wherever it is kept) names any of the people
    (as a JSON string)."""
    quoted = [json.dumps(person_id) for person_id in person_ids]
    return [row for row in rows if any(q in quarantined_record(row, blobs) for q in quoted)]
