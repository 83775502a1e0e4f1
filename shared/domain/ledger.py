"""The Messages ledger: what became of each message, as a status machine.

A message is claimed (``pending``) before the provider is called, and then is
finished for sending: handed over (``sent``), not sent (``suppressed``), refused
by the provider (``failed``), or not knowable (``unknown``: an earlier attempt
may have reached the provider and it cannot say). A finished message is never
handed over again, which is what makes a redelivered or retried ``send_message``
safe. The provider's delivery report then moves a handed-over (or pending, or
unknown) message once more, to ``delivered`` or ``undelivered``, and there it
stays. A status only moves along ``TRANSITIONS`` (journey-rules.md §9, §12).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class LedgerStatus(StrEnum):
    PENDING = "pending"  # claimed: the provider is being (or was) called
    SENT = "sent"  # handed to the provider; its delivery report not yet in
    DELIVERED = "delivered"  # the provider reports it delivered
    UNDELIVERED = "undelivered"  # the provider reports it failed for good (bounced, expired …)
    SUPPRESSED = "suppressed"  # decided not to send
    FAILED = "failed"  # the provider refused it for good at hand-over
    UNKNOWN = "unknown"  # an earlier attempt may have reached the provider; it cannot say

    @property
    def finished(self) -> bool:
        """Decided for sending: never handed to the provider again."""
        return self is not LedgerStatus.PENDING

    @property
    def handed_over(self) -> bool:
        """The provider has it (whatever its delivery report says)."""
        return self in (LedgerStatus.SENT, LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED)


_REPORTED = frozenset({LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED})

# Where each status may go next (None: a message not yet in the ledger). A delivery report moves
# a message on from sent (or from pending or unknown: a report proves the provider had it); a
# delivered or undelivered message never moves again, so a late or repeated report changes nothing.
TRANSITIONS: dict[LedgerStatus | None, frozenset[LedgerStatus]] = {
    None: frozenset({LedgerStatus.PENDING, LedgerStatus.SUPPRESSED}),
    LedgerStatus.PENDING: frozenset(
        {LedgerStatus.SENT, LedgerStatus.SUPPRESSED, LedgerStatus.FAILED, LedgerStatus.UNKNOWN} | _REPORTED
    ),
    LedgerStatus.SENT: _REPORTED,
    LedgerStatus.DELIVERED: frozenset(),
    LedgerStatus.UNDELIVERED: frozenset(),
    LedgerStatus.SUPPRESSED: frozenset(),
    LedgerStatus.FAILED: frozenset(),
    LedgerStatus.UNKNOWN: _REPORTED,
}


class DeliveryOutcome(StrEnum):
    """What a provider's delivery report means for the message."""

    DELIVERED = "delivered"
    FAILED = "failed"  # for good: the message did not reach the person
    NOT_FINAL = "not_final"  # a temporary state: wait for the final report


# The statuses Communication Services reports (email and SMS), by what they mean. Any other
# status is taken as not final and recorded, so an unforeseen one never reopens or closes a duty.
_DELIVERED = {"delivered"}
_FAILED = {"failed", "bounced", "suppressed", "quarantined", "expired", "filteredspam"}


def delivery_outcome(status: str) -> DeliveryOutcome:
    """What a reported status means (case does not matter)."""
    folded = status.strip().casefold()
    if folded in _DELIVERED:
        return DeliveryOutcome.DELIVERED
    if folded in _FAILED:
        return DeliveryOutcome.FAILED
    return DeliveryOutcome.NOT_FINAL


@dataclass(frozen=True)
class ProviderReceipt:
    """What a provider said when it accepted a message: its id for it, and when."""

    provider_id: str
    accepted_at: datetime


class InvalidTransition(ValueError):
    """A ledger status asked to move where it may not (a finished message moved again)."""


@dataclass(frozen=True)
class LedgerEntry:
    """One message in the ledger (keyed by crime reference and message key)."""

    crime_reference: str
    message_key: str
    status: LedgerStatus
    channel: str | None = None
    template: str | None = None
    duties: tuple[str, ...] | None = None  # the duties it carried when decided (None: not recorded)
    first_attempt_at: datetime | None = None
    decided_at: datetime | None = None
    sent_at: datetime | None = None
    provider_id: str | None = None
    reason: str | None = None
    segments: int | None = None
    delivery_status: str | None = None  # the provider's own word for it (Delivered, Bounced …)
    reported_at: datetime | None = None  # when the final delivery report said so

    @classmethod
    def begin(
        cls, crime_reference: str, message_key: str, status: LedgerStatus, **fields: Any
    ) -> LedgerEntry:
        """A message's first entry (``pending`` when claimed, or ``suppressed`` outright)."""
        check_transition(None, status)
        return cls(crime_reference, message_key, status, **fields)

    def moved_to(self, status: LedgerStatus, **changes: Any) -> LedgerEntry:
        """This entry in its next status, with the fields that come with it."""
        check_transition(self.status, status)
        return replace(self, status=status, **changes)

    def with_fields(self, **changes: Any) -> LedgerEntry:
        """The same status, with fields updated (a retry's template and duties)."""
        return replace(self, **changes)


def check_transition(before: LedgerStatus | None, after: LedgerStatus) -> None:
    if after not in TRANSITIONS[before]:
        raise InvalidTransition(f"a message cannot go from {before or 'nothing'} to {after}")
