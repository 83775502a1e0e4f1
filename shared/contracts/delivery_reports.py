"""Delivery reports from Azure Communication Services, as Event Grid delivers them.

Two event types (``data`` as published for each; keys not listed are ignored):

- ``Microsoft.Communication.EmailDeliveryReportReceived``: ``messageId`` (the
  send's operation id), ``status`` (Delivered, Failed, Bounced, Suppressed,
  Quarantined, FilteredSpam, Expanded …), ``deliveryStatusDetails``,
  ``deliveryAttemptTimestamp``, and the sender and recipient addresses;
- ``Microsoft.Communication.SMSDeliveryReportReceived``: ``messageId``,
  ``deliveryStatus`` (Delivered, Failed …), ``deliveryStatusDetails``,
  ``receivedTimestamp``, ``deliveryAttempts``, ``tag`` (what the send put there:
  our message key) and the sender and recipient numbers.

Only what matching and deciding need is kept: the id the report is matched by,
the channel, the status and its time. Addresses are never read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

EMAIL_REPORT = "Microsoft.Communication.EmailDeliveryReportReceived"
SMS_REPORT = "Microsoft.Communication.SMSDeliveryReportReceived"


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _EmailReport(_Data):
    messageId: str
    status: str
    deliveryAttemptTimestamp: datetime | None = None


class _SmsReport(_Data):
    messageId: str | None = None
    deliveryStatus: str
    receivedTimestamp: datetime | None = None
    tag: str | None = None


class DeliveryReport(BaseModel):
    """One delivery report, reduced to what the service uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    channel: Literal["email", "sms"]
    report_key: str  # what the send gave the provider to name it by (email operation id, SMS tag)
    status: str  # the provider's own word
    at: datetime  # when the provider says it happened (else when the event was raised)


class NotADeliveryReport(ValueError):
    """An event of another type, or one whose data lacks what matching needs (the reason is one line)."""


def parse_report(event_id: str, event_type: str, event_time: datetime, data: Any) -> DeliveryReport:
    """The delivery report an Event Grid event carries."""
    try:
        if event_type == EMAIL_REPORT:
            email = _EmailReport.model_validate(data)
            at = email.deliveryAttemptTimestamp or event_time
            return DeliveryReport(
                event_id=event_id, channel="email", report_key=email.messageId, status=email.status, at=at
            )
        if event_type == SMS_REPORT:
            sms = _SmsReport.model_validate(data)
            if not sms.tag:
                raise NotADeliveryReport("an SMS delivery report without the tag the send set")
            at = sms.receivedTimestamp or event_time
            return DeliveryReport(
                event_id=event_id, channel="sms", report_key=sms.tag, status=sms.deliveryStatus, at=at
            )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "data"
        raise NotADeliveryReport(f"{event_type} data: {where}: {first['msg']}") from None
    raise NotADeliveryReport(f"not a delivery report: {event_type}")
