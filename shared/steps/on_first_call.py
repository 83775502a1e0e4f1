"""The steps only some functions of the app need, each imported on its function's first call.

The Functions worker imports ``function_app`` once for all its functions, and a worker
mostly runs the queue steps a case change goes through (resolve_officer, evaluate_journey,
send_message), which ``function_app`` imports itself. The feed timers' step, the retention
timer's, the officer mail's and the delivery reports' are imported here when first called,
so their modules are not part of every worker's start (docs/benchmark.md, the cold start).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.steps.dependencies import DeliveryNeeds, IngestNeeds, NotifyNeeds
    from shared.steps.ingest import IngestReport
    from shared.steps.results import StepResult
    from shared.steps.retention import RetentionNeeds, RetentionReport


def ingest_feed(feed: str, services: IngestNeeds) -> IngestReport:
    """shared.steps.ingest.ingest_feed."""
    from shared.steps.ingest import ingest_feed as step

    return step(feed, services)


def retention(services: RetentionNeeds) -> RetentionReport:
    """shared.steps.retention.retention."""
    from shared.steps.retention import retention as step

    return step(services)


def notify_officer(
    body: bytes | str, services: NotifyNeeds, properties: Mapping[str, Any] | None = None
) -> StepResult:
    """shared.steps.notify_officer.notify_officer."""
    from shared.steps.notify_officer import notify_officer as step

    return step(body, services, properties)


def record_delivery(
    event_id: str, event_type: str, event_time: datetime | None, data: Any, services: DeliveryNeeds
) -> StepResult:
    """shared.steps.record_delivery.record_delivery."""
    from shared.steps.record_delivery import record_delivery as step

    return step(event_id, event_type, event_time, data, services)
