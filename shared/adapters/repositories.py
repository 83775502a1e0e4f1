"""Repositories over the state tables: journeys and the Messages ledger.

The steps ask for a journey or a ledger entry and hand back what to write;
partition keys, stored forms, ETags and "it already exists" are answered here,
once, for both twins of the table store (SQLite and Table Storage).
"""

from __future__ import annotations

from shared.adapters.table_layout import (
    JOURNEYS,
    MESSAGES,
    journey_entity,
    journey_from,
    ledger_entity,
    ledger_from,
)
from shared.domain.journey import Journey
from shared.domain.ledger import LedgerEntry
from shared.ports import EntityExists, StoredJourney, TableStore, Write


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

    def record(self, entry: LedgerEntry) -> Write:
        return Write(MESSAGES, ledger_entity(entry))
