"""Repositories over the state tables: journeys, the Messages ledger and delivery reports.

The steps ask for a journey or a ledger entry and hand back what to write;
partition keys, stored forms, ETags and "it already exists" are answered here,
once, for both twins of the table store (SQLite and Table Storage).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.table_layout import (
    DELIVERIES,
    JOURNEYS,
    MESSAGES,
    journey_entity,
    journey_from,
    ledger_entity,
    ledger_from,
)
from shared.domain.journey import Journey
from shared.domain.ledger import LedgerEntry
from shared.ports import DeliveryLink, Entity, EntityExists, StoredJourney, TableStore, Write


class TableJourneys:
    """The JourneyRepository over a table store (the Journeys table)."""

    def __init__(self, tables: TableStore) -> None:
        self._tables = tables

    def get(self, partition: str, person_id: str) -> StoredJourney | None:
        entity = self._tables.get(JOURNEYS, partition, person_id)
        if entity is None:
            return None
        return StoredJourney(journey_from(entity), entity.etag, str(entity.properties["state"]))

    def in_partition(self, partition: str) -> list[StoredJourney]:
        return [
            StoredJourney(journey_from(entity), entity.etag, str(entity.properties["state"]))
            for entity in self._tables.query_partition(JOURNEYS, partition)
        ]

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
