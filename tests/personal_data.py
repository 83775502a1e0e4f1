"""The personal data in a generated sample's feeds, to look for where it must never appear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def people_in(feeds: Path) -> dict[str, set[str]]:
    """Each person's names, emails, mobiles and date of birth in the feeds, by person id: a
    victim's with their guardian's, a caller's. Names of four letters or more, the rest of six
    characters or more (shorter ones match too much by chance)."""
    people: dict[str, set[str]] = {}
    for name in ("niche.jsonl", "storm.jsonl"):
        for line in (feeds / name).read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            found = [v for v in record.get("victims") or [] if isinstance(v, dict)]
            if isinstance(record.get("caller"), dict):
                found.append(record["caller"])
            for person in found:
                values = people.setdefault(str(person.get("person_id")), set())
                guardian = person.get("guardian")
                for holder in (person, guardian if isinstance(guardian, dict) else {}):
                    _add(values, holder)
    return people


def _add(values: set[str], holder: dict[str, Any]) -> None:
    names = holder.get("name") if isinstance(holder.get("name"), dict) else {}
    for part in ("forename", "surname"):
        value = names.get(part)
        if isinstance(value, str) and len(value) >= 4:
            values.add(value)
    # A victim's and a caller's contact block; a guardian keeps email and mobile beside the name.
    contact = holder.get("contact") if isinstance(holder.get("contact"), dict) else holder
    for value in (contact.get("email"), contact.get("mobile"), holder.get("date_of_birth")):
        if isinstance(value, str) and len(value) >= 6:
            values.add(value)


def personal_data(feeds: Path) -> set[str]:
    """Every victim's, guardian's and caller's name, email, mobile and date of birth in the feeds."""
    return set().union(*people_in(feeds).values())
