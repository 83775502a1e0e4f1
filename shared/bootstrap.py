"""Builds the adapters from settings, once per worker.

``function_app.py`` asks for ``services()``; the local host and the tests
``install()`` a set of their own (the same code, a simulated clock).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.adapters.azure_tables import AzureTableStore
from shared.adapters.file_outbox import FileOutbox
from shared.adapters.json_directory import JsonOfficerDirectory
from shared.adapters.jsonl_feed import JsonlFeedReader
from shared.adapters.sqlite_queue import QueueConfig, SqliteQueueBroker
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.domain.policy import Policy, load_policy
from shared.ports import Clock, FeedReader, MessageProvider, OfficerDirectory, QueuePublisher, TableStore
from shared.settings import Settings, load_settings

# The shorthand the Azure tools accept for the local emulator, spelt out: Azurite's
# published development account on its default Table port (a well-known, non-secret key).
AZURITE_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Services:
    """Everything a step needs, built once."""

    settings: Settings
    policy: Policy
    clock: Clock
    tables: TableStore
    publisher: QueuePublisher
    feeds: dict[str, FeedReader]
    directory: OfficerDirectory
    provider: MessageProvider


def queue_configs(settings: Settings) -> list[QueueConfig]:
    """The three queues, with the sessions the pipeline relies on."""
    limit = settings.SERVICEBUS_MAX_DELIVERY_COUNT
    return [
        QueueConfig(settings.CASE_CHANGES_QUEUE, sessions=True, max_delivery_count=limit),
        QueueConfig(settings.JOURNEY_EVENTS_QUEUE, sessions=True, max_delivery_count=limit),
        QueueConfig(settings.OUTBOUND_MESSAGES_QUEUE, sessions=False, max_delivery_count=limit),
    ]


def build_table_store(settings: Settings) -> TableStore:
    """Table Storage when StateStorage is set, else the embedded SQLite store."""
    if settings.StateStorage:
        if settings.StateStorage.strip() == "UseDevelopmentStorage=true":
            return AzureTableStore.from_connection_string(
                AZURITE_CONNECTION_STRING, settings.STATE_TABLE_PREFIX
            )
        return AzureTableStore.from_connection_string(settings.StateStorage, settings.STATE_TABLE_PREFIX)
    if settings.StateStorage__tableServiceUri:
        from azure.data.tables import TableServiceClient
        from azure.identity import DefaultAzureCredential

        service = TableServiceClient(
            settings.StateStorage__tableServiceUri, credential=DefaultAzureCredential()
        )
        return AzureTableStore(service, settings.STATE_TABLE_PREFIX)
    return SqliteTableStore(settings.LOCAL_DATA_DIR / "state.db")


def build_embedded(settings: Settings, clock: Clock | None = None) -> tuple[Services, SqliteQueueBroker]:
    """The embedded default: SQLite state and queues, JSON Lines feeds, file outbox."""
    clock = clock or SystemClock()
    data = settings.LOCAL_DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    broker = SqliteQueueBroker(data / "queues.db", queue_configs(settings), clock.now)
    services = Services(
        settings=settings,
        policy=load_policy(settings.JOURNEY_POLICY_PATH),
        clock=clock,
        tables=build_table_store(settings),
        publisher=broker,
        feeds={
            "niche": JsonlFeedReader(settings.LOCAL_FEEDS_DIR / "niche.jsonl"),
            "storm": JsonlFeedReader(settings.LOCAL_FEEDS_DIR / "storm.jsonl"),
        },
        directory=JsonOfficerDirectory(settings.LOCAL_OFFICERS_FILE),
        provider=FileOutbox(data / "outbox.jsonl", clock.now),
    )
    return services, broker


_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The worker's services, built from settings on first use."""
    global _services
    with _lock:
        if _services is None:
            _services, _ = build_embedded(load_settings())
        return _services


def install(replacement: Services | None) -> None:
    """Use these services from now on (the local host and tests); None forgets them."""
    global _services
    with _lock:
        _services = replacement
