"""SQLite queues with Azure Service Bus semantics (the embedded stand-in for Service Bus).

Peek-lock delivery with lock tokens and delivery counts, dead-lettering after
``max_delivery_count``, duplicate detection by message id, scheduled messages and
sessions (FIFO per session, one receiver per session). Nothing here reads the wall
clock: time is passed in, so the local host can run the broker on a simulated clock.

Times are stored as epoch microseconds. A lock is held while ``now <= locked_until``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.ports import QUEUE_MESSAGE_MAX_BYTES, MessageTooLarge, OutgoingMessage, ScheduledMessageGone

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    session_id TEXT,
    body TEXT NOT NULL,
    props TEXT,
    enqueued_at INTEGER NOT NULL,
    scheduled_at INTEGER,
    available_at INTEGER NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token TEXT,
    locked_until INTEGER,
    last_error TEXT NOT NULL DEFAULT ''
);
-- Unlocked messages in delivery order (seq is the rowid, implicitly last in the key).
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, available_at) WHERE locked_until IS NULL;
CREATE INDEX IF NOT EXISTS messages_locked ON messages (queue, locked_until) WHERE locked_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_session ON messages (queue, session_id, available_at)
    WHERE session_id IS NOT NULL;

-- One row per session that has messages or a lock holder. The head is the session's
-- first message, so a receive looks at one row per session, never at the messages
-- queued behind an in-flight one.
CREATE TABLE IF NOT EXISTS sessions (
    queue TEXT NOT NULL,
    session_id TEXT NOT NULL,
    owner TEXT,
    owner_until INTEGER,
    inflight_seq INTEGER,
    head_seq INTEGER,
    head_available_at INTEGER,
    PRIMARY KEY (queue, session_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_ready ON sessions (queue, owner, head_available_at, head_seq)
    WHERE inflight_seq IS NULL AND head_seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_owned ON sessions (queue, owner_until) WHERE owner IS NOT NULL;

CREATE TABLE IF NOT EXISTS sent_ids (
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (queue, message_id)
) WITHOUT ROWID;
-- No index on sent_at: the history is pruned once a window (a scan of the queue's few ids),
-- and an index there cost every send a page written. Databases that have it lose it on open.
DROP INDEX IF EXISTS sent_ids_age;

CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    session_id TEXT,
    body TEXT NOT NULL,
    props TEXT,
    enqueued_at INTEGER NOT NULL,
    delivery_count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    description TEXT NOT NULL,
    dead_lettered_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_queue ON dead_letters (queue, id);
"""

_MESSAGE_COLUMNS = (
    "queue, seq, message_id, session_id, body, props, enqueued_at, scheduled_at, "
    "delivery_count, lock_token, locked_until"
)


@dataclass(frozen=True)
class QueueConfig:
    """A queue's Service Bus settings."""

    name: str
    sessions: bool = False
    max_delivery_count: int = 10
    lock_duration: timedelta = timedelta(minutes=1)
    duplicate_detection_window: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class ReceivedMessage:
    """A message delivered under a peek-lock; settle it with its lock token."""

    queue: str
    body: str
    message_id: str
    session_id: str | None
    sequence_number: int
    enqueued_at: datetime
    scheduled_at: datetime | None
    delivery_count: int  # 1 on first delivery
    lock_token: str
    locked_until: datetime
    application_properties: Mapping[str, str]


@dataclass(frozen=True)
class DeadLetter:
    """A message moved to its queue's dead-letter store."""

    queue: str
    message_id: str
    session_id: str | None
    body: str
    reason: str
    description: str
    dead_lettered_at: datetime
    delivery_count: int
    application_properties: Mapping[str, str]


class QueueNotFound(Exception):
    """No queue of that name is configured."""


class LockLost(Exception):
    """The message's lock expired or passed to another delivery; it cannot be settled."""

    @classmethod
    def of(cls, message: ReceivedMessage) -> LockLost:
        return cls(f"{message.queue}/{message.message_id}: lock {message.lock_token} is no longer held")


# A message whose lock this receiver still holds: the condition of every settling statement.
_HELD = "seq=? AND queue=? AND lock_token=? AND locked_until>=?"
# Settling a message and giving up the session's lock in one statement: the receiver named by the
# statement's third parameter lets go of the session if it holds it; any other holder keeps it.
_RELEASE = (
    "owner=CASE WHEN owner=?3 THEN NULL ELSE owner END, "
    "owner_until=CASE WHEN owner=?3 THEN NULL ELSE owner_until END"
)


def _held(message: ReceivedMessage, at: int) -> tuple[object, ...]:
    return (message.sequence_number, message.queue, message.lock_token, at)


def _us(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: queue times must be timezone-aware")
    return (moment - _EPOCH) // _MICROSECOND


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _props(encoded: str | None) -> dict[str, str]:
    return {} if encoded is None else dict(json.loads(encoded))


class SqliteQueueBroker:
    """Service Bus queues on one SQLite file (or ``:memory:``); ``clock`` stamps enqueue times."""

    def __init__(
        self, path: str | Path, queues: Sequence[QueueConfig], clock: Callable[[], datetime]
    ) -> None:
        self._queues = {config.name: config for config in queues}
        if len(self._queues) != len(queues):
            raise ValueError("queue names must be unique")
        self._clock = clock
        # One connection behind a lock: callers on other threads serialise rather than
        # share a cursor; BEGIN IMMEDIATE keeps a second broker on the same file honest.
        self._mutex = threading.RLock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        # Removed and rewritten bodies are overwritten, not left in free pages (journey-rules.md §16).
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        # For each queue, bumped by every call that can make one of its messages receivable, so
        # a host can tell that nothing has changed since it last found the queue empty.
        self._changes_of = dict.fromkeys(self._queues, 0)
        # When each queue's duplicate-detection history was last pruned (epoch microseconds).
        self._pruned: dict[str, int] = {}

    def number_from(self, first: int) -> None:
        """Number this file's messages and dead letters from ``first`` on (a new file only): the
        files of a run in several processes (shared/local/parts.py) are merged into one, and a
        sequence number kept in a journey (a deadline check to cancel) must stay its message's."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM messages UNION ALL SELECT 1 FROM dead_letters").fetchone():
                raise ValueError("only a new queue file can be numbered from a given number")
            for table in ("messages", "dead_letters"):
                db.execute("DELETE FROM sqlite_sequence WHERE name=?", (table,))
                db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, first - 1))

    def close(self) -> None:
        with self._mutex:
            # Fold the write-ahead log into the file, so no earlier version of a body stays in it.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    def _changed(self, queue: str | None = None) -> None:
        """Something may have become receivable on ``queue`` (None: on any queue)."""
        for name in self._changes_of if queue is None else (queue,):
            if name in self._changes_of:
                self._changes_of[name] += 1

    def changes_of(self, queue: str) -> int:
        """Bumped by every call that can make a message of ``queue`` receivable: a send or a
        schedule to it, a message of it abandoned or dead-lettered, one completed whose session has
        another message (completing one of a plain queue frees nothing), a completion that finds
        its lock lapsed, one of its sessions released. While
        it stays the same, a receive that found the queue empty finds it empty again at the same
        moment (later, a scheduled message or a lapsed lock may have come due)."""
        return self._changes_of[self._config(queue).name]

    # --- keeping personal data no longer than needed (journey-rules.md §16) ------------------

    def rewrite(self, change: Callable[[str], str | None]) -> tuple[int, int]:
        """Pass every stored body, active and dead-lettered, through ``change``: a new body takes
        the old one's place, None removes the message. Returns (rewritten, removed)."""
        rewritten = removed = 0
        with self._tx() as db:
            for table, key in (("messages", "seq"), ("dead_letters", "id")):
                columns = f"{key}, body" + (", queue, session_id" if table == "messages" else "")
                for row in db.execute(f"SELECT {columns} FROM {table}").fetchall():
                    body = change(row[1])
                    if body == row[1]:
                        continue
                    if body is not None:
                        db.execute(f"UPDATE {table} SET body=? WHERE {key}=?", (body, row[0]))
                        rewritten += 1
                        continue
                    db.execute(f"DELETE FROM {table} WHERE {key}=?", (row[0],))
                    removed += 1
                    if table == "messages" and row[3] is not None:
                        self._new_head(db, row[2], row[3])
        self._changed()
        return rewritten, removed

    @staticmethod
    def _new_head(db: sqlite3.Connection, queue: str, session_id: str) -> None:
        """A session's message was removed out of turn: point at its new head (a message in
        flight stays in flight), and drop the row once nothing keeps it alive."""
        db.execute(
            "UPDATE sessions SET (head_seq, head_available_at)=("
            "SELECT seq, available_at FROM messages WHERE queue=?1 AND session_id=?2 "
            "ORDER BY available_at, seq LIMIT 1) WHERE queue=?1 AND session_id=?2",
            (queue, session_id),
        )
        db.execute(
            "DELETE FROM sessions WHERE queue=? AND session_id=? AND head_seq IS NULL "
            "AND inflight_seq IS NULL AND owner IS NULL",
            (queue, session_id),
        )

    def purge_dead_letters(self, before: datetime) -> int:
        """Remove the dead letters set aside before ``before``; how many."""
        with self._tx() as db:
            count = db.execute("DELETE FROM dead_letters WHERE dead_lettered_at < ?", (_us(before),)).rowcount
        return int(count)

    @property
    def queues(self) -> Mapping[str, QueueConfig]:
        return dict(self._queues)

    def _config(self, queue: str) -> QueueConfig:
        try:
            return self._queues[queue]
        except KeyError:
            raise QueueNotFound(queue) from None

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- sending -------------------------------------------------------------------

    def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        """Enqueue (or schedule) a batch atomically; ids seen within the window are dropped."""
        self._enqueue(queue, messages, numbered=False)

    def schedule(self, queue: str, messages: Sequence[OutgoingMessage]) -> list[int]:
        """Schedule messages (each with a ``scheduled_at``) atomically; their sequence numbers.

        As Service Bus does, a duplicate within the window is dropped, and the number given for
        it is a new one that names no message.
        """
        if any(message.scheduled_at is None for message in messages):
            raise ValueError("a message scheduled to be cancellable needs a scheduled_at")
        return self._enqueue(queue, messages, numbered=True)

    def cancel_scheduled(self, queue: str, sequence_number: int) -> None:
        """Remove a message still scheduled (not yet due by the broker's clock), as Service Bus's
        cancel does; ScheduledMessageGone if none of that number is (due, delivered, cancelled, or
        a dropped duplicate's number)."""
        config = self._config(queue)
        now = _us(self._clock())
        with self._tx() as db:
            row = db.execute(
                "DELETE FROM messages WHERE queue=? AND seq=? AND scheduled_at IS NOT NULL "
                "AND available_at>? AND locked_until IS NULL RETURNING session_id",
                (queue, sequence_number, now),
            ).fetchone()
            if row is None:
                raise ScheduledMessageGone(f"{queue}: no message {sequence_number} is still scheduled")
            if config.sessions and row[0] is not None:
                self._new_head(db, queue, row[0])

    def _enqueue(self, queue: str, messages: Sequence[OutgoingMessage], *, numbered: bool) -> list[int]:
        self._changed(queue)
        config = self._config(queue)
        if config.sessions:
            for message in messages:
                if message.session_id is None:
                    raise ValueError(f"queue {queue!r} requires sessions: {message.message_id!r} has none")
        for message in messages:
            if message.size() > QUEUE_MESSAGE_MAX_BYTES:  # Service Bus refuses it: so do these queues
                raise MessageTooLarge(
                    f"message {message.message_id!r} for queue {queue!r} is {message.size()} bytes "
                    f"(a queue message holds at most {QUEUE_MESSAGE_MAX_BYTES})"
                )
        now = _us(self._clock())
        # Convert everything before writing so a bad message rejects the whole batch.
        rows = [
            (
                message,
                None if message.scheduled_at is None else _us(message.scheduled_at),
                json.dumps(dict(message.application_properties)) if message.application_properties else None,
            )
            for message in messages
        ]
        window = config.duplicate_detection_window // _MICROSECOND
        numbers: list[int] = []
        with self._tx() as db:
            # Forget ids older than the window, so the history stays within two windows; once a
            # window, not at every send (an id older than the window counts as fresh below anyway).
            pruned = self._pruned.get(queue)
            if pruned is None or not pruned <= now < pruned + window:
                db.execute("DELETE FROM sent_ids WHERE queue=? AND sent_at<=?", (queue, now - window))
                self._pruned[queue] = now
            for message, scheduled_at, props in rows:
                # New, or last sent before the window: fresh (and remembered from now); else a duplicate.
                fresh = db.execute(
                    "INSERT INTO sent_ids (queue, message_id, sent_at) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (queue, message_id) DO UPDATE SET sent_at=?3 WHERE sent_at<=?4",
                    (queue, message.message_id, now, now - window),
                ).rowcount
                if not fresh:
                    # A duplicate within the window: Service Bus accepts and drops it (and a number
                    # asked for names nothing: one taken from the sequence, never a message's).
                    if numbered:
                        numbers.append(
                            db.execute(
                                "UPDATE sqlite_sequence SET seq=seq+1 WHERE name='messages' RETURNING seq"
                            ).fetchone()[0]
                        )
                    continue
                available_at = now if scheduled_at is None else max(now, scheduled_at)
                seq = db.execute(
                    "INSERT INTO messages (queue, message_id, session_id, body, props, enqueued_at, "
                    "scheduled_at, available_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        queue,
                        message.message_id,
                        message.session_id,
                        message.body,
                        props,
                        now,
                        scheduled_at,
                        available_at,
                    ),
                ).lastrowid
                if config.sessions:
                    db.execute(
                        "INSERT INTO sessions (queue, session_id, head_seq, head_available_at) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (queue, session_id) DO UPDATE SET "
                        "head_seq=excluded.head_seq, head_available_at=excluded.head_available_at "
                        "WHERE head_seq IS NULL "
                        "OR (excluded.head_available_at, excluded.head_seq) < (head_available_at, head_seq)",
                        (queue, message.session_id, seq, available_at),
                    )
                numbers.append(int(seq or 0))
        return numbers

    # --- receiving -----------------------------------------------------------------

    def receive(self, queue: str, *, receiver: str, now: datetime) -> ReceivedMessage | None:
        """Peek-lock the next deliverable message, or None; on a session queue, lock its session too."""
        got = self._receive(queue, receiver, now, 1)
        return got[0] if got else None

    def receive_many(
        self, queue: str, *, receiver: str, now: datetime, max_messages: int
    ) -> list[ReceivedMessage]:
        """Peek-lock up to ``max_messages`` deliverable messages in delivery order, in one transaction.

        Each message gets a lock of its own, as if received one after another at ``now``. On a
        session queue they are the heads of that many sessions, each session locked to
        ``receiver``: a session's next message waits until its head is settled, as with one
        receive at a time. This is what a Functions host does when it takes messages for its
        concurrent calls (host.json's ``maxConcurrentCalls``, ``maxConcurrentSessions``).
        """
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        return self._receive(queue, receiver, now, max_messages)

    def _receive(self, queue: str, receiver: str, now: datetime, max_messages: int) -> list[ReceivedMessage]:
        config = self._config(queue)
        at = _us(now)
        with self._tx() as db:
            self._expire_locks(db, config, at)
            until = at + config.lock_duration // _MICROSECOND
            if not config.sessions:
                due = db.execute(
                    "SELECT seq FROM messages WHERE queue=? AND locked_until IS NULL "
                    "AND available_at<=? ORDER BY available_at, seq LIMIT ?",
                    (queue, at, max_messages),
                ).fetchall()
                return [self._lock(db, seq, until) for (seq,) in due]

            self._expire_sessions(db, queue, at)
            # The earliest heads among free sessions and sessions this receiver already holds.
            heads = db.execute(
                "SELECT session_id, head_seq, head_available_at FROM ("
                "  SELECT session_id, head_seq, head_available_at FROM sessions WHERE queue=?1"
                "  AND owner IS NULL AND inflight_seq IS NULL AND head_seq IS NOT NULL"
                "  AND head_available_at<=?2 ORDER BY head_available_at, head_seq LIMIT ?4)"
                " UNION ALL SELECT session_id, head_seq, head_available_at FROM ("
                "  SELECT session_id, head_seq, head_available_at FROM sessions WHERE queue=?1"
                "  AND owner=?3 AND inflight_seq IS NULL AND head_seq IS NOT NULL"
                "  AND head_available_at<=?2 ORDER BY head_available_at, head_seq LIMIT ?4)"
                " ORDER BY head_available_at, head_seq LIMIT ?4",
                (queue, at, receiver, max_messages),
            ).fetchall()
            received = []
            for session_id, seq, _ in heads:
                received.append(self._lock(db, seq, until))
                db.execute(
                    "UPDATE sessions SET owner=?, owner_until=?, inflight_seq=? WHERE queue=? AND session_id=?",
                    (receiver, until, seq, queue, session_id),
                )
            return received

    def _lock(self, db: sqlite3.Connection, seq: int, until: int) -> ReceivedMessage:
        """Deliver message ``seq`` under a new lock held until ``until``."""
        row = db.execute(
            f"UPDATE messages SET delivery_count=delivery_count+1, lock_token=?, locked_until=? "
            f"WHERE seq=? RETURNING {_MESSAGE_COLUMNS}",
            (uuid.uuid4().hex, until, seq),
        ).fetchone()
        return self._received(row)

    @staticmethod
    def _received(row: tuple[Any, ...]) -> ReceivedMessage:
        queue, seq, message_id, session_id, body, props, enqueued_at, scheduled_at, count, token, until = row
        return ReceivedMessage(
            queue=queue,
            body=body,
            message_id=message_id,
            session_id=session_id,
            sequence_number=seq,
            enqueued_at=_dt(enqueued_at),
            scheduled_at=None if scheduled_at is None else _dt(scheduled_at),
            delivery_count=count,
            lock_token=token,
            locked_until=_dt(until),
            application_properties=_props(props),
        )

    def _expire_locks(self, db: sqlite3.Connection, config: QueueConfig, at: int) -> None:
        # Lapsed locks are released lazily, just before the next receive would look for them.
        expired = db.execute(
            "SELECT seq, session_id, delivery_count, last_error FROM messages "
            "WHERE queue=? AND locked_until IS NOT NULL AND locked_until<?",
            (config.name, at),
        ).fetchall()
        for seq, session_id, count, last_error in expired:
            description = (
                f"lock expired on delivery {count} of {config.max_delivery_count}; "
                f"last error: {last_error or '(none)'}"
            )
            self._unlock(db, config, seq, session_id, count, at, last_error, description)

    @staticmethod
    def _expire_sessions(db: sqlite3.Connection, queue: str, at: int) -> None:
        db.execute(
            "DELETE FROM sessions WHERE queue=? AND owner IS NOT NULL AND owner_until<? "
            "AND head_seq IS NULL AND inflight_seq IS NULL",
            (queue, at),
        )
        db.execute(
            "UPDATE sessions SET owner=NULL, owner_until=NULL "
            "WHERE queue=? AND owner IS NOT NULL AND owner_until<?",
            (queue, at),
        )

    # --- settling ------------------------------------------------------------------

    def _locked(self, db: sqlite3.Connection, message: ReceivedMessage, at: int) -> tuple[Any, ...]:
        row = db.execute(
            f"SELECT session_id, delivery_count FROM messages WHERE {_HELD}", _held(message, at)
        ).fetchone()
        if row is None:
            raise LockLost.of(message)
        return tuple(row)

    def complete(self, message: ReceivedMessage, *, now: datetime, release: str | None = None) -> None:
        """Settle: the message is removed for good; raises LockLost if the lock lapsed.

        ``release``: on a session queue, also give up that receiver's lock on the message's
        session in the same transaction, as release_session would after it (a host settling
        one message per session lock). On LockLost nothing is released: release it yourself.
        """
        config = self._config(message.queue)
        at = _us(now)
        with self._tx() as db:
            # Check the lock and remove the message in one statement.
            row = db.execute(
                f"DELETE FROM messages WHERE {_HELD} RETURNING session_id", _held(message, at)
            ).fetchone()
            if row is None:
                self._changed(message.queue)  # its lock lapsed: it may be receivable again
                raise LockLost.of(message)
            # Removing a message frees nothing, but the next message of its session.
            if config.sessions and self._refresh_session(db, message.queue, row[0], release):
                self._changed(message.queue)

    def abandon(
        self, message: ReceivedMessage, *, now: datetime, error: str = "", release: str | None = None
    ) -> None:
        """Unlock for redelivery now, or dead-letter it when its deliveries are used up.

        ``release``: as for complete, that receiver's session lock given up in the same transaction.
        """
        self._changed(message.queue)
        config = self._config(message.queue)
        at = _us(now)
        with self._tx() as db:
            session_id, count = self._locked(db, message, at)
            description = (
                f"abandoned on delivery {count} of {config.max_delivery_count}; "
                f"last error: {error or '(none)'}"
            )
            self._unlock(
                db, config, message.sequence_number, session_id, count, at, error, description, release
            )

    def dead_letter(
        self, message: ReceivedMessage, *, now: datetime, reason: str, description: str = ""
    ) -> None:
        """Move the message to the dead-letter store with the caller's reason."""
        self._changed(message.queue)
        config = self._config(message.queue)
        at = _us(now)
        with self._tx() as db:
            session_id, _ = self._locked(db, message, at)
            self._move_to_dead_letters(db, message.sequence_number, reason, description, at)
            if config.sessions:
                self._refresh_session(db, message.queue, session_id)

    def _unlock(
        self,
        db: sqlite3.Connection,
        config: QueueConfig,
        seq: int,
        session_id: str | None,
        count: int,
        at: int,
        error: str,
        description: str,
        release: str | None = None,
    ) -> None:
        # The message keeps its available_at, so it goes back to its place at the front.
        if count >= config.max_delivery_count:
            self._move_to_dead_letters(db, seq, MAX_DELIVERY_COUNT_EXCEEDED, description, at)
            if config.sessions:
                self._refresh_session(db, config.name, session_id, release)
            return
        db.execute(
            "UPDATE messages SET lock_token=NULL, locked_until=NULL, last_error=? WHERE seq=?", (error, seq)
        )
        if config.sessions:
            # The message stays the session's head, so the row stays whoever holds the session.
            db.execute(
                f"UPDATE sessions SET inflight_seq=NULL, {_RELEASE} WHERE queue=?1 AND session_id=?2",
                (config.name, session_id, release),
            )

    @staticmethod
    def _move_to_dead_letters(
        db: sqlite3.Connection, seq: int, reason: str, description: str, at: int
    ) -> None:
        db.execute(
            "INSERT INTO dead_letters (queue, seq, message_id, session_id, body, props, enqueued_at, "
            "delivery_count, reason, description, dead_lettered_at) "
            "SELECT queue, seq, message_id, session_id, body, props, enqueued_at, delivery_count, ?, ?, ? "
            "FROM messages WHERE seq=?",
            (reason, description, at, seq),
        )
        db.execute("DELETE FROM messages WHERE seq=?", (seq,))

    @staticmethod
    def _refresh_session(
        db: sqlite3.Connection, queue: str, session_id: str | None, release: str | None = None
    ) -> bool:
        # The in-flight message has left the session: point at the new head (and, if ``release``
        # holds the session, give up its lock), and drop the row once nothing (messages or a lock
        # holder) keeps it alive. Every right-hand side reads the row as it was. True when the
        # session has a next message.
        row = db.execute(
            "UPDATE sessions SET inflight_seq=NULL, (head_seq, head_available_at)=("
            "SELECT seq, available_at FROM messages WHERE queue=?1 AND session_id=?2 "
            f"ORDER BY available_at, seq LIMIT 1), {_RELEASE} "
            "WHERE queue=?1 AND session_id=?2 RETURNING head_seq, owner",
            (queue, session_id, release),
        ).fetchall()
        if row and row[0] == (None, None):
            db.execute("DELETE FROM sessions WHERE queue=? AND session_id=?", (queue, session_id))
        return bool(row) and row[0][0] is not None  # the session has a next message

    def release_session(self, queue: str, session_id: str, *, receiver: str) -> None:
        """Give up the session lock so any receiver may take the session; no-op if not held.

        A message still in flight keeps its own lock until settled or expired.
        """
        self._changed(queue)
        self._config(queue)
        with self._tx() as db:
            row = db.execute(
                "UPDATE sessions SET owner=NULL, owner_until=NULL WHERE queue=? AND session_id=? AND owner=? "
                "RETURNING head_seq, inflight_seq",
                (queue, session_id, receiver),
            ).fetchall()
            if row and row[0] == (None, None):
                db.execute("DELETE FROM sessions WHERE queue=? AND session_id=?", (queue, session_id))

    # --- inspection ----------------------------------------------------------------

    def next_visible_at(self, now: datetime) -> datetime | None:
        """The earliest time after ``now`` at which some queue gets a receivable message, if any."""
        times = [moment for moment in self.next_visible_by_queue(now).values() if moment is not None]
        return min(times) if times else None

    def next_visible_by_queue(self, now: datetime) -> dict[str, datetime | None]:
        """For each queue, the earliest time after ``now`` at which it gets a receivable message
        (a scheduled one due, a lock or a session's lock lapsed), if any, as things stand."""
        at = _us(now)
        found: dict[str, datetime | None] = {}
        with self._tx(write=False) as db:
            for config in self._queues.values():
                queue = config.name
                times: list[int] = []
                found[queue] = None
                # A lapsed lock makes its message (and, on a session queue, the session) free again.
                row = db.execute(
                    "SELECT locked_until + 1 FROM messages WHERE queue=? AND locked_until IS NOT NULL "
                    "AND locked_until>=? ORDER BY locked_until LIMIT 1",
                    (queue, at),
                ).fetchone()
                if row is not None:
                    times.append(row[0])
                if not config.sessions:
                    row = db.execute(
                        "SELECT available_at FROM messages WHERE queue=? AND locked_until IS NULL "
                        "AND available_at>? ORDER BY available_at LIMIT 1",
                        (queue, at),
                    ).fetchone()
                    if row is not None:
                        times.append(row[0])
                    found[queue] = _dt(min(times)) if times else None
                    continue
                # Only session heads count: later messages wait for the head to be settled.
                row = db.execute(
                    "SELECT head_available_at FROM sessions WHERE queue=? AND owner IS NULL "
                    "AND inflight_seq IS NULL AND head_seq IS NOT NULL AND head_available_at>? "
                    "ORDER BY head_available_at LIMIT 1",
                    (queue, at),
                ).fetchone()
                if row is not None:
                    times.append(row[0])
                # A held session's head is due for its holder when scheduled, for others when
                # the session lock lapses.
                row = db.execute(
                    "SELECT MIN(CASE WHEN head_available_at>?1 THEN head_available_at "
                    "WHEN owner_until>=?1 THEN owner_until + 1 END) FROM sessions INDEXED BY sessions_owned "
                    "WHERE queue=?2 "
                    "AND owner IS NOT NULL AND inflight_seq IS NULL AND head_seq IS NOT NULL",
                    (at, queue),
                ).fetchone()
                if row[0] is not None:
                    times.append(row[0])
                found[queue] = _dt(min(times)) if times else None
        return found

    def pending(self, queue: str) -> int:
        """Active messages on the queue (scheduled and locked ones included, dead letters not)."""
        self._config(queue)
        with self._mutex:
            row = self._db.execute("SELECT COUNT(*) FROM messages WHERE queue=?", (queue,)).fetchone()
        return int(row[0])

    def dead_letters(self, queue: str | None = None) -> Iterator[DeadLetter]:
        """Dead letters in the order they were dead-lettered, for one queue or all."""
        columns = (
            "queue, message_id, session_id, body, reason, description, "
            "dead_lettered_at, delivery_count, props"
        )
        with self._mutex:
            if queue is None:
                rows = self._db.execute(f"SELECT {columns} FROM dead_letters ORDER BY id").fetchall()
            else:
                self._config(queue)
                rows = self._db.execute(
                    f"SELECT {columns} FROM dead_letters WHERE queue=? ORDER BY id", (queue,)
                ).fetchall()
        return iter(
            [
                DeadLetter(
                    queue=q,
                    message_id=message_id,
                    session_id=session_id,
                    body=body,
                    reason=reason,
                    description=description,
                    dead_lettered_at=_dt(at),
                    delivery_count=count,
                    application_properties=_props(props),
                )
                for q, message_id, session_id, body, reason, description, at, count, props in rows
            ]
        )
