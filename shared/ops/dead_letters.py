"""Dead letters of the embedded queues: list them (never their bodies) and replay them after a fix.

The broker lists dead letters but neither names their rows nor removes them, so
this module reads and deletes rows of the broker's ``dead_letters`` table on a
SQLite connection of its own (the broker's own connection is left alone). A
replay sends the body again through the broker, under a fresh message id (the
original would be dropped by duplicate detection), and only then removes the
dead letter: a crash in between leaves the dead letter to be replayed again,
which the idempotent steps absorb. Service Bus in Azure: shared/ops/servicebus_dead_letters.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared.adapters.sqlite_queue import DeadLetter, SqliteQueueBroker
from shared.ops.context import OpsError
from shared.ports import OutgoingMessage

REPLAY_MARK = "#replay-"
_REASON_CHARS = 200


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter with the row that holds it."""

    row: int
    queue: str
    message_id: str
    session_id: str | None
    body: str
    properties: dict[str, str]
    reason: str
    description: str


class EmbeddedDeadLetters:
    """The rows of the embedded broker's dead-letter store, on a connection of its own."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=10000")

    def close(self) -> None:
        self._db.close()

    def rows(self, queue: str | None = None) -> list[StoredDeadLetter]:
        """In the order they were dead-lettered."""
        columns = "id, queue, message_id, session_id, body, props, reason, description"
        if queue is None:
            found = self._db.execute(f"SELECT {columns} FROM dead_letters ORDER BY id").fetchall()
        else:
            found = self._db.execute(
                f"SELECT {columns} FROM dead_letters WHERE queue=? ORDER BY id", (queue,)
            ).fetchall()
        return [
            StoredDeadLetter(
                row=row,
                queue=q,
                message_id=message_id,
                session_id=session_id,
                body=body,
                properties={} if props is None else {str(k): str(v) for k, v in json.loads(props).items()},
                reason=reason,
                description=description,
            )
            for row, q, message_id, session_id, body, props, reason, description in found
        ]

    def remove(self, row: int) -> None:
        self._db.execute("DELETE FROM dead_letters WHERE id=?", (row,))


def reason_line(reason: str, description: str) -> str:
    """The reason on one short line: a description's later lines may quote a body, so they are dropped."""
    first = description.strip().splitlines()[0] if description.strip() else ""
    text = f"{reason}: {first}" if first else reason
    text = " ".join(text.split())
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def check_queue(broker: SqliteQueueBroker, queue: str | None) -> None:
    if queue is not None and queue not in broker.queues:
        raise OpsError(f"unknown queue {queue!r}: one of {', '.join(sorted(broker.queues))}")


def list_dead_letters(broker: SqliteQueueBroker, queue: str | None) -> list[DeadLetter]:
    check_queue(broker, queue)
    return list(broker.dead_letters(queue))


class Listed(Protocol):
    """What a listing shows of a dead letter (embedded or Service Bus): never its body."""

    @property
    def queue(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def description(self) -> str: ...


def list_lines(dead: Sequence[Listed]) -> list[str]:
    """One tab-separated line a dead letter: queue, message id, session, reason."""
    return [
        "\t".join((d.queue, d.message_id, d.session_id or "-", reason_line(d.reason, d.description)))
        for d in dead
    ]


def replay_id(message_id: str) -> str:
    """The id a dead letter is replayed under: the original message's id and which replay of it
    this is, ``ORIGINAL#replay-N`` (N is 1 for a message dead-lettered first time, 2 when its
    first replay was dead-lettered too, ...). It says what it replays, and depends on nothing
    else (not on other dead letters, queues or counters), so a replay interrupted after the send
    and run again sends the same id, which the queue's duplicate detection drops."""
    original, mark, number = message_id.rpartition(REPLAY_MARK)
    if mark and number.isdigit():
        return f"{original}{REPLAY_MARK}{int(number) + 1}"
    return f"{message_id}{REPLAY_MARK}1"


@dataclass(frozen=True)
class Replayed:
    queue: str
    message_id: str
    new_message_id: str


def replay(
    broker: SqliteQueueBroker,
    store: EmbeddedDeadLetters,
    *,
    queue: str | None,
    message_id: str | None,
) -> list[Replayed]:
    """Resubmit dead letters to their queues (one id, or all), removing each once it is sent."""
    check_queue(broker, queue)
    chosen = store.rows(queue)
    if message_id is not None:
        chosen = [dead for dead in chosen if dead.message_id == message_id]
        if not chosen:
            where = f" on queue {queue}" if queue else ""
            raise OpsError(f"no dead letter with message id {message_id!r}{where}")
    done: list[Replayed] = []
    for dead in chosen:
        fresh = replay_id(dead.message_id)
        message = OutgoingMessage(
            dead.body, fresh, session_id=dead.session_id, application_properties=dead.properties
        )
        broker.send(dead.queue, [message])
        store.remove(dead.row)
        done.append(Replayed(dead.queue, dead.message_id, fresh))
    return done
