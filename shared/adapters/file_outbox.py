"""A file outbox in place of Azure Communication Services (the stub provider).

Every message handed over is one JSON line in ``outbox.jsonl``. Like ACS with an
idempotency key, the same key is accepted again without a second line: a retry
after a crash never reaches the victim twice. Like ACS, it remembers keys for a
window (``RETENTION``), not for ever: far longer than any redelivery (Service Bus
retries a message within minutes), and it keeps a year-long run's memory flat.

That is kinder than ACS, so ``acs_like=True`` (the chaos suite's ``FaultPlan(acs_like=True)``)
makes it as forgetful and as tight-lipped as the real service (learn.microsoft.com, "Repeatable
requests"; ``shared/adapters/acs.py``):

- ``accepted()`` raises ``ProviderStatusUnknown``: ACS has no look-up by our key;
- an SMS repeat is recognised only while its ``Repeatability-First-Sent`` (``first_sent_at``,
  to the second, as the header carries it) is within ``REPEAT_WINDOW`` (5 minutes) of now: the
  same key and first-sent get the original answer and no second text; the same key with another
  first-sent is refused (400); a first-sent older than the window is refused with 412
  (``RepeatabilityExpired``) whether or not the first attempt went out;
- an email's Operation-Id is remembered for ``REPEAT_WINDOW`` after it was accepted (ACS
  documents no longer); a repeat after that is a second email to the person.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from shared.adapters.acs import ProviderRejected, RepeatabilityExpired, rfc1123
from shared.adapters.delivery_report_stub import EmbeddedDeliveryReports
from shared.domain.links import unsubscribe_headers
from shared.domain.sending import REPEAT_WINDOW  # how long ACS recognises a repeat
from shared.ports import EmailContent, ProviderReceipt, ProviderStatusUnknown

RETENTION = timedelta(days=7)
_REPORT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:victim-updates:file-outbox-operations")


class ReceiptMemory:
    """The receipts of the keys accepted within ``RETENTION`` of now, oldest first."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._accepted: OrderedDict[str, ProviderReceipt] = OrderedDict()

    @classmethod
    def of_file(
        cls,
        path: Path,
        clock: Callable[[], datetime],
        receipt_of: Callable[[dict[str, Any]], tuple[str, ProviderReceipt]],
    ) -> ReceiptMemory:
        """The keys a JSON Lines file already holds (``receipt_of`` reads one line's), so a run resumed
        into the same folder still recognises a retry; the folder is made if missing."""
        memory = cls(clock)
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        memory.remember(*receipt_of(json.loads(line)))
        path.parent.mkdir(parents=True, exist_ok=True)
        return memory

    def remember(self, key: str, receipt: ProviderReceipt) -> None:
        self._accepted[key] = receipt
        self._accepted.move_to_end(key)
        horizon = self._clock() - RETENTION
        while self._accepted:
            oldest = next(iter(self._accepted.values()))
            if oldest.accepted_at >= horizon:
                break
            self._accepted.popitem(last=False)

    def get(self, key: str) -> ProviderReceipt | None:
        return self._accepted.get(key)

    def __len__(self) -> int:
        return len(self._accepted)


class FileOutbox:
    """A MessageProvider that appends to a JSON Lines file (``acs_like``: with ACS's short memory)."""

    def __init__(
        self,
        path: Path,
        clock: Callable[[], datetime],
        reports: EmbeddedDeliveryReports | None = None,
        *,
        acs_like: bool = False,
    ) -> None:
        self.path = path
        self._clock = clock
        self._reports = reports  # the delivery reports it raises, as ACS would through Event Grid
        self.acs_like = acs_like
        # ACS-like: what the service still tracks, by key: (the SMS's first-sent, the answer).
        self._tracked: dict[str, tuple[str | None, ProviderReceipt]] = {}
        self._accepted = ReceiptMemory.of_file(
            path,
            clock,
            lambda entry: (
                entry["idempotency_key"],
                ProviderReceipt(entry["provider_id"], datetime.fromisoformat(entry["sent_at"])),
            ),
        )

    def acting_as_acs(self) -> FileOutbox:
        """The same outbox (file, clock, reports), with ACS's short memory and no look-up."""
        return FileOutbox(self.path, self._clock, self._reports, acs_like=True)

    def _recall(self, key: str, first_sent: str | None) -> ProviderReceipt | None:
        """What an ACS-like outbox answers a repeat with (None: it takes it as a new message)."""
        now = self._clock()
        if first_sent is not None and now - parsedate_to_datetime(first_sent) > REPEAT_WINDOW:
            # Too old to tell whether the first attempt went out: refused, whatever it was.
            raise RepeatabilityExpired("sms", 412, "repeatability first-sent is outside the window")
        for tracked, (tracked_first_sent, receipt) in list(self._tracked.items()):
            since = (
                receipt.accepted_at
                if tracked_first_sent is None
                else parsedate_to_datetime(tracked_first_sent)
            )
            if now - since > REPEAT_WINDOW:
                del self._tracked[tracked]
        known = self._tracked.get(key)
        if known is None:
            return None
        if known[0] != first_sent:
            raise ProviderRejected("sms", 400, "repeatability rejected: the repeat does not match the first")
        return known[1]

    def _hand_over(self, key: str, entry: dict[str, Any], first_sent: str | None = None) -> ProviderReceipt:
        known = self._recall(key, first_sent) if self.acs_like else self._accepted.get(key)
        if known is not None:
            return known
        receipt = ProviderReceipt("outbox-" + hashlib.sha256(key.encode()).hexdigest()[:16], self._clock())
        entry |= {
            "sent_at": receipt.accepted_at.isoformat(),
            "provider_id": receipt.provider_id,
            "idempotency_key": key,
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._accepted.remember(key, receipt)
        if self.acs_like:
            self._tracked[key] = (first_sent, receipt)
        if self._reports is not None:
            channel = str(entry["channel"])
            report_key = self.report_key(key, channel)
            self._reports.handed_over(channel, str(entry["to"]), report_key, key, receipt.accepted_at)
        return receipt

    def report_key(self, idempotency_key: str, channel: str) -> str:
        """As ACS: an email's reports carry an id of the send (a GUID), an SMS's the tag (the key)."""
        if channel == "email":
            return str(uuid.uuid5(_REPORT_NAMESPACE, f"email:{idempotency_key}"))
        return idempotency_key

    def send_email(
        self, *, idempotency_key: str, to: str, content: EmailContent, metadata: Mapping[str, Any]
    ) -> ProviderReceipt:
        entry = {**metadata, "channel": "email", "to": to, "subject": content.subject, "body": content.text}
        if content.unsubscribe_url:
            entry["headers"] = unsubscribe_headers(content.unsubscribe_url)
        return self._hand_over(idempotency_key, entry)

    def send_sms(
        self,
        *,
        idempotency_key: str,
        to: str,
        text: str,
        metadata: Mapping[str, Any],
        first_sent_at: datetime | None = None,
    ) -> ProviderReceipt:
        entry = {**metadata, "channel": "sms", "to": to, "subject": None, "body": text}
        first_sent = rfc1123(first_sent_at or self._clock()) if self.acs_like else None
        return self._hand_over(idempotency_key, entry, first_sent)

    def accepted(self, idempotency_key: str) -> ProviderReceipt | None:
        if self.acs_like:
            raise ProviderStatusUnknown("an ACS-like outbox cannot be asked what it accepted")
        return self._accepted.get(idempotency_key)

    def __len__(self) -> int:
        return len(self._accepted)
