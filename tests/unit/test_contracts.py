"""Feed contracts and queue messages."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.contracts import messages
from shared.contracts.feeds import NicheOccurrence, StormIncident
from shared.contracts.schemas import CONTRACTS, SCHEMA_DIR, render

DESIGN_NICHE = {
    "schema": "niche.occurrence/1",
    "occurrence_id": "HU-26-004512",
    "crime_reference": "HU/004512/26",
    "modified_at": "2026-11-20T14:03:11Z",
    "recorded_at": "2026-11-20T10:02:00Z",
    "incident_numbers": ["HU-20261120-0123"],
    "offence": {
        "code": "105/01",
        "description": "Assault occasioning actual bodily harm",
        "category": "violence_with_injury",
    },
    "flags": ["domestic_abuse"],
    "status": "under_investigation",
    "outcome": {"code": "18", "decided_at": "2026-12-01T10:00:00Z"},
    "oic": {"employee_id": "104233", "collar_number": "PC 1234"},
    "milestones": [{"id": "M-881", "type": "suspect_arrested", "at": "2026-11-21T09:00:00Z", "details": {}}],
    "victims": [
        {
            "person_id": "P-2201",
            "name": {"title": "Ms", "forename": "Alex", "surname": "Smith"},
            "date_of_birth": "1990-01-01",
            "contact": {"email": "alex@example.org", "mobile": "07700 900123"},
            "preferences": {"channel": "sms", "frequency_days": 28, "language": "en", "opted_out": False},
            "safe_contact": {"sms": True, "email": True},
            "enhanced_rights": [],
            "guardian": None,
        }
    ],
}

DESIGN_STORM = {
    "schema": "storm.incident/1",
    "incident_number": "HU-20261120-0123",
    "modified_at": "2026-11-20T10:40:00Z",
    "opened_at": "2026-11-20T09:51:00Z",
    "status": "resourced",
    "opening_category": "Violence",
    "closing_category": None,
    "crime_reference": None,
    "attendance": {"scheduled_for": "2026-11-20T16:00:00Z", "attended_at": None},
    "caller": {
        "person_id": "C-77",
        "name": {"forename": "Alex", "surname": "Smith"},
        "contact": {"email": None, "mobile": "+447700900123"},
        "consent_to_updates": True,
    },
}


def test_the_design_examples_validate() -> None:
    assert NicheOccurrence.model_validate(DESIGN_NICHE).crime_reference == "HU/004512/26"
    assert StormIncident.model_validate(DESIGN_STORM).attendance is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"outcome": {"code": "23", "decided_at": "2026-12-01T10:00:00Z"}}, "outcome.code"),
        ({"modified_at": "2026-02-30T10:00:00Z"}, "modified_at"),
        ({"modified_at": "2026-11-20T14:03:11"}, "modified_at"),
        ({"victims": "P-1"}, "victims"),
        ({"flags": ["unheard_of"]}, "flags.0"),
    ],
)
def test_a_malformed_niche_record_is_rejected_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NicheOccurrence.model_validate(DESIGN_NICHE | change)
    assert any(".".join(str(p) for p in e["loc"]).startswith(field) for e in caught.value.errors())


def test_a_missing_crime_reference_is_rejected() -> None:
    record = dict(DESIGN_NICHE)
    del record["crime_reference"]
    with pytest.raises(ValidationError):
        NicheOccurrence.model_validate(record)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_checked_in_json_schema_matches_the_model(name: str) -> None:
    on_disk = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert on_disk == render(CONTRACTS[name]), "run `make schemas` and commit the result"


def test_schema_files_are_valid_json_schema_documents() -> None:
    for name in CONTRACTS:
        schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    "model",
    [
        messages.CaseChange,
        messages.ResolvedCaseChange,
        messages.DeadlineCheck,
        messages.MessageOutcome,
        messages.Wake,
        messages.OutboundMessage,
    ],
)
def test_every_queue_message_has_a_type_and_a_version(model: type) -> None:
    fields = model.model_fields
    assert fields["type"].default and fields["version"].default == 1
