"""ingest_niche / ingest_storm: read a feed from its cursor and emit case changes.

Each record is validated, compared with the last snapshot of its key, and its
differences become one CaseChange. A bad record goes to Quarantine with the
reason. The cursor moves only past records that were stored or quarantined, and
only after the case changes are on the queue, so nothing is lost or read twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from shared.bootstrap import Services
from shared.contracts.feeds import FEED_MODELS, NicheOccurrence, StormIncident
from shared.contracts.messages import CaseChange, Change
from shared.domain.diff import diff_niche, diff_storm
from shared.domain.journey import AuditEntry
from shared.ports import Entity, OutgoingMessage
from shared.steps.records import AUDIT, CURSORS, QUARANTINE, SNAPSHOTS, audit_entity, digest
from shared.steps.results import Emit, StepResult, Write, apply

LINK_ROW = "crime-link"


@dataclass
class IngestReport:
    """What one tick of a feed did."""

    feed: str
    read: int = 0
    changes: int = 0
    unchanged: int = 0
    stale: int = 0
    quarantined: int = 0
    cursor: str | None = None
    result: StepResult = field(default_factory=StepResult)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors()[:3]:
            where = ".".join(str(p) for p in error["loc"]) or "(record)"
            parts.append(f"{where}: {error['msg']}")
        return "; ".join(parts)
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} at column {exc.colno}"
    return f"{type(exc).__name__}: {exc}"


def _parse(feed: str, raw: str) -> NicheOccurrence | StormIncident:
    json.loads(raw)  # a clearer reason for broken JSON than the model's
    return FEED_MODELS[feed].model_validate_json(raw)


class _Batch:
    """Snapshots read and written within one tick, so a key seen twice diffs against its latest."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.snapshots: dict[tuple[str, str], str | None] = {}

    def snapshot(self, key: str, feed: str) -> str | None:
        if (key, feed) not in self.snapshots:
            entity = self.services.tables.get(SNAPSHOTS, key, feed)
            self.snapshots[(key, feed)] = str(entity.properties["record"]) if entity else None
        return self.snapshots[(key, feed)]

    def remember(self, key: str, feed: str, raw: str) -> None:
        self.snapshots[(key, feed)] = raw


def _quarantine_row(position: str) -> str:
    # Keyed by feed position: a record re-read after a crash lands on the same row.
    return f"{int(position):020d}" if position.isdigit() else digest(position)


def _crime_for_incident(services: Services, incident: StormIncident, batch_links: dict[str, str]) -> str:
    if incident.crime_reference:
        return incident.crime_reference
    if incident.incident_number in batch_links:
        return batch_links[incident.incident_number]
    link = services.tables.get(SNAPSHOTS, incident.incident_number, LINK_ROW)
    if link is not None:
        return str(link.properties["crime_reference"])
    return incident.incident_number


def ingest_feed(feed: str, services: Services) -> IngestReport:
    """One timer tick: read up to FEED_BATCH_SIZE visible records after the cursor."""
    now = services.clock.now()
    tables = services.tables
    report = IngestReport(feed)
    result = report.result
    cursor_entity = tables.get(CURSORS, feed, "cursor")
    cursor = str(cursor_entity.properties["position"]) if cursor_entity else None
    batch = _Batch(services)
    links: dict[str, str] = {}
    snapshot_writes: dict[tuple[str, str], Write] = {}

    for line in services.feeds[feed].read(cursor, now, services.settings.FEED_BATCH_SIZE):
        report.read += 1
        cursor = line.position
        try:
            record = _parse(feed, line.raw)
        except (ValidationError, ValueError) as exc:
            report.quarantined += 1
            result.writes.append(
                Write(
                    QUARANTINE,
                    Entity(
                        feed,
                        _quarantine_row(line.position),
                        {"record": line.raw, "error": _reason(exc), "at": now},
                    ),
                    mode="insert_once",
                )
            )
            continue

        if isinstance(record, NicheOccurrence):
            key = record.crime_reference
            crime = key
        else:
            key = record.incident_number
            crime = _crime_for_incident(services, record, links)
        previous_raw = batch.snapshot(key, feed)
        previous = FEED_MODELS[feed].model_validate_json(previous_raw) if previous_raw else None
        if previous is not None and record.modified_at < previous.modified_at:
            report.stale += 1
            entry = AuditEntry(
                now, crime, "", f"{feed}:{key}", "stale", f"modified_at {record.modified_at.isoformat()}"
            )
            result.writes.append(Write(AUDIT, audit_entity(entry, line.raw), mode="upsert"))
            continue
        if previous is not None and previous == record:
            report.unchanged += 1
            continue

        changes: list[Change]
        if isinstance(record, NicheOccurrence):
            assert previous is None or isinstance(previous, NicheOccurrence)
            changes = diff_niche(previous, record)
            known = set(previous.incident_numbers) if previous else set()
            for incident in record.incident_numbers:
                links[incident] = record.crime_reference
                if incident not in known:
                    result.writes.append(
                        Write(
                            SNAPSHOTS, Entity(incident, LINK_ROW, {"crime_reference": record.crime_reference})
                        )
                    )
        else:
            assert previous is None or isinstance(previous, StormIncident)
            changes = diff_storm(previous, record)

        raw = record.model_dump_json(by_alias=True)
        batch.remember(key, feed, raw)
        snapshot_writes[(key, feed)] = Write(
            SNAPSHOTS, Entity(key, feed, {"record": raw, "modified_at": record.modified_at})
        )
        if not changes:
            report.unchanged += 1
            continue
        change_id = digest(feed, key, record.modified_at.isoformat(), raw)
        case = CaseChange(
            change_id=change_id,
            feed=feed,
            crime_reference=crime,
            detected_at=now,
            changes=changes,
            niche=record if isinstance(record, NicheOccurrence) else None,
            storm=record if isinstance(record, StormIncident) else None,
        )
        result.emit.append(
            Emit(
                "case_changes",
                OutgoingMessage(case.model_dump_json(by_alias=True), change_id, session_id=crime),
            )
        )
        report.changes += 1

    result.writes.extend(snapshot_writes.values())
    if report.read:
        totals = cursor_entity.properties if cursor_entity else {}
        progress = {
            "position": cursor,
            "at": now,
            "records": int(totals.get("records", 0)) + report.read,
            "quarantined": int(totals.get("quarantined", 0)) + report.quarantined,
        }
        result.writes.append(Write(CURSORS, Entity(feed, "cursor", progress)))
    report.cursor = cursor
    apply(result, services)
    return report
