"""The embedded local host: runs the functions of ``function_app.py`` without Azure.

It takes the functions from the app's ``FunctionApp`` (``app.get_functions()``),
reads their trigger metadata, and calls the very objects the Functions host
would call: timers by their NCRONTAB schedule, Service Bus triggers by
dispatching messages from the SQLite queues (complete on return, abandon on
exception, dead-letter after the max delivery count). It runs on the real clock
or on a simulated one that jumps from event to event.
"""

from __future__ import annotations

import bisect
import cProfile
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import Function
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest
from croniter import croniter

from shared import telemetry
from shared.adapters.delivery_report_stub import EVENT_GRID_QUEUE
from shared.adapters.sqlite_queue import LockLost, ReceivedMessage, SqliteQueueBroker
from shared.settings import Settings

log = logging.getLogger("victim_updates.local_host")

_SETTING = re.compile(r"%([A-Za-z0-9_]+)%")
RECEIVER = "local-host"
# How many messages (on a session queue, sessions) the host takes at once, as host.json's
# extensions.serviceBus sets them for the Functions host (tests/integration/test_receive_many.py checks).
MAX_CONCURRENT_CALLS = 16
MAX_CONCURRENT_SESSIONS = 8


class SimulatedClock:
    """A clock the host moves forward; steps read it through the Clock port."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        if moment > self._now:
            self._now = moment.astimezone(UTC)


def resolve_setting(expression: str, settings: Settings) -> str:
    """Resolve %NAME% binding expressions as the Functions host does, from app settings."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name) or getattr(settings, name, None)
        if value is None:
            raise ValueError(f"binding expression %{name}% names an app setting that is not set")
        return str(value)

    return _SETTING.sub(lookup, expression)


class Schedule:
    """An NCRONTAB schedule (seconds first), evaluated in UTC as the Functions host does by default.

    A schedule whose day, month and weekday fields are all ``*`` fires at the same
    times every day; those times are worked out once with croniter, because a
    simulated year has hundreds of thousands of ticks and croniter is slow per call.
    """

    def __init__(self, expression: str) -> None:
        self.expression = expression
        fields = expression.split()
        self._daily: list[int] | None = None
        if len(fields) == 6 and fields[3:] == ["*", "*", "*"]:
            midnight = datetime(2000, 1, 1, tzinfo=UTC)
            times = croniter(expression, midnight - timedelta(microseconds=1), second_at_beginning=True)
            offsets: list[int] = []
            while (fire := times.get_next(datetime)) < midnight + timedelta(days=1):
                offsets.append(int((fire - midnight).total_seconds()))
            self._daily = offsets

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment``."""
        moment = moment.astimezone(UTC)
        if self._daily is None:
            fire: datetime = croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)
            return fire.astimezone(UTC)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        elapsed = (moment - day).total_seconds()
        index = bisect.bisect_right(self._daily, elapsed)
        if index < len(self._daily):
            return day + timedelta(seconds=self._daily[index])
        return day + timedelta(days=1, seconds=self._daily[0])


@dataclass
class TimerFunction:
    name: str
    function: Callable[..., Any]
    arg_name: str
    schedule: Schedule
    next_fire: datetime = field(init=False)

    def start(self, now: datetime) -> None:
        self.next_fire = self.schedule.next_after(now)

    def advance(self, now: datetime) -> None:
        """The next occurrence after ``now`` (a late timer fires once, then keeps its schedule)."""
        self.next_fire = self.schedule.next_after(max(now, self.next_fire))


@dataclass
class QueueFunction:
    name: str
    function: Callable[..., Any]
    arg_name: str
    queue: str
    sessions: bool
    event_grid: bool = False  # the queue holds Event Grid events, handed over as EventGridEvent


@dataclass
class HostStats:
    """What the host did, by function."""

    invocations: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # inside the function objects
    wall_seconds: dict[str, float] = field(default_factory=dict)
    # The host's own CPU settling queue messages after each call (complete or abandon, release the
    # session): in Azure the Functions host's and Service Bus's work, not the step's.
    settle_cpu_seconds: float = 0.0

    def count(self, name: str, failed: bool, cpu: float = 0.0, wall: float = 0.0) -> None:
        self.invocations[name] = self.invocations.get(name, 0) + 1
        self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + cpu
        self.wall_seconds[name] = self.wall_seconds.get(name, 0.0) + wall
        if failed:
            self.failures[name] = self.failures.get(name, 0) + 1


_INDEXED: dict[int, list[Function]] = {}


def functions_of(app: func.FunctionApp) -> list[Function]:
    """The app's functions, indexed once per process as the Python worker does.

    ``FunctionApp.get_functions()`` refuses a second call (it sees every name as
    a duplicate), so the index is kept.
    """
    if id(app) not in _INDEXED:
        root = logging.getLogger()
        root.addFilter(_drop_auth_level_notice)
        try:
            _INDEXED[id(app)] = app.get_functions()
        finally:
            root.removeFilter(_drop_auth_level_notice)
    return _INDEXED[id(app)]


def _drop_auth_level_notice(record: logging.LogRecord) -> bool:
    # azure-functions warns that HTTP auth levels do not apply to an app with no HTTP trigger: noise here.
    return "Auth level is not applied" not in record.getMessage()


# A queue found empty at a moment is known empty for that moment only (in microseconds, as the
# broker keeps time); one with nothing scheduled and nothing locked, until something comes to it.
_INSTANT = timedelta(microseconds=1)
_NEVER = datetime.max.replace(tzinfo=UTC)


class LocalHost:
    """Runs a FunctionApp's timer and Service Bus functions on the embedded queues."""

    def __init__(
        self,
        app: func.FunctionApp,
        broker: SqliteQueueBroker,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.broker = broker
        self.clock = clock
        self.stats = HostStats()
        self.profiler: cProfile.Profile | None = None  # profiles the function objects only, if set
        # Each queue found empty: the broker's count of its changes then, and until when it stays
        # empty if that count does not move (asking before then would only find it empty again).
        self._empty: dict[str, tuple[int, datetime]] = {}
        self.timers: list[TimerFunction] = []
        self.queues: list[QueueFunction] = []
        now = clock()
        for function in functions_of(app):
            trigger = function.get_trigger()
            name = function.get_function_name() or function.get_user_function().__name__
            if trigger is None:
                raise ValueError(f"function {name} has no trigger")
            binding = trigger.get_dict_repr()
            user_function = function.get_user_function()
            if binding["type"] == "timerTrigger":
                schedule = resolve_setting(binding["schedule"], settings)
                timer = TimerFunction(name, user_function, binding["name"], Schedule(schedule))
                timer.start(now)
                self.timers.append(timer)
            elif binding["type"] == "serviceBusTrigger":
                queue = resolve_setting(binding["queueName"], settings)
                if queue not in broker.queues:
                    raise ValueError(
                        f"function {name} listens on queue {queue!r}, which the local broker lacks"
                    )
                sessions = bool(binding.get("isSessionsEnabled", False))
                if sessions != broker.queues[queue].sessions:
                    raise ValueError(
                        f"function {name}: queue {queue!r} sessions setting differs from the trigger's"
                    )
                self.queues.append(QueueFunction(name, user_function, binding["name"], queue, sessions))
            elif binding["type"] == "eventGridTrigger":
                # Event Grid pushes to the function; locally the embedded provider's reports wait on
                # a queue of their own, retried on failure as Event Grid retries, then dead-lettered.
                if EVENT_GRID_QUEUE not in broker.queues:
                    raise ValueError(
                        f"function {name} takes Event Grid events; the local broker lacks its queue"
                    )
                self.queues.append(
                    QueueFunction(
                        name, user_function, binding["name"], EVENT_GRID_QUEUE, False, event_grid=True
                    )
                )
            elif binding["type"] == "httpTrigger":
                continue  # requests, not the clock or a queue: `python -m shared.local serve` answers them
            else:
                raise ValueError(
                    f"function {name} has a trigger the local host cannot run: {binding['type']}"
                )

    # --- dispatch ---------------------------------------------------------------------

    def fire_due_timers(self) -> int:
        """Call every timer function whose schedule has come round; returns how many fired."""
        fired = 0
        now = self.clock()
        for timer in self.timers:
            if timer.next_fire > now:
                continue
            past_due = now - timer.next_fire > timedelta(minutes=1)
            request = TimerRequest(past_due=past_due)
            failed = False
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                self._call(timer.function, {timer.arg_name: request})
            except Exception as exc:  # the Functions host logs a failed run; the next tick retries
                failed = True
                log.error("function %s failed: %s", timer.name, type(exc).__name__)
            self.stats.count(timer.name, failed, time.process_time() - cpu, time.perf_counter() - wall)
            timer.advance(now)
            fired += 1
        return fired

    def _call(self, function: Callable[..., Any], arguments: dict[str, Any]) -> None:
        if self.profiler is None:
            function(**arguments)
            return
        self.profiler.enable()
        try:
            function(**arguments)
        finally:
            self.profiler.disable()

    def _invoke(self, target: QueueFunction, message: ReceivedMessage) -> None:
        trigger: ServiceBusMessage | func.EventGridEvent = (
            _event_grid_event(message.body) if target.event_grid else self._service_bus_message(message)
        )
        failed = released = False
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            try:
                self._call(target.function, {target.arg_name: trigger})
            finally:
                # The function object's own time: settling the message below is the host's work
                # (in Azure, the Functions host's and Service Bus's), not the step's.
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                settling = time.process_time()
        except Exception as exc:  # abandon: Service Bus redelivers, then dead-letters
            failed = True
            log.warning(
                "function %s failed on message %s (delivery %d): %s",
                target.name,
                message.message_id,
                message.delivery_count,
                type(exc).__name__,
            )
            error = f"{type(exc).__name__}: {exc}"[:2000]
            try:
                self.broker.abandon(message, now=self.clock(), error=error, release=RECEIVER)
                released = True
            except LockLost:
                # Its lock lapsed first (on the wall clock): Service Bus delivers it again, or
                # dead-letters it when its deliveries are used up, as it does any lapsed lock.
                self._lapsed(target, message, "it was abandoned")
            else:
                self._dead_lettered(target, message, exc)
        else:
            # Settled and the session's lock given up in one transaction (on LockLost, below instead).
            try:
                self.broker.complete(message, now=self.clock(), release=RECEIVER)
                released = True
            except LockLost:
                # The function outran the message's lock (on the wall clock): as the Functions host
                # does, carry on; Service Bus delivers it again and the steps are idempotent.
                self._lapsed(target, message, "it was completed")
        finally:
            if message.session_id is not None and not released:
                self.broker.release_session(target.queue, message.session_id, receiver=RECEIVER)
        self.stats.settle_cpu_seconds += time.process_time() - settling
        self.stats.count(target.name, failed, cpu, wall)

    @staticmethod
    def _lapsed(target: QueueFunction, message: ReceivedMessage, before: str) -> None:
        """A message's lock lapsed (on the wall clock) before ``before``: Service Bus delivers it again."""
        log.warning(
            "function %s: the lock on message %s lapsed before %s; it will be delivered again",
            target.name,
            message.message_id,
            before,
        )

    def _dead_lettered(self, target: QueueFunction, message: ReceivedMessage, exc: Exception) -> None:
        """Count a message abandoned on its last delivery: the broker has dead-lettered it."""
        if message.delivery_count >= self.broker.queues[target.queue].max_delivery_count:
            telemetry.track(
                "DeadLettered", queue=target.queue, message_id=message.message_id, reason=type(exc).__name__
            )

    @staticmethod
    def _service_bus_message(message: ReceivedMessage) -> ServiceBusMessage:
        return ServiceBusMessage(
            body=message.body.encode("utf-8"),
            trigger_metadata=None,
            application_properties=dict(message.application_properties),
            content_type="application/json",
            delivery_count=message.delivery_count,
            enqueued_time_utc=message.enqueued_at,
            enqueued_sequence_number=message.sequence_number,
            sequence_number=message.sequence_number,
            lock_token=message.lock_token,
            locked_until=message.locked_until,
            message_id=message.message_id,
            session_id=message.session_id,
            scheduled_enqueue_time_utc=message.scheduled_at,
            user_properties=dict(message.application_properties),
        )

    def drain(self, limit: int | None = None) -> int:
        """Dispatch every message receivable now, queue after queue, until none is left."""
        dispatched, first_empty = self._drain(limit)
        if first_empty is not None and (limit is None or dispatched < limit):
            # Every queue is empty now. Each stays so, unless something comes to it, until its
            # next message comes due or its next lock lapses: reckoned from the first moment one
            # was found empty, so that nothing falling due since then is missed.
            for queue, moment in self.broker.next_visible_by_queue(first_empty).items():
                changes = self.broker.changes_of(queue)
                if self._empty.get(queue, (None,))[0] == changes:
                    self._empty[queue] = (changes, moment or _NEVER)
        return dispatched

    def _drain(self, limit: int | None) -> tuple[int, datetime | None]:
        """The messages dispatched, and the first moment a receive found a queue empty (None: no
        queue was asked, every one known empty)."""
        dispatched = 0
        first_empty: datetime | None = None
        empty = self._empty
        progress = True
        while progress:
            progress = False
            for target in self.queues:
                now, changes = self.clock(), self.broker.changes_of(target.queue)
                known = empty.get(target.queue)
                if known is not None and known[0] == changes and now < known[1]:
                    continue  # found empty, and nothing has come to it or come due since
                most = MAX_CONCURRENT_SESSIONS if target.sessions else MAX_CONCURRENT_CALLS
                if limit is not None:
                    most = min(most, limit - dispatched)
                    if most < 1:
                        return dispatched, first_empty
                messages = self.broker.receive_many(
                    target.queue, receiver=RECEIVER, now=now, max_messages=most
                )
                if len(messages) < most:
                    # Empty at this moment once these are taken: asked again only if running them
                    # changes it (sends to it, or frees a session's next message).
                    empty[target.queue] = (self.broker.changes_of(target.queue), now + _INSTANT)
                    first_empty = now if first_empty is None else min(first_empty, now)
                if not messages:
                    continue
                # One after another here, where the Functions host would run them at once.
                for message in messages:
                    if self.clock() > message.locked_until:
                        # On the wall clock, a message can wait its turn past its lock, which the
                        # Functions host would have renewed. Not run: Service Bus delivers it again.
                        self._lapsed(target, message, "its turn")
                        continue
                    self._invoke(target, message)
                    dispatched += 1
                progress = True
                if limit is not None and dispatched >= limit:
                    return dispatched, first_empty
        return dispatched, first_empty

    def next_event_at(self) -> datetime | None:
        """The next moment something is due: a timer, or a queue's next message (now, for a queue
        something has come to since it was found empty)."""
        moments = [timer.next_fire for timer in self.timers]
        for target in self.queues:
            known = self._empty.get(target.queue)
            if known is None or known[0] != self.broker.changes_of(target.queue):
                moments.append(self.clock())
            elif known[1] < _NEVER:
                moments.append(known[1])
        return min(moments) if moments else None

    # --- loops --------------------------------------------------------------------------

    def run_simulated(
        self, clock: SimulatedClock, end: datetime, on_advance: Callable[[datetime], None] | None = None
    ) -> HostStats:
        """Jump from event to event until ``end``: a quarter of a year replays in seconds."""
        while True:
            self.fire_due_timers()
            self.drain()
            upcoming = self.next_event_at()
            if upcoming is None or upcoming > end:
                clock.advance_to(end)
                if on_advance:
                    on_advance(end)
                return self.stats
            clock.advance_to(upcoming)
            if on_advance:
                on_advance(upcoming)

    def run_realtime(self, until: datetime, poll_seconds: float = 1.0) -> HostStats:
        """Run on the wall clock until ``until``, sleeping between events."""
        while self.clock() < until:
            self.fire_due_timers()
            self.drain()
            upcoming = self.next_event_at()
            now = self.clock()
            wait = poll_seconds if upcoming is None else (upcoming - now).total_seconds()
            time.sleep(max(0.0, min(wait, poll_seconds, (until - now).total_seconds())))
        return self.stats


def _event_grid_event(body: str) -> func.EventGridEvent:
    """An Event Grid event (the Event Grid schema, as JSON) as the Functions host hands it over."""
    event = json.loads(body)
    return func.EventGridEvent(
        id=event["id"],
        data=event["data"],
        topic=event["topic"],
        subject=event["subject"],
        event_type=event["eventType"],
        event_time=datetime.fromisoformat(event["eventTime"]),
        data_version=event["dataVersion"],
    )
