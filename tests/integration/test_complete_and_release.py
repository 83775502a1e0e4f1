"""complete(message, release=receiver) is complete then release_session, in one transaction.

The local host settles each message it dispatched and gives up its session lock; since the two
became one call (one transaction instead of two), the embedded broker must leave exactly what
the two calls left. Here random runs on two brokers in step, one settling with the one call and
one with the two, compare everything either stores after every call: every message (lock tokens
aside, which are random), every session row, every dead letter, and what each receive returns.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.adapters.sqlite_queue import LockLost, QueueConfig, ReceivedMessage, SqliteQueueBroker
from shared.ports import OutgoingMessage

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
QUEUES = [
    QueueConfig("plain", max_delivery_count=2, lock_duration=timedelta(seconds=30)),
    QueueConfig("sess", sessions=True, max_delivery_count=2, lock_duration=timedelta(seconds=30)),
]
RECEIVERS = ["r1", "r2"]

queues = st.sampled_from(["sess", "sess", "plain"])
sessions = st.sampled_from(["A", "A", "B"])
receivers = st.sampled_from(RECEIVERS)
operation = st.one_of(
    st.tuples(st.just("receive"), queues, receivers),
    st.tuples(st.just("receive"), queues, receivers),
    st.tuples(st.just("send"), queues, sessions),
    # The receiver named may or may not be the one holding the session.
    st.tuples(st.just("complete"), st.integers(0, 3), receivers),
    st.tuples(st.just("complete"), st.integers(0, 3), receivers),
    st.tuples(st.just("abandon"), st.integers(0, 3)),
    st.tuples(st.just("release"), sessions, receivers),
    st.tuples(st.just("advance"), st.integers(1, 45)),
)

SEEN = {"completed": 0, "released_by_it": 0, "owner_kept": 0, "lock_lost": 0, "row_dropped": 0}


def _message(message_id: str, queue: str, session: str) -> OutgoingMessage:
    return OutgoingMessage(
        f'{{"id": "{message_id}"}}', message_id, session_id=session if queue == "sess" else None
    )


def _stored(broker: SqliteQueueBroker) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Everything the broker keeps, lock tokens aside (random per receive)."""
    db = broker._db
    messages = db.execute(
        "SELECT seq, queue, message_id, session_id, body, available_at, delivery_count, locked_until, "
        "last_error, lock_token IS NULL FROM messages ORDER BY seq"
    ).fetchall()
    rows = db.execute("SELECT * FROM sessions ORDER BY queue, session_id").fetchall()
    dead = db.execute(
        "SELECT queue, seq, message_id, reason, description FROM dead_letters ORDER BY id"
    ).fetchall()
    return messages, rows, dead


def _owner(broker: SqliteQueueBroker, session: str | None) -> str | None:
    row = broker._db.execute(
        "SELECT owner FROM sessions WHERE queue='sess' AND session_id=?", (session,)
    ).fetchone()
    return None if row is None else row[0]


def _same(a: ReceivedMessage | None, b: ReceivedMessage | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.sequence_number, a.message_id, a.session_id, a.delivery_count, a.locked_until) == (
        b.sequence_number,
        b.message_id,
        b.session_id,
        b.delivery_count,
        b.locked_until,
    )


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=8, max_size=60))
# Settled by its holder, by another receiver, and after both locks lapsed.
@example([("send", "sess", "A"), ("send", "sess", "A"), ("receive", "sess", "r1"), ("complete", 0, "r1")])
@example([("send", "sess", "A"), ("receive", "sess", "r1"), ("complete", 0, "r2"), ("receive", "sess", "r2")])
@example([("send", "sess", "A"), ("receive", "sess", "r1"), ("advance", 40), ("complete", 0, "r1")])
def test_completing_with_release_leaves_what_complete_then_release_session_leaves(ops: list[tuple]) -> None:
    now = [T0]
    one = SqliteQueueBroker(":memory:", QUEUES, lambda: now[0])
    two = SqliteQueueBroker(":memory:", QUEUES, lambda: now[0])
    held: list[tuple[ReceivedMessage, ReceivedMessage]] = []
    try:
        for step, op in enumerate(ops):
            kind = op[0]
            if kind == "send":
                for broker in (one, two):
                    broker.send(op[1], [_message(f"m{step}", op[1], op[2])])
            elif kind == "receive":
                got = [broker.receive(op[1], receiver=op[2], now=now[0]) for broker in (one, two)]
                assert _same(*got), op
                if got[0] is not None and got[1] is not None:
                    held.append((got[0], got[1]))
            elif kind == "complete" and held:
                first, second = held.pop(op[1] % len(held))
                session = first.session_id
                owner_before = _owner(one, session)
                try:
                    one.complete(first, now=now[0], release=op[2])
                    lost = False
                except LockLost:
                    lost = True
                    if session is not None:
                        one.release_session(first.queue, session, receiver=op[2])
                try:
                    two.complete(second, now=now[0])
                    assert not lost, "the one call lost the lock where complete kept it"
                except LockLost:
                    assert lost, "complete lost the lock where the one call kept it"
                if session is not None:
                    two.release_session(second.queue, session, receiver=op[2])
                SEEN["completed"] += not lost
                SEEN["lock_lost"] += lost
                if not lost and session is not None:
                    owner_after = _owner(one, session)
                    SEEN["released_by_it"] += owner_before == op[2] and owner_after is None
                    SEEN["owner_kept"] += owner_before not in (None, op[2]) and owner_after == owner_before
                    SEEN["row_dropped"] += (
                        owner_after is None
                        and one._db.execute(
                            "SELECT 1 FROM sessions WHERE queue='sess' AND session_id=?", (session,)
                        ).fetchone()
                        is None
                    )
            elif kind == "abandon" and held:
                pair = held.pop(op[1] % len(held))
                outcomes = []
                for broker, message in zip((one, two), pair, strict=True):
                    try:
                        broker.abandon(message, now=now[0], error="test")
                        outcomes.append(True)
                    except LockLost:
                        outcomes.append(False)
                assert outcomes[0] == outcomes[1]
            elif kind == "release":
                for broker in (one, two):
                    broker.release_session("sess", op[1], receiver=op[2])
            elif kind == "advance":
                now[0] += timedelta(seconds=op[1])
            assert _stored(one) == _stored(two), ops[: step + 1]
    finally:
        one.close()
        two.close()


def test_the_property_saw_each_way_a_completion_can_go() -> None:
    # Runs after the property in this module (pytest keeps the file's order); on a worker that
    # did not run it, it runs it first.
    if SEEN["completed"] == 0:
        test_completing_with_release_leaves_what_complete_then_release_session_leaves()
    # Derandomized: these counts are the same every run (177, 63, 47, 34, 50 when written);
    # the floors leave room for Hypothesis drawing differently after a change elsewhere.
    assert SEEN["completed"] >= 120, SEEN
    assert SEEN["released_by_it"] >= 40, SEEN  # the completing receiver held the session: let go
    assert SEEN["owner_kept"] >= 25, SEEN  # another receiver held it: left held
    assert SEEN["lock_lost"] >= 20, SEEN  # nothing settled, nothing released
    assert SEEN["row_dropped"] >= 30, SEEN  # nothing left in the session: its row gone


def test_abandoning_with_release_leaves_what_abandon_then_release_session_leaves() -> None:
    """The same for abandon(message, release=receiver): every way an abandon can go (redelivered
    or dead-lettered, a message queued behind it or not, the session held by the receiver named,
    by another, or the lock lapsed), on two brokers in step, compared row for row."""
    cases = 0
    now = [T0]
    for behind, dead, holder, lapsed in itertools.product((0, 1), (False, True), RECEIVERS, (False, True)):
        now[0] = T0
        one = SqliteQueueBroker(":memory:", QUEUES, lambda: now[0])
        two = SqliteQueueBroker(":memory:", QUEUES, lambda: now[0])
        try:
            for broker in (one, two):
                for index in range(1 + behind):
                    broker.send("sess", [_message(f"m{index}", "sess", "A")])
                if dead:  # its first delivery abandoned already: the next abandon uses up the last
                    first = broker.receive("sess", receiver=holder, now=now[0])
                    assert first is not None
                    broker.abandon(first, now=now[0], error="test", release=None)
            pair = [broker.receive("sess", receiver=holder, now=now[0]) for broker in (one, two)]
            assert pair[0] is not None and pair[1] is not None and _same(*pair)
            if lapsed:
                now[0] += timedelta(seconds=31)
            outcomes = []
            for broker, message in zip((one, two), pair, strict=True):
                try:
                    broker.abandon(message, now=now[0], error="test", release="r1" if broker is one else None)
                    outcomes.append(True)
                except LockLost:
                    outcomes.append(False)
                if broker is two or not outcomes[-1]:
                    broker.release_session("sess", "A", receiver="r1")
            assert outcomes == [not lapsed] * 2
            assert _stored(one) == _stored(two), (behind, dead, holder, lapsed)
            # What was meant happened: the holder named let go, another kept it; a message used up
            # its deliveries went to the dead letters.
            if not lapsed:
                assert _owner(one, "A") == (None if holder == "r1" else holder)
                assert len(_stored(one)[2]) == int(dead)
            cases += 1
        finally:
            one.close()
            two.close()
    assert cases == 16
