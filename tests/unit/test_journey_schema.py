"""Stored journeys carry a schema version and are upgraded as they are read.

The fixture holds journeys exactly as the service stored them before versions existed
(version 1: a victim with messages sent, a child's journey with a guardian, a
caller whose incident is linked to a crime). Each must load, upgrade to the
current version, keep every fact, and be written back in the current form; a
journey from a later version is refused rather than misread.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.adapters.table_layout import journey_entity, journey_from
from shared.domain.journey import JOURNEY_SCHEMA, SchemaTooNew, upgrade_journey
from shared.ports import Entity

V1 = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "fixtures" / "journeys-v1.jsonl").read_text().splitlines()
]


# Duty fields added after these journeys were stored (delivery reports, §12), with the defaults
# they load with: no message reported undelivered, no duty sent the other way; and (version 5)
# no deadline check kept to cancel: the checks scheduled before come and find what they find.
# Version 6: the channels reported failed, none known.
DUTY_FIELDS_ADDED_SINCE: dict[str, object] = {
    "undelivered": [],
    "redirected": False,
    "checks": [],
    "failed_channels": [],
}
# Journey fields added since (version 3, the recipient's own page, §13), likewise.
# Version 4 (retention and erasure, §11) adds when the case was finalised (unknown until the next
# record: the outcome duty stands in) and when and why a journey was erased: not erased.
JOURNEY_FIELDS_ADDED_SINCE: dict[str, object] = {
    "page_choice": None,
    "finalised_at": None,
    "erased_at": None,
    "erased_because": None,
}


def _entity(document: dict[str, object]) -> Entity:
    return Entity(
        str(document["crime_reference"]), str(document["person_id"]), {"state": json.dumps(document)}
    )


def test_the_fixture_holds_version_1_journeys_of_each_kind() -> None:
    assert [d.get("schema_version") for d in V1] == [None, None, None]
    assert {d["role"] for d in V1} == {"victim", "caller"}
    assert any((d.get("victim") or {}).get("guardian") for d in V1)


@pytest.mark.parametrize("document", V1, ids=[f"{d['role']}-{d['person_id']}" for d in V1])
def test_a_version_1_journey_loads_upgraded_with_every_fact_kept(document: dict[str, object]) -> None:
    journey = journey_from(_entity(document))
    assert journey.schema_version == JOURNEY_SCHEMA
    again = json.loads(journey.model_dump_json())
    assert again.pop("schema_version") == JOURNEY_SCHEMA
    for field, default in JOURNEY_FIELDS_ADDED_SINCE.items():
        assert again.pop(field) == default
    for duty in again["duties"].values():
        for field, default in DUTY_FIELDS_ADDED_SINCE.items():
            assert duty.pop(field) == default  # a field added later, at the value that changes nothing
    assert again == document  # nothing lost, nothing added but the version and those defaults
    stored = journey_entity(journey).properties["state"]
    assert json.loads(stored)["schema_version"] == JOURNEY_SCHEMA
    assert journey_from(Entity("p", "r", {"state": stored})) == journey  # the current form reads back


def test_a_victim_stored_with_a_field_a_later_feed_dropped_still_loads() -> None:
    document = json.loads(json.dumps(V1[0]))
    document["victim"]["ethnicity_code"] = "W1"  # a key this version of the feed does not have
    journey = journey_from(_entity(document))
    assert journey.victim is not None and journey.victim.person_id == V1[0]["person_id"]


def test_a_journey_from_a_later_version_is_refused_not_misread() -> None:
    with pytest.raises(SchemaTooNew, match=f"newer than this service's {JOURNEY_SCHEMA}"):
        upgrade_journey({**V1[0], "schema_version": JOURNEY_SCHEMA + 1})


def test_a_version_6_journey_with_a_record_time_loads_without_it() -> None:
    # Two unreleased commits kept the newest feed record's time in a version 6 journey; version 7
    # keeps none, and such a journey loads (extra keys are refused) with everything else kept.
    v6 = json.loads(journey_from(_entity(V1[2])).model_dump_json())
    for dropped in ("record_modified_at", "storm_record_at"):
        document = {**v6, "schema_version": 6, dropped: "2026-11-20T10:00:00+00:00"}
        journey = journey_from(_entity(document))
        again = json.loads(journey.model_dump_json())
        assert dropped not in again and again == {**v6, "schema_version": JOURNEY_SCHEMA}
