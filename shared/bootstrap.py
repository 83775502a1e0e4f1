"""The composition root: the one place that builds the adapters, from settings.

``bootstrap(settings, **overrides)`` builds every port (its Azure adapter where the
settings name one, its embedded twin otherwise) unless it is given. Azure Functions
asks for ``services()`` (built once per worker); the local host, the operations
commands and the tests call ``bootstrap`` themselves and ``install()`` the result.
The steps never import this module: each depends only on the ports it uses.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from shared.adapters.azure_tables import AzureTableStore
from shared.adapters.delivery_report_stub import EVENT_GRID_QUEUE, DeliveryPlan, EmbeddedDeliveryReports
from shared.adapters.file_blobs import FileBlobStore
from shared.adapters.file_officer_mail import FileOfficerMail
from shared.adapters.file_outbox import FileOutbox
from shared.adapters.json_directory import JsonOfficerDirectory
from shared.adapters.jsonl_feed import JsonlFeedReader
from shared.adapters.policy_file import load_policy
from shared.adapters.repositories import TableDeliveries, TableJourneys, TableLedger, TableLinks
from shared.adapters.servicebus import ServiceBusPublisher
from shared.adapters.sqlite_queue import QueueConfig, SqliteQueueBroker
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.templates import MessageTemplates
from shared.contracts.feeds import accepts
from shared.domain.policy import Policy
from shared.ports import (
    BlobStore,
    Clock,
    DeliveryReports,
    FeedReader,
    JourneyRepository,
    MessageLedger,
    MessageProvider,
    MessageRenderer,
    OfficerDirectory,
    PersonalLinks,
    QueuePublisher,
    TableStore,
    TaskNotifier,
    WorkerMemory,
)
from shared.settings import Settings, load_settings

# The shorthand the Azure tools accept for the local emulator, spelt out: Azurite's
# published development account on its default Table port (a well-known, non-secret key).
AZURITE_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
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
    notifier: TaskNotifier  # officer mail, never the victims' provider
    blobs: BlobStore  # records too large for a table row (the quarantine's)
    renderer: MessageRenderer = field(default_factory=MessageTemplates)
    memory: WorkerMemory = field(default_factory=WorkerMemory)

    # The repositories read through whatever table store is in place (tests and fault injection
    # replace it after building), so each is a view over ``tables``, not a copy of it.
    @property
    def journeys(self) -> JourneyRepository:
        return TableJourneys(self.tables)

    @property
    def ledger(self) -> MessageLedger:
        return TableLedger(self.tables)

    @property
    def deliveries(self) -> DeliveryReports:
        return TableDeliveries(self.tables)

    @property
    def links(self) -> PersonalLinks:
        return TableLinks(self.tables)


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
        from azure.identity import DefaultAzureCredential

        return AzureTableStore.from_service_uri(
            settings.StateStorage__tableServiceUri, DefaultAzureCredential(), settings.STATE_TABLE_PREFIX
        )
    settings.LOCAL_DATA_DIR.mkdir(parents=True, exist_ok=True)
    return SqliteTableStore(settings.LOCAL_DATA_DIR / "state.db")


def build_blob_store(settings: Settings) -> BlobStore:
    """The state account's blob container when the state is in Table Storage, else files beside
    the SQLite state (LOCAL_DATA_DIR/blobs)."""
    if settings.StateStorage:
        from shared.adapters.azure_blobs import AzureBlobStore

        if settings.StateStorage.strip() == "UseDevelopmentStorage=true":
            return AzureBlobStore.from_connection_string(AZURITE_CONNECTION_STRING)
        return AzureBlobStore.from_connection_string(settings.StateStorage)
    if settings.StateStorage__blobServiceUri:
        from azure.identity import DefaultAzureCredential
        from azure.storage.blob import BlobServiceClient

        from shared.adapters.azure_blobs import AzureBlobStore

        return AzureBlobStore(
            BlobServiceClient(settings.StateStorage__blobServiceUri, credential=DefaultAzureCredential())
        )
    return FileBlobStore(settings.LOCAL_DATA_DIR / "blobs")


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


def build_publisher(settings: Settings, clock: Clock) -> QueuePublisher:
    """Service Bus when the settings name it, else the embedded SQLite queues of the data folder.
    Either purges its queues' dead letters for the retention timer (``PurgesDeadLetters``)."""
    queues = [config.name for config in queue_configs(settings)]
    if settings.ServiceBusConnection:
        return ServiceBusPublisher.from_connection_string(settings.ServiceBusConnection, queues)
    if settings.ServiceBusConnection__fullyQualifiedNamespace:
        return ServiceBusPublisher.from_namespace(
            settings.ServiceBusConnection__fullyQualifiedNamespace, queues
        )
    return embedded_queues(settings, clock)


def local_queue_configs(settings: Settings) -> list[QueueConfig]:
    """The embedded queues: the four of Service Bus, and the one that stands in for Event Grid's
    push of delivery reports to ``delivery_report`` (retried as Event Grid retries, then dead-lettered)."""
    limit = settings.SERVICEBUS_MAX_DELIVERY_COUNT
    return [*queue_configs(settings), QueueConfig(EVENT_GRID_QUEUE, sessions=False, max_delivery_count=limit)]


def embedded_queues(settings: Settings, clock: Clock) -> SqliteQueueBroker:
    """The SQLite queues with Service Bus semantics, in the data folder (``queues.db``)."""
    settings.LOCAL_DATA_DIR.mkdir(parents=True, exist_ok=True)
    return SqliteQueueBroker(settings.LOCAL_DATA_DIR / "queues.db", local_queue_configs(settings), clock.now)


def bootstrap(
    settings: Settings,
    *,
    clock: Clock | None = None,
    policy: Policy | None = None,
    tables: TableStore | None = None,
    publisher: QueuePublisher | None = None,
    feeds: dict[str, FeedReader] | None = None,
    directory: OfficerDirectory | None = None,
    provider: MessageProvider | None = None,
    notifier: TaskNotifier | None = None,
    renderer: MessageRenderer | None = None,
    blobs: BlobStore | None = None,
    files_only: bool = False,
    delivery_plan: DeliveryPlan | None = None,
) -> Services:
    """The composition root: every port built from settings, except those given.

    Each port gets its Azure adapter where its settings are given and its embedded
    twin otherwise. ``files_only`` (a local run) keeps the feeds, the directory and
    both providers on the run's own files whatever the settings name, so a replay
    never reaches a real feed, directory, victim or officer; the state follows the
    settings (SQLite, or Table Storage when ``StateStorage`` is set). The policy is
    read first, so a bad one fails before anything is opened.
    """
    clock = clock if clock is not None else SystemClock()
    if policy is None:
        policy = load_policy(settings.JOURNEY_POLICY_PATH)  # first: a bad policy opens nothing
    local = settings.model_copy(update=_NOT_AZURE) if files_only else settings
    if provider is None and files_only and isinstance(publisher, SqliteQueueBroker):
        # The file outbox raises the delivery reports ACS would, on the local Event Grid queue.
        reports = EmbeddedDeliveryReports(publisher.send, delivery_plan)
        provider = FileOutbox(settings.LOCAL_DATA_DIR / "outbox.jsonl", clock.now, reports)
    # "is None", never "or": an adapter may be empty (a file outbox with nothing in it has no length).
    if provider is None:
        provider = build_provider(local, clock)
    if publisher is None:
        publisher = embedded_queues(settings, clock) if files_only else build_publisher(settings, clock)
    return Services(
        settings=settings,
        policy=policy,
        clock=clock,
        tables=tables if tables is not None else build_table_store(settings),
        publisher=publisher,
        feeds=feeds if feeds is not None else build_feeds(local),
        directory=directory if directory is not None else build_directory(local),
        provider=provider,
        notifier=notifier if notifier is not None else build_notifier(local, clock, provider),
        renderer=renderer if renderer is not None else MessageTemplates(),
        blobs=blobs if blobs is not None else build_blob_store(settings),
    )


# The settings that send a port to Azure, other than the state's (a local run may keep its
# state in Table Storage): blank, a port gets its embedded twin.
_NOT_AZURE: dict[str, object] = {
    "ACS_ENDPOINT": None,
    "ACS_CONNECTION_STRING": None,
    "GRAPH_TENANT_ID": None,
    "GRAPH_CLIENT_ID": None,
    "GRAPH_USE_MANAGED_IDENTITY": False,
    "NICHE_FEED_URL": None,
    "STORM_FEED_URL": None,
}


_lock = threading.Lock()
_services: Services | None = None


_checked: tuple[Settings, Policy] | None = None


def check_at_start() -> None:
    """Read the app settings and the journey policy now, when the worker indexes the app: a bad
    one fails start-up with its name in the host log, not the first invocation. Nothing is
    opened (the services are built on first use, from what was read here). Services already
    installed (the local host, tests) were built from settings of their own."""
    global _checked
    with _lock:
        if _services is None and _checked is None:
            settings = load_settings()
            _checked = (settings, load_policy(settings.JOURNEY_POLICY_PATH))


def services() -> Services:
    """The worker's services, built on first use from the settings and policy read at start-up."""
    global _services
    with _lock:
        if _services is None:
            settings, policy = _checked if _checked is not None else (load_settings(), None)
            _services = bootstrap(settings, policy=policy)
        return _services


def install(replacement: Services | None) -> None:
    """Use these services from now on (the local host and tests); None forgets them, and the
    settings read at start-up too (the next use reads them again)."""
    global _services, _checked
    with _lock:
        _services = replacement
        _checked = None
