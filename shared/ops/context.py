"""What an operations command works on: settings, a clock, the state and the embedded queues."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from shared.adapters.json_directory import JsonOfficerDirectory
from shared.adapters.policy_file import load_policy
from shared.adapters.sqlite_queue import SqliteQueueBroker
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.bootstrap import (
    Services,
    SystemClock,
    bootstrap,
    build_table_store,
    local_queue_configs,
    queue_configs,
)
from shared.domain.policy import Policy, PolicyError
from shared.ports import (
    Clock,
    EmailContent,
    ExportableStore,
    OfficerMail,
    ProviderReceipt,
    QueuePublisher,
)
from shared.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from shared.adapters.servicebus import ServiceBusPublisher
    from shared.ops.servicebus_dead_letters import ServiceBusDeadLetters

SERVICE_BUS_NOT_LOCAL = (
    "the settings name Service Bus (ServiceBusConnection): the run folder's queues are not used"
)


class OpsError(Exception):
    """The command cannot go on; the message is one line for the user (exit status 2)."""


class FixedClock:
    """One moment for the whole command (a simulated run's end, or ``--at``)."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at


class _NoProvider:
    """Ingest sends no message; a command that tried would be a bug."""

    def send_email(
        self, *, idempotency_key: str, to: str, content: EmailContent, metadata: Mapping[str, Any]
    ) -> ProviderReceipt:
        raise RuntimeError("operations commands do not send messages")

    def send_sms(
        self,
        *,
        idempotency_key: str,
        to: str,
        text: str,
        metadata: Mapping[str, Any],
        first_sent_at: datetime | None = None,
    ) -> ProviderReceipt:
        raise RuntimeError("operations commands do not send messages")

    def accepted(self, idempotency_key: str) -> ProviderReceipt | None:
        raise RuntimeError("operations commands do not send messages")

    def report_key(self, idempotency_key: str, channel: str) -> str:
        raise RuntimeError("operations commands do not send messages")


class _NoNotifier:
    """Nor does it mail an officer."""

    def send(self, *, idempotency_key: str, mail: OfficerMail) -> ProviderReceipt:
        raise RuntimeError("operations commands do not mail officers")


def _simulated_end(data: Path) -> datetime | None:
    """The end of a local run's simulated clock, from its summary.json, if there is one."""
    try:
        summary = json.loads((data / "summary.json").read_text(encoding="utf-8"))
        return datetime.fromisoformat(summary["clock"]["end"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Context:
    """Opens what a command needs, once, and closes it at the end."""

    def __init__(self, data: Path | None = None, at: datetime | None = None) -> None:
        overrides: dict[str, object] = {} if data is None else {"LOCAL_DATA_DIR": data}
        try:
            self.settings: Settings = load_settings(**overrides)
        except SettingsError as exc:
            raise OpsError(str(exc)) from exc
        self.data = self.settings.LOCAL_DATA_DIR
        if self.data.exists() and not self.data.is_dir():
            raise OpsError(f"--data is not a folder: {self.data}")
        self.clock: Clock
        if at is not None:
            self.clock = FixedClock(at)
        elif not self.settings.uses_table_storage() and (end := _simulated_end(self.data)) is not None:
            # A local run lives on a simulated clock: act at its end, so that a later run of the
            # same folder (whose clock ends there too) picks up what the command queued.
            self.clock = FixedClock(end)
        else:
            self.clock = SystemClock()
        self._tables: ExportableStore | None = None
        self._broker: SqliteQueueBroker | None = None
        self._service_bus: ServiceBusPublisher | None = None
        self._policy: Policy | None = None

    @property
    def in_table_storage(self) -> bool:
        return self.settings.uses_table_storage()

    @property
    def tables(self) -> ExportableStore:
        """The state: Table Storage when the settings say so, else the run folder's state.db."""
        if self._tables is None:
            if self.settings.uses_table_storage():
                self._tables = cast(ExportableStore, build_table_store(self.settings))
            else:
                path = self.data / "state.db"
                if not path.is_file():
                    raise OpsError(f"no local state at {path}: give --data a local run's out folder")
                self._tables = SqliteTableStore(path)
        return self._tables

    @property
    def queues_path(self) -> Path:
        if self.settings.uses_service_bus():
            raise OpsError(SERVICE_BUS_NOT_LOCAL)
        path = self.data / "queues.db"
        if not path.is_file():
            raise OpsError(f"no local queues at {path}: give --data a local run's out folder")
        return path

    def service_bus_dead_letters(self) -> ServiceBusDeadLetters:
        """The dead-letter sub-queues of the Service Bus queues the settings name."""
        from shared.ops.servicebus_dead_letters import from_settings

        queues = [(config.name, config.sessions) for config in queue_configs(self.settings)]
        return from_settings(self.settings, queues)

    @property
    def broker(self) -> SqliteQueueBroker:
        """The embedded queues of the run folder (Service Bus is not handled here)."""
        if self._broker is None:
            self._broker = SqliteQueueBroker(
                self.queues_path, local_queue_configs(self.settings), self.clock.now
            )
        return self._broker

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            try:
                self._policy = load_policy(self.settings.JOURNEY_POLICY_PATH)
            except PolicyError as exc:
                raise OpsError(str(exc).splitlines()[0]) from exc
        return self._policy

    @property
    def publisher(self) -> QueuePublisher:
        """Where case changes go: the Service Bus queues the settings name, else the run folder's."""
        if not self.settings.uses_service_bus():
            return self.broker
        if self._service_bus is None:
            from shared.adapters.servicebus import ServiceBusPublisher

            if self.settings.ServiceBusConnection:
                self._service_bus = ServiceBusPublisher.from_connection_string(
                    self.settings.ServiceBusConnection
                )
            else:
                namespace = str(self.settings.ServiceBusConnection__fullyQualifiedNamespace)
                self._service_bus = ServiceBusPublisher.from_namespace(namespace)
        return self._service_bus

    def services(self) -> Services:
        """What the ingest step needs to run here: the state, the queues, the clock."""
        return bootstrap(
            self.settings,
            clock=self.clock,
            policy=self.policy,
            tables=self.tables,
            publisher=self.publisher,
            feeds={},  # records come from the Quarantine table, not a feed
            directory=JsonOfficerDirectory(None),  # not used by ingest
            provider=_NoProvider(),  # not used by ingest
            notifier=_NoNotifier(),  # nor this
        )

    def close(self) -> None:
        if self._service_bus is not None:
            self._service_bus.close()
            self._service_bus = None
        if self._broker is not None:
            self._broker.close()
            self._broker = None
        if self._tables is not None:
            self._tables.close()
            self._tables = None

    def __enter__(self) -> Context:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
