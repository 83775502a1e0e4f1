"""A personal link as the page framework sees it: an id in the path, opened by a resolver."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

# 11 base62 characters: 62**11 is about 2**65, the 64 bits RULES.md §10 asks for.
LINK_ID = re.compile(r"[0-9A-Za-z]{11}")


@dataclass(frozen=True)
class OpenLink:
    """A link that opens a page now: which crime and which person it is for."""

    link_id: str
    crime_reference: str
    person_id: str


# Given a well-formed link id and the time, the link it opens, or None when it is unknown,
# revoked or expired (the caller cannot tell which, and neither can the victim's browser).
ResolveLink = Callable[[str, datetime], OpenLink | None]


def is_link_id(value: str) -> bool:
    """Whether ``value`` has the shape of a link id (says nothing of whether it exists)."""
    return LINK_ID.fullmatch(value) is not None
