"""Officer mail to a JSON Lines file, in place of ACS Email (the embedded TaskNotifier).

Each mail handed over is one line of ``officer-mail.jsonl`` with exactly the fields of
the command-line contract (README, "The local host and its command line"): ``task_id``,
``crime_reference``, ``to``, ``kind``, ``subject``, ``body``, ``sent_at``. It is a
separate file from ``outbox.jsonl``, which holds only what victims and callers receive.

Idempotent as the file outbox is: the same key is accepted again without a second
line, remembered for ``RETENTION``. The file holds no key of its own, so the key must
be the one its fields give back, ``<task id>:<kind>`` (``task_notice_key``, what
notify_officer uses): reopened after a restart, the file still knows every key in it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.adapters.file_outbox import ReceiptMemory
from shared.contracts.messages import task_notice_key
from shared.ports import OfficerMail, ProviderReceipt


class FileOfficerMail:
    """A TaskNotifier that appends to a JSON Lines file."""

    def __init__(self, path: Path, clock: Callable[[], datetime]) -> None:
        self.path = path
        self._clock = clock
        self._accepted = ReceiptMemory.of_file(path, clock, _receipt_of)

    def send(self, *, idempotency_key: str, mail: OfficerMail) -> ProviderReceipt:
        """Append the mail once; the same key again returns the first receipt."""
        if idempotency_key != task_notice_key(mail.task_id, mail.kind):
            # Any other key would be forgotten on restart, and a redelivery would mail twice.
            raise ValueError("officer mail to the file is keyed by '<task id>:<kind>'")
        known = self._accepted.get(idempotency_key)
        if known is not None:
            return known
        receipt = ProviderReceipt(_provider_id(idempotency_key), self._clock())
        entry = {
            "task_id": mail.task_id,
            "crime_reference": mail.crime_reference,
            "to": mail.to,
            "kind": mail.kind,
            "subject": mail.subject,
            "body": mail.text,
            "sent_at": receipt.accepted_at.isoformat(),
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._accepted.remember(idempotency_key, receipt)
        return receipt

    def __len__(self) -> int:
        return len(self._accepted)


def _provider_id(key: str) -> str:
    return "officer-mail-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _receipt_of(entry: dict[str, Any]) -> tuple[str, ProviderReceipt]:
    """The key and receipt of one line written earlier (the file holds no key: it is rebuilt)."""
    key = task_notice_key(entry["task_id"], entry["kind"])
    return key, ProviderReceipt(_provider_id(key), datetime.fromisoformat(entry["sent_at"]))
