"""OpenTelemetry spans and metrics with the real SDK, its providers passed in (never set globally here).

The steps' tracer and the events' instruments are swapped for ones from a local SDK provider
with in-memory exporters, so these tests see exactly what the distro would export, and the
global providers of the test process stay the API's no-ops (the end-to-end exporter test runs
in a subprocess for the same reason).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import telemetry, tracing
from shared.tracing import CRIME_REFERENCE, STEP, step_span


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("victim_updates"))
    yield exporter
    provider.shutdown()


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemoryMetricReader]:
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[memory])
    monkeypatch.setattr(telemetry, "_metrics", telemetry.EventMetrics(provider.get_meter("victim_updates")))
    yield memory
    provider.shutdown()


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_each_event_is_a_count_with_low_cardinality_attributes(reader: InMemoryMetricReader) -> None:
    telemetry.track(
        "MessageSent",
        crime_reference="HU/1/26",
        person_id="P-1",
        channel="sms",
        template="ack",
        segments=2,
        seconds_since_change=600,
    )
    telemetry.track("MessageSuppressed", crime_reference="HU/1/26", channel="email", reason="opted_out")
    telemetry.track("TaskCreated", crime_reference="HU/1/26", reason="excluded_crime:domestic_abuse")
    telemetry.track("DutyMet", crime_reference="HU/1/26", duty="m:M-881", decision="deadline_met")
    telemetry.track("DeadlineBreached", crime_reference="HU/1/26", duty="ack", decision="deadline_breached")
    telemetry.track("RecordQuarantined", feed="niche", reason="victims.0.name: field required")
    telemetry.track("DeadLettered", queue="outbound-messages", message_id="m-1", reason="MaxDeliveryCount")
    telemetry.track("FeedLag", feed="storm", seconds_behind=42)
    points = _points(reader)
    sent = points["victim_updates.messages_sent"]
    assert [(p.value, dict(p.attributes)) for p in sent] == [(1, {"channel": "sms", "template": "ack"})]
    assert dict(points["victim_updates.messages_suppressed"][0].attributes) == {
        "channel": "email",
        "reason": "opted_out",
    }
    # The metric keeps the code, not the kind of crime (special-category data): issue 15, finding 3.
    assert dict(points["victim_updates.tasks_created"][0].attributes) == {"reason": "excluded_crime"}
    assert dict(points["victim_updates.duties_met"][0].attributes) == {"duty_kind": "m"}
    assert dict(points["victim_updates.deadlines_breached"][0].attributes) == {"duty_kind": "ack"}
    assert dict(points["victim_updates.records_quarantined"][0].attributes) == {"feed": "niche"}
    assert dict(points["victim_updates.dead_lettered"][0].attributes) == {"queue": "outbound-messages"}
    (segments,) = points["victim_updates.sms_segments"]
    assert (segments.count, segments.sum, dict(segments.attributes)) == (1, 2, {"template": "ack"})
    (latency,) = points["victim_updates.change_to_message"]
    assert (latency.count, latency.sum, dict(latency.attributes)) == (1, 600, {"channel": "sms"})
    (lag,) = points["victim_updates.feed_lag"]
    assert (lag.sum, dict(lag.attributes)) == (42, {"feed": "storm"})
    for name, found in points.items():
        for point in found:
            assert not {"crime_reference", "person_id", "message_id"} & set(point.attributes), name


def test_a_custom_event_is_marked_for_the_exporter(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger=telemetry.EVENTS):
        telemetry.track("FeedStale", feed="niche", seconds_behind=4000)
    (record,) = [r for r in caplog.records if r.name == telemetry.EVENTS]
    assert getattr(record, telemetry.CUSTOM_EVENT_NAME) == "FeedStale"
    assert {k: record.__dict__[k] for k in ("feed", "seconds_behind")} == {
        "feed": "niche",
        "seconds_behind": 4000,
    }


def test_a_step_span_continues_the_message_trace_and_messages_carry_it(spans: InMemorySpanExporter) -> None:
    parent = tracing.new_traceparent("change-1")
    with step_span("resolve_officer", {"traceparent": parent}):
        tracing.annotate("HU/1/26", "P-1")
        sent = tracing.outgoing(parent, "message-2")
    (span,) = spans.get_finished_spans()
    assert span.kind is SpanKind.CONSUMER and span.name == "resolve_officer"
    assert span.parent is not None and f"{span.parent.span_id:016x}" == parent.split("-")[2]
    assert f"{span.context.trace_id:032x}" == tracing.trace_id(parent)
    assert sent == f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"
    assert dict(span.attributes or {}) == {
        STEP: "resolve_officer",
        CRIME_REFERENCE: "HU/1/26",
        tracing.PERSON_ID: "P-1",
    }


def test_a_failing_step_marks_its_span_failed_with_the_type_only(spans: InMemorySpanExporter) -> None:
    with pytest.raises(ValueError), step_span("send_message", {}):
        raise ValueError("alex@example.org is not valid")
    (span,) = spans.get_finished_spans()
    assert span.status.description == "ValueError"
    assert span.events == ()  # no exception event: its message can quote personal data


def test_without_an_sdk_the_ids_stay_derived() -> None:
    parent = tracing.new_traceparent("change-1")
    with step_span("evaluate_journey", {"traceparent": parent}):
        assert tracing.outgoing(parent, "m") == tracing.child_traceparent(parent, "m")


def test_one_case_change_is_one_chain_of_spans_from_ingest_to_send(
    spans: InMemorySpanExporter, run_scenario: Callable[..., dict[str, Any]]
) -> None:
    result = run_scenario("first_journey")
    assert result["outbox"]
    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    by_id = {span.context.span_id: span for span in finished}
    send = next(
        s
        for s in finished
        if s.name == "send_message"
        and (s.attributes or {}).get(tracing.PERSON_ID) == result["outbox"][0]["person_id"]
    )
    chain = [send.name]
    span = send
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span.name)
    assert chain[-1].startswith("ingest_") and by_id[span.context.span_id].kind is SpanKind.PRODUCER
    assert chain[0] == "send_message" and "evaluate_journey" in chain and chain[-2] == "resolve_officer"
    assert span.parent is None  # the ingest span is the root of the case change's trace
    roots = [s for s in finished if s.name.startswith("ingest_")]
    assert len({s.context.trace_id for s in roots}) == len(roots)  # one trace per case change


def test_a_message_sent_says_how_long_after_its_feed_change(
    run_scenario: Callable[..., dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import datetime

    with caplog.at_level("INFO", logger=telemetry.EVENTS):
        result = run_scenario("first_journey")
    ack = result["outbox"][0]
    (event,) = [
        r
        for r in caplog.records
        if r.name == telemetry.EVENTS
        and r.getMessage() == "MessageSent"
        and r.__dict__["message_id"] == ack["message_id"]
    ]
    first_record_at = datetime.fromisoformat(
        "2026-11-02T10:00:00+00:00"
    )  # the first niche record's modified_at
    expected = (datetime.fromisoformat(ack["sent_at"]) - first_record_at).total_seconds()
    assert event.__dict__["seconds_since_change"] == round(expected) > 0


def test_the_distro_is_configured_only_with_a_connection_string_and_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(telemetry, "_configured", False)
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", raising=False)
    assert telemetry.configure_azure_monitor(lambda **kw: calls.append(kw)) is False and calls == []
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=x")
    assert telemetry.configure_azure_monitor(lambda **kw: calls.append(kw), disable_offline_storage=True)
    assert telemetry.configure_azure_monitor(lambda **kw: calls.append(kw))
    (options,) = calls
    assert options["logger_name"] == "victim_updates" and options["sampling_ratio"] == 1.0
    assert options["disable_offline_storage"] is True and options["credential"] is None
    assert options["instrumentation_options"]["flask"] == {"enabled": False}
    assert (
        "azure_sdk" not in options["instrumentation_options"]
        and "requests" not in options["instrumentation_options"]
    )


def test_entra_id_ingestion_uses_the_identity_the_host_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "ClientId=1234;Authorization=AAD")
    credential = telemetry._credential()
    assert type(credential).__name__ == "ManagedIdentityCredential"


def test_importing_the_app_does_not_import_the_distro() -> None:
    import subprocess
    import sys

    code = "import sys, function_app; print('azure.monitor.opentelemetry' in sys.modules)"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"
