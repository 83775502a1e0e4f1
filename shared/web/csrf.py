"""Form tokens against cross-site request forgery.

A token is ``<issued epoch seconds>.<HMAC-SHA256>`` over the link id, the form's
name and the issue time, keyed by the page signing key. It is bound to the link
(a token from one victim's page is no use on another's), to the form (a token for
the preferences form does not submit a message), and it expires. Nothing is stored:
a POST carries its token back and the page checks it before anything changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

FIELD = "csrf_token"


@dataclass(frozen=True)
class CsrfTokens:
    """Issues and checks form tokens with one key."""

    key: bytes
    max_age: timedelta = timedelta(hours=2)
    clock_skew: timedelta = timedelta(minutes=5)  # between the instances that issue and check

    def __post_init__(self) -> None:
        if len(self.key) < 32:
            raise ValueError("the page signing key must be at least 32 bytes")

    def _mac(self, link_id: str, form: str, issued: int) -> str:
        message = f"{link_id}\n{form}\n{issued}".encode()
        digest = hmac.new(self.key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def issue(self, link_id: str, form: str, now: datetime) -> str:
        """A token for ``form`` on ``link_id``'s page, issued at ``now``."""
        issued = int(now.timestamp())
        return f"{issued}.{self._mac(link_id, form, issued)}"

    def check(self, token: str | None, link_id: str, form: str, now: datetime) -> bool:
        """Whether ``token`` was issued by us for this link and form, and has not expired."""
        if not token or token.count(".") != 1:
            return False
        issued_text, mac = token.split(".")
        if not issued_text.isdigit() or len(issued_text) > 12:
            return False
        issued = int(issued_text)
        expected = self._mac(link_id, form, issued)
        if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii", "replace")):
            return False
        age = now.timestamp() - issued
        return -self.clock_skew.total_seconds() <= age <= self.max_age.total_seconds()
