"""Acknowledging a report, and naming the officer who has it (journey-rules.md §1)."""

from __future__ import annotations

from datetime import datetime

from shared.contracts.messages import Change, ChangeKind
from shared.domain.journey.duties import DutyKind
from shared.domain.journey.state import AddDuty


def acknowledge(person_id: str, changes: list[Change], now: datetime, add: AddDuty) -> None:
    """A victim first seen on an occurrence is owed an acknowledgement, from when they were added."""
    added = [c for c in changes if c.kind == ChangeKind.VICTIM_ADDED and c.key == person_id]
    add(DutyKind.ACKNOWLEDGE.key(), "acknowledgement", added[0].at if added else now)


def new_officer(change: Change, had_officer: bool, add: AddDuty) -> None:
    """An officer in charge assigned, or changed, after the acknowledgement (which named the one then)."""
    first = "no" if had_officer else "yes"
    add(DutyKind.OFFICER.key(change.key), "officer_changed", change.at, {"first_officer": first})
