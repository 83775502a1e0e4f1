"""Closing the case: the victim is told its outcome, in plain words (journey-rules.md §1, §6)."""

from __future__ import annotations

from shared.contracts.messages import Change
from shared.domain.journey.duties import DutyKind
from shared.domain.journey.state import AddDuty


def close_case(change: Change, add: AddDuty) -> None:
    """An outcome assigned (a Home Office outcome code) is a duty to tell it."""
    add(DutyKind.OUTCOME.key(change.key), "case_closed", change.at, {"outcome": change.key})
