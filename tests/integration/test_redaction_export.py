"""Personal data set on spans and log records never reaches Application Insights: the real distro.

A subprocess configures the real Azure Monitor distro (``telemetry.configure_azure_monitor``) with
its exporters pointed at a stub of the ingestion endpoint on this machine, makes spans and log
records holding an email address, a phone number and a crime's special-category flag, and flushes;
the stub keeps every envelope POSTed to it. Issue 15, finding 3.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.app_insights_stub import export_from_child

ROOT = Path(__file__).resolve().parents[2]
PERSONAL = ("jane@example.org", "+447700900123", "sexual_offence", "domestic_abuse")

CHILD = textwrap.dedent(
    """
    import logging

    from opentelemetry import _logs, trace

    from shared import telemetry, tracing

    assert telemetry.configure_azure_monitor(disable_offline_storage=True)
    _, case_change = tracing.start_case_change("ingest_niche", "s-1", "HU/1/26 excluded_crime:domestic_abuse")
    case_change.end()
    with tracing.step_span("send_message", {}) as span:
        span.set_attribute("victim_updates.to", "jane@example.org")
        span.set_attribute("victim_updates.reason", "outcome_unknown:excluded_crime:sexual_offence")
        span.add_event("provider_rejected", {"detail": "+447700900123 refused"})
        span.set_status(trace.Status(trace.StatusCode.ERROR, "rejected jane@example.org"))
        logging.getLogger("victim_updates.steps").warning(
            "could not reach %s", "jane@example.org",
            extra={"recipient": "+447700900123", "reason": "excluded_crime:sexual_offence"},
        )
        telemetry.track("TaskCreated", crime_reference="HU/1/26", reason="excluded_crime:domestic_abuse")
    for provider in (trace.get_tracer_provider(), _logs.get_logger_provider()):
        provider.force_flush()
    """
)


def test_spans_and_log_records_reach_application_insights_redacted() -> None:
    exported = export_from_child(CHILD, settings={"OTEL_METRICS_EXPORTER": "none"})
    done, envelopes = exported.process, exported.envelopes
    assert done is not None
    assert done.returncode == 0, done.stderr[-3000:]
    names = [e["data"]["baseData"].get("name") for e in envelopes]
    kinds = [e["name"].rsplit(".", 1)[-1] for e in envelopes]
    # The two spans, the warning and the custom event all arrived...
    assert {"ingest_niche", "send_message", "TaskCreated"} <= set(names), names
    assert "Message" in kinds, kinds
    # ... and none of them holds what they were given.
    text = json.dumps(envelopes)
    assert [value for value in PERSONAL if value in text] == []
    send = next(
        e["data"]["baseData"] for e in envelopes if e["data"]["baseData"].get("name") == "send_message"
    )
    assert send["properties"]["victim_updates.to"] == "[email]"
    assert send["properties"]["victim_updates.reason"] == "outcome_unknown:excluded_crime"
