"""What each step depends on: the narrow ports it uses, as Protocols.

The steps are written against these, never against the composition root
(``shared/bootstrap.py``), so importing a step loads no Azure SDK and a test can
hand a step exactly what it reads. ``bootstrap.Services`` provides them all.
"""

from __future__ import annotations

from typing import Protocol

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
from shared.settings import Settings


class Committing(Protocol):
    """What every step needs to decide and then emit and write (``results.apply``)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def policy(self) -> Policy: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def tables(self) -> TableStore: ...

    @property
    def publisher(self) -> QueuePublisher: ...


class IngestNeeds(Committing, Protocol):
    @property
    def feeds(self) -> dict[str, FeedReader]: ...

    @property
    def blobs(self) -> BlobStore: ...

    @property
    def memory(self) -> WorkerMemory: ...


class ResolveNeeds(Committing, Protocol):
    @property
    def directory(self) -> OfficerDirectory: ...

    @property
    def memory(self) -> WorkerMemory: ...


class JourneyNeeds(Committing, Protocol):
    @property
    def journeys(self) -> JourneyRepository: ...

    @property
    def ledger(self) -> MessageLedger: ...


class SendNeeds(JourneyNeeds, Protocol):
    @property
    def provider(self) -> MessageProvider: ...

    @property
    def deliveries(self) -> DeliveryReports: ...

    @property
    def links(self) -> PersonalLinks: ...

    @property
    def renderer(self) -> MessageRenderer: ...


class NotifyNeeds(Committing, Protocol):
    @property
    def journeys(self) -> JourneyRepository: ...

    @property
    def notifier(self) -> TaskNotifier: ...

    @property
    def renderer(self) -> MessageRenderer: ...


class DeliveryNeeds(Committing, Protocol):
    @property
    def ledger(self) -> MessageLedger: ...

    @property
    def deliveries(self) -> DeliveryReports: ...
