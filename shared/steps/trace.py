"""W3C trace context carried in Service Bus application properties.

Each case change starts a trace at ingest; every message that follows from it
carries the same trace id with its own span id, so ingest → resolve → evaluate →
send reads as one operation. Ids are derived from message ids, so a redelivered
step emits exactly what it emitted the first time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

TRACEPARENT = "traceparent"
_VALID = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:length]


def new_traceparent(seed: str) -> str:
    """A trace that starts here (a case change found by ingest)."""
    return f"00-{_hex('trace:' + seed, 32)}-{_hex('span:' + seed, 16)}-01"


def child_traceparent(parent: str | None, seed: str) -> str:
    """The same trace, a new span for the message ``seed``; a new trace if the parent is unusable."""
    match = _VALID.match(parent or "")
    if match is None:
        return new_traceparent(seed)
    return f"00-{match.group(1)}-{_hex('span:' + seed, 16)}-{match.group(3)}"


def incoming(properties: Mapping[str, Any] | None) -> str | None:
    """The traceparent of a received message, if it has a valid one."""
    value = (properties or {}).get(TRACEPARENT)
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return value if isinstance(value, str) and _VALID.match(value) else None


def trace_id(traceparent: str) -> str:
    match = _VALID.match(traceparent)
    if match is None:
        raise ValueError("not a W3C traceparent")
    return match.group(1)
