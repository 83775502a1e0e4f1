"""The generator's delivery-reports.json: a few of the feeds' own addresses fail, reproducibly.

It is what ``make demo`` passes to ``run --delivery-reports``, so the demo shows
messages that did not arrive and what the service then did (journey-rules.md §12).
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.adapters.delivery_report_stub import DeliveryPlan
from shared.domain.addresses import uk_mobile_e164, valid_email
from shared.domain.ledger import DeliveryOutcome, delivery_outcome
from shared.local.generate import generate

# The failures the delivery-reports file may name (DESIGN.md, "run --delivery-reports"), by channel:
# ACS reports Bounced and Suppressed for email only, Expired for SMS only.
EMAIL_STATUSES = {"Failed", "Bounced", "Suppressed"}
SMS_STATUSES = {"Failed", "Expired"}


def _feed_addresses(folder: Path) -> set[str]:
    """Every valid address in the feeds' well-formed people (victims, guardians, callers)."""
    found: set[str] = set()
    for name in ("niche.jsonl", "storm.jsonl"):
        for line in (folder / name).read_text("utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            people = (
                [*(record.get("victims") or []), record.get("caller")] if isinstance(record, dict) else []
            )
            for person in filter(lambda p: isinstance(p, dict), people):
                for contact in (person.get("contact"), person.get("guardian")):
                    if isinstance(contact, dict):
                        pair = (valid_email(contact.get("email")), uk_mobile_e164(contact.get("mobile")))
                        found |= {address for address in pair if address}
    return found


def test_a_few_of_the_feeds_addresses_fail_for_good_and_the_plan_reads(tmp_path: Path) -> None:
    stats = generate(tmp_path / "a", crimes=400, days=10, seed=11)
    plan = json.loads((tmp_path / "a" / "delivery-reports.json").read_text("utf-8"))
    addresses = _feed_addresses(tmp_path / "a")
    assert stats.addresses == len(addresses) and stats.failing_addresses == len(plan)
    assert set(plan) <= addresses and 0 < len(plan) < len(addresses) // 10
    assert {"@" in a for a in plan} == {True, False}  # emails and mobiles both
    for address, report in plan.items():
        assert delivery_outcome(report["status"]) == DeliveryOutcome.FAILED, address
        # Only the statuses the file's contract names, each on the channel that can report it.
        assert report["status"] in (EMAIL_STATUSES if "@" in address else SMS_STATUSES), (address, report)
        assert isinstance(report["after_seconds"], int) and report["after_seconds"] > 0
    assert len(DeliveryPlan.read(tmp_path / "a" / "delivery-reports.json")) == len(plan)


def test_the_same_seed_fails_the_same_addresses(tmp_path: Path) -> None:
    generate(tmp_path / "a", crimes=150, days=5, seed=3)
    generate(tmp_path / "b", crimes=150, days=5, seed=3)
    for name in ("delivery-reports.json", "niche.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    generate(tmp_path / "c", crimes=150, days=5, seed=4)
    assert (tmp_path / "a" / "delivery-reports.json").read_bytes() != (
        tmp_path / "c" / "delivery-reports.json"
    ).read_bytes()
