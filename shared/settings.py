"""All configuration, read once from app settings (environment variables).

A missing or malformed setting fails at start-up with its name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from croniter import croniter
from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _ncrontab(value: str) -> str:
    """An Azure Functions NCRONTAB expression: six fields, seconds first."""
    if len(value.split()) != 6 or not croniter.is_valid(value, second_at_beginning=True):
        raise ValueError(f"{value!r} is not a six-field NCRONTAB expression such as '0 */5 * * * *'")
    return value


Schedule = Annotated[str, AfterValidator(_ncrontab)]
_HOST = r"^[A-Za-z0-9.-]+$"
# https, or plain http to this machine only (local stubs and emulators).
_HTTPS_URL = r"^(https://[^\s]+|http://(127\.0\.0\.1|localhost)(:[0-9]+)?(/[^\s]*)?)$"
QueueName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$")]


def _pairs(value: str) -> dict[str, str]:
    """A connection string's Name=Value pairs, names in lower case. Errors never repeat the value:
    a connection string holds a key."""
    pairs: dict[str, str] = {}
    for part in value.split(";"):
        if not part.strip():
            continue
        name, equals, setting = part.partition("=")
        if not equals or not name.strip() or not setting.strip():
            raise ValueError("is not a connection string (Name=Value pairs separated by ';')")
        pairs[name.strip().lower()] = setting.strip()
    if not pairs:
        raise ValueError("is not a connection string (Name=Value pairs separated by ';')")
    return pairs


def _connection_string(kind: str, usable: Callable[[dict[str, str]], bool], needs: str) -> AfterValidator:
    """A setting that must be ``kind`` of connection string, ``usable`` on its pairs."""

    def check(value: str | None) -> str | None:
        if value is not None and not usable(_pairs(value)):
            raise ValueError(f"is not {kind} connection string: it needs {needs}")
        return value

    return AfterValidator(check)


_STORAGE_CONNECTION = _connection_string(
    "a storage",
    lambda pairs: (
        pairs.get("usedevelopmentstorage", "").lower() == "true"
        or bool(
            {"accountname", "tableendpoint"} & pairs.keys()
            and {"accountkey", "sharedaccesssignature"} & pairs.keys()
        )
    ),
    "UseDevelopmentStorage=true (Azurite), or an AccountName or TableEndpoint with an AccountKey or "
    "SharedAccessSignature",
)
_SERVICE_BUS_CONNECTION = _connection_string(
    "a Service Bus",
    lambda pairs: (
        pairs.get("endpoint", "").startswith("sb://")
        and ({"sharedaccesskeyname", "sharedaccesskey"} <= pairs.keys() or "sharedaccesssignature" in pairs)
    ),
    "Endpoint=sb://… with a SharedAccessKeyName and SharedAccessKey (or a SharedAccessSignature)",
)
_ACS_CONNECTION = _connection_string(
    "a Communication Services",
    lambda pairs: pairs.get("endpoint", "").startswith("https://") and "accesskey" in pairs,
    "endpoint=https://… and accesskey=…",
)


def _endpoints(connection_string: str) -> set[str]:
    """The service endpoints a storage connection string names explicitly (none: all, by suffix)."""
    keys = {part.split("=", 1)[0].strip() for part in connection_string.split(";") if "=" in part}
    return keys & {"TableEndpoint", "BlobEndpoint", "QueueEndpoint", "FileEndpoint"}


class Settings(BaseSettings):
    """The app settings the code reads. Every one is documented in the README."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, frozen=True, env_ignore_empty=True)

    NICHE_POLL_SCHEDULE: Schedule = "0 */5 * * * *"
    STORM_POLL_SCHEDULE: Schedule = "0 */5 * * * *"
    CASE_CHANGES_QUEUE: QueueName = "case-changes"
    JOURNEY_EVENTS_QUEUE: QueueName = "journey-events"
    OUTBOUND_MESSAGES_QUEUE: QueueName = "outbound-messages"
    OFFICER_TASKS_QUEUE: QueueName = "officer-tasks"
    JOURNEY_POLICY_PATH: Path | None = None
    FEED_BATCH_SIZE: Annotated[int, Field(ge=1, le=10_000)] = 500
    OFFICER_CACHE_TTL_HOURS: Annotated[float, Field(gt=0, le=24 * 30)] = 24.0
    SERVICEBUS_MAX_DELIVERY_COUNT: Annotated[int, Field(ge=1, le=2000)] = 10
    # State in Azure Table Storage: a connection string (Azurite: UseDevelopmentStorage=true),
    # or, in Azure, StateStorage__tableServiceUri with the managed identity. Neither: SQLite.
    StateStorage: Annotated[str | None, _STORAGE_CONNECTION] = None
    StateStorage__tableServiceUri: Annotated[str | None, Field(pattern=r"^https://[^\s/]+/?$")] = None
    # The same account's Blob service, for feed records too large for a table row (container
    # quarantined-records): given by the connection string, or this with the managed identity.
    StateStorage__blobServiceUri: Annotated[str | None, Field(pattern=r"^https://[^\s/]+/?$")] = None
    STATE_TABLE_PREFIX: Annotated[str, Field(pattern=r"^([A-Za-z][A-Za-z0-9]{0,19})?$")] = ""
    # The user-assigned managed identity's client id (Azure): the identity every SDK client uses.
    AZURE_CLIENT_ID: str | None = None
    # Service Bus: the connection the triggers use, and the publisher too. A connection
    # string for the emulator; the namespace host name with the managed identity in Azure.
    ServiceBusConnection: Annotated[str | None, _SERVICE_BUS_CONNECTION] = None
    ServiceBusConnection__fullyQualifiedNamespace: Annotated[str | None, Field(pattern=_HOST)] = None
    # Azure Communication Services (unset: the file outbox).
    ACS_ENDPOINT: Annotated[str | None, Field(pattern=_HTTPS_URL)] = None
    ACS_CONNECTION_STRING: Annotated[str | None, _ACS_CONNECTION] = None
    ACS_EMAIL_SENDER: str | None = None
    ACS_SMS_SENDER: str | None = None
    # Microsoft Graph officer directory (unset: the JSON file LOCAL_OFFICERS_FILE).
    GRAPH_TENANT_ID: str | None = None
    GRAPH_CLIENT_ID: str | None = None
    GRAPH_CLIENT_SECRET: str | None = None
    GRAPH_CLIENT_CERTIFICATE_PATH: Path | None = None
    GRAPH_CLIENT_CERTIFICATE_THUMBPRINT: str | None = None
    GRAPH_USE_MANAGED_IDENTITY: bool = False
    GRAPH_MANAGED_IDENTITY_CLIENT_ID: str | None = None
    GRAPH_AUTHORITY_HOST: Annotated[str, Field(pattern=_HTTPS_URL)] = "https://login.microsoftonline.com"
    GRAPH_URL: Annotated[str, Field(pattern=_HTTPS_URL)] = "https://graph.microsoft.com"
    GRAPH_EMPLOYEE_ID_ATTRIBUTE: str = "employeeId"
    GRAPH_COLLAR_NUMBER_ATTRIBUTE: str | None = None
    # Feed APIs (unset: the JSON Lines files in LOCAL_FEEDS_DIR).
    NICHE_FEED_URL: Annotated[str | None, Field(pattern=_HTTPS_URL)] = None
    STORM_FEED_URL: Annotated[str | None, Field(pattern=_HTTPS_URL)] = None
    FEED_AUTH: Literal["oauth", "managed_identity", "api_key"] = "oauth"
    FEED_TENANT_ID: str | None = None
    FEED_CLIENT_ID: str | None = None
    FEED_CLIENT_SECRET: str | None = None
    FEED_SCOPE: str | None = None
    FEED_API_KEY_HEADER: str = "Ocp-Apim-Subscription-Key"
    FEED_API_KEY: str | None = None
    FEED_PAGE_SIZE: Annotated[int, Field(ge=1, le=1000)] = 100
    FEED_STALE_MINUTES: Annotated[int, Field(ge=5, le=10_080)] = 60
    # The victim's page (shared/web): the key that signs its form tokens (in Azure a Key Vault
    # reference; unset locally: a random key kept in LOCAL_DATA_DIR/page-signing.key), and
    # GOV.UK Frontend's dist/govuk folder (relative: to the app's root).
    PAGE_SIGNING_KEY: Annotated[SecretStr | None, Field(min_length=32)] = None
    WEB_ASSETS_DIR: Path = Path("node_modules/govuk-frontend/dist/govuk")
    # The embedded default (SQLite state and queues, JSON Lines feeds, file outbox).
    LOCAL_DATA_DIR: Path = Path(".local")
    LOCAL_FEEDS_DIR: Path = Path(".local/feeds")
    LOCAL_OFFICERS_FILE: Path | None = None

    def uses_table_storage(self) -> bool:
        return bool(self.StateStorage or self.StateStorage__tableServiceUri)

    def uses_service_bus(self) -> bool:
        return bool(self.ServiceBusConnection or self.ServiceBusConnection__fullyQualifiedNamespace)

    def uses_acs(self) -> bool:
        return bool(self.ACS_ENDPOINT or self.ACS_CONNECTION_STRING)

    def uses_graph(self) -> bool:
        return bool(self.GRAPH_TENANT_ID or self.GRAPH_CLIENT_ID or self.GRAPH_USE_MANAGED_IDENTITY)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Settings that only make sense together."""
        if self.uses_service_bus() and not self.uses_table_storage():
            raise ValueError(
                "StateStorage (or StateStorage__tableServiceUri) must be set with ServiceBusConnection"
            )
        if (
            self.StateStorage__tableServiceUri
            and not self.StateStorage
            and not self.StateStorage__blobServiceUri
        ):
            raise ValueError(
                "StateStorage__blobServiceUri must be set with StateStorage__tableServiceUri (records too "
                "large for a table row are kept in its container quarantined-records)"
            )
        if self.StateStorage and _endpoints(self.StateStorage) == {"TableEndpoint"}:
            raise ValueError(
                "StateStorage names a TableEndpoint but no BlobEndpoint: records too large for a table "
                "row are kept in the account's blob container quarantined-records"
            )
        if self.uses_acs():
            for name in ("ACS_EMAIL_SENDER", "ACS_SMS_SENDER"):
                if not getattr(self, name):
                    raise ValueError(f"{name} must be set with ACS_ENDPOINT or ACS_CONNECTION_STRING")
        if self.uses_graph() and not self.GRAPH_USE_MANAGED_IDENTITY:
            for name in ("GRAPH_TENANT_ID", "GRAPH_CLIENT_ID"):
                if not getattr(self, name):
                    raise ValueError(f"{name} must be set for the Graph officer directory")
            if not (self.GRAPH_CLIENT_SECRET or self.GRAPH_CLIENT_CERTIFICATE_PATH):
                raise ValueError(
                    "GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE_PATH must be set "
                    "(or GRAPH_USE_MANAGED_IDENTITY=true)"
                )
        if self.NICHE_FEED_URL or self.STORM_FEED_URL:
            needed = {
                "oauth": ("FEED_TENANT_ID", "FEED_CLIENT_ID", "FEED_CLIENT_SECRET", "FEED_SCOPE"),
                "managed_identity": ("FEED_SCOPE",),
                "api_key": ("FEED_API_KEY",),
            }[self.FEED_AUTH]
            for name in needed:
                if not getattr(self, name):
                    raise ValueError(f"{name} must be set when FEED_AUTH is {self.FEED_AUTH}")
        return self


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment (``overrides`` win), naming the first bad one."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        # "from None": pydantic's own error repeats the value, and a setting may hold a key (a
        # traceback with it would reach the host log); this one names the setting only.
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        reason = first["msg"].removeprefix("Value error, ")
        if not name:  # a rule across settings: its message names them
            raise SettingsError(f"app settings: {reason}") from None
        raise SettingsError(f"app setting {name} is invalid: {reason}") from None
