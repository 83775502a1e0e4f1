"""Duty kinds: what a recipient is owed, each kind with its key and its deadline rule (journey-rules.md §1).

A duty is identified by (crime reference, person id, duty key); the key's kind says
what the duty is and whether the Victims' Code sets it a deadline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.domain.journey.state import Duty


class DutyKind(StrEnum):
    """The kinds of duty, by the prefix of their key."""

    ACKNOWLEDGE = "ack"  # the report recorded, who has it, what happens next
    OFFICER = "oic"  # oic:<employee id>: an officer in charge assigned or changed
    MILESTONE = "m"  # m:<milestone id>: an arrest, a charge, a release …
    OUTCOME = "outcome"  # outcome:<code>: the case closed, with its outcome
    CHECKIN = "checkin"  # checkin:<n>: no news for a while
    ATTENDANCE = "attend"  # attend:<incident>:<time>: when an officer will visit a caller

    @classmethod
    def of(cls, key: str) -> DutyKind:
        """The kind of a duty key (``m:M-881`` is a milestone)."""
        return cls(key.split(":", 1)[0])

    @property
    def has_code_deadline(self) -> bool:
        """Whether the Victims' Code sets this kind a deadline (check-ins and visits have none)."""
        return self not in (DutyKind.CHECKIN, DutyKind.ATTENDANCE)

    def key(self, *parts: str) -> str:
        """A duty key of this kind: ``DutyKind.MILESTONE.key("M-881")`` is ``m:M-881``."""
        return ":".join((self.value, *parts))


def digest(*parts: str) -> str:
    """A deterministic id from its parts (the same parts, the same id, on any worker)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def message_key(crime_reference: str, person_id: str, duties: list[str], channel: str) -> str:
    """The ledger key of a message: the same duties to the same person on one channel."""
    return digest("msg", crime_reference, person_id, *sorted(duties), channel)


def task_id(crime_reference: str, person_id: str, duties: list[str], reason: str) -> str:
    return "T-" + digest("task", crime_reference, person_id, *sorted(duties), reason)[:16]


def template_for(duties: Sequence[Duty]) -> str:
    """The template a message uses: the duty's own, or the combined update for several."""
    return duties[0].template if len(duties) == 1 else "combined_update"
