"""The Messages ledger's status machine (shared/domain/ledger.py, journey-rules.md §9, §12), as a property.

The rule, stated here independently of ``TRANSITIONS``: a message enters the ledger claimed
(``pending``) or not to be sent (``suppressed``). A pending one is decided for sending in
exactly one of sent, suppressed, failed or unknown, and is never handed over again. Then a
delivery report may move it on once, to delivered or undelivered: from sent, from unknown
(the report proves the provider had it) or straight from pending (the report came before
``send_message`` wrote its result). Delivered, undelivered, suppressed and failed are final:
every attempt to move them is refused and leaves the entry as it was. So a status only moves
forward: nothing, then pending, then a decision, then a report.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.ledger import InvalidTransition, LedgerEntry, LedgerStatus

EXAMPLES = 500
STATUSES = list(LedgerStatus)
# Decided for sending (never handed over again), and of those, which a delivery report may still move.
ENDS = {LedgerStatus.SENT, LedgerStatus.SUPPRESSED, LedgerStatus.FAILED, LedgerStatus.UNKNOWN}
REPORTS = {LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED}
AWAITING_A_REPORT = {LedgerStatus.PENDING, LedgerStatus.SENT, LedgerStatus.UNKNOWN}
FINAL = {LedgerStatus.SUPPRESSED, LedgerStatus.FAILED} | REPORTS
AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _may(before: LedgerStatus | None, after: LedgerStatus) -> bool:
    if before is None:
        return after in (LedgerStatus.PENDING, LedgerStatus.SUPPRESSED)
    if before == LedgerStatus.PENDING and after in ENDS:
        return True
    return before in AWAITING_A_REPORT and after in REPORTS


def _rank(status: LedgerStatus | None) -> int:
    return 0 if status is None else 1 if status == LedgerStatus.PENDING else 3 if status in REPORTS else 2


def test_a_ledger_status_only_moves_forward_and_a_finished_entry_never_changes() -> None:
    seen: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
    @given(
        first=st.sampled_from([LedgerStatus.PENDING] * 4 + STATUSES),
        moves=st.lists(st.sampled_from(STATUSES), max_size=6),
    )
    def check(first: LedgerStatus, moves: list[LedgerStatus]) -> None:
        seen["examples"] += 1
        if not _may(None, first):
            with pytest.raises(InvalidTransition):
                LedgerEntry.begin("HU/000001/26", "m-1", first, channel="sms")
            seen["refused_as_a_first_entry"] += 1
            return
        entry = LedgerEntry.begin("HU/000001/26", "m-1", first, channel="sms", first_attempt_at=AT)
        assert entry.status == first and entry.status.finished == (first in ENDS | REPORTS)
        for status in moves:
            before = entry
            if not _may(entry.status, status):
                with pytest.raises(InvalidTransition):
                    entry.moved_to(status, reason="again", sent_at=AT)
                assert entry == before  # refused, and nothing about it changed
                seen["refused_on_a_final_entry" if entry.status in FINAL else "refused_going_back"] += 1
                continue
            entry = entry.moved_to(status, reason="why", decided_at=AT)
            assert _rank(entry.status) > _rank(before.status), (before.status, entry.status)
            # What identifies the message, and when it was first tried, stay as they were.
            kept = ("crime_reference", "message_key", "channel", "first_attempt_at")
            assert [getattr(entry, f) for f in kept] == [getattr(before, f) for f in kept]
            # Other fields change without a move: the status never does.
            assert entry.with_fields(template="checkin").status == entry.status
            seen["moved"] += 1
            if status in REPORTS:
                seen[f"reported_after_{before.status.value}"] += 1
        if entry.status.finished:
            seen[f"ended_{entry.status.value}"] += 1

    check()
    assert seen["examples"] == EXAMPLES and seen["moved"] >= 100, seen
    assert seen["refused_as_a_first_entry"] >= 50 and seen["refused_on_a_final_entry"] >= 300, seen
    assert seen["refused_going_back"] >= 20, seen
    for end in ENDS | REPORTS:
        assert seen[f"ended_{end.value}"] >= 10, (end, seen)
    for before in AWAITING_A_REPORT:
        assert seen[f"reported_after_{before.value}"] >= 10, (before, seen)
