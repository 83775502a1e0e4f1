"""Redaction of spans and OpenTelemetry log records before they are exported (issue 15, finding 3).

The Azure Monitor distro is handed these processors (``span_processors``, ``log_record_processors``)
and runs them before its own exporting processors, in the order it was given them; each sees a
span or a log record before the exporter does, and replaces every string in it by
``telemetry.scrub`` of it: emails and UK phone numbers, and what follows ``excluded_crime``.

A span's attributes cannot be changed once it has ended: ``SpanProcessor.on_end`` gets a
``ReadableSpan`` whose attributes are immutable, and ``on_start`` would miss everything set after
the start (``annotate``, an instrumentation's attributes, events, the status). So ``on_end`` puts
redacted copies of the attributes, events, links and status on the ``ReadableSpan`` it is given:
the same object then goes to the exporting processor after it. The SDK keeps these in private
fields (``_attributes``, ``_events``, ``_links``, ``_status``, ``_name``); the unit tests (the
real SDK, an in-memory exporter) and the end-to-end test (the real distro) fail if that changes.
A log record is mutable in ``on_emit``: its body and attributes are replaced in place.

Imported only when the distro is configured: it imports the OpenTelemetry SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, Status

from shared.telemetry import scrub


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, (tuple, list)):
        return tuple(scrub(item) if isinstance(item, str) else item for item in value)
    return value


def _attributes(attributes: Mapping[str, Any] | None) -> BoundedAttributes | None:
    """Redacted, immutable copy of span, event or link attributes; None when nothing changes."""
    if not attributes:
        return None
    cleaned = {key: _value(value) for key, value in attributes.items()}
    if cleaned == dict(attributes):
        return None
    copy = BoundedAttributes(maxlen=None, attributes=cleaned, immutable=True)
    copy.dropped = getattr(attributes, "dropped", 0)
    return copy


def _events(events: Sequence[Event]) -> list[Event] | None:
    changed = False
    copies: list[Event] = []
    for event in events:
        attributes = _attributes(event.attributes)
        name = scrub(event.name)
        if attributes is None and name == event.name:
            copies.append(event)
            continue
        changed = True
        copies.append(
            Event(name, attributes if attributes is not None else event.attributes, event.timestamp)
        )
    return copies if changed else None


def _links(links: Sequence[Link]) -> list[Link] | None:
    changed = False
    copies: list[Link] = []
    for link in links:
        attributes = _attributes(link.attributes)
        if attributes is None:
            copies.append(link)
            continue
        changed = True
        copies.append(Link(link.context, attributes))
    return copies if changed else None


def _bounded(original: Sequence[Any], items: list[Any]) -> BoundedList[Any]:
    bounded = BoundedList.from_seq(None, items)
    bounded.dropped = getattr(original, "dropped", 0)
    return bounded


def redact_span(span: ReadableSpan) -> None:
    """Replace what ``span`` will export by redacted copies (see the module's docstring)."""
    attributes = _attributes(span.attributes)
    if attributes is not None:
        span._attributes = attributes
    events = _events(span.events)
    if events is not None:
        span._events = _bounded(span._events, events)
    links = _links(span.links)
    if links is not None:
        span._links = _bounded(span._links, links)
    description = span.status.description
    if description and scrub(description) != description:
        span._status = Status(span.status.status_code, scrub(description))
    if scrub(span.name) != span.name:
        span._name = scrub(span.name)


class RedactingSpanProcessor(SpanProcessor):
    """Redacts every ended span before the processors registered after it (the exporter's) see it."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        redact_span(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RedactingLogRecordProcessor(LogRecordProcessor):
    """Redacts every OpenTelemetry log record (body and attributes: a record's ``extra`` fields)
    before the processors registered after it (the exporter's) see it."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        if isinstance(record.body, str):
            record.body = scrub(record.body)
        attributes = record.attributes
        if attributes:
            for key, value in list(attributes.items()):
                cleaned = _value(value)
                if cleaned != value:
                    attributes[key] = cleaned  # type: ignore[index]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
