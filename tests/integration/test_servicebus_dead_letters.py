"""`python -m shared.ops dead-letters` on Service Bus: list and replay the dead-letter sub-queues.

There is no Service Bus emulator on this machine (it needs Docker), so a fake stands in for
azure.servicebus.ServiceBusClient (tests/servicebus_fake.py): it keeps each queue's dead letters
and what was sent, and follows the SDK's peek / peek-lock semantics that the commands rely on.
The same commands against the emulator or a real namespace: the opt-in tests at the end of
tests/integration/test_servicebus.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.ops import __main__ as cli
from shared.ops.context import Context
from shared.ops.servicebus_dead_letters import ServiceBusDeadLetters
from tests.servicebus_fake import TRACE, DeadLetter, FakeNamespace, sent_body

QUEUES = {"case-changes": True, "journey-events": True, "outbound-messages": False}
BODY = '{"victim": "Alex Smith", "email": "alex@example.org"}'


def _namespace() -> FakeNamespace:
    return FakeNamespace(
        {
            "case-changes": [],
            "journey-events": [
                DeadLetter("e-1", 7, BODY, session_id="HU/1/26"),
                DeadLetter("e-2#replay-3", 9, BODY, "HU/2/26"),
            ],
            "outbound-messages": [
                DeadLetter(
                    "m-1",
                    4,
                    BODY,
                    reason="ProviderRejected",
                    description="400\n" + BODY,
                )
            ],
        }
    )


def test_listing_peeks_every_queue_and_shows_ids_sessions_and_reasons_never_bodies() -> None:
    namespace = _namespace()
    listed = ServiceBusDeadLetters(namespace.client(), QUEUES).peek(None)
    assert [(d.queue, d.message_id, d.session_id, d.reason) for d in listed] == [
        ("journey-events", "e-1", "HU/1/26", "MaxDeliveryCountExceeded"),
        ("journey-events", "e-2#replay-3", "HU/2/26", "MaxDeliveryCountExceeded"),
        ("outbound-messages", "m-1", None, "ProviderRejected"),
    ]
    assert sum(len(dead) for dead in namespace.dead.values()) == 3  # peeking removes nothing
    assert all(m.lock is None for dead in namespace.dead.values() for m in dead)  # nor locks
    assert not any(hasattr(d, "body") for d in listed)


def test_replay_resends_a_copy_under_a_fresh_id_keeping_session_and_trace_then_completes() -> None:
    namespace = _namespace()
    done = ServiceBusDeadLetters(namespace.client(), QUEUES).replay("journey-events", None)
    assert [(r.message_id, r.new_message_id) for r in done] == [
        ("e-1", "e-1#replay-7"),
        ("e-2#replay-3", "e-2#replay-9"),
    ]
    sent = namespace.sent["journey-events"]
    assert [(m.message_id, m.session_id) for m in sent] == [
        ("e-1#replay-7", "HU/1/26"),
        ("e-2#replay-9", "HU/2/26"),
    ]
    assert sent_body(sent[0]) == BODY
    # The trace context goes with it; the reason Service Bus added when it dead-lettered it does not.
    assert sent[0].application_properties == {key.decode(): value for key, value in TRACE.items()}
    assert sent[0].content_type == "application/json"
    assert namespace.dead["journey-events"] == [] and len(namespace.dead["outbound-messages"]) == 1


def test_a_replayed_copy_does_not_carry_the_dead_letter_description() -> None:
    namespace = _namespace()
    ServiceBusDeadLetters(namespace.client(), QUEUES).replay("outbound-messages", "m-1")
    (copy,) = namespace.sent["outbound-messages"]
    assert set(copy.application_properties or {}) == {"traceparent"}  # "400\n" + the body stays behind


def test_replaying_one_id_leaves_the_others_where_they_were() -> None:
    namespace = _namespace()
    done = ServiceBusDeadLetters(namespace.client(), QUEUES).replay(None, "e-2#replay-3")
    assert [r.new_message_id for r in done] == ["e-2#replay-9"]
    assert namespace.left("journey-events") == ["e-1"]
    assert namespace.dead["journey-events"][0].lock is None  # abandoned, not held till its lock lapses
    assert namespace.sent["outbound-messages"] == []


def test_a_queue_without_sessions_gets_its_copy_without_one() -> None:
    namespace = _namespace()
    ServiceBusDeadLetters(namespace.client(), QUEUES).replay("outbound-messages", "m-1")
    (copy,) = namespace.sent["outbound-messages"]
    assert (copy.message_id, copy.session_id) == ("m-1#replay-4", None)


def test_an_unknown_queue_or_id_is_one_line_and_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = _namespace()
    monkeypatch.setenv("StateStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv(
        "ServiceBusConnection", "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=v"
    )
    monkeypatch.setattr(
        Context, "service_bus_dead_letters", lambda self: ServiceBusDeadLetters(namespace.client(), QUEUES)
    )
    assert cli.main(["dead-letters", "list", "--queue", "nope", "--data", str(tmp_path)]) == 2
    assert "unknown queue 'nope'" in capsys.readouterr().err
    assert cli.main(["dead-letters", "replay", "--id", "x-9", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no dead letter with message id 'x-9'" in err


def test_the_command_uses_service_bus_when_the_settings_name_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = _namespace()
    monkeypatch.setenv("StateStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv(
        "ServiceBusConnection", "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=v"
    )
    monkeypatch.setattr(
        Context, "service_bus_dead_letters", lambda self: ServiceBusDeadLetters(namespace.client(), QUEUES)
    )
    assert cli.main(["dead-letters", "list", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2] == "outbound-messages\tm-1\t-\tProviderRejected: 400"
    assert "Alex" not in out and "alex@example.org" not in out
    assert cli.main(["dead-letters", "replay", "--all", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "replayed\toutbound-messages\tm-1\tas m-1#replay-4" in out and out.endswith(
        "3 dead letters replayed\n"
    )
    assert len(namespace.clients) == 2 and all(client.closed for client in namespace.clients)
    assert all(not dead for dead in namespace.dead.values())


def test_a_dead_letter_whose_lock_lapsed_while_held_is_left_and_the_replay_goes_on() -> None:
    namespace = _namespace()
    namespace.batch, namespace.lapse_after = 1, 1  # e-1 is held, then its lock lapses
    done = ServiceBusDeadLetters(namespace.client(), QUEUES).replay("journey-events", "e-2#replay-3")
    assert [r.new_message_id for r in done] == ["e-2#replay-9"]
    assert namespace.left("journey-events") == ["e-1"]
    assert namespace.dead["journey-events"][0].lock is None
    assert namespace.receives["journey-events"] == 4  # e-1, e-1 again, e-2, nothing more
