"""Repositories over the state tables: journeys, the Messages ledger, delivery reports and links.

The steps ask for a journey or a ledger entry and hand back what to write;
partition keys, stored forms, ETags and "it already exists" are answered here,
once, for both twins of the table store (SQLite and Table Storage).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.adapters.table_layout import (
    DELIVERIES,
    JOURNEYS,
    LINKS,
    MESSAGES,
    journey_entity,
    journey_from,
    ledger_entity,
    ledger_from,
)
from shared.domain.journey import Journey
from shared.domain.ledger import LedgerEntry
from shared.domain.links import LINK_ALPHABET, Link
from shared.domain.policy import LINK_ID_LENGTH
from shared.domain.retention import finalised_day
from shared.ports import DeliveryLink, Entity, EntityExists, StoredJourney, TableStore, Write
from shared.web.rate_limit import forget_uses


def _stored(entity: Entity) -> StoredJourney:
    journey = journey_from(entity)
    return StoredJourney(journey, entity.etag, str(entity.properties["state"]), finalised_day(journey))


class TableJourneys:
    """The JourneyRepository over a table store (the Journeys table)."""

    def __init__(self, tables: TableStore) -> None:
        self._tables = tables

    def get(self, partition: str, person_id: str) -> StoredJourney | None:
        entity = self._tables.get(JOURNEYS, partition, person_id)
        if entity is None:
            return None
        return _stored(entity)

    def in_partition(self, partition: str) -> list[StoredJourney]:
        return [_stored(entity) for entity in self._tables.query_partition(JOURNEYS, partition)]

    def save(self, journey: Journey, read: StoredJourney | None) -> Write | None:
        entity = journey_entity(journey)
        if read is None:
            return Write(JOURNEYS, entity, mode="insert")
        if read.state == entity.properties["state"]:
            return None  # nothing changed: no write (a deadline already met, a stale wake)
        if read.etag is None:
            raise ValueError("a journey read from the store has an ETag")
        return Write(JOURNEYS, entity, mode="replace", etag=read.etag)


class TableLedger:
    """The MessageLedger over a table store (the Messages table)."""

    def __init__(self, tables: TableStore) -> None:
        self._tables = tables

    def get(self, crime_reference: str, message_key: str) -> LedgerEntry | None:
        entity = self._tables.get(MESSAGES, crime_reference, message_key)
        return None if entity is None else ledger_from(entity)

    def claim(self, entry: LedgerEntry) -> LedgerEntry | None:
        try:
            self._tables.create(MESSAGES, ledger_entity(entry))
        except EntityExists:
            return self.get(entry.crime_reference, entry.message_key)
        return None

    def record(self, entry: LedgerEntry, etag: str | None = None) -> Write:
        if etag is None:
            return Write(MESSAGES, ledger_entity(entry))
        return Write(MESSAGES, ledger_entity(entry), mode="replace", etag=etag)

    def read(self, crime_reference: str, message_key: str) -> tuple[LedgerEntry, str | None] | None:
        entity = self._tables.get(MESSAGES, crime_reference, message_key)
        return None if entity is None else (ledger_from(entity), entity.etag)


_LINK_ROW = "message"


class TableDeliveries:
    """The DeliveryReports repository over a table store (the Deliveries table)."""

    def __init__(self, tables: TableStore) -> None:
        self._tables = tables

    def remember(self, link: DeliveryLink) -> None:
        properties = {
            "crime_reference": link.crime_reference,
            "message_key": link.message_key,
            "person_id": link.person_id,
            "channel": link.channel,
            "duties": ",".join(link.duties),
        }
        self._tables.upsert(DELIVERIES, Entity(link.report_key, _LINK_ROW, properties))

    def find(self, report_key: str) -> DeliveryLink | None:
        entity = self._tables.get(DELIVERIES, report_key, _LINK_ROW)
        if entity is None:
            return None
        p = entity.properties
        return DeliveryLink(
            report_key=report_key,
            crime_reference=str(p["crime_reference"]),
            message_key=str(p["message_key"]),
            person_id=str(p["person_id"]),
            channel=str(p["channel"]),
            duties=tuple(key for key in str(p.get("duties") or "").split(",") if key),
        )

    def store(self, report_key: str, event_id: str, properties: Mapping[str, Any]) -> Write:
        return Write(
            DELIVERIES, Entity(report_key, f"report:{event_id}", dict(properties)), mode="insert_once"
        )


def random_link_id() -> str:
    """A new link id: LINK_ID_LENGTH letters and digits from the operating system's CSPRNG."""
    return "".join(secrets.choice(LINK_ALPHABET) for _ in range(LINK_ID_LENGTH))


_LINK = "link"


class TableLinks:
    """The PersonalLinks repository over a table store (the Links table).

    A person's link is made once and kept: the row under the crime names the live link, and
    is created only if absent, so two messages to one person sent at once get the same link.
    """

    def __init__(self, tables: TableStore, new_id: Callable[[], str] = random_link_id) -> None:
        self._tables = tables
        self._new_id = new_id

    def for_person(self, crime_reference: str, person_id: str, now: datetime) -> str:
        index = self._tables.get(LINKS, crime_reference, _person_row(person_id))
        if index is not None:
            return str(index.properties["link_id"])
        link_id = self._new_id()
        # The link first, then the index that makes it the person's: a link no index names opens
        # its page all the same but is never sent, and costs a row.
        self._tables.upsert(
            LINKS,
            Entity(
                link_id,
                _LINK,
                {"crime_reference": crime_reference, "person_id": person_id, "created_at": now},
            ),
        )
        try:
            self._tables.create(LINKS, Entity(crime_reference, _person_row(person_id), {"link_id": link_id}))
        except EntityExists:  # another worker made the person's link first: use that one
            self._tables.delete(LINKS, link_id, _LINK)
            index = self._tables.get(LINKS, crime_reference, _person_row(person_id))
            assert index is not None
            return str(index.properties["link_id"])
        return link_id

    def find(self, crime_reference: str, person_id: str) -> str | None:
        """The person's live link id, if they have one (makes none)."""
        index = self._tables.get(LINKS, crime_reference, _person_row(person_id))
        return None if index is None else str(index.properties["link_id"])

    def get(self, link_id: str) -> Link | None:
        entity = self._tables.get(LINKS, link_id, _LINK)
        if entity is None:
            return None
        p = entity.properties
        revoked = p.get("revoked_at")
        return Link(
            link_id,
            str(p["crime_reference"]),
            str(p["person_id"]),
            p["created_at"],
            revoked if isinstance(revoked, datetime) else None,
        )

    def revoke(self, crime_reference: str, person_id: str, now: datetime) -> str | None:
        """Revoke the person's live link (the next message gets a new one); its id, or None."""
        index = self._tables.get(LINKS, crime_reference, _person_row(person_id))
        if index is None:
            return None
        link_id = str(index.properties["link_id"])
        link = self._tables.get(LINKS, link_id, _LINK)
        if link is not None:
            self._tables.upsert(LINKS, Entity(link_id, _LINK, {**link.properties, "revoked_at": now}))
        self._tables.delete(LINKS, crime_reference, _person_row(person_id))
        forget_uses(self._tables, link_id)  # it opens nothing now: its rate-limit counters limit nothing
        return link_id

    def forget(self, crime_reference: str, person_id: str) -> int:
        index = self._tables.get(LINKS, crime_reference, _person_row(person_id))
        if index is None:
            return 0
        link_id = str(index.properties["link_id"])
        uses = forget_uses(self._tables, link_id)
        self._tables.delete(LINKS, link_id, _LINK)
        self._tables.delete(LINKS, crime_reference, _person_row(person_id))
        return 2 + uses


def _person_row(person_id: str) -> str:
    return f"person:{person_id}"
