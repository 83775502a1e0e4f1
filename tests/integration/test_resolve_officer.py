"""resolve_officer: the directory cache, its time to live, and the fallbacks when Graph is down."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.adapters.table_layout import OFFICERS
from shared.bootstrap import Services
from shared.contracts.feeds import NicheOccurrence
from shared.contracts.messages import CaseChange, Officer, ResolvedCaseChange, parse_journey_event
from shared.local.host import SimulatedClock
from shared.ports import DirectoryUnavailable
from shared.settings import load_settings
from shared.steps.resolve_officer import resolve_officer
from tests.builders import embedded, incident, niche_change, occurrence, storm_change

JO = Officer(
    employee_id="104233", collar_number="PC 1234", display_name="Jo Bloggs", email="jo@example.police.uk"
)


class _Directory:
    def __init__(self) -> None:
        self.down = False
        self.lookups = 0
        self.officers = {"104233": JO}

    def lookup(self, employee_id: str) -> Officer | None:
        self.lookups += 1
        if self.down:
            raise DirectoryUnavailable("Graph is down")
        return self.officers.get(employee_id)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Services, _Directory, SimulatedClock]:
    clock = SimulatedClock(datetime(2026, 11, 20, 10, tzinfo=UTC))
    services, _ = embedded(load_settings(LOCAL_DATA_DIR=tmp_path, OFFICER_CACHE_TTL_HOURS=24), clock)
    directory = _Directory()
    services.directory = directory
    return services, directory, clock


def _change(n: int = 1) -> str:
    record = NicheOccurrence.model_validate(occurrence(f"2026-11-20T10:0{n}:00Z"))
    case = CaseChange(
        change_id=f"c{n}",
        feed="niche",
        crime_reference=record.crime_reference,
        detected_at=record.modified_at,
        changes=[],
        niche=record,
    )
    return case.model_dump_json(by_alias=True)


def _resolved(services: Services, n: int = 1) -> ResolvedCaseChange:
    result = resolve_officer(_change(n), services)
    [emitted] = result.emit
    return ResolvedCaseChange.model_validate_json(emitted.message.body)


def test_an_officer_is_looked_up_once_and_then_served_from_the_cache_until_it_expires(
    world: tuple[Services, _Directory, SimulatedClock],
) -> None:
    services, directory, clock = world
    assert _resolved(services).officer == JO
    assert _resolved(services, 2).officer == JO
    assert directory.lookups == 1
    clock.advance_to(clock.now() + timedelta(hours=25))
    _resolved(services, 3)
    assert directory.lookups == 2


def test_directory_down_uses_the_cached_entry_even_when_old_and_says_so(
    world: tuple[Services, _Directory, SimulatedClock],
) -> None:
    services, directory, clock = world
    _resolved(services)
    clock.advance_to(clock.now() + timedelta(days=3))
    directory.down = True
    event = _resolved(services, 2)
    assert event.officer == JO
    assert event.officer_note == "directory_unavailable:cached_entry"


def test_directory_down_and_nothing_cached_gives_the_team_contact(
    world: tuple[Services, _Directory, SimulatedClock],
) -> None:
    services, directory, _ = world
    directory.down = True
    event = _resolved(services)
    assert event.officer is not None and event.officer.generic
    assert event.officer.display_name == services.policy.force.team_contact_name
    assert event.officer_note == "directory_unavailable:team_contact"
    assert services.tables.get(OFFICERS, "officer", "104233") is None


def test_an_officer_missing_from_the_directory_or_inactive_gives_the_team_contact(
    world: tuple[Services, _Directory, SimulatedClock],
) -> None:
    services, directory, _ = world
    directory.officers = {}
    assert _resolved(services).officer_note == "officer_not_in_directory"
    directory.officers = {"104233": JO.model_copy(update={"active": False})}
    event = _resolved(services, 2)
    assert event.officer is not None and event.officer.generic and event.officer_note == "officer_inactive"


def test_the_fallback_reaches_the_audit_trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.adapters.json_directory import JsonOfficerDirectory
    from tests.builders import replay

    def down(self: JsonOfficerDirectory, employee_id: str) -> Officer | None:
        raise DirectoryUnavailable("down")

    monkeypatch.setattr(JsonOfficerDirectory, "lookup", down)
    result = replay(tmp_path, [occurrence("2026-11-20T10:00:00Z")], end="2026-11-21T00:00:00Z")
    assert any(a["reason"] == "directory_unavailable:team_contact" for a in result["audit"])
    [message] = result["outbox"]
    assert "Your local policing team is dealing with your case" in message["body"]
    assert json.dumps(message).count("Jo Bloggs") == 0


def test_a_worker_keeps_fresh_officers_in_memory_and_reads_the_table_once_they_are_old(
    world: tuple[Services, _Directory, SimulatedClock],
) -> None:
    services, directory, clock = world
    store = services.tables
    _resolved(services)
    reads = store.operations_by["Officers.get"]  # type: ignore[attr-defined]
    _resolved(services, 2)
    assert store.operations_by["Officers.get"] == reads  # type: ignore[attr-defined]
    # Another worker refreshed the entry; once ours is old, the table's fresher one is used.
    clock.advance_to(clock.now() + timedelta(hours=25))
    newer = JO.model_copy(update={"display_name": "Jo Bloggs-Smith"})
    from shared.ports import Entity

    store.upsert(
        OFFICERS, Entity("officer", "104233", {"entry": newer.model_dump_json(), "fetched_at": clock.now()})
    )
    assert _resolved(services, 3).officer == newer
    assert directory.lookups == 1


@pytest.mark.parametrize("officer_known", [True, False], ids=["officer-found", "team-contact"])
@pytest.mark.parametrize("feed", ["niche", "storm", "niche-without-oic"])
def test_the_case_change_reaches_evaluate_journey_whole_and_unchanged(
    world: tuple[Services, _Directory, SimulatedClock], feed: str, officer_known: bool
) -> None:
    """The step passes the case change on as it came (it reads only its ids and the officer's
    employee id): parsed, the resolved event is the case change with the officer added."""
    services, directory, _ = world
    if not officer_known:
        directory.officers.clear()
    if feed == "storm":
        sent = storm_change(incident("2026-11-20T10:01:00Z"), linked_crime="42/123/26").case
    else:
        record = occurrence("2026-11-20T10:01:00Z")
        if feed == "niche-without-oic":
            record = {key: value for key, value in record.items() if key != "oic"}
        sent = niche_change(record).case
    body = sent.model_dump_json(by_alias=True)

    [emitted] = resolve_officer(body, services).emit
    event = ResolvedCaseChange.model_validate_json(emitted.message.body)

    assert emitted.message.message_id == "r-" + sent.change_id
    assert emitted.message.session_id == sent.crime_reference
    assert event.case == sent
    assert event.event_id == sent.change_id
    if feed != "niche":
        assert (event.officer, event.officer_note) == (None, None)
    elif officer_known:
        assert (event.officer, event.officer_note) == (JO, None)
    else:
        assert event.officer is not None and event.officer.generic
        assert event.officer_note == "officer_not_in_directory"


def test_a_case_change_that_breaks_its_contract_is_refused_by_evaluate_journey_not_lost(
    world: tuple[Services, _Directory, SimulatedClock],
) -> None:
    """resolve_officer no longer validates the whole record; evaluate_journey does, so a record
    that breaks the contract fails there (and Service Bus dead-letters it, with the error)."""
    services, _, _ = world
    body = json.loads(_change())
    body["niche"]["status"] = "not-a-status"
    [emitted] = resolve_officer(json.dumps(body), services).emit
    with pytest.raises(ValidationError, match="status"):
        parse_journey_event(emitted.message.body)


@pytest.mark.parametrize(
    "body",
    ['{"type": "resolved_case_change", "version": 1}', '{"type": "case_change", "version": 2}', "not json"],
    ids=["another-type", "another-version", "not-json"],
)
def test_a_message_that_is_not_a_case_change_is_refused(
    world: tuple[Services, _Directory, SimulatedClock], body: str
) -> None:
    services, _, _ = world
    with pytest.raises(ValidationError):
        resolve_officer(body, services)


def test_a_case_change_without_its_defaulted_type_and_version_is_resolved_as_the_contract_allows(
    world: tuple[Services, _Directory, SimulatedClock],
) -> None:
    """``type`` and ``version`` have defaults in the CaseChange contract: a body without them is
    a case change, here as in evaluate_journey."""
    services, _, _ = world
    body = json.loads(_change())
    del body["type"], body["version"]
    [emitted] = resolve_officer(json.dumps(body), services).emit
    assert ResolvedCaseChange.model_validate_json(emitted.message.body).officer == JO
