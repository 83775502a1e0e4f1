"""The Messages ledger's status machine (shared/domain/ledger.py, journey-rules.md §9), as a property.

The rule, stated here independently of ``TRANSITIONS``: a message enters the ledger claimed
(``pending``) or not to be sent (``suppressed``); a pending one ends in exactly one of
sent, suppressed, failed or unknown; an ended one never changes. So a status only moves
forward (nothing, then pending, then an end), and every attempt to move an ended entry is
refused and leaves it as it was.
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
ENDS = {LedgerStatus.SENT, LedgerStatus.SUPPRESSED, LedgerStatus.FAILED, LedgerStatus.UNKNOWN}
AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _may(before: LedgerStatus | None, after: LedgerStatus) -> bool:
    if before is None:
        return after in (LedgerStatus.PENDING, LedgerStatus.SUPPRESSED)
    return before == LedgerStatus.PENDING and after in ENDS


def _rank(status: LedgerStatus | None) -> int:
    return 0 if status is None else 1 if status == LedgerStatus.PENDING else 2


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
        assert entry.status == first and entry.status.finished == (first in ENDS)
        for status in moves:
            before = entry
            if not _may(entry.status, status):
                with pytest.raises(InvalidTransition):
                    entry.moved_to(status, reason="again", sent_at=AT)
                assert entry == before  # refused, and nothing about it changed
                seen["refused_on_a_finished_entry" if entry.status.finished else "refused_going_back"] += 1
                continue
            entry = entry.moved_to(status, reason="why", decided_at=AT)
            assert _rank(entry.status) > _rank(before.status), (before.status, entry.status)
            # What identifies the message, and when it was first tried, stay as they were.
            kept = ("crime_reference", "message_key", "channel", "first_attempt_at")
            assert [getattr(entry, f) for f in kept] == [getattr(before, f) for f in kept]
            # Other fields change without a move: the status never does.
            assert entry.with_fields(template="checkin").status == entry.status
            seen["moved"] += 1
        if entry.status.finished:
            seen[f"ended_{entry.status.value}"] += 1

    check()
    assert seen["examples"] == EXAMPLES and seen["moved"] >= 100, seen
    assert seen["refused_as_a_first_entry"] >= 50 and seen["refused_on_a_finished_entry"] >= 300, seen
    assert seen["refused_going_back"] >= 20, seen
    for end in ENDS:
        assert seen[f"ended_{end.value}"] >= 30, (end, seen)
