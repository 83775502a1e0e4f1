"""Tracing: the span of each step, and the W3C trace context carried across the queues.

This module holds the spans (``step_span``, ``start_case_change``,
``annotate``) and the ``traceparent`` each Service Bus message carries in its
application properties (``incoming``, ``outgoing``); the custom events and
metrics are ``shared.telemetry``'s.

Each case change starts a trace at ingest; every message that follows from it
carries the same trace id, so ingest → resolve → evaluate → send reads as one
operation. With an OpenTelemetry SDK (the Azure Monitor distro) each step is a
span and a message carries the span of the step that sent it; without one, ids
are derived from message ids, so a redelivered step emits what it did before.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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


# --- OpenTelemetry spans -------------------------------------------------------------------
# The API alone is imported here (cheap); without an SDK its tracer is a no-op and the
# deterministic ids above are what travel. With the Azure Monitor distro configured, each
# step is a span and the traceparent a message carries is the span of the step that sent it.

STEP = "victim_updates.step"
CRIME_REFERENCE = "victim_updates.crime_reference"
PERSON_ID = "victim_updates.person_id"

_tracer = otel_trace.get_tracer("victim_updates")
_propagator = TraceContextTextMapPropagator()


def _format(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _recording() -> SpanContext | None:
    span = otel_trace.get_current_span()
    return span.get_span_context() if span.is_recording() else None


def outgoing(parent: str | None, seed: str) -> str:
    """The traceparent for a message sent now: the current step's span, else the derived child."""
    current = _recording()
    return _format(current) if current is not None else child_traceparent(parent, seed)


def _tracing() -> bool:
    """Whether spans are recorded at all: an SDK tracer here, or a tracer provider set globally."""
    proxy = isinstance(_tracer, otel_trace.ProxyTracer)
    return not proxy or not isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider)


@contextmanager
def step_span(step: str, properties: Mapping[str, Any] | None) -> Iterator[Span]:
    """Run a queue-triggered step inside a CONSUMER span whose parent is the message's traceparent.

    When the Functions host has already made the invocation's span current in the same trace
    (PYTHON_ENABLE_OPENTELEMETRY), that span is the parent: it is itself the message's child.
    Exceptions mark the span failed with their type only: their messages can quote personal data.
    """
    if not _tracing():
        yield otel_trace.INVALID_SPAN  # no SDK: nothing to record, and the derived ids travel
        return
    parent = incoming(properties)
    context: Context | None = None
    if parent is not None:
        current = otel_trace.get_current_span().get_span_context()
        if not (current.is_valid and f"{current.trace_id:032x}" == trace_id(parent)):
            context = _propagator.extract({TRACEPARENT: parent})
    with _tracer.start_as_current_span(
        step,
        context=context,
        kind=SpanKind.CONSUMER,
        attributes={STEP: step},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def annotate(crime_reference: str | None = None, person_id: str | None = None) -> None:
    """Ids (never personal data) on the current step's span, when there is one."""
    span = otel_trace.get_current_span()
    if span.is_recording():
        if crime_reference:
            span.set_attribute(CRIME_REFERENCE, crime_reference)
        if person_id:
            span.set_attribute(PERSON_ID, person_id)


def start_case_change(step: str, seed: str, crime_reference: str) -> tuple[str, Span]:
    """A new trace for one case change found by ingest: a root PRODUCER span, and its traceparent.

    The span is linked to whatever invocation is current (the timer's). End it once the case change
    is on the queue. Without an SDK the span is a no-op and the traceparent is derived from ``seed``.
    """
    current = otel_trace.get_current_span().get_span_context()
    span = _tracer.start_span(
        step,
        context=Context(),  # a root: one trace per case change, not one per timer tick
        kind=SpanKind.PRODUCER,
        attributes={STEP: step, CRIME_REFERENCE: crime_reference},
        links=[Link(current)] if current.is_valid else None,
        record_exception=False,
    )
    traceparent = _format(span.get_span_context()) if span.is_recording() else new_traceparent(seed)
    return traceparent, span
