"""Builders of feed records for scenario tests (the feed contracts' shapes, schemas/), and of the
domain's own objects (journeys, duties, case changes, shared facts) for the unit tests of the pure rules."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.policy_file import load_policy
from shared.adapters.sqlite_queue import SqliteQueueBroker
from shared.bootstrap import Services, SystemClock, bootstrap, embedded_queues
from shared.contracts.feeds import NicheOccurrence, StormIncident
from shared.contracts.messages import (
    CaseChange,
    CrimeFacts,
    Officer,
    OutboundMessage,
    ResolvedCaseChange,
    SharedFacts,
)
from shared.domain.diff import diff_niche, diff_storm
from shared.domain.facts import tell
from shared.domain.journey import Duty, Journey
from shared.domain.people import VictimFacts
from shared.domain.policy import Policy
from shared.local.generate import copy_synthetic_marker, generate
from shared.local.run import RunRequest, run
from shared.ports import Clock
from shared.settings import Settings
from tests.conftest import read_jsonl

OFFICER = {
    "employee_id": "104233",
    "collar_number": "PC 1234",
    "display_name": "Jo Bloggs",
    "rank": "Police Constable",
    "email": "jo.bloggs@example.police.uk",
    "phone": "101",
    "active": True,
}


def victim(
    person_id: str = "P-1",
    *,
    channel: str = "email",
    email: str | None = "alex@example.org",
    mobile: str | None = "07700 900123",
    opted_out: bool = False,
    safe_sms: bool = True,
    safe_email: bool = True,
    date_of_birth: str = "1990-01-01",
    guardian: dict[str, Any] | None = None,
    frequency_days: int = 28,
    language: str = "en",
) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "name": {"title": "Ms", "forename": "Alex", "surname": "Smith"},
        "date_of_birth": date_of_birth,
        "contact": {"email": email, "mobile": mobile},
        "preferences": {
            "channel": channel,
            "frequency_days": frequency_days,
            "language": language,
            "opted_out": opted_out,
        },
        "safe_contact": {"sms": safe_sms, "email": safe_email},
        "enhanced_rights": [],
        "guardian": guardian,
    }


def milestone(ident: str, kind: str, at: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": ident, "type": kind, "at": at, "details": details or {}}


def occurrence(
    modified_at: str,
    *,
    ref: str = "HU/000001/26",
    recorded_at: str | None = None,
    flags: list[str] | None = None,
    status: str = "under_investigation",
    milestones: list[dict[str, Any]] | None = None,
    victims: list[dict[str, Any]] | None = None,
    outcome: dict[str, Any] | None = None,
    incident_numbers: list[str] | None = None,
) -> dict[str, Any]:
    number = ref.split("/")[1]
    return {
        "schema": "niche.occurrence/1",
        "occurrence_id": f"HU-26-{number}",
        "crime_reference": ref,
        "modified_at": modified_at,
        "recorded_at": recorded_at or modified_at,
        "incident_numbers": incident_numbers or [],
        "offence": {
            "code": "105/01",
            "description": "Assault occasioning actual bodily harm",
            "category": "violence",
        },
        "flags": flags or [],
        "status": status,
        "outcome": outcome,
        "oic": {"employee_id": "104233", "collar_number": "PC 1234"},
        "milestones": milestones or [],
        "victims": victims if victims is not None else [victim()],
    }


def replay(
    folder: Path,
    niche: list[dict[str, Any]],
    *,
    end: str,
    storm: list[dict[str, Any]] | None = None,
    delivery_reports: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write the feeds, run them through the local host until ``end``, and read every output
    (``delivery_reports``: what the embedded provider reports for each address, as ``run --delivery-reports``)."""
    feeds = folder / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    (feeds / "niche.jsonl").write_text("".join(json.dumps(r) + "\n" for r in niche), encoding="utf-8")
    if storm:
        (feeds / "storm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in storm), encoding="utf-8")
    (feeds / "officers.json").write_text(json.dumps([OFFICER]), encoding="utf-8")
    out = folder / "out"
    reports = None
    if delivery_reports is not None:
        reports = feeds / "delivery-reports.json"
        reports.write_text(json.dumps(delivery_reports), encoding="utf-8")
    summary = run(
        RunRequest(
            feeds, feeds / "officers.json", out, end=datetime.fromisoformat(end), delivery_reports=reports
        )
    )
    return {
        "summary": summary,
        "outbox": read_jsonl(out / "outbox.jsonl"),
        "tasks": read_jsonl(out / "tasks.jsonl"),
        "audit": read_jsonl(out / "audit.jsonl"),
        "officer_mail": read_jsonl(out / "officer-mail.jsonl"),
        "deliveries": read_jsonl(out / "deliveries.jsonl"),
        "out": out,
    }


def incident(
    modified_at: str,
    *,
    number: str = "HU-20261120-0123",
    scheduled_for: str | None = None,
    consent: bool = True,
    mobile: str | None = "+447700900123",
    email: str | None = None,
    crime_reference: str | None = None,
    category: str = "Violence",
    closing_category: str | None = None,
) -> dict[str, Any]:
    return {
        "schema": "storm.incident/1",
        "incident_number": number,
        "modified_at": modified_at,
        "opened_at": modified_at,
        "status": "resourced",
        "opening_category": category,
        "closing_category": closing_category,
        "crime_reference": crime_reference,
        "attendance": {"scheduled_for": scheduled_for, "attended_at": None} if scheduled_for else None,
        "caller": {
            "person_id": "C-77",
            "name": {"forename": "Alex", "surname": "Smith"},
            "contact": {"email": email, "mobile": mobile},
            "consent_to_updates": consent,
        },
    }


def embedded(settings: Settings, clock: Clock | None = None) -> tuple[Services, SqliteQueueBroker]:
    """A local run's services through the composition root: SQLite state and queues, and files in
    place of the feeds, the directory and both providers. The policy is read before anything opens."""
    clock = clock or SystemClock()
    policy = load_policy(settings.JOURNEY_POLICY_PATH)
    broker = embedded_queues(settings, clock)
    return bootstrap(settings, clock=clock, policy=policy, publisher=broker, files_only=True), broker


# --- Domain objects, for the unit tests of the pure rules ------------------------------------------

DIRECTORY_OFFICER = Officer.model_validate(OFFICER)


def niche_change(
    record: dict[str, Any],
    before: dict[str, Any] | None = None,
    *,
    officer: Officer | None = DIRECTORY_OFFICER,
) -> ResolvedCaseChange:
    """The event evaluate_journey gets for a Niche record read after ``before`` (None: first seen):
    the differences as ingest finds them, the officer as resolve_officer adds it."""
    new = NicheOccurrence.model_validate(record)
    old = NicheOccurrence.model_validate(before) if before is not None else None
    change_id = f"niche:{new.crime_reference}:{new.modified_at.isoformat()}"
    case = CaseChange(
        change_id=change_id,
        feed="niche",
        crime_reference=new.crime_reference,
        detected_at=new.modified_at,
        changes=diff_niche(old, new),
        niche=new,
    )
    return ResolvedCaseChange(event_id=change_id, case=case, officer=officer)


def storm_change(
    record: dict[str, Any], before: dict[str, Any] | None = None, *, linked_crime: str | None = None
) -> ResolvedCaseChange:
    """The event evaluate_journey gets for a STORM record read after ``before``, keyed by its incident."""
    new = StormIncident.model_validate(record)
    old = StormIncident.model_validate(before) if before is not None else None
    change_id = f"storm:{new.incident_number}:{new.modified_at.isoformat()}"
    case = CaseChange(
        change_id=change_id,
        feed="storm",
        crime_reference=new.incident_number,
        detected_at=new.modified_at,
        changes=diff_storm(old, new),
        storm=new,
        linked_crime=linked_crime or new.crime_reference,
    )
    return ResolvedCaseChange(event_id=change_id, case=case)


def facts_told(
    partition: str,
    crime_reference: str = "HU/000001/26",
    *,
    flags: list[str] | None = None,
    incidents: dict[str, list[str]] | None = None,
    status: str = "under_investigation",
    cause: str = "niche-change",
) -> SharedFacts:
    """A crime's safety facts as evaluate_journey tells them to one linked partition (``cause``:
    the case change that told them)."""
    facts = CrimeFacts(
        crime_reference=crime_reference, flags=sorted(flags or []), status=status, incidents=incidents or {}
    )
    return tell(facts, partition, cause)


def duty(key: str = "ack", *, template: str = "acknowledgement", event_at: datetime, **fields: Any) -> Duty:
    """A duty as a journey holds it (open, with no deadline, unless told otherwise)."""
    return Duty(key=key, template=template, event_at=event_at, change_id=f"c-{key}", **fields)


def journey(
    *duties: Duty,
    person: dict[str, Any] | None = None,
    ref: str = "HU/000001/26",
    flags: list[str] | None = None,
    recorded_at: datetime | None = None,
    **fields: Any,
) -> Journey:
    """A victim's journey holding these duties; ``person`` is a feed victim (``victim()``)."""
    facts = person if person is not None else victim()
    return Journey(
        crime_reference=ref,
        person_id=facts["person_id"],
        role="victim",
        recorded_at=recorded_at,
        flags=flags or [],
        victim=VictimFacts.model_validate(facts),
        officer=DIRECTORY_OFFICER,
        duties={d.key: d for d in duties},
        **fields,
    )


def outbound(
    message_key: str, on: Journey, duties: list[str], channel: str, *, decided_at: datetime
) -> OutboundMessage:
    """A message evaluate_journey would emit for these duties of the journey's recipient."""
    return OutboundMessage.model_validate(
        {
            "message_key": message_key,
            "crime_reference": on.crime_reference,
            "person_id": on.person_id,
            "duties": duties,
            "template": "combined_update" if len(duties) > 1 else on.duties[duties[0]].template,
            "channel": channel,
            "decided_at": decided_at,
        }
    )


def links_hidden(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outbox entries with each personal link's random id replaced by ``<id>`` (two runs of the
    same feeds draw different ids), after checking that every message carries one."""
    policy = Policy()
    pattern = re.compile(re.escape(policy.force.link_base_url) + r"/[0-9A-Za-z]{11}\b")
    hidden = []
    for entry in entries:
        text = json.dumps(entry)
        assert pattern.search(entry["body"]), entry["message_id"]
        hidden.append(json.loads(pattern.sub(policy.force.link_base_url + "/<id>", text)))
    return hidden


HOURLY = "0 0 * * * *"  # the feeds polled hourly, to keep a generated run quick


def generated_sample_run(base: Path) -> Path:
    """120 crimes over 10 days (seed 3, a few records malformed on purpose) run through the local
    host with the embedded stores, the feeds polled hourly; the run folder, with synthetic.json
    copied in as ``python -m shared.local run`` does."""
    generate(base / "feeds", crimes=120, days=10, seed=3)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection"):
            patch.delenv(name, raising=False)
        patch.setenv("NICHE_POLL_SCHEDULE", HOURLY)
        patch.setenv("STORM_POLL_SCHEDULE", HOURLY)
        run(RunRequest(base / "feeds", base / "feeds" / "officers.json", base / "run"))
    copy_synthetic_marker(base / "feeds", base / "run")
    return base / "run"


def ops(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run ``python -m shared.ops`` in-process: exit status, stdout, stderr."""
    from shared.ops.__main__ import main

    capsys.readouterr()
    try:
        code = main([str(arg) for arg in args])
    except SystemExit as stop:  # argparse's own exits (errors, --help)
        code = int(stop.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def copy_to_table_storage(run_folder: Path, connection: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A run's state copied into fresh tables in Table Storage (Azurite), the settings pointing
    there; the store (an AzureTableStore: the caller closes it)."""
    import uuid

    from shared.adapters.azure_tables import AzureTableStore
    from shared.adapters.sqlite_tables import SqliteTableStore
    from shared.adapters.table_layout import ALL_TABLES

    prefix = "t" + uuid.uuid4().hex[:10]
    local = SqliteTableStore(run_folder / "state.db")
    remote = AzureTableStore.from_connection_string(connection, prefix=prefix)
    for table in ALL_TABLES:
        for entity in local.export(table):
            remote.upsert(table, entity)
    local.close()
    monkeypatch.setenv("StateStorage", connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", prefix)
    return remote
