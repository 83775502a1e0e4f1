"""Personal links: the short, unguessable address of a recipient's own page (journey-rules.md §13).

Every message carries one. A link opens one crime and one person, and nothing else: its id is
random (drawn by the adapter that stores it, never derived from the crime or the person), so
knowing one link tells nothing of another. It works while the case is open and for
``page.days_after_finalised`` days after it is finalised, and not at all once revoked or once
the crime is one automated contact must not reach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.journey import DutyKind, Journey, excluded_reason
from shared.domain.policy import LINK_ID_LENGTH, Policy

# Letters and digits only: nothing a phone's link detection or a reader could take for the end
# of the address. Eleven of them are 65.5 bits (62 ** 11 > 2 ** 65).
LINK_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LINK_ID = re.compile(rf"[0-9A-Za-z]{{{LINK_ID_LENGTH}}}")


def is_link_id(text: str) -> bool:
    """Whether ``text`` has the shape of a link id (the store is asked only about those)."""
    return _LINK_ID.fullmatch(text) is not None


def link_url(policy: Policy, link_id: str) -> str:
    """The link as a message carries it: the page's address, a slash, the id."""
    return f"{policy.force.link_base_url}/{link_id}"


@dataclass(frozen=True)
class Link:
    """A personal link as stored: whom it opens, since when, and whether it was revoked."""

    link_id: str
    crime_reference: str
    person_id: str
    created_at: datetime
    revoked_at: datetime | None = None


class LinkState(StrEnum):
    OPEN = "open"
    REVOKED = "revoked"
    EXPIRED = "expired"
    EXCLUDED = "excluded"  # the crime is now one automated contact must not reach (journey-rules.md §4)


def finalised_at(journey: Journey) -> datetime | None:
    """When the case was finalised (its latest outcome), or None while it is open."""
    if journey.case_status != "finalised":
        return None
    if journey.finalised_at is not None:
        return journey.finalised_at
    # Stored before journeys kept the time (schema 4): the latest outcome it was told.
    outcomes = [d.event_at for d in journey.duties.values() if DutyKind.of(d.key) is DutyKind.OUTCOME]
    return max(outcomes, default=None)


def link_state(link: Link, journey: Journey | None, policy: Policy, now: datetime) -> LinkState:
    """Whether a link opens its page now. A link whose journey is gone (erased) is expired."""
    if link.revoked_at is not None and link.revoked_at <= now:
        return LinkState.REVOKED
    if journey is None or journey.erased_at is not None:
        return LinkState.EXPIRED
    if excluded_reason(journey, policy) is not None:
        # Safeguarding first: a page is automated contact too, and whoever holds the phone or the
        # mailbox may be the person the flag protects the victim from.
        return LinkState.EXCLUDED
    finalised = finalised_at(journey)
    if finalised is not None and now > finalised + timedelta(days=policy.page.days_after_finalised):
        return LinkState.EXPIRED
    return LinkState.OPEN


def unsubscribe_headers(url: str) -> dict[str, str]:
    """The email headers that let a mail program offer "unsubscribe" (RFC 2369) in one click
    (RFC 8058): it POSTs ``List-Unsubscribe=One-Click`` to the person's own link."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
