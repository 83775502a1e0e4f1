"""The access log: who showed or erased personal data, when and why (journey-rules.md §15).

Data Protection Act 2018, section 62: consultation and disclosure of personal data are logged
with their justification and who did them. Each entry holds ids and the reason the operator
gave, never the personal data shown.
"""

from __future__ import annotations

import getpass
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from shared.adapters.table_layout import ACCESS_LOG
from shared.ports import Entity, ExportableStore

Action = Literal["show", "erase"]


@dataclass(frozen=True)
class Access:
    at: datetime
    who: str
    action: str
    crime_reference: str
    person_id: str | None
    reason: str


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        return "unknown"


def record(
    tables: ExportableStore,
    action: Action,
    crime_reference: str,
    person_id: str | None,
    reason: str,
    now: datetime,
) -> Access:
    """Keep one access, before the data is shown or erased."""
    at = now.astimezone(UTC)
    entry = Access(at, _who(), action, crime_reference, person_id, reason)
    properties = {
        "at": at,
        "who": entry.who,
        "action": action,
        "crime_reference": crime_reference,
        "person_id": person_id or "",
        "reason": reason,
    }
    tables.create(ACCESS_LOG, Entity(f"{at:%Y-%m}", f"{at.isoformat()}-{secrets.token_hex(4)}", properties))
    return entry


def entries(tables: ExportableStore) -> list[Access]:
    """Every access, oldest first."""
    found = [
        Access(
            e.properties["at"],
            str(e.properties["who"]),
            str(e.properties["action"]),
            str(e.properties["crime_reference"]),
            str(e.properties["person_id"]) or None,
            str(e.properties["reason"]),
        )
        for e in tables.export(ACCESS_LOG)
    ]
    return sorted(found, key=lambda a: a.at)


def as_line(access: Access) -> str:
    person = f" person {access.person_id}" if access.person_id else ""
    return f"{access.at.isoformat()}  {access.who}  {access.action}  {access.crime_reference}{person}  {access.reason}"
