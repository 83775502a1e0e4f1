"""`python -m shared.ops dead-letters` on Service Bus: list and replay the dead-letter sub-queues.

There is no Service Bus emulator on this machine (it needs Docker), so a fake stands in for
azure.servicebus.ServiceBusClient (tests/servicebus_fake.py): it keeps each queue's dead letters
and what was sent, and follows the SDK's peek / peek-lock semantics that the commands rely on.
The same commands against the emulator or a real namespace: the opt-in tests at the end of
tests/integration/test_servicebus.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from shared.adapters.servicebus import ServiceBusPublisher, settle_dead_letters
from shared.contracts.messages import (
    MessageToOfficer,
    NoticeTask,
    OutboundMessage,
    ResolvedCaseChange,
    TaskNotice,
)
from shared.domain.retention import scrub_message
from shared.ops import __main__ as cli
from shared.ops.context import Context
from shared.ops.servicebus_dead_letters import ServiceBusDeadLetters
from shared.steps.retention import PurgesDeadLetters
from tests.builders import niche_change, occurrence, victim
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
        ("e-1", "e-1#replay-1"),
        ("e-2#replay-3", "e-2#replay-4"),
    ]
    sent = namespace.sent["journey-events"]
    assert [(m.message_id, m.session_id) for m in sent] == [
        ("e-1#replay-1", "HU/1/26"),
        ("e-2#replay-4", "HU/2/26"),
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
    assert [r.new_message_id for r in done] == ["e-2#replay-4"]
    assert namespace.left("journey-events") == ["e-1"]
    assert namespace.dead["journey-events"][0].lock is None  # abandoned, not held till its lock lapses
    assert namespace.sent["outbound-messages"] == []


def test_a_queue_without_sessions_gets_its_copy_without_one() -> None:
    namespace = _namespace()
    ServiceBusDeadLetters(namespace.client(), QUEUES).replay("outbound-messages", "m-1")
    (copy,) = namespace.sent["outbound-messages"]
    assert (copy.message_id, copy.session_id) == ("m-1#replay-1", None)


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
    assert "replayed\toutbound-messages\tm-1\tas m-1#replay-1" in out and out.endswith(
        "3 dead letters replayed\n"
    )
    assert len(namespace.clients) == 2 and all(client.closed for client in namespace.clients)
    assert all(not dead for dead in namespace.dead.values())
    # None left: the listing says so on stderr, and stdout stays empty.
    assert cli.main(["dead-letters", "list", "--data", str(tmp_path)]) == 0
    assert capsys.readouterr()[:2] == ("", "no dead letters\n")


def test_a_dead_letter_whose_lock_lapsed_while_held_is_left_and_the_replay_goes_on() -> None:
    namespace = _namespace()
    namespace.batch, namespace.lapse_after = 1, 1  # e-1 is held, then its lock lapses
    done = ServiceBusDeadLetters(namespace.client(), QUEUES).replay("journey-events", "e-2#replay-3")
    assert [r.new_message_id for r in done] == ["e-2#replay-4"]
    assert namespace.left("journey-events") == ["e-1"]
    assert namespace.dead["journey-events"][0].lock is None
    assert namespace.receives["journey-events"] == 4  # e-1, e-1 again, e-2, nothing more


# --- the retention timer's purge (journey-rules.md §16) ---------------------------------------

CUTOFF = datetime(2026, 3, 1, 2, 15, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def _aged(queue: str, ages: dict[str, datetime | None]) -> list[DeadLetter]:
    return [
        DeadLetter(f"{queue}:{name}", n, session_id="HU/1/26", enqueued_time_utc=at)
        for n, (name, at) in enumerate(ages.items(), start=1)
    ]


def _aged_namespace(**fake: Any) -> FakeNamespace:
    return FakeNamespace(
        {
            "case-changes": _aged(
                "case-changes",
                {
                    "year-old": CUTOFF - timedelta(days=365),
                    "new": CUTOFF + timedelta(days=3),
                    "just-before": CUTOFF - TICK,
                    "at-cutoff": CUTOFF,
                    "just-after": CUTOFF + TICK,
                    "day-old": CUTOFF - timedelta(days=1),
                    "no-time": None,
                },
            ),
            "journey-events": [],
            "outbound-messages": _aged("outbound-messages", {"old": CUTOFF - timedelta(hours=1)}),
        },
        **fake,
    )


@pytest.mark.parametrize("lapse_after", [None, 1], ids=["locks-hold", "locks-lapse"])
def test_the_purge_completes_each_dead_letter_enqueued_before_the_cutoff_and_no_other(
    lapse_after: int | None,
) -> None:
    namespace = _aged_namespace(batch=2, lapse_after=lapse_after)
    publisher = ServiceBusPublisher(cast(Any, object()), list(QUEUES), connect=namespace.client)
    assert isinstance(publisher, PurgesDeadLetters)

    assert publisher.purge_dead_letters(CUTOFF) == 4  # each one counted once
    assert namespace.left("case-changes") == [
        "case-changes:new",
        "case-changes:at-cutoff",
        "case-changes:just-after",
        "case-changes:no-time",  # no time to judge it by: kept
    ]
    assert namespace.left("outbound-messages") == []
    assert all(m.lock is None for dead in namespace.dead.values() for m in dead)  # abandoned, not held
    assert all(not sent for sent in namespace.sent.values())  # nothing resent
    # On a client of its own (not the publisher's, shared with the triggers' sends), closed after.
    assert len(namespace.clients) == 1 and namespace.clients[0].closed

    assert publisher.purge_dead_letters(CUTOFF) == 0  # a second run finds nothing more
    assert publisher.purge_dead_letters(CUTOFF + timedelta(days=4)) == 3
    assert namespace.left("case-changes") == ["case-changes:no-time"]


def test_a_publisher_built_without_its_queues_purges_nothing() -> None:
    namespace = _aged_namespace()
    assert ServiceBusPublisher(cast(Any, namespace.client())).purge_dead_letters(CUTOFF) == 0
    assert namespace.receives == {}
    with pytest.raises(ValueError, match="needs a way to connect"):
        ServiceBusPublisher(cast(Any, namespace.client()), ["case-changes"])


def test_the_retention_timer_purges_the_service_bus_dead_letters_of_the_four_queues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Azure composition (shared/bootstrap.py) gives the timer a publisher that purges: each
    queue the settings name, dead letters kept `retention.dead_letter_days` (180) and no longer."""
    from shared.adapters import servicebus
    from shared.adapters.file_blobs import FileBlobStore
    from shared.adapters.sqlite_tables import SqliteTableStore
    from shared.bootstrap import bootstrap
    from shared.ops.context import FixedClock
    from shared.settings import load_settings
    from shared.steps.retention import retention

    now = CUTOFF + timedelta(days=180)
    names = ["case-changes", "journey-events", "outbound-messages", "officer-tasks"]
    namespace = FakeNamespace({name: _aged(name, {"old": CUTOFF - TICK, "kept": CUTOFF}) for name in names})
    connections: list[str] = []

    class _Client:
        @staticmethod
        def from_connection_string(connection: str) -> Any:
            connections.append(connection)
            return namespace.client()

    monkeypatch.setattr(servicebus, "ServiceBusClient", _Client)
    connection = "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=v"
    settings = load_settings(
        LOCAL_DATA_DIR=tmp_path, StateStorage="UseDevelopmentStorage=true", ServiceBusConnection=connection
    )
    tables = SqliteTableStore(tmp_path / "state.db")
    try:
        # The state here is SQLite and files, not the Azurite the settings name (not running here).
        blobs = FileBlobStore(tmp_path / "blobs")
        services = bootstrap(settings, clock=FixedClock(now), tables=tables, blobs=blobs)
        report = retention(services)
    finally:
        tables.close()
    assert report.dead_letters == 4
    assert {name: namespace.left(name) for name in names} == {name: [f"{name}:kept"] for name in names}
    assert set(namespace.receives) == set(names)
    assert connections == [connection, connection]  # the publisher's client, then the purge's own
    assert namespace.clients[1].closed and not namespace.clients[0].closed


# --- ops erase: a person taken out of the dead letters (journey-rules.md §16) -----------------

ALL_QUEUES = {
    "case-changes": True,
    "journey-events": True,
    "outbound-messages": False,
    "officer-tasks": False,
}
JANE = victim("P-1", email="jane.okafor@example.org", mobile="07700 900461") | {
    "name": {"title": "Ms", "forename": "Jane", "surname": "Okafor"}
}
SAM = victim("P-2", email="sam.lee@example.org", mobile="07700 900982") | {
    "name": {"title": "Mr", "forename": "Sam", "surname": "Lee"}
}
JANES = ("Jane", "Okafor", "jane.okafor@example.org", "07700 900461", "ring me after six")
SAMS = ("Sam", "Lee", "sam.lee@example.org", "07700 900982")
AT = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


def _erase_namespace(**fake: Any) -> FakeNamespace:
    both = niche_change(occurrence("2026-01-10T09:00:00Z", victims=[JANE, SAM]))
    sams = niche_change(occurrence("2026-01-10T09:00:00Z", ref="HU/000002/26", victims=[SAM]))
    wrote = MessageToOfficer(
        event_id="w-1",
        crime_reference="HU/000001/26",
        person_id="P-1",
        text="Please ring me after six",
        at=AT,
    )
    task = NoticeTask(
        task_id="T-1",
        crime_reference="HU/000001/26",
        person_id="P-1",
        duties=[],
        reason="victim_message:w-1",
        assignee="104233",
        created_at=AT,
        note="Please ring me after six",
    )
    notice = TaskNotice(kind="task", task=task)
    ids_only = OutboundMessage(
        message_key="HU/000001/26:P-1:ack:email",
        crime_reference="HU/000001/26",
        person_id="P-1",
        duties=["ack"],
        template="acknowledgement",
        channel="email",
        decided_at=AT,
    )
    return FakeNamespace(
        {
            "case-changes": [DeadLetter("c-1", 3, both.case.model_dump_json(), session_id="HU/000001/26")],
            "journey-events": [
                DeadLetter("e-both", 11, both.model_dump_json(), session_id="HU/000001/26"),
                DeadLetter("e-wrote", 12, wrote.model_dump_json(), session_id="HU/000001/26"),
                DeadLetter("e-sams", 13, sams.model_dump_json(), session_id="HU/000002/26"),
            ],
            "outbound-messages": [DeadLetter("m-1", 5, ids_only.model_dump_json())],
            "officer-tasks": [DeadLetter("T-1:task", 6, notice.model_dump_json())],
        },
        **fake,
    )


def _scrub(body: str) -> str | None:
    return scrub_message(body, {"P-1"})


@pytest.mark.parametrize("lapse_after", [None, 1], ids=["locks-hold", "locks-lapse"])
def test_erase_replaces_each_dead_letter_naming_the_person_by_a_copy_without_them(
    lapse_after: int | None,
) -> None:
    namespace = _erase_namespace(batch=2, lapse_after=lapse_after)
    before = {name: {m.message_id: m.body_text for m in dead} for name, dead in namespace.dead.items()}

    assert ServiceBusDeadLetters(namespace.client(), ALL_QUEUES).rewrite(_scrub) == (3, 1)

    # Sent again to its queue as a replay is: a fresh id, its session, its trace, not the dead-letter reason.
    copies = {m.message_id: m for sent in namespace.sent.values() for m in sent}
    assert sorted(copies) == ["T-1:task#replay-1", "c-1#replay-1", "e-both#replay-1"]
    assert [m.message_id for m in namespace.sent["journey-events"]] == ["e-both#replay-1"]
    assert copies["e-both#replay-1"].session_id == "HU/000001/26"
    assert copies["c-1#replay-1"].session_id == "HU/000001/26"
    assert copies["T-1:task#replay-1"].session_id is None
    assert all(m.application_properties == {"traceparent": TRACE[b"traceparent"]} for m in copies.values())
    bodies = {key: sent_body(m) for key, m in copies.items()}
    for body in bodies.values():
        assert [part for part in JANES if part in body] == []
    # What else they held is still there: the other victim, the task (to be mailed without the note).
    resolved = ResolvedCaseChange.model_validate_json(bodies["e-both#replay-1"])
    assert resolved.case.niche is not None and [v.person_id for v in resolved.case.niche.victims] == ["P-2"]
    assert all(part in bodies["c-1#replay-1"] for part in SAMS)
    kept_task = TaskNotice.model_validate_json(bodies["T-1:task#replay-1"]).task
    assert (kept_task.task_id, kept_task.person_id, kept_task.note) == ("T-1", "P-1", None)

    # The originals are gone (what they wrote, wholly theirs, with no copy); the rest are untouched.
    left = {name: {m.message_id: m.body_text for m in dead} for name, dead in namespace.dead.items()}
    assert left == {
        "case-changes": {},
        "journey-events": {"e-sams": before["journey-events"]["e-sams"]},
        "outbound-messages": before["outbound-messages"],  # ids only: nothing of theirs to take out
        "officer-tasks": {},
    }
    assert all(m.lock is None for dead in namespace.dead.values() for m in dead)  # abandoned, not held

    # A second erasure finds nothing more, and sends nothing.
    assert ServiceBusDeadLetters(namespace.client(), ALL_QUEUES).rewrite(_scrub) == (0, 0)
    assert sum(len(sent) for sent in namespace.sent.values()) == 3


def test_a_copy_that_fails_again_comes_back_to_the_dead_letters_without_them() -> None:
    """The copy goes through the step again; dead-lettered once more, it is the scrubbed body."""
    namespace = _erase_namespace()
    ServiceBusDeadLetters(namespace.client(), ALL_QUEUES).rewrite(_scrub)
    (copy,) = namespace.sent["journey-events"]
    namespace.dead["journey-events"].append(
        DeadLetter(str(copy.message_id), 40, sent_body(copy), session_id=copy.session_id)
    )
    assert ServiceBusDeadLetters(namespace.client(), ALL_QUEUES).rewrite(_scrub) == (0, 0)
    assert namespace.left("journey-events") == ["e-sams", "e-both#replay-1"]


def test_a_lock_that_lapses_before_its_dead_letter_is_completed_does_not_stop_the_pass() -> None:
    """A dead letter judged "take" whose lock lapses before it is completed comes round again and
    is taken then; the pass goes on to the end, and one held twice is abandoned once."""
    namespace = _aged_namespace(batch=2)
    client = namespace.client()
    judged: list[str] = []

    def take(message: Any) -> bool:
        judged.append(message.message_id)
        if len(judged) == 1:
            namespace.lapse_locks()  # the first one's lock lapses while it is being judged
        at = message.enqueued_time_utc
        return at is not None and at < CUTOFF

    settle_dead_letters(client, "case-changes", take)
    assert namespace.left("case-changes") == [
        "case-changes:new",
        "case-changes:at-cutoff",
        "case-changes:just-after",
        "case-changes:no-time",
    ]
    assert judged.count(judged[0]) == 2  # judged again when it came round, and taken then
    assert all(m.lock is None for m in namespace.dead["case-changes"])
