"""Telemetry: structured decision logs and custom events, never personal data.

Every event is a log record on the ``victim_updates.events`` logger whose
``custom_dimensions`` hold crime references, person ids, duties, decisions and
reasons only. With the Azure Monitor OpenTelemetry distro configured (when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set), those records reach
Application Insights with their dimensions; locally they are ordinary logs.

A redacting filter on every handler removes anything that looks like an email
address or a UK phone number, as a second line of defence behind the rule that
names, contact details and dates of birth are never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

EVENTS = "victim_updates.events"
_events = logging.getLogger(EVENTS)

# The custom events of the operations guide (README "Watching it in Application Insights").
EVENT_NAMES = frozenset(
    {
        "MessageSent",
        "MessageSuppressed",
        "TaskCreated",
        "DutyMet",
        "DeadlineBreached",
        "FeedLag",
        "FeedStale",
        "RecordQuarantined",
        "DeadLettered",
    }
)
ALLOWED_DIMENSIONS = frozenset(
    {
        "crime_reference",
        "person_id",
        "duty",
        "duties",
        "decision",
        "reason",
        "channel",
        "template",
        "segments",
        "feed",
        "queue",
        "message_id",
        "seconds_behind",
        "count",
        "function",
    }
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# UK numbers as people write them: +44 or 0, then 9-10 digits with optional spaces, dots or dashes.
_UK_PHONE = re.compile(r"(?<![\w/])(?:\+44\s?\(?0?\)?|\(?0)(?:[\s.()-]{0,2}\d){9,10}(?!\d)")


def redact(text: str) -> str:
    """Replace email addresses and UK phone numbers."""
    return _UK_PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


class RedactingFilter(logging.Filter):
    """Redacts emails and UK phone numbers from every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key in ALLOWED_DIMENSIONS:
            value = getattr(record, key, None)
            if isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts can quote input (a validation error quotes the bad value).
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_REDACTOR = RedactingFilter()


def install_redaction() -> None:
    """Redact every log record as it is made, whichever logger or handler it goes to."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _REDACTOR.filter(record)
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def track(name: str, **dimensions: Any) -> None:
    """A custom event with dimensions that carry no personal data (ids, keys, reasons)."""
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown telemetry event {name!r}")
    unknown = set(dimensions) - ALLOWED_DIMENSIONS
    if unknown:
        raise ValueError(f"dimensions not allowed in telemetry: {sorted(unknown)}")
    clean: Mapping[str, Any] = {k: v for k, v in dimensions.items() if v is not None}
    # Flat attributes: the OpenTelemetry log handler turns each into a property (customDimensions).
    _events.info(name, extra={**clean, "event": name})


def configure_azure_monitor() -> bool:
    """Send logs, traces and metrics to Application Insights when its connection string is set.

    Off locally unless APPLICATIONINSIGHTS_CONNECTION_STRING is set. Returns whether it was configured.
    """
    import os

    install_redaction()
    if not os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return False
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor as configure
    except ImportError:  # the distro is an optional install until the telemetry issue lands
        logging.getLogger(__name__).warning(
            "azure-monitor-opentelemetry is not installed; telemetry stays local"
        )
        return False
    configure(logger_name="victim_updates")
    return True
