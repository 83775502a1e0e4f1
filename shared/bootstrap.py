"""Builds the adapters from settings, once per worker.

``function_app.py`` asks for ``services()``; the local host and the tests
``install()`` a set of their own (the same code, a simulated clock).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from shared.adapters.azure_tables import AzureTableStore
from shared.adapters.file_officer_mail import FileOfficerMail
from shared.adapters.file_outbox import FileOutbox
from shared.adapters.json_directory import JsonOfficerDirectory
from shared.adapters.jsonl_feed import JsonlFeedReader
from shared.adapters.repositories import TableJourneys, TableLedger
from shared.adapters.servicebus import ServiceBusPublisher
from shared.adapters.sqlite_queue import QueueConfig, SqliteQueueBroker
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.contracts.feeds import accepts
from shared.domain.policy import Policy, load_policy
from shared.ports import (
    Clock,
    Entity,
    FeedReader,
    JourneyRepository,
    MessageLedger,
    MessageProvider,
    OfficerDirectory,
    QueuePublisher,
    TableStore,
    TaskNotifier,
)
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
class WorkerMemory:
    """Entities a worker keeps between invocations to spare table reads.

    Never the only copy of anything: each entry is also in its table, and a step
    that finds an entry stale (a conditional write fails) drops it and reads again.
    """

    officers: dict[str, Entity] = field(default_factory=dict)  # employee id -> Officers entity
    cursors: dict[str, Entity] = field(default_factory=dict)  # feed -> Cursors entity, with its ETag


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
    notifier: TaskNotifier  # officer mail, never the victims' provider
    memory: WorkerMemory = field(default_factory=WorkerMemory)

    # The repositories read through whatever table store is in place (tests and fault injection
    # replace it after building), so each is a view over ``tables``, not a copy of it.
    @property
    def journeys(self) -> JourneyRepository:
        return TableJourneys(self.tables)

    @property
    def ledger(self) -> MessageLedger:
        return TableLedger(self.tables)


def queue_configs(settings: Settings) -> list[QueueConfig]:
    """The four queues, with the sessions the pipeline relies on."""
    limit = settings.SERVICEBUS_MAX_DELIVERY_COUNT
    return [
        QueueConfig(settings.CASE_CHANGES_QUEUE, sessions=True, max_delivery_count=limit),
        QueueConfig(settings.JOURNEY_EVENTS_QUEUE, sessions=True, max_delivery_count=limit),
        QueueConfig(settings.OUTBOUND_MESSAGES_QUEUE, sessions=False, max_delivery_count=limit),
        QueueConfig(settings.OFFICER_TASKS_QUEUE, sessions=False, max_delivery_count=limit),
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
    """The embedded default: SQLite state and queues, JSON Lines feeds, file outbox and officer mail."""
    clock = clock or SystemClock()
    policy = load_policy(settings.JOURNEY_POLICY_PATH)  # first: a bad policy opens nothing
    data = settings.LOCAL_DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    broker = SqliteQueueBroker(data / "queues.db", queue_configs(settings), clock.now)
    services = Services(
        settings=settings,
        policy=policy,
        clock=clock,
        tables=build_table_store(settings),
        publisher=broker,
        feeds={
            "niche": JsonlFeedReader(settings.LOCAL_FEEDS_DIR / "niche.jsonl", partial(accepts, "niche")),
            "storm": JsonlFeedReader(settings.LOCAL_FEEDS_DIR / "storm.jsonl", partial(accepts, "storm")),
        },
        directory=JsonOfficerDirectory(settings.LOCAL_OFFICERS_FILE),
        provider=FileOutbox(data / "outbox.jsonl", clock.now),
        notifier=FileOfficerMail(data / "officer-mail.jsonl", clock.now),
    )
    return services, broker


def build_provider(settings: Settings, clock: Clock) -> MessageProvider:
    """Azure Communication Services when configured, else the file outbox."""
    if not settings.uses_acs():
        return FileOutbox(settings.LOCAL_DATA_DIR / "outbox.jsonl", clock.now)
    from shared.adapters.acs import AcsEmailSender, AcsProvider, AcsSmsSender

    email_sender, sms_sender = str(settings.ACS_EMAIL_SENDER), str(settings.ACS_SMS_SENDER)
    if settings.ACS_CONNECTION_STRING:
        connection = settings.ACS_CONNECTION_STRING
        return AcsProvider(
            AcsEmailSender.from_connection_string(connection, sender_address=email_sender, clock=clock.now),
            AcsSmsSender.from_connection_string(connection, sender=sms_sender, clock=clock.now),
        )
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    endpoint = str(settings.ACS_ENDPOINT)
    return AcsProvider(
        AcsEmailSender(endpoint, credential, sender_address=email_sender, clock=clock.now),
        AcsSmsSender(endpoint, credential, sender=sms_sender, clock=clock.now),
    )


def build_notifier(settings: Settings, clock: Clock, provider: MessageProvider) -> TaskNotifier:
    """ACS Email when configured (the provider's own email sender and identity), else the file."""
    if not settings.uses_acs():
        return FileOfficerMail(settings.LOCAL_DATA_DIR / "officer-mail.jsonl", clock.now)
    from shared.adapters.acs import AcsOfficerMail, AcsProvider

    if not isinstance(provider, AcsProvider):
        raise TypeError("ACS is configured but the message provider is not ACS: build it with build_provider")
    return AcsOfficerMail(provider.email)


def build_directory(settings: Settings) -> OfficerDirectory:
    """Microsoft Graph when configured, else the JSON file."""
    if not settings.uses_graph():
        return JsonOfficerDirectory(settings.LOCAL_OFFICERS_FILE)
    from shared.adapters import entra
    from shared.adapters import graph_directory as graph

    tokens: entra.TokenProvider
    if settings.GRAPH_USE_MANAGED_IDENTITY:
        tokens = entra.managed_identity_tokens(
            graph.graph_scope(settings.GRAPH_URL),
            client_id=settings.GRAPH_MANAGED_IDENTITY_CLIENT_ID or settings.AZURE_CLIENT_ID,
        )
    else:
        certificate = None
        if settings.GRAPH_CLIENT_CERTIFICATE_PATH is not None:
            pem = settings.GRAPH_CLIENT_CERTIFICATE_PATH.read_text(encoding="utf-8")
            certificate = entra.ClientCertificate(
                pem, settings.GRAPH_CLIENT_CERTIFICATE_THUMBPRINT, public_certificate_pem=pem
            )
        tokens = entra.MsalClientCredentials(
            tenant_id=str(settings.GRAPH_TENANT_ID),
            client_id=str(settings.GRAPH_CLIENT_ID),
            client_secret=settings.GRAPH_CLIENT_SECRET,
            certificate=certificate,
            scopes=(graph.graph_scope(settings.GRAPH_URL),),
            authority_host=settings.GRAPH_AUTHORITY_HOST,
        )
    return graph.GraphOfficerDirectory(
        tokens,
        graph_url=settings.GRAPH_URL,
        id_attribute=settings.GRAPH_EMPLOYEE_ID_ATTRIBUTE,
        collar_attribute=settings.GRAPH_COLLAR_NUMBER_ATTRIBUTE,
    )


def build_feeds(settings: Settings) -> dict[str, FeedReader]:
    """HTTP feed APIs where a URL is set, else the JSON Lines files."""
    feeds: dict[str, FeedReader] = {
        "niche": JsonlFeedReader(settings.LOCAL_FEEDS_DIR / "niche.jsonl", partial(accepts, "niche")),
        "storm": JsonlFeedReader(settings.LOCAL_FEEDS_DIR / "storm.jsonl", partial(accepts, "storm")),
    }
    urls = {"niche": settings.NICHE_FEED_URL, "storm": settings.STORM_FEED_URL}
    if not any(urls.values()):
        return feeds
    from shared.adapters import entra
    from shared.adapters.http_feed import ApiKeyAuth, BearerAuth, HttpFeedReader

    auth: ApiKeyAuth | BearerAuth
    if settings.FEED_AUTH == "api_key":
        auth = ApiKeyAuth(settings.FEED_API_KEY_HEADER, str(settings.FEED_API_KEY))
    elif settings.FEED_AUTH == "managed_identity":
        auth = BearerAuth(
            entra.managed_identity_tokens(str(settings.FEED_SCOPE), client_id=settings.AZURE_CLIENT_ID)
        )
    else:
        auth = BearerAuth(
            entra.MsalClientCredentials(
                tenant_id=str(settings.FEED_TENANT_ID),
                client_id=str(settings.FEED_CLIENT_ID),
                client_secret=settings.FEED_CLIENT_SECRET,
                scopes=(str(settings.FEED_SCOPE),),
                authority_host=settings.GRAPH_AUTHORITY_HOST,
            )
        )
    for name, url in urls.items():
        if url:
            feeds[name] = HttpFeedReader(
                url, auth=auth, page_size=min(settings.FEED_PAGE_SIZE, settings.FEED_BATCH_SIZE)
            )
    return feeds


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """The services for a worker: each port's Azure adapter where its settings are given."""
    clock = clock or SystemClock()
    policy = load_policy(settings.JOURNEY_POLICY_PATH)  # first: a bad policy opens no connection
    publisher: QueuePublisher
    if settings.ServiceBusConnection:
        publisher = ServiceBusPublisher.from_connection_string(settings.ServiceBusConnection)
    elif settings.ServiceBusConnection__fullyQualifiedNamespace:
        publisher = ServiceBusPublisher.from_namespace(settings.ServiceBusConnection__fullyQualifiedNamespace)
    else:
        settings.LOCAL_DATA_DIR.mkdir(parents=True, exist_ok=True)
        publisher = SqliteQueueBroker(
            settings.LOCAL_DATA_DIR / "queues.db", queue_configs(settings), clock.now
        )
    provider = build_provider(settings, clock)
    return Services(
        settings=settings,
        policy=policy,
        clock=clock,
        tables=build_table_store(settings),
        publisher=publisher,
        feeds=build_feeds(settings),
        directory=build_directory(settings),
        provider=provider,
        notifier=build_notifier(settings, clock, provider),
    )


_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The worker's services, built from settings on first use."""
    global _services
    with _lock:
        if _services is None:
            _services = build_services(load_settings())
        return _services


def install(replacement: Services | None) -> None:
    """Use these services from now on (the local host and tests); None forgets them."""
    global _services
    with _lock:
        _services = replacement
