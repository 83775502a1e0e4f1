"""Telemetry: custom events, metrics and structured decision logs, never personal data.

Every event is a log record on the ``victim_updates.events`` logger whose
attributes hold crime references, person ids, duties, decisions and reasons
only, and a count (or a measurement) on an OpenTelemetry metric, whose
attributes are low-cardinality codes only (channel, template, reason, feed).
With the Azure Monitor OpenTelemetry distro configured (when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set) the records reach Application
Insights as custom events (``customEvents``/``AppEvents``: the
``microsoft.custom_event.name`` attribute) with their dimensions, and the
metrics as custom metrics; locally they are ordinary logs and no-op metrics.

A redacting log-record factory removes anything that looks like an email
address or a UK phone number, as a second line of defence behind the rule that
names, contact details and dates of birth are never logged. With the distro, spans and
OpenTelemetry log records are redacted too (``scrub``: also what follows ``excluded_crime``), by
the processors of ``shared.telemetry_redaction`` that run before its exporters.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import metrics

EVENTS = "victim_updates.events"
_events = logging.getLogger(EVENTS)

# The custom events of the operations guide (README "Watching it in Application Insights").
EVENT_NAMES = frozenset(
    {
        "MessageSent",
        "MessageSuppressed",
        "TaskCreated",
        "OfficerNotified",
        "DutyMet",
        "DeadlineBreached",
        "FeedLag",
        "FeedStale",
        "RecordQuarantined",
        "DeadLettered",
        "DeliveryReported",
        "DeliveryReportUnmatched",
        "DeliveryReportIgnored",
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
        "seconds_since_change",
        "task_id",
        "kind",
        "event_id",
        "outcome",
        "status",
    }
)
# The attribute the Azure Monitor exporter reads to send a log record as a custom event.
CUSTOM_EVENT_NAME = "microsoft.custom_event.name"

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


def _kind(duty: Any) -> str | None:
    """A duty key's kind (``m``, ``ack``, ``outcome``...): its id would make a metric unbounded."""
    return str(duty).split(":", 1)[0] if duty else None


class EventMetrics:
    """The custom events as OpenTelemetry counters and histograms (attributes: codes, never ids)."""

    def __init__(self, meter: metrics.Meter) -> None:
        def counter(name: str, what: str) -> metrics.Counter:
            return meter.create_counter(f"victim_updates.{name}", unit="1", description=what)

        def histogram(name: str, unit: str, what: str) -> metrics.Histogram:
            return meter.create_histogram(f"victim_updates.{name}", unit=unit, description=what)

        self.segments = histogram("sms_segments", "1", "SMS segments per SMS handed to the provider")
        self.feed_lag = histogram("feed_lag", "s", "seconds between a feed's newest record and its ingest")
        self.latency = histogram(
            "change_to_message", "s", "seconds from a feed change to its message handed to the provider"
        )
        # event name -> (counter, the dimensions that become its attributes)
        self.counters: dict[str, tuple[metrics.Counter, tuple[str, ...]]] = {
            "MessageSent": (
                counter("messages_sent", "messages handed to the provider"),
                ("channel", "template"),
            ),
            "MessageSuppressed": (
                counter("messages_suppressed", "messages not sent"),
                ("channel", "reason"),
            ),
            "TaskCreated": (counter("tasks_created", "officer tasks created"), ("reason",)),
            "OfficerNotified": (
                counter("officer_mail_sent", "officer task mails handed over (tasks and reminders)"),
                ("kind",),
            ),
            "DutyMet": (counter("duties_met", "Victims' Code duties met"), ("duty_kind",)),
            "DeadlineBreached": (
                counter("deadlines_breached", "Victims' Code deadlines breached"),
                ("duty_kind",),
            ),
            "RecordQuarantined": (counter("records_quarantined", "malformed feed records"), ("feed",)),
            "DeadLettered": (counter("dead_lettered", "messages dead-lettered"), ("queue",)),
            "FeedStale": (counter("feed_stale", "feeds found silent in working hours"), ("feed",)),
            "DeliveryReported": (
                counter("delivery_reports", "final delivery reports: delivered or undelivered"),
                ("channel", "outcome"),
            ),
        }

    def record(self, name: str, dimensions: Mapping[str, Any]) -> None:
        values = {**dimensions, "duty_kind": _kind(dimensions.get("duty"))}
        if name in self.counters:
            counter, keys = self.counters[name]
            counter.add(1, {key: str(values[key]) for key in keys if values.get(key) is not None})
        if name == "MessageSent":
            channel = {"channel": str(values.get("channel"))}
            if values.get("segments"):
                self.segments.record(int(values["segments"]), {"template": str(values.get("template"))})
            if values.get("seconds_since_change") is not None:
                self.latency.record(float(values["seconds_since_change"]), channel)
        elif name == "FeedLag" and values.get("seconds_behind") is not None:
            self.feed_lag.record(float(values["seconds_behind"]), {"feed": str(values.get("feed"))})


_metrics: EventMetrics | None = None


def event_metrics() -> EventMetrics:
    """The instruments, made on first use from the global meter provider (a no-op until one is set)."""
    global _metrics
    if _metrics is None:
        _metrics = EventMetrics(metrics.get_meter("victim_updates"))
    return _metrics


# A reason's code that is followed by special-category data (a crime's safeguarding flag, a STORM
# category): telemetry keeps the code and drops what follows.
SENSITIVE_AFTER = "excluded_crime"


def telemetry_reason(reason: str) -> str:
    """``outcome_unknown:excluded_crime:sexual_offence`` -> ``outcome_unknown:excluded_crime``."""
    parts = reason.split(":")
    if SENSITIVE_AFTER in parts:
        parts = parts[: parts.index(SENSITIVE_AFTER) + 1]
    return ":".join(parts)


# In free text (a span attribute, an exception's message, a log's extra field): the code and what
# follows it up to a space, quote or bracket (``excluded_crime:storm:domestic_incident``).
_AFTER_SENSITIVE = re.compile(rf"(?<![A-Za-z0-9]){SENSITIVE_AFTER}(:[^\s\"'`,;()\[\]{{}}<>]*)?")


def scrub(text: str) -> str:
    """Any text bound for telemetry: emails and UK phone numbers replaced, and nothing kept of what
    follows ``excluded_crime`` (``sent: outcome_unknown:excluded_crime:sexual_offence`` ->
    ``sent: outcome_unknown:excluded_crime``)."""
    return _AFTER_SENSITIVE.sub(SENSITIVE_AFTER, redact(text))


def _dimension(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = redact(value)
    return telemetry_reason(value) if key in ("reason", "decision") else value


def install_handler_redaction(*loggers: logging.Logger) -> None:
    """The redacting filter on every handler of these loggers (the root's, by default): a record's
    ``extra`` attributes are set after the record factory ran, but before any handler sees it."""
    for logger in loggers or (logging.getLogger(),):
        for handler in logger.handlers:
            if _REDACTOR not in handler.filters:
                handler.addFilter(_REDACTOR)


def track(name: str, **dimensions: Any) -> None:
    """A custom event with dimensions that carry no personal data (ids, keys, reasons)."""
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown telemetry event {name!r}")
    unknown = set(dimensions) - ALLOWED_DIMENSIONS
    if unknown:
        raise ValueError(f"dimensions not allowed in telemetry: {sorted(unknown)}")
    # Redacted here: the record factory runs before ``extra`` is set on the record, so it never
    # sees these; and a reason keeps only codes that say nothing of the kind of crime.
    clean: Mapping[str, Any] = {k: _dimension(k, v) for k, v in dimensions.items() if v is not None}
    # Flat attributes: the OpenTelemetry log handler turns each into a property (customDimensions).
    _events.info(name, extra={**clean, "event": name, CUSTOM_EVENT_NAME: name})
    event_metrics().record(name, clean)


# Instrumentations of the distro for libraries this app does not use (or reaches through
# requests): off, so they are neither imported at start-up nor double-count HTTP calls.
_UNUSED_INSTRUMENTATIONS = ("django", "fastapi", "flask", "psycopg2", "httpx", "urllib", "urllib3")


def _credential() -> Any:
    """Entra ID ingestion, as the host does it: APPLICATIONINSIGHTS_AUTHENTICATION_STRING names the identity."""
    setting = os.environ.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")
    parts = dict(part.split("=", 1) for part in setting.split(";") if "=" in part)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = parts.get("ClientId") or os.environ.get("AZURE_CLIENT_ID")
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


_configured = False


def configure_azure_monitor(configure: Callable[..., None] | None = None, **options: Any) -> bool:
    """Send logs, traces and metrics to Application Insights when its connection string is set.

    Off locally unless APPLICATIONINSIGHTS_CONNECTION_STRING is set; the distro (a heavy import) is
    only imported then. ``options`` go to the distro (tests turn offline storage off). Returns whether
    it was configured.
    """
    global _configured
    install_redaction()
    if not os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return False
    if _configured:  # once per process: the providers it sets are global
        return True
    if configure is None:
        from azure.monitor.opentelemetry import configure_azure_monitor as distro

        configure = distro
    from shared.telemetry_redaction import RedactingLogRecordProcessor, RedactingSpanProcessor

    # Spans and log records are redacted before the distro's exporters see them: it runs the
    # processors it is given, in their order, ahead of its own (shared/telemetry_redaction.py).
    redacting = {
        "span_processors": [RedactingSpanProcessor(), *options.pop("span_processors", [])],
        "log_record_processors": [RedactingLogRecordProcessor(), *options.pop("log_record_processors", [])],
    }
    settings: dict[str, Any] = {
        "logger_name": "victim_updates",
        "instrumentation_options": {name: {"enabled": False} for name in _UNUSED_INSTRUMENTATIONS},
        "enable_live_metrics": False,
        # Every case change's trace, not the distro's default of 5 traces a second: ingest sends
        # case changes in bursts, and the volume is small. OTEL_TRACES_SAMPLER still overrides it.
        "sampling_ratio": 1.0,
        "credential": _credential(),
    }
    configure(**(settings | redacting | options))
    # The distro's handler (to Application Insights) is on the root logger: redact there too.
    install_handler_redaction(logging.getLogger(), logging.getLogger("victim_updates"))
    # The events are INFO records: let them through whatever level the root logger has.
    logging.getLogger("victim_updates").setLevel(logging.INFO)
    _configured = True
    return True
