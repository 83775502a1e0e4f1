"""The fault injector knows which queue delivery is being handled, through the host's batches.

Faults are capped per delivery (``max_per_delivery``) so that a message is never failed until it
is dead-lettered; a fault charged to the wrong delivery breaks that cap. The host takes several
messages in one receive and handles them in order, settling each before the next: the delivery
being handled is the first taken, then the next at each settling, and none once all are settled.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.adapters.sqlite_queue import QueueConfig, SqliteQueueBroker
from shared.local.faults import REDELIVER, FaultInjector, FaultLog, FaultPlan, _patch_broker
from shared.ports import OutgoingMessage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
QUEUES = [QueueConfig("plain"), QueueConfig("sess", sessions=True)]


def _broker(rate: float) -> tuple[SqliteQueueBroker, FaultInjector, FaultLog]:
    broker = SqliteQueueBroker(":memory:", QUEUES, lambda: T0)
    fault_log = FaultLog()
    injector = FaultInjector(FaultPlan(seed=1, rate=rate, kinds=frozenset({REDELIVER})), fault_log)
    _patch_broker(broker, injector)
    return broker, injector, fault_log


def test_each_message_of_a_batch_is_the_delivery_being_handled_in_its_turn() -> None:
    broker, faults, _ = _broker(rate=0.0)
    for queue, session in (("plain", None), ("sess", "S")):
        broker.send(
            queue,
            [
                OutgoingMessage(body="b", message_id=f"{queue}{n}", session_id=session and f"{session}{n}")
                for n in range(3)
            ],
        )
        first, second, third = broker.receive_many(queue, receiver="r1", now=T0, max_messages=8)
        assert faults.delivery == first
        broker.complete(first, now=T0, release="r1")
        assert faults.delivery == second
        broker.abandon(second, now=T0, error="failed", release="r1")
        assert faults.delivery == third
        broker.complete(third, now=T0, release="r1")
        assert faults.delivery is None
        again = broker.receive(queue, receiver="r1", now=T0)  # the abandoned one, alone
        assert again is not None and again.message_id == second.message_id and faults.delivery == again
        broker.complete(again, now=T0, release="r1")
        assert faults.delivery is None
        assert broker.receive_many(queue, receiver="r1", now=T0, max_messages=8) == []
        assert faults.delivery is None


def test_a_lost_completion_is_charged_to_its_own_delivery_and_the_next_one_follows() -> None:
    broker, faults, fault_log = _broker(rate=1.0)
    broker.send("plain", [OutgoingMessage(body="b", message_id=f"m{n}") for n in range(2)])
    first, second = broker.receive_many("plain", receiver="r1", now=T0, max_messages=16)
    broker.complete(first, now=T0)  # lost: abandoned instead, to come again
    assert faults.delivery == second
    (record,) = fault_log.of_kind(REDELIVER)
    assert record.delivery == "plain/m0#1"
    assert broker.pending("plain") == 2
