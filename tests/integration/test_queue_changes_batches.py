"""The same rule as test_queue_changes.py, for what the local host does since it takes batches.

The host (``shared/local/host.py``, ``_drain``) takes up to n messages in one ``receive_many``;
when it gets fewer, it counts the queue empty at that moment, with the ``changes_of`` read right
after the receive, while the messages it took are still locked and not yet run. It settles each
with ``complete(..., release=receiver)``, which bumps the count only when the message's session
has a next message. Random runs of batches, settlings with and without the session given up, and
the other broker calls check it: a queue counted empty whose count has not moved and whose next
visible time has not come must give nothing to another batch.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.adapters.sqlite_queue import LockLost, ReceivedMessage, SqliteQueueBroker
from tests.integration.test_queue_changes import NEVER, QUEUES, RECEIVERS, T0, _do, operation, queues

take = st.tuples(st.just("take"), queues, st.sampled_from(RECEIVERS), st.integers(1, 4))
# Settle a held message as the host does: complete, giving up the session (or, "keep", not).
settle = st.tuples(st.just("host_settle"), st.sampled_from(["release", "keep"]), st.integers(0, 3))
batch_operation = st.one_of(take, take, settle, operation)

SEEN = {"asked_again": 0, "short_batches": 0, "while_held": 0, "examples": 0}


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(batch_operation, min_size=10, max_size=60))
@example(
    [("send", "sess", "A")] * 2
    + [("take", "sess", "r1", 4), ("host_settle", "release", 0), ("take", "sess", "r1", 4)]
)
@example(
    [("send", "plain", "A")] * 3
    + [("take", "plain", "r1", 4), ("host_settle", "release", 0), ("advance", 40)]
)
def test_a_short_batch_leaves_its_queue_empty_until_its_count_moves_or_its_next_message_is_due(
    ops: list[tuple],
) -> None:
    now = [T0]
    broker = SqliteQueueBroker(":memory:", QUEUES, lambda: now[0])
    held: list[ReceivedMessage] = []
    receivers: dict[int, str] = {}  # sequence number -> who took it
    scheduled: list[tuple[str, int]] = []
    empty: dict[tuple[str, str], tuple[int, datetime, int]] = {}
    try:
        for step, op in enumerate(ops):
            if op[0] == "take":
                _, queue, receiver, most = op
                got = broker.receive_many(queue, receiver=receiver, now=now[0], max_messages=most)
                held.extend(got)
                receivers.update((m.sequence_number, receiver) for m in got)
                if len(got) < most:  # counted empty, as the host does, before anything runs
                    until = broker.next_visible_by_queue(now[0])[queue] or NEVER
                    empty[(queue, receiver)] = (broker.changes_of(queue), until, step)
                    SEEN["short_batches"] += bool(got)
            elif op[0] == "host_settle" and held:
                _, how, index = op
                message = held.pop(index % len(held))
                release = receivers[message.sequence_number] if how == "release" else None
                with contextlib.suppress(LockLost):  # its lock lapsed as the clock moved on
                    broker.complete(message, now=now[0], release=release)
            else:
                before = len(held)
                _do(broker, op, now, held, scheduled, step)
                if op[0] == "receive" and len(held) > before:
                    receivers[held[-1].sequence_number] = op[2]
            for (queue, receiver), (count, until, at_step) in list(empty.items()):
                if count != broker.changes_of(queue) or now[0] >= until:
                    del empty[(queue, receiver)]
                    continue
                found = broker.receive_many(queue, receiver=receiver, now=now[0], max_messages=8)
                assert found == [], (queue, receiver, ops[at_step : step + 1])
                SEEN["asked_again"] += 1
                SEEN["while_held"] += any(m.queue == queue for m in held)
        SEEN["examples"] += 1
    finally:
        broker.close()


def test_the_property_above_saw_short_batches_and_asked_again_while_messages_were_held() -> None:
    # Runs after the property in this module (pytest keeps the file's order): it saw enough.
    if SEEN["examples"] == 0:
        test_a_short_batch_leaves_its_queue_empty_until_its_count_moves_or_its_next_message_is_due()
    assert SEEN["examples"] >= 300
    assert SEEN["short_batches"] >= 100, SEEN
    assert SEEN["asked_again"] >= 600, SEEN
    assert SEEN["while_held"] >= 200, SEEN
