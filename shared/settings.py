"""All configuration, read once from app settings (environment variables).

A missing or malformed setting fails at start-up with its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from croniter import croniter
from pydantic import AfterValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


def _ncrontab(value: str) -> str:
    """An Azure Functions NCRONTAB expression: six fields, seconds first."""
    if len(value.split()) != 6 or not croniter.is_valid(value, second_at_beginning=True):
        raise ValueError(f"{value!r} is not a six-field NCRONTAB expression such as '0 */5 * * * *'")
    return value


Schedule = Annotated[str, AfterValidator(_ncrontab)]
QueueName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$")]


class Settings(BaseSettings):
    """The app settings the code reads. Every one is documented in the README."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, frozen=True, env_ignore_empty=True)

    NICHE_POLL_SCHEDULE: Schedule = "0 */5 * * * *"
    STORM_POLL_SCHEDULE: Schedule = "0 */5 * * * *"
    CASE_CHANGES_QUEUE: QueueName = "case-changes"
    JOURNEY_EVENTS_QUEUE: QueueName = "journey-events"
    OUTBOUND_MESSAGES_QUEUE: QueueName = "outbound-messages"
    JOURNEY_POLICY_PATH: Path | None = None
    FEED_BATCH_SIZE: Annotated[int, Field(ge=1, le=10_000)] = 500
    OFFICER_CACHE_TTL_HOURS: Annotated[float, Field(gt=0, le=24 * 30)] = 24.0
    SERVICEBUS_MAX_DELIVERY_COUNT: Annotated[int, Field(ge=1, le=2000)] = 10
    # State in Azure Table Storage: a connection string (Azurite: UseDevelopmentStorage=true),
    # or, in Azure, StateStorage__tableServiceUri with the managed identity. Neither: SQLite.
    StateStorage: str | None = None
    StateStorage__tableServiceUri: Annotated[str | None, Field(pattern=r"^https://[^\s/]+/?$")] = None
    STATE_TABLE_PREFIX: Annotated[str, Field(pattern=r"^([A-Za-z][A-Za-z0-9]{0,19})?$")] = ""
    # The embedded default (SQLite state and queues, JSON Lines feeds, file outbox).
    LOCAL_DATA_DIR: Path = Path(".local")
    LOCAL_FEEDS_DIR: Path = Path(".local/feeds")
    LOCAL_OFFICERS_FILE: Path | None = None

    def uses_table_storage(self) -> bool:
        return bool(self.StateStorage or self.StateStorage__tableServiceUri)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment (``overrides`` win), naming the first bad one."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        raise SettingsError(f"app setting {name} is invalid: {first['msg']}") from exc
