"""Taking several messages at once (``receive_many``) delivers what that many receives would.

The local host takes up to host.json's ``maxConcurrentCalls`` messages (on a session queue, the
heads of ``maxConcurrentSessions`` sessions) in one receive, as the Functions host does for its
concurrent calls. The rule: a batch of n is exactly what n receives one after another at the same
moment would have delivered, in the same order, and leaves the broker in the same state; on a
session queue, never two messages of one session. Checked on random queues (scheduled messages,
sessions held by this receiver and by another, locks that lapsed) against a second broker fed
the same history and received from one message at a time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.adapters.sqlite_queue import QueueConfig, SqliteQueueBroker
from shared.local import host
from shared.ports import OutgoingMessage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LOCK = timedelta(minutes=1)
QUEUES = [
    QueueConfig("plain", max_delivery_count=3, lock_duration=LOCK),
    QueueConfig("sess", sessions=True, max_delivery_count=3, lock_duration=LOCK),
]


def _history(seed: int) -> list[Callable[[SqliteQueueBroker, datetime], object]]:
    """A random history of sends, schedules and receives, the same for every broker it is played
    on. A received message is left locked (its lock lapses later, or not), completed (its session
    released or kept by its receiver) or abandoned."""
    rng = random.Random(seed)
    steps: list[Callable[[SqliteQueueBroker, datetime], object]] = []
    for n in range(rng.randint(5, 40)):
        queue = rng.choice(["plain", "sess"])
        session = f"S{rng.randint(0, 6)}" if queue == "sess" else None
        later = rng.random() < 0.3
        message = OutgoingMessage(
            body=f"b{n}",
            message_id=f"m{n}",
            session_id=session,
            scheduled_at=T0 + timedelta(seconds=rng.randint(-30, 90)) if later else None,
        )
        steps.append(lambda b, now, q=queue, m=message: b.send(q, [m]))
        if rng.random() < 0.35:
            who, then = rng.choice(["r1", "r2"]), rng.choice(["locked", "complete", "keep", "abandon"])
            steps.append(lambda b, now, q=queue, w=who, t=then: _receive_and(b, q, w, t, now))
    return steps


def _receive_and(broker: SqliteQueueBroker, queue: str, receiver: str, then: str, now: datetime) -> None:
    message = broker.receive(queue, receiver=receiver, now=now)
    if message is None or then == "locked":
        return
    if then == "abandon":
        broker.abandon(message, now=now, release=receiver)
    else:  # "keep": the receiver keeps its session lock after settling
        broker.complete(message, now=now, release=receiver if then == "complete" else None)


def _expected(broker: SqliteQueueBroker, queue: str, receiver: str, now: datetime, most: int) -> list[str]:
    """The rule, worked out from the stored rows: due messages free of a lock, earliest available
    first (then the first sent); on a session queue, the first message of each session that no
    other receiver holds and that has none in flight, if it is due."""
    at = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    rows = broker._db.execute(
        "SELECT seq, message_id, session_id, available_at, locked_until, delivery_count FROM messages "
        "WHERE queue=?",
        (queue,),
    ).fetchall()
    # A lapsed lock frees its message, or dead-letters it when its deliveries are used up.
    live = [r for r in rows if not (r[4] is not None and r[4] < at and r[5] >= 3)]
    free = [r for r in live if r[4] is None or r[4] < at]
    if queue == "plain":
        return [r[1] for r in sorted((r for r in free if r[3] <= at), key=lambda r: (r[3], r[0]))][:most]
    owners = {
        session: (owner, until)
        for session, owner, until in broker._db.execute(
            "SELECT session_id, owner, owner_until FROM sessions WHERE queue=?", (queue,)
        )
    }
    heads = []
    for session in {r[2] for r in live}:
        mine = sorted((r for r in live if r[2] == session), key=lambda r: (r[3], r[0]))
        head = mine[0]
        owner, until = owners.get(session, (None, None))
        held_by_another = owner not in (None, receiver) and until is not None and until >= at
        in_flight = any(r[4] is not None and r[4] >= at for r in mine)
        if head[3] <= at and not held_by_another and not in_flight:
            heads.append(head)
    return [r[1] for r in sorted(heads, key=lambda r: (r[3], r[0]))][:most]


def _played(seed: int) -> tuple[SqliteQueueBroker, datetime]:
    clock = [T0 - timedelta(minutes=2)]
    broker = SqliteQueueBroker(":memory:", QUEUES, lambda: clock[0])
    for step in _history(seed):
        step(broker, clock[0])
        clock[0] += timedelta(seconds=7)
    return broker, clock[0]


def _state(broker: SqliteQueueBroker) -> list[tuple[object, ...]]:
    db = broker._db  # the whole stored state, lock tokens left out (new ones each time)
    messages = db.execute(
        "SELECT seq, queue, message_id, session_id, available_at, delivery_count, locked_until IS NULL, "
        "locked_until FROM messages ORDER BY seq"
    ).fetchall()
    sessions = db.execute("SELECT * FROM sessions ORDER BY queue, session_id").fetchall()
    return [*messages, ("sessions",), *sessions]


@pytest.mark.parametrize("queue", ["plain", "sess"])
def test_a_batch_is_what_that_many_receives_one_after_another_would_deliver(queue: str) -> None:
    batches = several = 0
    for seed in range(60):
        for most in (1, 2, 3, 8):
            one, now = _played(seed)
            many, _ = _played(seed)
            singly = []
            while len(singly) < most and (m := one.receive(queue, receiver="r1", now=now)) is not None:
                singly.append(m)
            expected = _expected(many, queue, "r1", now, most)
            together = many.receive_many(queue, receiver="r1", now=now, max_messages=most)
            assert [m.message_id for m in together] == expected, f"seed {seed}, at most {most}"
            assert [
                (m.message_id, m.sequence_number, m.delivery_count, m.locked_until) for m in together
            ] == [(m.message_id, m.sequence_number, m.delivery_count, m.locked_until) for m in singly], (
                f"seed {seed}, at most {most}"
            )
            assert _state(many) == _state(one), f"seed {seed}, at most {most}"
            assert len({m.lock_token for m in together}) == len(together)  # a lock of its own each
            if queue == "sess":
                assert len({m.session_id for m in together}) == len(together)
            batches += 1
            several += len(together) > 1
            # Each one settles on its own lock, and the two brokers stay alike.
            for a, b in zip(singly, together, strict=True):
                one.complete(a, now=now, release="r1")
                many.complete(b, now=now, release="r1")
            assert _state(many) == _state(one)
            one.close()
            many.close()
    assert batches == 240
    assert several >= 60, f"only {several} batches held more than one message: the check saw too little"


def test_a_batch_holds_no_more_than_asked_and_asks_for_at_least_one(tmp_path: Path) -> None:
    broker = SqliteQueueBroker(tmp_path / "q.db", QUEUES, lambda: T0)
    broker.send("plain", [OutgoingMessage(body="b", message_id=f"m{n}") for n in range(20)])
    got = broker.receive_many("plain", receiver="r1", now=T0, max_messages=16)
    assert [m.message_id for m in got] == [f"m{n}" for n in range(16)]
    assert [m.message_id for m in broker.receive_many("plain", receiver="r1", now=T0, max_messages=16)] == [
        f"m{n}" for n in range(16, 20)
    ]
    with pytest.raises(ValueError, match="max_messages must be at least 1, not 0"):
        broker.receive_many("plain", receiver="r1", now=T0, max_messages=0)
    broker.close()


def test_the_local_host_takes_as_many_at_once_as_host_json_lets_the_functions_host() -> None:
    settings = json.loads((Path(__file__).parents[2] / "host.json").read_text(encoding="utf-8"))
    service_bus = settings["extensions"]["serviceBus"]
    assert service_bus["maxConcurrentCalls"] == host.MAX_CONCURRENT_CALLS
    assert service_bus["maxConcurrentSessions"] == host.MAX_CONCURRENT_SESSIONS


def test_sessions_this_receiver_still_holds_come_in_the_batch_with_free_ones() -> None:
    """After settling without giving its sessions up, a receiver takes their next messages along
    with free sessions' heads, in delivery order; a session another receiver holds waits."""
    clock = [T0]
    broker = SqliteQueueBroker(":memory:", QUEUES, lambda: clock[0])
    sent = {f"S{n}": [f"S{n}-a", f"S{n}-b"] for n in range(5)}
    for n, (session, ids) in enumerate(sent.items()):
        clock[0] = T0 + timedelta(seconds=n)
        broker.send("sess", [OutgoingMessage(body="b", message_id=i, session_id=session) for i in ids])
    now = T0 + timedelta(seconds=10)
    firsts = broker.receive_many("sess", receiver="r1", now=now, max_messages=3)  # S0, S1, S2
    other = broker.receive("sess", receiver="r2", now=now)  # S3, held by r2
    assert [m.message_id for m in firsts] == ["S0-a", "S1-a", "S2-a"] and other is not None
    assert other.message_id == "S3-a"
    for message in firsts:
        broker.complete(message, now=now)  # r1 keeps S0, S1 and S2
    later = broker.receive_many("sess", receiver="r1", now=now, max_messages=8)
    assert [m.message_id for m in later] == ["S0-b", "S1-b", "S2-b", "S4-a"]
    assert broker.receive_many("sess", receiver="r2", now=now, max_messages=8) == []
    broker.close()
