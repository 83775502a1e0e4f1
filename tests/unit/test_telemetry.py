"""Telemetry: custom events with dimensions, and never personal data in any log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from shared import telemetry, tracing
from shared.telemetry import EVENTS, install_handler_redaction, install_redaction, redact, track


@pytest.mark.parametrize(
    "text",
    [
        "alex.smith@example.org",
        "07700 900123",
        "07700900123",
        "+447700900123",
        "+44 7700 900123",
        "(01482) 220 000",
        "01482-220-000",
    ],
)
def test_emails_and_uk_phone_numbers_are_redacted(text: str) -> None:
    cleaned = redact(f"contact {text} now")
    assert text not in cleaned and ("[email]" in cleaned or "[phone]" in cleaned)


@pytest.mark.parametrize(
    "text",
    [
        "HU/004512/26",
        "HU-20261120-0123",
        "2026-11-20T10:00:00+00:00",
        "0c2bd8f0bcf62f098c746d22",
        "P-2201",
        "104233",
    ],
)
def test_references_ids_and_times_are_left_alone(text: str) -> None:
    assert redact(f"crime {text} done") == f"crime {text} done"


def test_an_event_outside_the_catalogue_or_with_an_unknown_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown telemetry event"):
        track("SomethingElse")
    with pytest.raises(ValueError, match="not allowed"):
        track("MessageSent", email="alex@example.org")


class _Kept(logging.Handler):
    """A handler that keeps what reaches it, as an exporter's handler would."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[_Kept]:
    handler = _Kept()
    events = logging.getLogger(EVENTS)
    events.addHandler(handler)
    level = events.level
    events.setLevel(logging.INFO)
    install_redaction()
    try:
        yield handler
    finally:
        events.removeHandler(handler)
        events.setLevel(level)


def test_an_event_dimension_holding_an_address_reaches_the_handler_redacted(kept: _Kept) -> None:
    # Finding 3 of issue 15: the record factory ran before ``extra`` was set, so this went out whole.
    track("MessageSuppressed", crime_reference="HU/1/26", person_id="P-1", reason="bounced: jane@example.org")
    [record] = kept.records
    assert record.reason == "bounced: [email]"  # type: ignore[attr-defined]
    assert "jane@example.org" not in str(record.__dict__)


@pytest.mark.parametrize(
    ("reason", "sent"),
    [
        ("excluded_crime:sexual_offence", "excluded_crime"),
        ("excluded_crime:storm:domestic_incident", "excluded_crime"),
        ("outcome_unknown:excluded_crime:domestic_abuse", "outcome_unknown:excluded_crime"),
        ("opted_out", "opted_out"),
        ("provider_rejected:ProviderRejected", "provider_rejected:ProviderRejected"),
    ],
)
def test_a_reason_goes_to_telemetry_as_codes_that_say_nothing_of_the_kind_of_crime(
    kept: _Kept, reason: str, sent: str
) -> None:
    track("MessageSuppressed", crime_reference="HU/1/26", person_id="P-1", reason=reason)
    assert [r.reason for r in kept.records] == [sent]  # type: ignore[attr-defined]


def test_any_handler_of_the_root_logger_gets_records_redacted_extra_fields_included() -> None:
    handler = _Kept()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_handler_redaction()
        logging.getLogger("victim_updates.anything").warning(
            "could not send", extra={"reason": "mobile 07700 900123 refused"}
        )
    finally:
        root.removeHandler(handler)
    [record] = handler.records
    assert record.reason == "mobile [phone] refused"  # type: ignore[attr-defined]


# --- Spans and OpenTelemetry log records (issue 15, finding 3): what the distro's exporters get ---

PERSONAL = ("jane@example.org", "+447700900123", "sexual_offence", "domestic_abuse", "domestic_incident")


@pytest.fixture
def distro_options(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """What configure_azure_monitor hands the distro (which is not imported: nothing is set globally)."""
    calls: list[dict[str, Any]] = []
    events = logging.getLogger("victim_updates")
    level = events.level
    monkeypatch.setattr(telemetry, "_configured", False)
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=x")
    monkeypatch.delenv("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", raising=False)
    assert telemetry.configure_azure_monitor(lambda **kw: calls.append(kw))
    try:
        yield calls[0]
    finally:
        events.setLevel(level)


def test_span_attributes_events_links_and_status_reach_the_exporter_redacted(
    distro_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    # As the distro builds its provider: the processors it is given, then its exporter's.
    for processor in distro_options.get("span_processors", []):
        provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("victim_updates"))
    try:
        _, case_change = tracing.start_case_change(
            "ingest_niche", "s-1", "HU/1/26 excluded_crime:domestic_abuse"
        )
        case_change.end()
        with tracing.step_span("send_message", {}) as span:
            tracing.annotate(crime_reference="HU/1/26", person_id="P-1")
            span.set_attribute("victim_updates.reason", "outcome_unknown:excluded_crime:sexual_offence")
            span.set_attribute("victim_updates.to", "jane@example.org")
            span.set_attribute("victim_updates.numbers", ["+447700900123", "101"])
            span.add_event("provider_rejected", {"detail": "jane@example.org refused"})
            span.add_link(case_change.get_span_context(), {"why": "excluded_crime:storm:domestic_incident"})
            span.record_exception(ValueError("bad number +447700900123"))
            span.set_status(Status(StatusCode.ERROR, "rejected jane@example.org"))
    finally:
        provider.shutdown()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["ingest_niche", "send_message"]
    exported = [
        (
            s.name,
            dict(s.attributes or {}),
            [(e.name, dict(e.attributes or {})) for e in s.events],
            [dict(link.attributes or {}) for link in s.links],
            s.status.description,
        )
        for s in spans
    ]
    assert [value for value in PERSONAL if value in repr(exported)] == []
    ingest, send = spans
    assert ingest.attributes is not None and send.attributes is not None
    assert ingest.attributes[tracing.CRIME_REFERENCE] == "HU/1/26 excluded_crime"
    assert send.attributes["victim_updates.to"] == "[email]"
    assert send.attributes["victim_updates.numbers"] == ("[phone]", "101")
    assert send.attributes["victim_updates.reason"] == "outcome_unknown:excluded_crime"
    assert (
        send.attributes[tracing.CRIME_REFERENCE] == "HU/1/26" and send.attributes[tracing.PERSON_ID] == "P-1"
    )
    assert send.status.description == "rejected [email]" and send.status.status_code is StatusCode.ERROR
    assert [e.name for e in send.events] == ["provider_rejected", "exception"]
    assert send.events[1].attributes is not None
    assert send.events[1].attributes["exception.message"] == "bad number [phone]"


def test_a_log_records_extra_fields_reach_the_opentelemetry_exporter_redacted(
    distro_options: dict[str, Any],
) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    for processor in distro_options.get("log_record_processors", []):
        provider.add_log_record_processor(processor)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    # The handler the distro puts on the victim_updates logger, and the filter configure then adds.
    handler = LoggingHandler(logger_provider=provider)
    events = logging.getLogger("victim_updates")
    events.addHandler(handler)
    install_handler_redaction(events)
    try:
        logging.getLogger("victim_updates.steps").warning(
            "could not reach %s",
            "jane@example.org",
            extra={
                "recipient": "jane@example.org",
                "numbers": ["+447700900123"],
                "reason": "excluded_crime:sexual_offence",
                "detail": "held: outcome_unknown:excluded_crime:storm:domestic_incident",
            },
        )
        track(
            "MessageSuppressed",
            crime_reference="HU/1/26",
            person_id="P-1",
            reason="excluded_crime:domestic_abuse",
        )
    finally:
        events.removeHandler(handler)
        provider.shutdown()
    records = [r.log_record for r in exporter.get_finished_logs()]
    assert len(records) == 2
    assert [
        value for value in PERSONAL if value in repr([(r.body, dict(r.attributes or {})) for r in records])
    ] == []
    warning, event = records
    assert warning.body == "could not reach [email]"
    assert warning.attributes is not None and event.attributes is not None
    assert warning.attributes["recipient"] == "[email]" and warning.attributes["reason"] == "excluded_crime"
    assert warning.attributes["detail"] == "held: outcome_unknown:excluded_crime"
    assert event.attributes["reason"] == "excluded_crime" and event.attributes["crime_reference"] == "HU/1/26"
