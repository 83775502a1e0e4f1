"""resolve_officer: add the officer in charge's contact details to a case change.

Officers are cached in the Officers table with a time to live, and a worker keeps
the entries it has read while they are fresh, so most lookups read nothing. When the
directory is down the cached entry (even if old) is used, or the generic team
contact, and the journey's audit says so.

The step reads only what it needs of a case change (its ids and the officer's
employee id) and passes the record on as it came: evaluate_journey validates the
whole case change against its contract when it parses the resolved one, so the
record is validated once on its way, not twice (issue 16: about a tenth of the
steps' CPU went on the second validation and on writing the record out again).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.adapters.table_layout import OFFICERS
from shared.contracts.messages import Officer, resolved_body, resolved_message_id
from shared.ports import DirectoryUnavailable, Entity, OutgoingMessage, Write
from shared.steps.dependencies import ResolveNeeds
from shared.steps.results import Emit, StepResult, apply
from shared.tracing import annotate, incoming

GENERIC_ID = "team"


def generic_officer(team_name: str) -> Officer:
    return Officer(employee_id=GENERIC_ID, display_name=team_name, generic=True)


def _lookup(
    services: ResolveNeeds, employee_id: str, now: datetime
) -> tuple[Officer, str | None, Write | None]:
    """The officer, an audit note when it is a fallback, and the cache write to make."""
    ttl = timedelta(hours=services.settings.OFFICER_CACHE_TTL_HOURS)

    def fresh(entity: Entity | None) -> bool:
        fetched_at = entity.properties.get("fetched_at") if entity else None
        return isinstance(fetched_at, datetime) and now - fetched_at < ttl

    memory = services.memory.officers
    cached_entity = memory.get(employee_id)
    if not fresh(cached_entity):  # not in this worker's memory, or old there: the table may be newer
        cached_entity = services.tables.get(OFFICERS, "officer", employee_id)
    cached = Officer.model_validate_json(cached_entity.properties["entry"]) if cached_entity else None
    team = generic_officer(services.policy.force.team_contact_name)
    if cached is not None and cached_entity is not None and fresh(cached_entity):
        memory[employee_id] = cached_entity  # later changes of this officer's cases read nothing
        return (cached if cached.active else team), (None if cached.active else "officer_inactive"), None
    try:
        found = services.directory.lookup(employee_id)
    except DirectoryUnavailable:
        if cached is not None:
            return cached, "directory_unavailable:cached_entry", None
        return team, "directory_unavailable:team_contact", None
    if found is None:
        return team, "officer_not_in_directory", None
    entry = Entity("officer", employee_id, {"entry": found.model_dump_json(), "fetched_at": now})
    memory[employee_id] = entry
    write = Write(OFFICERS, entry)
    if not found.active:
        return team, "officer_inactive", write
    return found, None, write


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Oic(_Read):
    employee_id: str


class _Niche(_Read):
    oic: _Oic | None = None


class _CaseHead(_Read):
    """What this step reads of a case change; the rest passes through untouched."""

    type: Literal["case_change"] = "case_change"
    version: Literal[1] = 1
    change_id: str
    crime_reference: str
    niche: _Niche | None = None


def resolve_officer(
    body: bytes | str, services: ResolveNeeds, properties: Mapping[str, Any] | None = None
) -> StepResult:
    """Handle one case-changes message (``properties``: its application properties)."""
    text = body.decode() if isinstance(body, bytes) else body
    case = _CaseHead.model_validate_json(text)
    annotate(case.crime_reference)
    now = services.clock.now()
    result = StepResult(trace=incoming(properties))
    officer: Officer | None = None
    note: str | None = None
    if case.niche is not None and case.niche.oic is not None:
        officer, note, cache_write = _lookup(services, case.niche.oic.employee_id, now)
        if cache_write is not None:
            result.writes.append(cache_write)
    resolved = resolved_body(text.strip(), case.change_id, officer, note)
    result.emit.append(
        Emit(
            "journey_events",
            OutgoingMessage(resolved, resolved_message_id(case.change_id), session_id=case.crime_reference),
        )
    )
    return apply(result, services)
