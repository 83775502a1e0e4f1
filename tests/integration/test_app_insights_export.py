"""What the real Azure Monitor exporter sends to Application Insights, end to end.

A generated sample runs through the real function objects (the local host) in a subprocess,
with APPLICATIONINSIGHTS_CONNECTION_STRING pointing the distro's exporters at a stub of the
ingestion endpoint on this machine (the subprocess keeps the global OpenTelemetry providers
out of this test process). The stub records every envelope POSTed to /v2.1/track.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.telemetry import EVENT_NAMES
from tests.app_insights_stub import export_from_child
from tests.personal_data import personal_data

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from shared import telemetry

    assert telemetry.configure_azure_monitor(disable_offline_storage=True)
    from opentelemetry import _logs, metrics, trace

    from shared.local.generate import generate
    from shared.local.run import RunRequest, run

    feeds, out = Path(sys.argv[1]), Path(sys.argv[2])
    generate(feeds, crimes=12, days=4, seed=11)
    run(RunRequest(feeds, feeds / "officers.json", out))
    for provider in (trace.get_tracer_provider(), _logs.get_logger_provider(), metrics.get_meter_provider()):
        provider.force_flush()
    """
)


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[dict[str, Any]], list[str], Path]]:
    folder = tmp_path_factory.mktemp("export")
    exported = export_from_child(
        CHILD,
        str(folder / "feeds"),
        str(folder / "out"),
        settings={"NICHE_POLL_SCHEDULE": "0 0 * * * *", "STORM_POLL_SCHEDULE": "0 0 * * * *"},
        timeout=600,
    )
    assert exported.process is not None and exported.process.returncode == 0, exported.process.stderr[-3000:]
    yield exported.envelopes, exported.paths, folder / "feeds"


def _of(envelopes: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in envelopes if e["name"] == f"Microsoft.ApplicationInsights.{kind}"]


def _data(envelope: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = envelope["data"]["baseData"]
    return data


def test_the_exporter_posts_to_the_track_endpoint(
    exported: tuple[list[dict[str, Any]], list[str], Path],
) -> None:
    envelopes, paths, _ = exported
    assert envelopes and set(paths) == {"/v2.1/track"}


def test_each_case_change_is_one_operation_from_ingest_to_send(
    exported: tuple[list[dict[str, Any]], list[str], Path],
) -> None:
    envelopes, _, _ = exported
    spans = _of(envelopes, "Request") + _of(envelopes, "RemoteDependency")
    by_id = {_data(e)["id"]: e for e in spans}
    sends = [e for e in _of(envelopes, "Request") if _data(e)["name"] == "send_message"]
    assert sends, "no send_message requests"
    complete = 0
    feeds: set[str] = set()
    for send in sends:
        chain, envelope = [], send
        while envelope is not None:
            chain.append(_data(envelope)["name"])
            operation = envelope["tags"]["ai.operation.id"]
            assert operation == send["tags"]["ai.operation.id"], "one operation id along the chain"
            envelope = by_id.get(envelope["tags"].get("ai.operation.parentId", ""))
        if chain[-1].startswith("ingest_"):
            complete += 1
            # A Niche change passes resolve_officer; a STORM one, with no officer, goes on to
            # evaluate_journey from its ingest.
            after = "resolve_officer" if chain[-1] == "ingest_niche" else "evaluate_journey"
            assert chain[-2] == after and "evaluate_journey" in chain, chain
            assert chain[-1] != "ingest_storm" or "resolve_officer" not in chain, chain
            feeds.add(chain[-1])
            root = next(
                e
                for e in spans
                if _data(e)["name"] == chain[-1] and e["tags"]["ai.operation.id"] == operation
            )
            assert "ai.operation.parentId" not in root["tags"]  # the case change starts the operation
    assert complete == len(sends)
    assert feeds == {"ingest_niche", "ingest_storm"}, "messages of both feeds' changes were followed"
    props = _data(sends[0])["properties"]
    assert props["victim_updates.step"] == "send_message" and props["victim_updates.crime_reference"]
    ingest_ops = [
        e["tags"]["ai.operation.id"]
        for e in _of(envelopes, "RemoteDependency")
        if _data(e)["name"].startswith("ingest_")
    ]
    assert len(set(ingest_ops)) == len(ingest_ops)  # one operation per case change


def test_custom_events_and_metrics_arrive_with_their_dimensions(
    exported: tuple[list[dict[str, Any]], list[str], Path],
) -> None:
    envelopes, _, _ = exported
    events = _of(envelopes, "Event")
    assert {_data(e)["name"] for e in events} >= {"MessageSent", "FeedLag", "TaskCreated"}
    assert {_data(e)["name"] for e in events} <= EVENT_NAMES
    sent = next(_data(e) for e in events if _data(e)["name"] == "MessageSent")
    for key in ("crime_reference", "person_id", "channel", "template", "duties", "message_id"):
        assert sent["properties"][key], key
    assert any(
        "seconds_since_change" in _data(e)["properties"] for e in events if _data(e)["name"] == "MessageSent"
    )
    sent_event = next(e for e in events if _data(e)["name"] == "MessageSent")
    assert sent_event["tags"]["ai.operation.id"] != "0" * 32  # logged inside its step's span
    metrics = {m["name"]: m for e in _of(envelopes, "Metric") for m in _data(e)["metrics"]}
    points = [
        (m["name"], _data(e).get("properties", {}))
        for e in _of(envelopes, "Metric")
        for m in _data(e)["metrics"]
    ]
    assert {
        "victim_updates.messages_sent",
        "victim_updates.feed_lag",
        "victim_updates.change_to_message",
    } <= set(metrics)
    assert any(
        name == "victim_updates.messages_sent" and {"channel", "template"} <= set(p) for name, p in points
    )


def test_no_personal_data_from_the_sample_in_any_envelope(
    exported: tuple[list[dict[str, Any]], list[str], Path],
) -> None:
    envelopes, _, feeds = exported
    personal = personal_data(feeds)
    assert len(personal) > 20
    text = json.dumps(envelopes)
    assert sorted(value for value in personal if value in text) == []
