"""A Niche record and a STORM incident of one crime, evaluated at the same moment in two sessions.

They meet in the incident's row and the crime's row of the Crimes table, written
ETag-checked before anything else: whichever writes second must see the other's
facts. Here the other side's whole evaluation runs between one side's read and
its write, in both orders, and the safety facts still reach both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.adapters.table_layout import CRIMES, FACTS_ROW, INCIDENT_ROW, facts_from, incident_from
from shared.bootstrap import Services
from shared.contracts.feeds import NicheOccurrence, StormIncident
from shared.contracts.messages import CaseChange, Change, ChangeKind, ResolvedCaseChange
from shared.local.host import SimulatedClock
from shared.ports import Entity
from shared.settings import load_settings
from shared.steps.evaluate_journey import evaluate_journey
from tests.builders import embedded, incident, occurrence

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
REF, CALL = "HU/000001/26", "HU-20261120-0123"


class _Interleaving:
    """Runs ``meanwhile`` once, just before the first write of a Crimes row by the step under test."""

    def __init__(self, inner: Any, meanwhile: Callable[[], None]) -> None:
        self.inner, self.meanwhile, self.done = inner, meanwhile, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _first(self, table: str) -> None:
        if table == CRIMES and not self.done:
            self.done = True
            self.meanwhile()

    def create(self, table: str, entity: Entity) -> Entity:
        self._first(table)
        result: Entity = self.inner.create(table, entity)
        return result

    def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
        self._first(table)
        result: Entity = self.inner.update(table, entity, etag=etag)
        return result


def _services(tmp_path: Path) -> Services:
    services, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(NOW))
    return services


def _niche_event() -> str:
    record = NicheOccurrence.model_validate(occurrence("2026-11-20T10:00:00Z", incident_numbers=[CALL]))
    changes = [
        Change(kind=ChangeKind.VICTIM_ADDED, key="P-1", at=NOW),
        Change(kind=ChangeKind.INCIDENT_LINKED, key=CALL, at=NOW),
    ]
    case = CaseChange(
        change_id="n1", feed="niche", crime_reference=REF, detected_at=NOW, changes=changes, niche=record
    )
    return ResolvedCaseChange(event_id="n1", case=case).model_dump_json(by_alias=True)


def _storm_event() -> str:
    # Ingest did not know of the link yet: it comes only from the Niche record.
    record = StormIncident.model_validate(
        incident("2026-11-20T10:00:00Z", scheduled_for="2026-11-20T16:00:00Z", category="Domestic Incident")
    )
    changes = [Change(kind=ChangeKind.CATEGORY_CHANGED, key="Domestic Incident", at=NOW)]
    case = CaseChange(
        change_id="s1", feed="storm", crime_reference=CALL, detected_at=NOW, changes=changes, storm=record
    )
    return ResolvedCaseChange(event_id="s1", case=case).model_dump_json(by_alias=True)


def _told(emitted: list[Any]) -> set[str]:
    return {
        str(item.message.session_id)
        for item in emitted
        if item.queue == "journey_events" and json.loads(item.message.body)["type"] == "shared_facts"
    }


def _crime_categories(services: Services) -> list[str]:
    entity = services.tables.get(CRIMES, REF, FACTS_ROW)
    assert entity is not None
    return facts_from(entity).categories()


def test_storm_writing_second_sees_the_niche_link_and_tells_the_victims(tmp_path: Path) -> None:
    services = _services(tmp_path)
    inner = services.tables
    niche_emitted: list[Any] = []
    services.tables = _Interleaving(
        inner, lambda: niche_emitted.extend(_run(services, inner, _niche_event()))
    )
    storm = evaluate_journey(_storm_event(), services)
    assert niche_emitted, "the Niche evaluation ran in between"
    row = inner.get(CRIMES, CALL, INCIDENT_ROW)
    assert row is not None and incident_from(row).crime_reference == REF
    assert "Domestic Incident" in _crime_categories(services)
    assert REF in _told(storm.emit)  # the victims hear of the safeguarding incident


def test_niche_writing_second_sees_the_incident_category_and_excludes_the_victim(tmp_path: Path) -> None:
    services = _services(tmp_path)
    inner = services.tables
    services.tables = _Interleaving(inner, lambda: _run(services, inner, _storm_event()))
    niche = evaluate_journey(_niche_event(), services)
    assert "Domestic Incident" in _crime_categories(services)
    assert CALL in _told(niche.emit)
    # The victim's acknowledgement became an officer task, not a message.
    assert not [item for item in niche.emit if item.queue == "outbound_messages"]
    journey = json.loads(str(inner.get("Journeys", REF, "P-1").properties["state"]))
    assert journey["duties"]["ack"]["status"] == "tasked"


def _run(services: Services, tables: Any, body: str) -> list[Any]:
    """The other session's whole evaluation, on the plain store."""
    outer = services.tables
    services.tables = tables
    try:
        return evaluate_journey(body, services).emit
    finally:
        services.tables = outer
