"""The ports: narrow interfaces the steps use, each with an embedded and an Azure adapter."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

from shared.contracts.messages import Officer, TaskNotice
from shared.domain.journey import Duty, Journey
from shared.domain.ledger import LedgerEntry
from shared.domain.ledger import (
    ProviderReceipt as ProviderReceipt,  # a provider's answer, in the domain's terms
)
from shared.domain.links import Link
from shared.domain.officer_mail import Recipient, RenderedOfficerMail
from shared.domain.policy import Policy
from shared.domain.wording import RenderedEmail, RenderedSms

# --- Table Storage ----------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """A Table Storage entity: keys, properties and (once stored) its ETag."""

    partition_key: str
    row_key: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    etag: str | None = None


class TableError(Exception):
    """Base class of table store errors."""


class EntityExists(TableError):
    """Create failed: an entity with these keys already exists."""


class EntityNotFound(TableError):
    """Update or delete failed: no entity with these keys."""


class EtagMismatch(TableError):
    """Conditional update failed: the entity changed since it was read (HTTP 412)."""


@dataclass(frozen=True)
class Write:
    """One table write.

    upsert: insert or replace. insert: create, failing if it exists (a concurrent
    writer won; retry). insert_once: create, an existing entity is the same write
    from an earlier delivery. replace: conditional on ``etag``.
    """

    table: str
    entity: Entity
    mode: Literal["upsert", "insert", "insert_once", "replace"] = "upsert"
    etag: str | None = None


class TableStore(Protocol):
    """Keyed state with Azure Table Storage semantics."""

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        """Point read; None when absent."""
        ...

    def create(self, table: str, entity: Entity) -> Entity:
        """Insert; raises EntityExists when the keys are taken."""
        ...

    def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
        """Replace if the stored ETag is ``etag``; raises EtagMismatch or EntityNotFound."""
        ...

    def upsert(self, table: str, entity: Entity) -> Entity:
        """Insert or replace unconditionally."""
        ...

    def upsert_many(self, table: str, entities: Sequence[Entity]) -> None:
        """Insert or replace several entities of ONE partition, in as few round trips as allowed."""
        ...

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        """Delete if present."""
        ...

    def query_partition(self, table: str, partition_key: str) -> Iterator[Entity]:
        """Every entity of one partition, in RowKey order."""
        ...

    def query_through(self, table: str, last_partition: str) -> Iterator[Entity]:
        """Every entity whose PartitionKey sorts at or before ``last_partition``, in key order
        (one filtered query: for an index keyed by day, such as the retention index)."""
        ...


class ExportableStore(TableStore, Protocol):
    """A table store that can read across partitions: for reports, repairs and erasure (the local
    run and the operations commands), never for a step."""

    def export(self, table: str) -> Iterator[Entity]:
        """Every entity of a table."""
        ...

    def with_row_key(self, table: str, row_key: str) -> Iterator[Entity]:
        """Every entity of a table with this RowKey, whatever its partition (filtered by the
        service: only the matches come back)."""
        ...

    def close(self) -> None: ...


# --- Blob storage -------------------------------------------------------------


class BlobStore(Protocol):
    """Blobs of one container: what is too large for a Table Storage row (an entity holds at most
    1 MiB), such as a feed record quarantined for its size. Names are ``/``-separated paths."""

    def put(self, name: str, data: bytes) -> None:
        """Write the blob whole, replacing any blob of that name (so a retried write is harmless)."""
        ...

    def get(self, name: str) -> bytes | None:
        """The blob's bytes; None if there is none of that name."""
        ...

    def delete(self, name: str) -> None:
        """Remove the blob; one that is already gone is not an error."""
        ...

    def written_before(self, before: datetime) -> Iterator[str]:
        """The names of the blobs last written before ``before`` (listed by the service)."""
        ...


@dataclass
class WorkerMemory:
    """Entities a worker keeps between invocations to spare table reads.

    Never the only copy of anything: each entry is also in its table, and a step
    that finds an entry stale (a conditional write fails) drops it and reads again.
    """

    officers: dict[str, Entity] = field(default_factory=dict)  # employee id -> Officers entity
    cursors: dict[str, Entity] = field(default_factory=dict)  # feed -> Cursors entity, with its ETag


# --- Repositories over the tables -----------------------------------------------------


@dataclass(frozen=True)
class StoredJourney:
    """A journey as read, with what a conditional write needs: its ETag and its stored form.

    A step may hand ``journey`` to a rule as its own (changed in place, not copied): what the
    write needs of the journey as read is kept beside it, taken when it was read.
    """

    journey: Journey
    etag: str | None
    state: str  # the stored JSON, to tell an unchanged journey from a changed one
    finalised: date | None  # the day it was finalised as read (finalised_day), for the Retention index


class JourneyRepository(Protocol):
    """Each recipient's journey, keyed by (crime reference or incident number, person id)."""

    def get(self, partition: str, person_id: str) -> StoredJourney | None:
        """One journey, or None."""
        ...

    def in_partition(self, partition: str) -> list[StoredJourney]:
        """Every journey kept under one crime reference (or incident number)."""
        ...

    def save(self, journey: Journey, read: StoredJourney | None) -> Write | None:
        """The write that stores ``journey``: a create if it was not there, else a replace
        conditional on the ETag it was read with (a conflict means another worker moved it on).
        None when nothing changed."""
        ...


class MessageLedger(Protocol):
    """The Messages ledger (the status machine of shared/domain/ledger.py)."""

    def get(self, crime_reference: str, message_key: str) -> LedgerEntry | None: ...

    def claim(self, entry: LedgerEntry) -> LedgerEntry | None:
        """Create the entry (before the provider is called); if it already exists, the stored
        one (an earlier delivery of the same message), else None."""
        ...

    def record(self, entry: LedgerEntry, etag: str | None = None) -> Write:
        """The write that stores the entry's new status (applied with the step's other writes);
        with ``etag``, only if nobody has moved it since it was read."""
        ...

    def read(self, crime_reference: str, message_key: str) -> tuple[LedgerEntry, str | None] | None:
        """The entry with the ETag it was read at, for a conditional ``record``."""
        ...


@dataclass(frozen=True)
class DeliveryLink:
    """Which message a delivery report is about: the key its reports carry, and the message."""

    report_key: str
    crime_reference: str
    message_key: str
    person_id: str
    channel: str
    duties: tuple[str, ...]


class PersonalLinks(Protocol):
    """The recipients' personal links (the Links table, journey-rules.md §13)."""

    def for_person(self, crime_reference: str, person_id: str, now: datetime) -> str:
        """The person's live link id, made now if they have none (the same one for every message)."""
        ...

    def get(self, link_id: str) -> Link | None:
        """The link with this id, revoked or not; None for an id that was never made."""
        ...

    def revoke(self, crime_reference: str, person_id: str, now: datetime) -> str | None:
        """Revoke the person's live link: it opens nothing from now, and the next message carries
        a new one; its rate-limit counters go. The revoked id, or None if they had none."""
        ...

    def forget(self, crime_reference: str, person_id: str) -> int:
        """Remove the person's live link, its index and its rate-limit counters (erasure,
        journey-rules.md §16); how many rows went. A link revoked earlier keeps its id-only row."""
        ...


class DeliveryReports(Protocol):
    """Delivery reports and the link from the id they carry to the message (the Deliveries table)."""

    def remember(self, link: DeliveryLink) -> None:
        """Store the link now (before the message is handed over: a report can come at once)."""
        ...

    def find(self, report_key: str) -> DeliveryLink | None: ...

    def store(self, report_key: str, event_id: str, properties: Mapping[str, Any]) -> Write:
        """The write that keeps one report (once: a repeated event is the same row)."""
        ...


# --- Service Bus --------------------------------------------------------------


# The most a Service Bus Standard message holds, its body, application properties and headers
# together (a queue publisher refuses a larger one, the embedded queues too).
QUEUE_MESSAGE_MAX_BYTES = 256 * 1024


class MessageTooLarge(ValueError):
    """A message over ``QUEUE_MESSAGE_MAX_BYTES``: the queue refuses it (and its batch)."""


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to put on a queue."""

    body: str
    message_id: str
    session_id: str | None = None
    scheduled_at: datetime | None = None
    application_properties: Mapping[str, str] = field(default_factory=dict)

    def size(self) -> int:
        """Its body and application properties in bytes (the headers Service Bus adds are not counted)."""
        properties = sum(len(k.encode()) + len(v.encode()) for k, v in self.application_properties.items())
        return len(self.body.encode("utf-8")) + properties


class ScheduledMessageGone(Exception):
    """No message of that sequence number is still scheduled: it fell due (it is on the queue or
    delivered), it was cancelled, or the number never named one (a duplicate the broker dropped)."""


class QueuePublisher(Protocol):
    """Sends messages to the pipeline's queues."""

    def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send (or schedule) messages; duplicates by message id are dropped by the broker."""
        ...

    def schedule(self, queue: str, messages: Sequence[OutgoingMessage]) -> list[int]:
        """Schedule messages (each has a ``scheduled_at``) that may be cancelled: their sequence
        numbers, in order. A duplicate by message id is dropped as ``send`` drops it, and the
        number given for it names nothing (cancelling it raises ScheduledMessageGone)."""
        ...

    def cancel_scheduled(self, queue: str, sequence_number: int) -> None:
        """Remove a message still scheduled, so it is never received; ScheduledMessageGone if
        there is none of that number (it fell due, was cancelled, or was never kept)."""
        ...


# --- Feeds ----------------------------------------------------------------------


@dataclass(frozen=True)
class FeedLine:
    """One raw record read from a feed, with the cursor position just after it."""

    raw: str
    position: str


class FeedUnavailable(Exception):
    """The feed could not be read (after retries); what was read before it stands."""


class FeedReader(Protocol):
    """Reads a feed from a stored cursor."""

    # The last tick (its ``now``) at which the reader passed over a line as another process's (a
    # local run in several processes): the feed spoke then, though this reader yielded nothing of
    # it, so ingest does not call it silent (FeedStale). None for a reader that never passes over.
    passed_at: datetime | None

    def read(self, cursor: str | None, now: datetime, limit: int) -> Iterator[FeedLine]:
        """Yield up to ``limit`` records after ``cursor`` that were visible at ``now``."""
        ...

    def source(self, cursor: str) -> str:
        """What this feed is, as seen from ``cursor``: kept with the cursor, so that a cursor
        written reading one feed is never used to read another (which would skip or repeat
        records). No personal data: a digest or an address."""
        ...


# --- Officer directory -----------------------------------------------------------


class DirectoryUnavailable(Exception):
    """The directory could not be reached; callers fall back to a cache or team contact."""


class OfficerDirectory(Protocol):
    """Looks officers up by employee id."""

    def lookup(self, employee_id: str) -> Officer | None:
        """The officer, None when unknown; raises DirectoryUnavailable when down."""
        ...


# --- Message providers --------------------------------------------------------------


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str
    # The recipient's personal link, for the List-Unsubscribe headers (RFC 2369, RFC 8058).
    unsubscribe_url: str | None = None


class ProviderThrottled(Exception):
    """The provider asked us to come back later (HTTP 429)."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"provider throttled; retry after {retry_after_seconds:.0f}s")
        self.retry_after_seconds = retry_after_seconds


class ProviderRejected(Exception):
    """The provider refused this message for good (bad address, content, sender); retrying cannot help."""


class ProviderStatusUnknown(Exception):
    """The provider cannot say whether it already accepted a message with this key."""


class MessageProvider(Protocol):
    """Email and SMS delivery (Azure Communication Services; a file outbox locally)."""

    def send_email(
        self, *, idempotency_key: str, to: str, content: EmailContent, metadata: Mapping[str, Any]
    ) -> ProviderReceipt:
        """Hand an email over; the same key never reaches the recipient twice."""
        ...

    def send_sms(
        self,
        *,
        idempotency_key: str,
        to: str,
        text: str,
        metadata: Mapping[str, Any],
        first_sent_at: datetime | None = None,
    ) -> ProviderReceipt:
        """Hand an SMS over; the same key (with its first attempt's time) never reaches the recipient twice."""
        ...

    def accepted(self, idempotency_key: str) -> ProviderReceipt | None:
        """The receipt if a message with this key was handed over before, None if never.

        Raises ProviderStatusUnknown when the provider cannot tell.
        """
        ...

    def report_key(self, idempotency_key: str, channel: str) -> str:
        """The id this message's delivery reports will carry (known before it is handed over)."""
        ...


# --- Message rendering ------------------------------------------------------------


class MessageRenderer(Protocol):
    """Fills the message and officer-mail templates (what they say is worked out in the domain)."""

    def choose_language(self, journey: Journey, policy: Policy) -> tuple[str, bool]:
        """The language to write in, and whether the preferred one had to fall back."""
        ...

    def sms(
        self,
        journey: Journey,
        duties: list[Duty],
        policy: Policy,
        language: str = "en",
        *,
        link: str,
    ) -> RenderedSms: ...

    def email(
        self,
        journey: Journey,
        duties: list[Duty],
        policy: Policy,
        language: str = "en",
        *,
        link: str,
    ) -> RenderedEmail: ...

    def officer_mail(
        self, notice: TaskNotice, policy: Policy, recipient: Recipient
    ) -> RenderedOfficerMail: ...


# --- Officer tasks and time ----------------------------------------------------------


@dataclass(frozen=True)
class OfficerMail:
    """One mail about an officer task: to its assignee or team (``task``), or to a supervisor (``reminder``)."""

    task_id: str
    crime_reference: str
    kind: Literal["task", "reminder"]
    to: str
    subject: str
    text: str
    html: str


class TaskNotifier(Protocol):
    """Officer mail (Azure Communication Services Email; ``officer-mail.jsonl`` locally).

    Never the victims' provider's outbox: what victims receive and what officers
    receive are kept apart.
    """

    def send(self, *, idempotency_key: str, mail: OfficerMail) -> ProviderReceipt:
        """Hand one officer mail over; the same key never mails twice."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...
