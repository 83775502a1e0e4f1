"""What erasing leaves behind (shared/domain/retention.py, journey-rules.md §16), in memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.adapters.policy_file import load_policy
from shared.contracts.feeds import NicheOccurrence, StormIncident
from shared.domain.journey import Journey
from shared.domain.policy import Policy, PolicyError
from shared.domain.retention import erased, retention_due, scrub_message, without_people

AT = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
VICTIM = {
    "person_id": "P-1",
    "name": {"forename": "Jane", "surname": "Okafor"},
    "date_of_birth": "1980-02-03",
    "contact": {"email": "jane.okafor@example.org", "mobile": "07700900123"},
    "guardian": {"email": "guardian.okafor@example.org"},
}
OTHER = {
    "person_id": "P-10",
    "name": {"forename": "Sam", "surname": "Reed"},
    "contact": {"email": "sam@example.org"},
}
PERSONAL = ("Jane", "Okafor", "1980-02-03", "jane.okafor@", "07700900123", "guardian.okafor@")


def _niche(victims: list[dict[str, object]]) -> NicheOccurrence:
    return NicheOccurrence.model_validate(
        {
            "schema": "niche.occurrence/1",
            "occurrence_id": "O-1",
            "crime_reference": "HU/1/26",
            "modified_at": "2026-11-01T10:00:00Z",
            "recorded_at": "2026-10-01T10:00:00Z",
            "offence": {"code": "1", "description": "Burglary", "category": "burglary"},
            "status": "finalised",
            "outcome": {"code": "1", "decided_at": "2026-11-01T10:00:00Z"},
            "victims": victims,
        }
    )


def _storm(person_id: str) -> StormIncident:
    return StormIncident.model_validate(
        {
            "schema": "storm.incident/1",
            "incident_number": "S-1",
            "modified_at": "2026-11-01T10:00:00Z",
            "opened_at": "2026-11-01T09:00:00Z",
            "status": "open",
            "caller": {
                "person_id": person_id,
                "name": {"forename": "Jane"},
                "contact": {"mobile": "07700900123"},
            },
        }
    )


def test_a_record_loses_the_erased_people_and_keeps_everyone_else() -> None:
    record = _niche([VICTIM, OTHER])
    kept = without_people(record, {"P-1"})
    assert isinstance(kept, NicheOccurrence) and [v.person_id for v in kept.victims] == ["P-10"]
    text = kept.model_dump_json()
    assert [part for part in PERSONAL if part in text] == []
    assert "sam@example.org" in text
    assert without_people(record, set()) is record and without_people(record, {"P-404"}) == record
    assert without_people(_storm("P-1"), {"P-1"}).caller is None  # type: ignore[union-attr]
    assert without_people(_storm("C-2"), {"P-1"}) == _storm("C-2")


def test_an_erased_journey_keeps_ids_only() -> None:
    journey = Journey.model_validate(
        {
            "crime_reference": "HU/1/26",
            "person_id": "P-1",
            "role": "victim",
            "case_status": "finalised",
            "victim": {**VICTIM, "preferences": {}, "safe_contact": {}},
        }
    )
    assert "Okafor" in journey.model_dump_json()
    tomb = erased(journey, AT, "request")
    text = tomb.model_dump_json()
    assert [part for part in PERSONAL if part in text] == []
    assert (tomb.crime_reference, tomb.person_id, tomb.role, tomb.erased_at, tomb.erased_because) == (
        "HU/1/26",
        "P-1",
        "victim",
        AT,
        "request",
    )


def test_retention_is_due_its_policy_days_after_finalisation_and_never_for_an_open_case() -> None:
    policy = Policy.model_validate({"retention": {"days_after_finalised": 180}})
    finalised = Journey(
        crime_reference="C", person_id="P", role="caller", case_status="finalised", finalised_at=AT
    )
    assert not retention_due(finalised, policy, AT + timedelta(days=180) - timedelta(seconds=1))
    assert retention_due(finalised, policy, AT + timedelta(days=180))
    reopened = finalised.model_copy(update={"case_status": "under_investigation"})
    assert not retention_due(reopened, policy, AT + timedelta(days=999))
    gone = erased(finalised, AT, "retention")
    assert not retention_due(gone, policy, AT + timedelta(days=999))  # erased once


def _message(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, "version": 1, **fields})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a case change: the record keeps the other victim
        (json.dumps({"type": "case_change", "niche": {"victims": [VICTIM, OTHER]}}), "kept without them"),
        # a resolved case change nests the case change
        (
            json.dumps({"type": "resolved_case_change", "case": {"storm": {"caller": VICTIM}}}),
            "kept without them",
        ),
        (_message("message_to_officer", person_id="P-1", text="Jane Okafor here, call me"), "removed"),
        (_message("preferences_chosen", person_id="P-1", channel="sms"), "removed"),
        (_message("task_notice", task={"person_id": "P-1", "note": "from Jane Okafor"}), "kept without them"),
        (_message("message_to_officer", person_id="P-10", text="Sam here"), "unchanged"),
        ("not json P-1 Jane Okafor", "unchanged"),
    ],
)
def test_a_queued_message_loses_the_erased_person(body: str, expected: str) -> None:
    scrubbed = scrub_message(body, {"P-1"})
    if expected == "removed":
        assert scrubbed is None
    elif expected == "unchanged":
        assert scrubbed == body
    else:
        assert scrubbed is not None and scrubbed != body
        assert [part for part in PERSONAL if part in scrubbed] == []
        assert "P-10" in scrubbed or "P-10" not in body


def test_a_policy_that_erases_before_the_page_stops_opening_fails_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps({"page": {"days_after_finalised": 90}, "retention": {"days_after_finalised": 30}})
    )
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert "retention" in str(raised.value) and "page.days_after_finalised (90)" in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1
