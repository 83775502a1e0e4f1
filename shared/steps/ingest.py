"""ingest_niche / ingest_storm: read a feed from its cursor and emit case changes.

Each record is validated, compared with the last snapshot of its key, and its
differences become one CaseChange. A bad record goes to Quarantine with the
reason. The cursor moves only past records that were stored or quarantined, and
only after the case changes are on the queue, so nothing is lost or read twice.

A Niche change goes to resolve_officer (case-changes). A STORM incident has no officer in
charge to resolve, so its change goes on to evaluate_journey (journey-events) as resolve_officer
would send it: the same body and message id, one queue hop and invocation fewer (issue 16).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry.trace import Span, Status, StatusCode
from pydantic import ValidationError

from shared.adapters import json_text
from shared.adapters.table_layout import (
    AUDIT,
    CURSORS,
    QUARANTINE,
    SNAPSHOTS,
    audit_entity,
    digest,
    erased_people,
    snapshot_entity,
)
from shared.contracts.feeds import (
    FEED_MODELS,
    MAX_RECORD_BYTES,
    UNREAD_RECORD,
    NicheOccurrence,
    StormIncident,
    unread_reason,
)
from shared.contracts.messages import CaseChange, Change, ChangeKind, resolved_body, resolved_message_id
from shared.domain.diff import diff_niche, diff_storm
from shared.domain.journey import AuditEntry
from shared.domain.retention import without_people
from shared.domain.timing import in_working_hours
from shared.ports import (
    Entity,
    EntityExists,
    EntityNotFound,
    EtagMismatch,
    FeedLine,
    FeedUnavailable,
    OutgoingMessage,
    Write,
)
from shared.steps.dependencies import IngestNeeds
from shared.steps.results import Emit, QueueRole, StepResult, apply
from shared.tracing import TRACEPARENT, start_case_change

LINK_ROW = "crime-link"
# A queue message may be at most 256 KB on Service Bus Standard (QUEUE_MESSAGE_MAX_BYTES; application
# properties and headers count too): a case change larger than this is quarantined with its record,
# not sent, leaving room for what resolve_officer adds to it (the officer).
MAX_MESSAGE_BYTES = 240 * 1024
# A quarantined line up to the contract's record size is kept whole in its row; a larger one by
# reference: the line itself in blob storage (``quarantine_blob``), the row only its size, digest,
# position, blob name and first characters, so it stays small (an entity holds at most 1 MiB).
QUARANTINE_INLINE_BYTES = MAX_RECORD_BYTES
QUARANTINE_HEAD = 2_000  # the characters of a line quarantined by reference its row keeps


def quarantine_blob(feed: str, row_key: str) -> str:
    """The blob a line quarantined by reference is kept in: one per Quarantine row."""
    return f"{feed}/{row_key}"


class TooLarge(ValueError):
    """A record, or the case change it would become, over its size limit."""


log = logging.getLogger(__name__)


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
    if isinstance(exc, TooLarge):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {json_text.problem(exc, line=False)}"
    return f"{type(exc).__name__}: {exc}"


def _parse(feed: str, raw: str) -> NicheOccurrence | StormIncident:
    """The record, parsed once by its model; on broken JSON, the standard parser's clearer reason."""
    if UNREAD_RECORD in raw[:64] and (unread := unread_reason(_loads(raw))) is not None:
        raise TooLarge(unread)  # what a feed reader passed over for its size: no record to validate
    try:
        # The models themselves are strict where the schema is (strings, booleans, ISO 8601 times).
        return FEED_MODELS[feed].model_validate_json(raw)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            _loads(raw)  # raises with the position of the fault, as the model's error does not
        raise


def _loads(raw: str) -> object:
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class _Batch:
    """Snapshots read and written within one tick, so a key seen twice diffs against its latest.

    Beside each snapshot, the people erased from its record (journey-rules.md §16): they are
    taken out of every later record of the key before it is diffed, stored or sent on.
    """

    def __init__(self, services: IngestNeeds) -> None:
        self.services = services
        self.snapshots: dict[tuple[str, str], str | None] = {}
        self.erased: dict[tuple[str, str], frozenset[str]] = {}
        # incident number -> crime reference: as stored, or as a Niche record of this tick links it
        self.links: dict[str, str | None] = {}

    def snapshot(self, key: str, feed: str) -> str | None:
        if (key, feed) not in self.snapshots:
            if feed == "storm":
                self._incident(key)
            else:
                self._keep(key, feed, self.services.tables.get(SNAPSHOTS, key, feed))
        return self.snapshots[(key, feed)]

    def _keep(self, key: str, feed: str, entity: Entity | None) -> None:
        self.snapshots.setdefault((key, feed), str(entity.properties["record"]) if entity else None)
        self.erased.setdefault((key, feed), erased_people(entity))

    def link(self, incident_number: str) -> str | None:
        """The crime a Niche record (of this tick, or stored) links the incident to, if any."""
        if incident_number not in self.links:
            self._incident(incident_number)
        return self.links[incident_number]

    def _incident(self, incident_number: str) -> None:
        """An incident's partition holds its snapshot and its crime link: one query reads both."""
        rows = {e.row_key: e for e in self.services.tables.query_partition(SNAPSHOTS, incident_number)}
        snapshot, link = rows.get("storm"), rows.get(LINK_ROW)
        self._keep(incident_number, "storm", snapshot)
        self.links.setdefault(incident_number, str(link.properties["crime_reference"]) if link else None)

    def remember(self, key: str, feed: str, raw: str) -> None:
        self.snapshots[(key, feed)] = raw


def for_the_queue(record: NicheOccurrence, changes: list[Change]) -> NicheOccurrence:
    """The record as its case change carries it: only the milestones the changes add.

    The steps after ingest read a milestone only when it is new (to tell it, or to see that an
    officer made contact); the rest are in the snapshot already, and a long-running case's
    hundreds of milestones would otherwise travel again with every change.
    """
    added = {change.key for change in changes if change.kind == ChangeKind.MILESTONE_ADDED}
    if len(added) == len(record.milestones):
        return record
    return record.model_copy(update={"milestones": [m for m in record.milestones if m.id in added]})


def _quarantine_row(position: str, raw: str) -> str:
    # Keyed by position and content: a record re-read after a crash lands on the same row,
    # and two bad records sharing a page position (an HTTP feed) do not collide.
    ordered = f"{int(position):020d}" if position.isdigit() else digest(position)[:20]
    return f"{ordered}-{digest(raw)[:8]}"


class FeedSourceMismatch(Exception):
    """The stored cursor was written reading another feed: reading on from it would skip or
    repeat records, so nothing is read. ``str()`` is one line for the operator."""

    def __init__(self, feed: str, records: int) -> None:
        self.feed = feed
        self.records = records
        super().__init__(
            f"feed {feed}: the stored cursor (Cursors row {feed}/cursor, after {records:,} records) was "
            f"written reading another {feed} feed than this one, so nothing was read; give this feed "
            "state of its own (STATE_TABLE_PREFIX), or, if it carries on from that feed, delete that "
            "row to read it from its start (records already seen change nothing)"
        )


def stored_cursor(feed: str, services: IngestNeeds) -> Entity | None:
    """The feed's cursor as the table holds it, refused if it was written reading another feed.

    A cursor written before cursors named their feed is taken as this feed's (and named at
    its next write).
    """
    entity = services.tables.get(CURSORS, feed, "cursor")
    reader = services.feeds.get(feed)  # none: nothing is read through it (a quarantined record reingested)
    if entity is None or reader is None or "source" not in entity.properties:
        return entity
    if reader.source(str(entity.properties["position"])) != entity.properties["source"]:
        raise FeedSourceMismatch(feed, int(entity.properties.get("records", 0)))
    return entity


def ingest_feed(feed: str, services: IngestNeeds) -> IngestReport:
    """One timer tick: read up to FEED_BATCH_SIZE visible records after the cursor."""
    tick = _Tick(feed, services)
    try:
        for line in services.feeds[feed].read(tick.cursor, tick.now, services.settings.FEED_BATCH_SIZE):
            tick.take(line)
    except FeedUnavailable:
        # Keep what was read before the failure, then fail the run so operators see it.
        tick.finish()
        raise
    return tick.finish()


class _Tick:
    """The records of one timer tick, staged until they are all on the queue."""

    def __init__(self, feed: str, services: IngestNeeds) -> None:
        self.feed = feed
        self.services = services
        self.now = services.clock.now()
        self.report = IngestReport(feed)
        # The cursor as this worker last wrote it (an empty tick then reads nothing), else the table's.
        remembered = services.memory.cursors.get(feed)
        self.cursor_entity = remembered or stored_cursor(feed, services)
        self.cursor = str(self.cursor_entity.properties["position"]) if self.cursor_entity else None
        self.batch = _Batch(services)
        self.snapshot_writes: dict[tuple[str, str], Write] = {}
        self.latest_record_at: datetime | None = None
        self.spans: list[Span] = []  # one trace per case change, ended once it is on the queue

    def take(self, line: FeedLine) -> None:
        """Validate, diff and stage one record; the cursor moves just past it."""
        self.report.read += 1
        self.cursor = line.position
        try:
            record = _parse(self.feed, line.raw)
        except (ValidationError, ValueError) as exc:
            self._quarantine(line, exc)
            return
        if self.latest_record_at is None or record.modified_at > self.latest_record_at:
            self.latest_record_at = record.modified_at
        linked: str | None = None
        if isinstance(record, NicheOccurrence):
            key = crime = record.crime_reference
        else:
            # A caller's journey is the incident's, linked or not, so it never splits in two when
            # the link arrives; the crime it is linked to travels with the change.
            key = crime = record.incident_number
            linked = record.crime_reference or self.batch.link(record.incident_number)
        previous_raw = self.batch.snapshot(key, self.feed)
        erased = self.batch.erased.get((key, self.feed), frozenset())
        record = without_people(record, erased)
        previous = FEED_MODELS[self.feed].model_validate_json(previous_raw) if previous_raw else None
        if previous is not None and record.modified_at < previous.modified_at:
            self.report.stale += 1
            reason = f"modified_at {record.modified_at.isoformat()}"
            entry = AuditEntry(self.now, crime, "", f"{self.feed}:{key}", "stale", reason)
            self.report.result.writes.append(Write(AUDIT, audit_entity(entry, line.raw)))
            return
        if previous is not None and previous == record:
            self.report.unchanged += 1
            return
        raw = record.model_dump_json(by_alias=True)
        size = len(raw.encode("utf-8"))
        if size > MAX_RECORD_BYTES:
            # Its snapshot would not fit an entity, nor its case change a message: quarantined.
            self._quarantine(line, TooLarge(f"record too large: {size} bytes (at most {MAX_RECORD_BYTES})"))
            return
        changes = self._diff(previous, record)
        snapshot = Write(SNAPSHOTS, snapshot_entity(key, self.feed, raw, record.modified_at, erased))
        if not changes:
            self.batch.remember(key, self.feed, raw)
            self.snapshot_writes[(key, self.feed)] = snapshot
            self.report.unchanged += 1
            return
        change_id = digest(self.feed, key, record.modified_at.isoformat(), raw)
        case = CaseChange(
            change_id=change_id,
            feed=self.feed,
            crime_reference=crime,
            detected_at=self.now,
            changes=changes,
            niche=for_the_queue(record, changes) if isinstance(record, NicheOccurrence) else None,
            storm=record if isinstance(record, StormIncident) else None,
            linked_crime=linked,
        )
        body = case.model_dump_json(by_alias=True)
        queue: QueueRole = "case_changes"
        message_id = change_id
        if case.storm is not None:
            # An incident has no officer in charge to resolve: its change goes to evaluate_journey
            # as resolve_officer would send it on (the same body and id), one queue hop fewer.
            queue, message_id = "journey_events", resolved_message_id(change_id)
            body = resolved_body(body, change_id, None, None)
        size = len(body.encode("utf-8"))
        if size > MAX_MESSAGE_BYTES:
            # Too large for the queue: quarantined, its snapshot not moved on, so nothing is lost.
            reason = f"case change too large for the queue: {size} bytes (at most {MAX_MESSAGE_BYTES})"
            self._quarantine(line, TooLarge(reason))
            return
        self.batch.remember(key, self.feed, raw)
        self.snapshot_writes[(key, self.feed)] = snapshot
        traceparent, span = start_case_change(f"ingest_{self.feed}", change_id, crime)
        self.spans.append(span)
        message = OutgoingMessage(
            body,
            message_id,
            session_id=crime,
            application_properties={TRACEPARENT: traceparent},  # one trace per case change
        )
        self.report.result.emit.append(Emit(queue, message))
        self.report.changes += 1

    def _quarantine(self, line: FeedLine, exc: Exception) -> None:
        self.report.quarantined += 1
        properties: dict[str, object] = {"record": line.raw, "error": _reason(exc), "at": self.now}
        row_key = _quarantine_row(line.position, line.raw)
        encoded = line.raw.encode("utf-8")
        if len(encoded) > QUARANTINE_INLINE_BYTES:
            # By reference: the line goes to blob storage first (a retry rewrites the same blob),
            # and the row keeps its name, size, digest, position and first characters.
            blob = quarantine_blob(self.feed, row_key)
            self.services.blobs.put(blob, encoded)
            properties["record"] = line.raw[:QUARANTINE_HEAD]
            properties["record_blob"] = blob
            properties["record_bytes"] = len(encoded)
            properties["record_sha256"] = hashlib.sha256(encoded).hexdigest()
            properties["position"] = line.position
        entity = Entity(self.feed, row_key, properties)
        self.report.result.writes.append(Write(QUARANTINE, entity, mode="insert_once"))
        # The reason names fields and rules; values it quotes are redacted by the telemetry filter.
        self.report.result.track("RecordQuarantined", feed=self.feed, reason=_reason(exc)[:500])

    def _diff(
        self, previous: NicheOccurrence | StormIncident | None, record: NicheOccurrence | StormIncident
    ) -> list[Change]:
        if isinstance(record, StormIncident):
            assert previous is None or isinstance(previous, StormIncident)
            return diff_storm(previous, record)
        assert previous is None or isinstance(previous, NicheOccurrence)
        known = set(previous.incident_numbers) if previous else set()
        for incident in record.incident_numbers:
            self.batch.links[incident] = record.crime_reference
            if incident not in known:
                link = Entity(incident, LINK_ROW, {"crime_reference": record.crime_reference})
                self.report.result.writes.append(Write(SNAPSHOTS, link))
        return diff_niche(previous, record)

    def finish(self) -> IngestReport:
        """Emit the case changes, then write snapshots and, last, the cursor."""
        result = self.report.result
        result.writes.extend(self.snapshot_writes.values())
        self._watch_freshness()
        self.report.cursor = self.cursor
        try:
            apply(result, self.services)
        except BaseException as exc:
            for span in self.spans:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            for span in self.spans:
                span.end()
        if self.report.read:
            totals = self.cursor_entity.properties if self.cursor_entity else {}
            progress = {
                "position": self.cursor,
                "source": self.services.feeds[self.feed].source(str(self.cursor)),
                "at": self.now,
                "records": int(totals.get("records", 0)) + self.report.read,
                "quarantined": int(totals.get("quarantined", 0)) + self.report.quarantined,
            }
            self._write_cursor(Entity(self.feed, "cursor", progress))
        elif self.cursor_entity is not None:
            self.services.memory.cursors[self.feed] = self.cursor_entity
        return self.report

    def _write_cursor(self, entity: Entity) -> None:
        """Conditional on the cursor this tick started from, so a worker never moves it back.

        If another worker moved it meanwhile (the timer ran elsewhere), this tick's
        records were re-reads of records that worker handled: the idempotent steps
        absorb them, nothing is written, and the next tick starts from the table.
        """
        tables, memory = self.services.tables, self.services.memory.cursors
        start = self.cursor_entity
        try:
            if start is None:
                written = tables.create(CURSORS, entity)
            elif start.etag is None:
                written = tables.upsert(CURSORS, entity)
            else:
                written = tables.update(CURSORS, entity, etag=start.etag)
        except (EtagMismatch, EntityExists, EntityNotFound):
            memory.pop(self.feed, None)
            log.warning("feed %s: cursor moved by another worker; next tick starts from the table", self.feed)
            return
        memory[self.feed] = written

    def _watch_freshness(self) -> None:
        """FeedLag when records came in; FeedStale when no line has for too long in working hours."""
        result = self.report.result
        if self.latest_record_at is not None:
            lag = max(0.0, (self.now - self.latest_record_at).total_seconds())
            result.track("FeedLag", feed=self.feed, seconds_behind=round(lag))
            return
        if self.report.read:  # only lines that were quarantined: the feed is not silent
            return
        heard = [self.cursor_entity.properties.get("at") if self.cursor_entity else None]
        # A local run in several processes: a line passed over as another process's is the feed
        # speaking too, so a process whose own crimes fell quiet does not call the feed silent.
        heard.append(self.services.feeds[self.feed].passed_at)
        last = max((at for at in heard if isinstance(at, datetime)), default=None)
        if last is None:
            return
        silent = (self.now - last).total_seconds()
        limit = self.services.settings.FEED_STALE_MINUTES * 60
        if silent > limit and in_working_hours(self.now, self.services.policy):
            result.track("FeedStale", feed=self.feed, seconds_behind=round(silent))
