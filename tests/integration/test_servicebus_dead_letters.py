"""`python -m shared.ops dead-letters` on Service Bus: list and replay the dead-letter sub-queues.

There is no Service Bus emulator on this machine (it needs Docker), so a fake stands in for
azure.servicebus.ServiceBusClient: it keeps each queue's dead letters and what was sent, and
follows the SDK's peek / peek-lock semantics that the commands rely on. The same commands
against the emulator or a real namespace: the opt-in test at the end of tests/integration/test_servicebus.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue

from shared.ops import __main__ as cli
from shared.ops.context import Context
from shared.ops.servicebus_dead_letters import ServiceBusDeadLetters

QUEUES = {"case-changes": True, "journey-events": True, "outbound-messages": False}
BODY = '{"victim": "Alex Smith", "email": "alex@example.org"}'


@dataclass
class _Message:
    message_id: str
    sequence_number: int
    session_id: str | None = None
    dead_letter_reason: str | None = "MaxDeliveryCountExceeded"
    dead_letter_error_description: str | None = "Message could not be consumed after 10 delivery attempts."
    content_type: str | None = "application/json"
    application_properties: dict[bytes, Any] = field(
        default_factory=lambda: {b"traceparent": b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"}
    )
    locked: bool = False

    @property
    def body(self) -> Iterator[bytes]:
        yield BODY.encode()


class _Receiver:
    def __init__(self, dead: list[_Message]) -> None:
        self.dead = dead

    def __enter__(self) -> _Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        for message in self.dead:
            message.locked = False  # closing the receiver releases its locks

    def peek_messages(self, max_message_count: int = 1, *, sequence_number: int = 0) -> list[_Message]:
        found = sorted(
            (m for m in self.dead if m.sequence_number >= sequence_number), key=lambda m: m.sequence_number
        )
        return found[:max_message_count]

    def receive_messages(
        self, max_message_count: int = 1, max_wait_time: float | None = None
    ) -> list[_Message]:
        free = [m for m in self.dead if not m.locked][:max_message_count]
        for message in free:
            message.locked = True
        return free

    def complete_message(self, message: _Message) -> None:
        assert message.locked
        self.dead.remove(message)

    def abandon_message(self, message: _Message) -> None:
        assert message.locked
        message.locked = False


class _Sender:
    def __init__(self) -> None:
        self.sent: list[ServiceBusMessage] = []

    def __enter__(self) -> _Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send_messages(self, message: ServiceBusMessage) -> None:
        self.sent.append(message)


class FakeServiceBusClient:
    def __init__(self, dead: dict[str, list[_Message]]) -> None:
        self.dead = {name: dead.get(name, []) for name in QUEUES}
        self.senders = {name: _Sender() for name in QUEUES}
        self.closed = False

    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> _Receiver:
        assert kwargs.get("sub_queue") == ServiceBusSubQueue.DEAD_LETTER
        assert "session_id" not in kwargs  # a dead-letter sub-queue has no sessions
        return _Receiver(self.dead[queue_name])

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> _Sender:
        return self.senders[queue_name]

    def close(self) -> None:
        self.closed = True


def _client() -> FakeServiceBusClient:
    return FakeServiceBusClient(
        {
            "journey-events": [
                _Message("e-1", 7, session_id="HU/1/26"),
                _Message("e-2#replay-3", 9, "HU/2/26"),
            ],
            "outbound-messages": [
                _Message(
                    "m-1",
                    4,
                    dead_letter_reason="ProviderRejected",
                    dead_letter_error_description="400\n" + BODY,
                )
            ],
        }
    )


def test_listing_peeks_every_queue_and_shows_ids_sessions_and_reasons_never_bodies() -> None:
    client = _client()
    listed = ServiceBusDeadLetters(client, QUEUES).peek(None)
    assert [(d.queue, d.message_id, d.session_id, d.reason) for d in listed] == [
        ("journey-events", "e-1", "HU/1/26", "MaxDeliveryCountExceeded"),
        ("journey-events", "e-2#replay-3", "HU/2/26", "MaxDeliveryCountExceeded"),
        ("outbound-messages", "m-1", None, "ProviderRejected"),
    ]
    assert sum(len(dead) for dead in client.dead.values()) == 3  # peeking removes nothing
    assert not any(hasattr(d, "body") for d in listed)


def test_replay_resends_a_copy_under_a_fresh_id_keeping_session_and_trace_then_completes() -> None:
    client = _client()
    done = ServiceBusDeadLetters(client, QUEUES).replay("journey-events", None)
    assert [(r.message_id, r.new_message_id) for r in done] == [
        ("e-1", "e-1#replay-7"),
        ("e-2#replay-3", "e-2#replay-9"),
    ]
    sent = client.senders["journey-events"].sent
    assert [(m.message_id, m.session_id) for m in sent] == [
        ("e-1#replay-7", "HU/1/26"),
        ("e-2#replay-9", "HU/2/26"),
    ]
    assert b"".join(sent[0].body) == BODY.encode()
    assert sent[0].application_properties == {"traceparent": b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"}
    assert sent[0].content_type == "application/json"
    assert client.dead["journey-events"] == [] and len(client.dead["outbound-messages"]) == 1


def test_replaying_one_id_leaves_the_others_where_they_were() -> None:
    client = _client()
    done = ServiceBusDeadLetters(client, QUEUES).replay(None, "e-2#replay-3")
    assert [r.new_message_id for r in done] == ["e-2#replay-9"]
    assert [m.message_id for m in client.dead["journey-events"]] == ["e-1"]
    assert not client.dead["journey-events"][0].locked  # abandoned, not held
    assert client.senders["outbound-messages"].sent == []


def test_a_queue_without_sessions_gets_its_copy_without_one() -> None:
    client = _client()
    ServiceBusDeadLetters(client, QUEUES).replay("outbound-messages", "m-1")
    (copy,) = client.senders["outbound-messages"].sent
    assert (copy.message_id, copy.session_id) == ("m-1#replay-4", None)


def test_an_unknown_queue_or_id_is_one_line_and_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = _client()
    monkeypatch.setenv("StateStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv(
        "ServiceBusConnection", "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=v"
    )
    monkeypatch.setattr(
        Context, "service_bus_dead_letters", lambda self: ServiceBusDeadLetters(client, QUEUES)
    )
    assert cli.main(["dead-letters", "list", "--queue", "nope", "--data", str(tmp_path)]) == 2
    assert "unknown queue 'nope'" in capsys.readouterr().err
    assert cli.main(["dead-letters", "replay", "--id", "x-9", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no dead letter with message id 'x-9'" in err


def test_the_command_uses_service_bus_when_the_settings_name_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = _client()
    monkeypatch.setenv("StateStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv(
        "ServiceBusConnection", "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=v"
    )
    monkeypatch.setattr(
        Context, "service_bus_dead_letters", lambda self: ServiceBusDeadLetters(client, QUEUES)
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
    assert client.closed and all(not dead for dead in client.dead.values())
