"""The embedded provider's delivery reports: Event Grid events as Communication Services sends them.

A local run has no Communication Services and no Event Grid, so the file outbox
raises the reports itself: for each message it hands over, the event Azure would
deliver to the ``delivery_report`` function (the published ``data`` of
``Microsoft.Communication.EmailDeliveryReportReceived`` or ``…SMSDeliveryReportReceived``),
put on the local host's ``event-grid`` queue for the time it would arrive.

What each address gets comes from ``run --delivery-reports FILE``: a JSON object
from address (E.164 mobile, or email in lower case) to ``{"status": …,
"after_seconds": n}``; an address not in it is Delivered after 30 seconds.

It is no kinder than Event Grid, which delivers at least once and in no order: a
few reports (chosen by the message's key, so a run is reproducible) arrive twice,
the copy a little later, and a failed SMS is first reported with a not-final
status that arrives after the final one.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.contracts.delivery_reports import EMAIL_REPORT, SMS_REPORT
from shared.ports import OutgoingMessage

EVENT_GRID_QUEUE = "event-grid"  # the local host's stand-in for Event Grid's push to the function
STATUSES = ("Delivered", "Failed", "Bounced", "Suppressed", "Quarantined", "Expired")
_TOPIC = (
    "/subscriptions/local/resourceGroups/local/providers/Microsoft.Communication/communicationServices/local"
)
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:victim-updates:embedded-delivery-reports")
DUPLICATE_PER_MILLE = 50  # reports delivered twice (Event Grid is at least once)


class DeliveryPlanError(ValueError):
    """The delivery-reports file cannot be used; the message is one line naming what is wrong."""


@dataclass(frozen=True)
class Report:
    status: str = "Delivered"
    after_seconds: float = 30.0


class DeliveryPlan:
    """What each address's messages are reported as (default: Delivered after 30 seconds)."""

    def __init__(self, by_address: Mapping[str, Report] | None = None) -> None:
        self._by_address = dict(by_address or {})

    def __len__(self) -> int:
        return len(self._by_address)

    def report_for(self, address: str) -> Report:
        return self._by_address.get(address.lower() if "@" in address else address, Report())

    @classmethod
    def read(cls, path: Path) -> DeliveryPlan:
        """The plan in a delivery-reports file; a mistake is one line naming the address or field."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DeliveryPlanError(f"cannot read delivery reports {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise DeliveryPlanError(f"delivery reports {path} are not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise DeliveryPlanError(f"delivery reports {path}: expected an object from address to report")
        plan: dict[str, Report] = {}
        for address, report in data.items():
            where = f"delivery reports {path}: {address!r}"
            if not isinstance(report, dict) or set(report) - {"status", "after_seconds"}:
                raise DeliveryPlanError(f'{where}: expected {{"status": …, "after_seconds": n}}')
            status = report.get("status", "Delivered")
            if status not in STATUSES:
                raise DeliveryPlanError(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}")
            after = report.get("after_seconds", 30)
            if (
                isinstance(after, bool)
                or not isinstance(after, int | float)
                or not math.isfinite(after)
                or after < 0
            ):
                raise DeliveryPlanError(f"{where}: after_seconds must be a number of seconds, 0 or more")
            plan[address.lower() if "@" in address else address] = Report(status, float(after))
        return cls(plan)


class EmbeddedDeliveryReports:
    """Raises the delivery reports of what the file outbox hands over, on the local Event Grid queue."""

    def __init__(
        self, send: Callable[[str, Sequence[OutgoingMessage]], None], plan: DeliveryPlan | None = None
    ) -> None:
        self._send = send
        self.plan = plan or DeliveryPlan()

    def handed_over(self, channel: str, address: str, report_key: str, key: str, at: datetime) -> None:
        """Schedule the report(s) of one message handed over at ``at``."""
        report = self.plan.report_for(address)
        when = at + timedelta(seconds=report.after_seconds)
        roll = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 1000
        events: list[tuple[dict[str, Any], datetime]] = [
            (_event(channel, address, report_key, report.status, when), when)
        ]
        if roll < DUPLICATE_PER_MILLE:
            events.append((events[0][0], when + timedelta(seconds=30 + roll)))  # the same event, again
        if channel == "sms" and report.status != "Delivered":
            # A not-final report of the same message, raised first but arriving after the final one.
            early = _event(channel, address, report_key, "Retrying", when - timedelta(seconds=1))
            events.append((early, when + timedelta(seconds=5)))
        self._send(
            EVENT_GRID_QUEUE,
            [
                OutgoingMessage(json.dumps(event), f"{event['id']}#{n}", scheduled_at=due)
                for n, (event, due) in enumerate(events)
            ],
        )


def _event(channel: str, address: str, report_key: str, status: str, at: datetime) -> dict[str, Any]:
    stamp = at.isoformat()
    if channel == "email":
        data: dict[str, Any] = {
            "sender": "DoNotReply@local",
            "recipient": address,
            "messageId": report_key,
            "status": status,
            "deliveryStatusDetails": {"statusMessage": f"{status} (embedded provider)"},
            "deliveryAttemptTimestamp": stamp,
        }
        event_type, subject = EMAIL_REPORT, f"sender/DoNotReply@local/message/{report_key}"
    else:
        data = {
            "messageId": "sms-" + hashlib.sha256(report_key.encode("utf-8")).hexdigest()[:24],
            "from": "VictimUpd",
            "to": address,
            "deliveryStatus": status,
            "deliveryStatusDetails": f"{status} (embedded provider)",
            "receivedTimestamp": stamp,
            "deliveryAttempts": [
                {"timestamp": stamp, "segmentsSucceeded": 1 if status == "Delivered" else 0}
            ],
            "tag": report_key,
        }
        event_type, subject = SMS_REPORT, f"phonenumber/{address}"
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"{channel}:{report_key}:{status}")),
        "topic": _TOPIC,
        "subject": subject,
        "eventType": event_type,
        "eventTime": stamp,
        "dataVersion": "1.0",
        "data": data,
    }
