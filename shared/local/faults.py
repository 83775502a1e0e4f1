"""Seeded, reproducible fault injection for local runs and tests.

``install_faults(plan)`` returns the ``prepare`` callable of a ``RunRequest``: before the
host starts it wraps the run's table store, message provider, officer directory and feed
readers, and patches ``complete`` on the SQLite broker, so that the real functions meet
the failures Azure produces:

- ``crash_before_ledger``: a Messages write (create / upsert / update) dies before writing;
- ``crash_after_ledger``: a Messages write lands, then the step dies;
- ``crash_after_provider``: the provider accepts a message, then the step dies before
  marking it sent;
- ``redeliver``: the function ran to the end but its completion was lost (Service Bus
  delivers the message again);
- ``provider_429``: bursts of ``ProviderThrottled(retry_after)`` over consecutive calls;
- ``provider_5xx``: the provider fails transiently (what the ACS adapter raises for a 5xx
  after its own retries);
- ``directory_outage``: ``DirectoryUnavailable`` for a stretch of consecutive lookups;
- ``feed_error``: a feed read raises ``FeedUnavailable`` after yielding some lines;
- ``etag_conflict``: a Journeys update loses to a concurrent writer: the entity really is
  rewritten (unchanged) first, so the store itself answers ``EtagMismatch``.

Every fault is transient. Two caps make sure a retry without faults always comes:

- per operation key (a ledger row, a journey row, an idempotency key, an employee id, a
  feed) at most ``max_consecutive`` faults in a row; the count starts again only when an
  operation on that key goes through untouched;
- per queue message (by queue and message id, over all its deliveries) at most
  ``max_per_delivery`` faults of any kind, fewer than the queue's max delivery count, so
  injected faults alone never dead-letter a message.

``acs_like=True`` also makes the provider behave as Azure Communication Services does,
not as the kinder file outbox: it cannot be asked what it accepted, it recognises a repeat
for minutes only (``FileOutbox(acs_like=True)``), and its 429s may ask for longer than that
(``LONG_THROTTLE_SECONDS``).

Decisions come from one ``random.Random`` per kind, seeded from ``(seed, kind)``, drawn in
the order operations happen; the simulated run is deterministic, so the same plan on the
same input injects the same faults. No wall clock is read.

Nothing the wrappers record or log carries personal data: the fault log holds the kind,
the place, crime references, message keys and queue message ids (digests), feed positions
and digests of person and employee ids; never a name, an address, a message body or a
feed record.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from shared.adapters.acs import ProviderUnavailable
from shared.adapters.file_outbox import FileOutbox
from shared.adapters.sqlite_queue import ReceivedMessage, SqliteQueueBroker
from shared.adapters.table_layout import JOURNEYS, MESSAGES
from shared.bootstrap import Services
from shared.contracts.messages import Officer
from shared.ports import (
    DirectoryUnavailable,
    EmailContent,
    Entity,
    FeedLine,
    FeedReader,
    FeedUnavailable,
    MessageProvider,
    OfficerDirectory,
    ProviderReceipt,
    ProviderThrottled,
    TableStore,
)

log = logging.getLogger("victim_updates.faults")

CRASH_BEFORE_LEDGER = "crash_before_ledger"
CRASH_AFTER_LEDGER = "crash_after_ledger"
CRASH_AFTER_PROVIDER = "crash_after_provider"
REDELIVER = "redeliver"
PROVIDER_429 = "provider_429"
PROVIDER_5XX = "provider_5xx"
DIRECTORY_OUTAGE = "directory_outage"
FEED_ERROR = "feed_error"
ETAG_CONFLICT = "etag_conflict"

ALL_KINDS: frozenset[str] = frozenset(
    {
        CRASH_BEFORE_LEDGER,
        CRASH_AFTER_LEDGER,
        CRASH_AFTER_PROVIDER,
        REDELIVER,
        PROVIDER_429,
        PROVIDER_5XX,
        DIRECTORY_OUTAGE,
        FEED_ERROR,
        ETAG_CONFLICT,
    }
)

# Retry-After values a throttled provider answers with, in seconds.
THROTTLE_SECONDS = (5.0, 15.0, 30.0, 60.0)
# And, acting as ACS, longer ones too: past its 5-minute repeat window.
LONG_THROTTLE_SECONDS = (120.0, 360.0, 900.0)
# How many consecutive calls a 429 burst or a directory outage lasts.
THROTTLE_BURST = (2, 4)
OUTAGE_STRETCH = (2, 6)
# How many lines a failing feed read yields before it fails.
FEED_LINES_BEFORE_ERROR = (1, 2)

_T = TypeVar("_T")


class InjectedCrash(RuntimeError):
    """The process died here (an injected fault); the message is abandoned and redelivered."""


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject and how often.

    ``rate`` is the chance that an eligible operation fails (for the burst kinds,
    ``provider_429`` and ``directory_outage``, the chance that a burst starts).
    """

    seed: int
    rate: float
    kinds: frozenset[str] = ALL_KINDS
    max_consecutive: int = 3
    max_per_delivery: int = 3
    acs_like: bool = False  # the provider as ACS: no look-up, a short repeat window, long 429s

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - ALL_KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds: {', '.join(sorted(unknown))}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, not {self.rate}")
        if self.max_consecutive < 1 or self.max_per_delivery < 1:
            raise ValueError("fault caps must be at least 1")


@dataclass(frozen=True)
class FaultRecord:
    """One injected fault: what, where, on which key, during which queue delivery (if any)."""

    seq: int
    kind: str
    where: str
    key: str
    delivery: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "where": self.where,
            "key": self.key,
            "delivery": self.delivery,
        }


class FaultLog:
    """Every fault injected in one run, in order."""

    def __init__(self) -> None:
        self._records: list[FaultRecord] = []

    def add(self, kind: str, where: str, key: str, delivery: str | None) -> FaultRecord:
        record = FaultRecord(len(self._records) + 1, kind, where, key, delivery)
        self._records.append(record)
        log.debug("injected %s at %s on %s (delivery %s)", kind, where, key, delivery or "-")
        return record

    @property
    def records(self) -> tuple[FaultRecord, ...]:
        return tuple(self._records)

    def counts(self) -> dict[str, int]:
        """Faults injected, by kind (kinds never injected are absent)."""
        return dict(sorted(Counter(record.kind for record in self._records).items()))

    def of_kind(self, kind: str) -> list[FaultRecord]:
        return [record for record in self._records if record.kind == kind]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[FaultRecord]:
        return iter(self._records)


def pseudonym(identifier: str) -> str:
    """How a person id or an employee id appears in the fault log: a short digest, never the id."""
    return "h:" + hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:12]


def _range(rng: random.Random, bounds: tuple[int, int]) -> int:
    return rng.randint(bounds[0], bounds[1])


class FaultInjector:
    """The shared state of one run's faults: the random streams, the caps and the log."""

    def __init__(self, plan: FaultPlan, fault_log: FaultLog) -> None:
        self.plan = plan
        self.log = fault_log
        # One stream per kind, so that enabling a kind does not shift the others' draws.
        self._rngs = {kind: random.Random(f"{plan.seed}:{kind}") for kind in sorted(ALL_KINDS)}
        self._consecutive: Counter[tuple[str, str]] = Counter()
        self._per_delivery: Counter[tuple[str, str]] = Counter()
        self.delivery: ReceivedMessage | None = None  # the queue message being handled, if any

    def enabled(self, kind: str) -> bool:
        return kind in self.plan.kinds

    def rng(self, kind: str) -> random.Random:
        return self._rngs[kind]

    def roll(self, kind: str) -> bool:
        """Draw for one eligible operation: True means inject (subject to the caps)."""
        if kind not in self.plan.kinds:
            return False
        return self._rngs[kind].random() < self.plan.rate

    def _delivery_key(self) -> tuple[str, str] | None:
        message = self.delivery
        return None if message is None else (message.queue, message.message_id)

    def allowed(self, domain: str, key: str) -> bool:
        """Whether one more fault on this key (and in this delivery) stays transient."""
        if self._consecutive[(domain, key)] >= self.plan.max_consecutive:
            return False
        delivery = self._delivery_key()
        return delivery is None or self._per_delivery[delivery] < self.plan.max_per_delivery

    def inject(self, kind: str, domain: str, where: str, key: str) -> FaultRecord:
        """Count the fault against its key and delivery, and log it."""
        self._consecutive[(domain, key)] += 1
        delivery = self._delivery_key()
        if delivery is not None:
            self._per_delivery[delivery] += 1
        message = self.delivery
        label = None if message is None else f"{message.queue}/{message.message_id}#{message.delivery_count}"
        return self.log.add(kind, where, key, label)

    def try_inject(self, kind: str, domain: str, where: str, key: str) -> bool:
        """Roll for ``kind`` and inject it when the caps allow; True when the caller must fail."""
        if not self.roll(kind) or not self.allowed(domain, key):
            return False
        self.inject(kind, domain, where, key)
        return True

    def succeeded(self, domain: str, key: str) -> None:
        """An operation on this key went through untouched: its run of faults is over."""
        self._consecutive.pop((domain, key), None)


# --- Table store -----------------------------------------------------------------------------


class FaultyTableStore:
    """A TableStore whose Messages writes crash and whose Journeys updates lose races."""

    def __init__(self, inner: TableStore, injector: FaultInjector) -> None:
        self._inner = inner
        self._faults = injector

    def __getattr__(self, name: str) -> Any:
        # export (the local run's reports), operations (the benchmark) and the like.
        return getattr(self._inner, name)

    def _ledger_write(self, operation: str, entity: Entity, write: Callable[[], _T]) -> _T:
        key = f"{entity.partition_key}/{entity.row_key}"
        where = f"{MESSAGES}.{operation}"
        if self._faults.try_inject(CRASH_BEFORE_LEDGER, "ledger", where, key):
            raise InjectedCrash(f"injected crash before {where} of {key}")
        done = write()
        if self._faults.try_inject(CRASH_AFTER_LEDGER, "ledger", where, key):
            raise InjectedCrash(f"injected crash after {where} of {key}")
        self._faults.succeeded("ledger", key)
        return done

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        return self._inner.get(table, partition_key, row_key)

    def create(self, table: str, entity: Entity) -> Entity:
        if table != MESSAGES:
            return self._inner.create(table, entity)
        return self._ledger_write("create", entity, lambda: self._inner.create(table, entity))

    def update(self, table: str, entity: Entity, *, etag: str) -> Entity:
        if table == MESSAGES:
            return self._ledger_write("update", entity, lambda: self._inner.update(table, entity, etag=etag))
        if table == JOURNEYS:
            return self._journey_update(entity, etag)
        return self._inner.update(table, entity, etag=etag)

    def _journey_update(self, entity: Entity, etag: str) -> Entity:
        key = f"{entity.partition_key}/{pseudonym(entity.row_key)}"
        where = f"{JOURNEYS}.update"
        if self._faults.roll(ETAG_CONFLICT) and self._faults.allowed("journey", key):
            current = self._inner.get(JOURNEYS, entity.partition_key, entity.row_key)
            if current is not None and current.etag == etag:
                # Another writer wins the race with an unchanged copy: the caller's ETag is now stale.
                self._inner.update(
                    JOURNEYS,
                    Entity(current.partition_key, current.row_key, dict(current.properties)),
                    etag=etag,
                )
                self._faults.inject(ETAG_CONFLICT, "journey", where, key)
                self._inner.update(JOURNEYS, entity, etag=etag)  # the store answers EtagMismatch
                raise AssertionError(f"{where} of {key} succeeded with an ETag that is stale")
        done = self._inner.update(JOURNEYS, entity, etag=etag)
        self._faults.succeeded("journey", key)
        return done

    def upsert(self, table: str, entity: Entity) -> Entity:
        if table != MESSAGES:
            return self._inner.upsert(table, entity)
        return self._ledger_write("upsert", entity, lambda: self._inner.upsert(table, entity))

    def upsert_many(self, table: str, entities: Sequence[Entity]) -> None:
        if table != MESSAGES or not entities:
            self._inner.upsert_many(table, entities)
            return
        self._ledger_write("upsert_many", entities[0], lambda: self._inner.upsert_many(table, entities))

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        self._inner.delete(table, partition_key, row_key)

    def query_partition(self, table: str, partition_key: str) -> Iterator[Entity]:
        return self._inner.query_partition(table, partition_key)


# --- Message provider -------------------------------------------------------------------------


class FaultyProvider:
    """A MessageProvider that throttles in bursts, fails with 5xx, and dies after accepting."""

    def __init__(self, inner: MessageProvider, injector: FaultInjector) -> None:
        self._inner = inner
        self._faults = injector
        self._burst = 0  # calls left in the current 429 burst
        long = LONG_THROTTLE_SECONDS if injector.plan.acs_like else ()
        self._waits = THROTTLE_SECONDS + long

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _send(self, channel: str, key: str, send: Callable[[], ProviderReceipt]) -> ProviderReceipt:
        faults = self._faults
        where = f"provider.send_{channel}"
        if self._burst == 0 and faults.roll(PROVIDER_429):
            self._burst = _range(faults.rng(PROVIDER_429), THROTTLE_BURST)
        if self._burst > 0:
            self._burst -= 1
            if faults.allowed("provider", key):
                retry_after = faults.rng(PROVIDER_429).choice(self._waits)
                faults.inject(PROVIDER_429, "provider", where, key)
                raise ProviderThrottled(retry_after)
        if faults.try_inject(PROVIDER_5XX, "provider", where, key):
            raise ProviderUnavailable(channel, 503, "injected fault")
        receipt = send()
        if faults.try_inject(CRASH_AFTER_PROVIDER, "provider", where, key):
            raise InjectedCrash(f"injected crash after {where} accepted {key}")
        faults.succeeded("provider", key)
        return receipt

    def send_email(
        self, *, idempotency_key: str, to: str, content: EmailContent, metadata: Mapping[str, Any]
    ) -> ProviderReceipt:
        return self._send(
            "email",
            idempotency_key,
            lambda: self._inner.send_email(
                idempotency_key=idempotency_key, to=to, content=content, metadata=metadata
            ),
        )

    def send_sms(
        self,
        *,
        idempotency_key: str,
        to: str,
        text: str,
        metadata: Mapping[str, Any],
        first_sent_at: datetime | None = None,
    ) -> ProviderReceipt:
        return self._send(
            "sms",
            idempotency_key,
            lambda: self._inner.send_sms(
                idempotency_key=idempotency_key,
                to=to,
                text=text,
                metadata=metadata,
                first_sent_at=first_sent_at,
            ),
        )


# --- Officer directory ------------------------------------------------------------------------


class FaultyDirectory:
    """An OfficerDirectory that goes down for stretches of consecutive lookups."""

    def __init__(self, inner: OfficerDirectory, injector: FaultInjector) -> None:
        self._inner = inner
        self._faults = injector
        self._outage = 0  # lookups left in the current outage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def lookup(self, employee_id: str) -> Officer | None:
        faults = self._faults
        if self._outage == 0 and faults.roll(DIRECTORY_OUTAGE):
            self._outage = _range(faults.rng(DIRECTORY_OUTAGE), OUTAGE_STRETCH)
        key = pseudonym(employee_id)
        if self._outage > 0:
            self._outage -= 1
            if faults.allowed("directory", key):
                faults.inject(DIRECTORY_OUTAGE, "directory", "directory.lookup", key)
                raise DirectoryUnavailable("injected directory outage")
        found = self._inner.lookup(employee_id)
        faults.succeeded("directory", key)
        return found


# --- Feeds ------------------------------------------------------------------------------------


class FaultyFeedReader:
    """A FeedReader whose read fails part-way, after yielding some lines."""

    def __init__(self, name: str, inner: FeedReader, injector: FaultInjector) -> None:
        self._name = name
        self._inner = inner
        self._faults = injector
        self._fail_after: int | None = None  # armed: the next read this long fails after that many lines

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def read(self, cursor: str | None, now: datetime, limit: int) -> Iterator[FeedLine]:
        faults = self._faults
        if self._fail_after is None and faults.roll(FEED_ERROR):
            self._fail_after = _range(faults.rng(FEED_ERROR), FEED_LINES_BEFORE_ERROR)
        lines = self._inner.read(cursor, now, limit)
        yielded = 0
        position = cursor or "start"
        try:
            for line in lines:
                if (
                    self._fail_after is not None
                    and yielded >= self._fail_after
                    and faults.allowed("feed", self._name)
                ):
                    self._fail_after = None
                    faults.inject(FEED_ERROR, "feed", f"feed:{self._name}", f"after position {position}")
                    raise FeedUnavailable(f"injected: {self._name} feed failed after {yielded} records")
                yield line
                yielded += 1
                position = line.position
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
        faults.succeeded("feed", self._name)


# --- Broker -----------------------------------------------------------------------------------


def _patch_broker(broker: SqliteQueueBroker, faults: FaultInjector) -> None:
    """Track the delivery being handled, and lose some completions (the message comes back).

    The host takes several messages in one receive and handles them in order, settling each before
    the next: the delivery being handled is the first of them, then the next at each settling. The
    chaos runs are on the simulated clock, where no lock lapses during a drain; on the wall clock
    the host can skip a message whose lock lapsed while it waited, and the faults of the message
    after it would then be charged to the skipped one (tests/integration/test_fault_delivery.py)."""
    receive, receive_many = broker.receive, broker.receive_many
    complete, abandon = broker.complete, broker.abandon
    redelivered: set[tuple[str, str]] = set()
    waiting: list[ReceivedMessage] = []  # taken by the last receive, not yet handled

    def handling(messages: list[ReceivedMessage]) -> None:
        waiting[:] = messages
        faults.delivery = waiting.pop(0) if waiting else None

    def tracking_receive(queue: str, *, receiver: str, now: datetime) -> ReceivedMessage | None:
        message = receive(queue, receiver=receiver, now=now)
        handling([] if message is None else [message])
        return message

    def tracking_receive_many(
        queue: str, *, receiver: str, now: datetime, max_messages: int
    ) -> list[ReceivedMessage]:
        messages = receive_many(queue, receiver=receiver, now=now, max_messages=max_messages)
        handling(list(messages))
        return messages

    def settled() -> None:
        faults.delivery = waiting.pop(0) if waiting else None

    def lossy_complete(message: ReceivedMessage, *, now: datetime, release: str | None = None) -> None:
        try:
            identity = (message.queue, message.message_id)
            key = f"{message.queue}/{message.message_id}"
            if identity not in redelivered and faults.roll(REDELIVER) and faults.allowed("broker", key):
                redelivered.add(identity)
                faults.inject(REDELIVER, "broker", f"broker.complete:{message.queue}", key)
                abandon(message, now=now, error="injected: completion lost", release=release)
                return
            complete(message, now=now, release=release)
        finally:
            settled()

    def tracking_abandon(
        message: ReceivedMessage, *, now: datetime, error: str = "", release: str | None = None
    ) -> None:
        try:
            abandon(message, now=now, error=error, release=release)
        finally:
            settled()

    broker.receive = tracking_receive  # type: ignore[method-assign]
    broker.receive_many = tracking_receive_many  # type: ignore[method-assign]
    broker.complete = lossy_complete  # type: ignore[method-assign]
    broker.abandon = tracking_abandon  # type: ignore[method-assign]


# --- Installing -------------------------------------------------------------------------------


class FaultInstaller:
    """The ``prepare`` callable of a RunRequest: wraps one run's adapters; ``log`` records the faults."""

    def __init__(self, plan: FaultPlan, fault_log: FaultLog | None = None) -> None:
        self.plan = plan
        self.log = fault_log if fault_log is not None else FaultLog()
        self.injector = FaultInjector(plan, self.log)
        self._installed = False

    def __call__(self, services: Services, broker: SqliteQueueBroker) -> None:
        if self._installed:
            raise RuntimeError("a FaultInstaller serves one run; make a new one for the next")
        limits = [config.max_delivery_count for config in broker.queues.values()]
        if limits and self.plan.max_per_delivery >= min(limits):
            raise ValueError(
                f"max_per_delivery {self.plan.max_per_delivery} would dead-letter messages: "
                f"the queues allow {min(limits)} deliveries"
            )
        self._installed = True
        faults = self.injector
        if self.plan.acs_like:
            if not isinstance(services.provider, FileOutbox):
                raise TypeError("acs_like acts on the run's file outbox; this run has another provider")
            services.provider = services.provider.acting_as_acs()
        services.tables = FaultyTableStore(services.tables, faults)
        services.provider = FaultyProvider(services.provider, faults)
        services.directory = FaultyDirectory(services.directory, faults)
        services.feeds = {
            name: FaultyFeedReader(name, reader, faults) for name, reader in services.feeds.items()
        }
        _patch_broker(broker, faults)


def install_faults(plan: FaultPlan, fault_log: FaultLog | None = None) -> FaultInstaller:
    """The ``prepare`` callable that installs ``plan``'s faults; its ``log`` records each one."""
    return FaultInstaller(plan, fault_log)
