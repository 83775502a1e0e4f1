"""JSON Schema files of the two feed contracts, generated from the pydantic models.

Run ``python -m shared.contracts.schemas`` (``make schemas``) after changing a
model; a test fails while the checked-in files differ from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.contracts.feeds import NicheOccurrence, StormIncident

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

CONTRACTS: dict[str, type[NicheOccurrence] | type[StormIncident]] = {
    "niche.occurrence.v1.schema.json": NicheOccurrence,
    "storm.incident.v1.schema.json": StormIncident,
}


def schema_of(model: type[NicheOccurrence] | type[StormIncident]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render(model: type[NicheOccurrence] | type[StormIncident]) -> str:
    return json.dumps(schema_of(model), indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, model in CONTRACTS.items():
        (SCHEMA_DIR / name).write_text(render(model), encoding="utf-8")
        print(f"wrote {SCHEMA_DIR / name}")


if __name__ == "__main__":
    main()
