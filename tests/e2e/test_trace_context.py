"""The trace context travels in Service Bus application properties across every queue."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from shared.adapters.sqlite_queue import SqliteQueueBroker
from shared.ports import OutgoingMessage
from shared.tracing import child_traceparent, new_traceparent, trace_id


def test_a_child_span_keeps_the_trace_and_a_bad_parent_starts_a_new_one() -> None:
    parent = new_traceparent("change-1")
    child = child_traceparent(parent, "message-2")
    assert trace_id(child) == trace_id(parent) and child != parent
    assert child_traceparent(parent, "message-2") == child  # deterministic: redelivery re-emits the same
    assert trace_id(child_traceparent("garbage", "m")) == trace_id(new_traceparent("m"))


def test_one_case_change_is_one_trace_from_ingest_to_the_provider(
    run_scenario: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, dict[str, Any], str]] = []
    original = SqliteQueueBroker.send

    def recording(self: SqliteQueueBroker, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        for message in messages:
            sent.append((queue, json.loads(message.body), message.application_properties["traceparent"]))
        original(self, queue, messages)

    monkeypatch.setattr(SqliteQueueBroker, "send", recording)
    result = run_scenario("first_journey")
    first_change = next(body for queue, body, _ in sent if queue == "case-changes")
    trace = trace_id(next(tp for queue, body, tp in sent if body is first_change))
    resolved = [tp for queue, body, tp in sent if body.get("event_id") == first_change["change_id"]]
    ack = result["outbox"][0]
    outbound = [
        tp
        for queue, body, tp in sent
        if queue == "outbound-messages" and body["message_key"] == ack["message_id"]
    ]
    assert resolved and outbound  # send_message records the outcome in the journey: no further message
    assert {trace_id(tp) for tp in resolved + outbound} == {trace}
    other_changes = {
        trace_id(tp) for queue, body, tp in sent if queue == "case-changes" and body is not first_change
    }
    assert trace not in other_changes  # every case change starts its own trace
    assert all(trace_id(tp) for _, _, tp in sent)  # every message on every queue carries one
