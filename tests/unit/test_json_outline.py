"""The outline of a JSON document read in chunks: its top level whole, what is inside counted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.json_outline import JsonOutline, OutlineTooLarge

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
# Text that trips a hand-written scanner: quotes, backslashes, brackets and commas inside strings.
_TRICKY = st.text(alphabet='"\\[]{},: \n\tzé', max_size=12)


def _expected(document: Any) -> Any:
    def outlined(value: Any) -> Any:
        if isinstance(value, list):
            return [0] * min(len(value), 2)
        return {} if isinstance(value, dict) else value

    if isinstance(document, dict):
        return {key: outlined(value) for key, value in document.items()}
    if isinstance(document, list):
        return [outlined(value) for value in document]
    return document


def _outline(data: bytes, cuts: list[int]) -> Any:
    outline = JsonOutline()
    at = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        outline.feed(data[at:cut])
        at = cut
    assert outline.bytes_read == len(data)
    return outline.value()


@settings(max_examples=300)
@given(
    document=st.dictionaries(st.text() | _TRICKY, _VALUES | _TRICKY, max_size=5) | _VALUES,
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    indent=st.sampled_from([None, 1, "\t"]),
    ascii_only=st.booleans(),
)
def test_the_outline_is_the_top_level_with_each_inner_container_emptied_or_counted(
    document: Any, cuts: list[int], indent: Any, ascii_only: bool
) -> None:
    data = json.dumps(document, indent=indent, ensure_ascii=ascii_only).encode("utf-8")

    assert _outline(data, cuts) == _expected(document)


def test_a_page_of_one_huge_record_outlines_as_one_item_and_its_next_cursor() -> None:
    record = {"crime_reference": "HU/000001/26", "notes": 'x"\\]},' * 200_000, "list": [[1], [2]]}
    data = json.dumps({"items": [record], "next": "c7", "count": 1}).encode()

    assert _outline(data, list(range(0, len(data), 65_536))) == {"items": [0], "next": "c7", "count": 1}


def test_two_items_or_none_are_told_apart_from_one() -> None:
    assert _outline(b'{"items": [ {"a": [1, 2]} , 3 ], "next": 1}', [13, 14]) == {"items": [0, 0], "next": 1}
    assert _outline(b'{"items": [ ], "next": "c1"}', [12]) == {"items": [], "next": "c1"}


def test_a_document_that_is_not_json_gives_an_outline_that_is_not_json_either() -> None:
    outline = JsonOutline()
    outline.feed(b'{"items": [{"a": 1}], "next": "c1"')  # cut short

    with pytest.raises(ValueError):
        outline.value()


def test_a_top_level_larger_than_the_cap_is_refused() -> None:
    outline = JsonOutline(max_bytes=100)
    outline.feed(b'{"items": [' + b"1," * 10_000 + b'1], "next": "')  # deep bytes do not count

    with pytest.raises(OutlineTooLarge, match="larger than 100 bytes"):
        outline.feed(b"c" * 200)
