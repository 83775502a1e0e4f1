"""The personal data in a generated sample's feeds, to look for where it must never appear."""

from __future__ import annotations

import json
from pathlib import Path


def personal_data(feeds: Path) -> set[str]:
    """Every name, email, phone number and date of birth in the generated feeds."""
    found: set[str] = set()
    for name in ("niche.jsonl", "storm.jsonl"):
        for line in (feeds / name).read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            people = [v for v in record.get("victims") or [] if isinstance(v, dict)]
            if isinstance(record.get("caller"), dict):
                people.append(record["caller"])
            for person in people:
                for part in ("forename", "surname"):
                    value = (
                        (person.get("name") or {}).get(part) if isinstance(person.get("name"), dict) else None
                    )
                    if isinstance(value, str) and len(value) > 3:
                        found.add(value)
                contact = person.get("contact") if isinstance(person.get("contact"), dict) else {}
                for value in (contact.get("email"), contact.get("mobile"), person.get("date_of_birth")):
                    if isinstance(value, str) and len(value) > 5:
                        found.add(value)
    return found
