"""Quarantined feed records: list them (never the record) and run them through ingest again.

A re-ingest goes through the ingest step's own validation and diff (``_Tick.take``),
so a record that now validates is emitted exactly as a timer tick would emit it: a
case change and a snapshot, or a ``stale`` audit entry when a later record of the
same key is already stored. (A Niche record's change goes on case-changes; a STORM
record's, which has no officer to resolve, on journey-events.) The feed cursor is not
touched (the record was read long ago). The quarantine row is deleted only after the emission
and the writes, and the re-ingest is audited; a record that still fails keeps its
row, and the stored record's row is given the new reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from shared.adapters.table_layout import AUDIT, QUARANTINE, audit_entity, digest
from shared.contracts.feeds import FEED_MODELS, NicheOccurrence
from shared.domain.journey import AuditEntry
from shared.ops.context import OpsError
from shared.ports import Entity, FeedLine, TableStore, Write
from shared.steps.dependencies import IngestNeeds
from shared.steps.ingest import _Tick
from shared.steps.results import apply
from shared.steps.retention import quarantined_record, remove_quarantined

FEEDS = ("niche", "storm")


@dataclass(frozen=True)
class Quarantined:
    feed: str
    row_key: str
    error: str
    at: datetime | None
    entity: Entity  # the row: its record whole, or by reference to a blob (quarantined_record)


def _quarantined(entity: Entity) -> Quarantined:
    at = entity.properties.get("at")
    return Quarantined(
        feed=entity.partition_key,
        row_key=entity.row_key,
        error=str(entity.properties.get("error", "")),
        at=at if isinstance(at, datetime) else None,
        entity=entity,
    )


def list_quarantined(tables: TableStore, feed: str | None) -> list[Quarantined]:
    """Each feed's quarantine is one partition: a partition query, not a table scan."""
    return [
        _quarantined(entity)
        for name in ([feed] if feed else FEEDS)
        for entity in tables.query_partition(QUARANTINE, name)
    ]


# What names a record of each feed: the crime (Niche), the incident (STORM).
KEYS = {"niche": "crime_reference", "storm": "incident_number"}


def reference(row: Quarantined) -> str:
    """The crime reference (Niche) or incident number (STORM) of a quarantined record, to match
    it to its crime or to a corrected --record-file; else what stops it having one. A record
    that is not JSON (cut short, or kept by reference with only its head in the row) is looked
    through for the key's first value as text."""
    key = KEYS[row.feed]
    raw = str(row.entity.properties.get("record", ""))
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        found = re.search(rf'"{key}"\s*:\s*("(?:[^"\\]|\\.)*")', raw)
        value = json.loads(found.group(1)) if found else None
        return str(value) if isinstance(value, str) and value.strip() else f"no {key} (not valid JSON)"
    value = record.get(key) if isinstance(record, dict) else None
    return value if isinstance(value, str) and value.strip() else f"no {key} in the record"


def list_lines(rows: list[Quarantined]) -> list[str]:
    """One tab-separated line a record: feed, row key, error, and its crime reference (Niche) or
    incident number (STORM); the record itself holds personal data."""
    return ["\t".join((q.feed, q.row_key, " ".join(q.error.split()), reference(q))) for q in rows]


def counts(tables: TableStore) -> dict[str, int]:
    """How many records each feed has in quarantine."""
    return {name: sum(1 for _ in tables.query_partition(QUARANTINE, name)) for name in FEEDS}


def find(tables: TableStore, feed: str | None, row_key: str) -> Quarantined:
    found = [
        _quarantined(entity)
        for name in ([feed] if feed else FEEDS)
        if (entity := tables.get(QUARANTINE, name, row_key)) is not None
    ]
    if not found:
        where = f" in the {feed} feed" if feed else ""
        raise OpsError(f"no quarantined record with row key {row_key!r}{where}")
    if len(found) > 1:
        raise OpsError(f"row key {row_key!r} is quarantined in both feeds: give --feed")
    return found[0]


def read_record_file(path: Path) -> str:
    """A corrected record: one JSON object (one line, or pretty-printed over several)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise OpsError(f"cannot read --record-file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise OpsError(f"--record-file {path} is not UTF-8 text") from exc
    if not text:
        raise OpsError(f"--record-file {path} is empty")
    return text


@dataclass(frozen=True)
class Reingested:
    feed: str
    row_key: str
    ingested: bool
    detail: str  # what ingest did with it, or the reason it still fails


def reingest(services: IngestNeeds, row: Quarantined, corrected: str | None = None) -> Reingested:
    """Run one quarantined record (or its correction) through ingest again."""
    raw = corrected if corrected is not None else quarantined_record(row.entity, services.blobs)
    tables = services.tables
    tick = _Tick(row.feed, services)
    # The position is only used for the cursor and a new quarantine row, neither of which is written.
    tick.take(FeedLine(raw, row.row_key.split("-")[0]))
    report = tick.report
    if report.quarantined:
        reason = next(
            str(write.entity.properties["error"])
            for write in report.result.writes
            if isinstance(write, Write) and write.table == QUARANTINE
        )
        if corrected is None:
            # The stored record still fails: keep it, with today's reason.
            properties = {**row.entity.properties, "error": reason, "retried_at": tick.now}
            tables.upsert(QUARANTINE, Entity(row.feed, row.row_key, properties))
        return Reingested(row.feed, row.row_key, False, reason)

    record = FEED_MODELS[row.feed].model_validate_json(raw)
    # A STORM record's case changes are its incident's, as in ingest.
    key = crime = record.crime_reference if isinstance(record, NicheOccurrence) else record.incident_number
    if report.changes:
        detail = f"case change emitted for {crime}"
    elif report.stale:
        detail = f"stale: a later record of {key} is stored; audited, nothing emitted"
    else:
        detail = f"unchanged from the stored record of {key}; nothing emitted"
    source = "corrected record" if corrected is not None else "stored record"
    entry = AuditEntry(
        tick.now, crime, "", f"{row.feed}:{key}", "reingested", f"quarantine {row.row_key}; {source}"
    )
    result = report.result
    result.writes.extend(tick.snapshot_writes.values())
    result.writes.append(
        Write(AUDIT, audit_entity(entry, f"reingest:{row.feed}:{row.row_key}:{digest(raw)}"))
    )
    apply(result, services)  # emit first, then the writes, as ingest does
    remove_quarantined(row.entity, tables, services.blobs)
    return Reingested(row.feed, row.row_key, True, detail)
