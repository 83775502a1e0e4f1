"""Decisions made one after another on one journey, taken as one (``Decision.then``).

send_message records a message's outcomes (what it sent, what it dropped) one after another
and writes what they decided once. The rule: nothing either decision made is lost. The test
goes through every field of ``Decision``, so a field added later that ``then`` leaves out fails
here rather than being dropped without a word.
"""

from __future__ import annotations

import dataclasses
from itertools import product
from typing import Any

from shared.domain.journey.state import Decision, new_journey


def _decisions(name: str, first: Any, later: Any) -> tuple[Decision, Decision]:
    """Two decisions differing from new ones in one field."""
    made = [Decision(new_journey("HU/000001/26", "P-1", "victim")) for _ in range(2)]
    return dataclasses.replace(made[0], **{name: first}), dataclasses.replace(made[1], **{name: later})


def test_then_keeps_everything_either_decision_made() -> None:
    seen: list[str] = []
    for field in dataclasses.fields(Decision):
        if field.name == "journey":
            a, b = _decisions(
                "journey",
                new_journey("HU/000001/26", "P-1", "victim"),
                new_journey("HU/000001/26", "P-1", "victim"),
            )
            assert a.then(b).journey is b.journey, "the later decision's journey is the one to write"
        elif field.name == "unchanged":
            for first, later in product((False, True), repeat=2):
                a, b = _decisions("unchanged", first, later)
                assert a.then(b).unchanged is (first and later), (first, later)
        elif field.default_factory is list:  # type: ignore[comparison-overlap]
            one, two, three = object(), object(), object()
            a, b = _decisions(field.name, [one, two], [three])
            assert getattr(a.then(b), field.name) == [one, two, three], field.name
        elif field.default_factory is dict:  # type: ignore[comparison-overlap]
            a, b = _decisions(
                field.name, {"T-1": "attended", "T-2": "first"}, {"T-2": "second", "T-3": "delivered"}
            )
            # A task closed by both keeps the first reason given, as Decision.close_task does.
            assert getattr(a.then(b), field.name) == {"T-1": "attended", "T-2": "first", "T-3": "delivered"}
        else:
            raise AssertionError(f"Decision.{field.name}: this test does not know how to check it is kept")
        seen.append(field.name)
    assert seen == [field.name for field in dataclasses.fields(Decision)]
    assert {"messages", "tasks", "scheduled", "audit", "closed_tasks"} <= set(seen)


def test_then_leaves_both_decisions_as_they_were() -> None:
    a, b = _decisions("closed_tasks", {"T-1": "attended"}, {"T-2": "delivered"})
    a.tasks.append(object())  # type: ignore[arg-type]
    a.then(b).tasks.append(object())  # type: ignore[arg-type]
    assert len(a.tasks) == 1 and b.tasks == []
    assert a.closed_tasks == {"T-1": "attended"} and b.closed_tasks == {"T-2": "delivered"}
