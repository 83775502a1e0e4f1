"""Hypothesis strategies for the feed contracts (schemas/): valid records and hostile lines.

Valid records are built field by field to mirror ``shared/contracts/feeds.py`` (and so the
JSON Schemas generated from it): every required key, the optional ones sometimes, each
value inside its constraints. The text in them is hostile but allowed: HTML, quotes,
control characters, NUL, right-to-left overrides, emoji, strings at the length limit.

Hostile lines start from a valid record and break it in one place (a wrong type, a value
out of range, a missing or unknown key, a duplicate key whose last value is bad) so the
field the model must name is known, or break the line itself (not JSON, not an object,
invalid UTF-8, nesting, a line megabytes long), where no field can be named.

Valid times lie in the contract's 2000-2100 window (``EARLIEST_FEED_TIME`` to
``LATEST_FEED_TIME``, ends included) with odd offsets (+14:00, -12:00, +05:45, -09:30);
times outside it (year 1, year 9999, a second either side) are hostile. Milestone details
nest at most 7 levels in a valid record (the contract's limit is 8) and deeper in a hostile
one. Unix times (numbers or digit strings) in timestamp and date fields are hostile.
The end-to-end variant (``e2e=True``) keeps ``modified_at`` in a realistic fortnight so a
local run can replay it in about a second; its other times use the whole window.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from shared.contracts.feeds import (
    EARLIEST_FEED_TIME,
    LATEST_FEED_TIME,
    CaseStatus,
    Channel,
    Flag,
    MilestoneType,
)

# --- text ------------------------------------------------------------------------------

SNIPPETS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "</p><h1>",
    "&amp;",
    "&",
    "\"'",
    "O'Brien",
    "{{ 7*7 }}",
    "{% raw %}",
    "%s%n",
    "'); DROP TABLE entities;--",
    "\u202e",  # right-to-left override
    "\u202d",
    "\u200f",
    "\u2066",
    "\u200b",
    "\ufeff",
    "\u2028",
    "\u0085",
    "👮🏽‍♀️",
    "🏳️‍🌈",
    "𝕏",
    "Ω≈ç√",
    "Zoë Ñúñez",
    "محمد",
    "李",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\t",
    "\r\n",
    "\x7f",
    "\x9b",
)


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"


def has_control(text: str) -> bool:
    return any(_is_control(ch) for ch in text)


@functools.cache
def texts(*, min_size: int = 1, max_size: int = 200, controls: bool = True) -> st.SearchStrategy[str]:
    """Text a ShortText/LongText field accepts, biased towards what breaks renderers."""
    excluded = ("Cs",) if controls else ("Cs", "Cc")
    snippets = [s for s in SNIPPETS if controls or not has_control(s)]
    return (
        st.one_of(
            st.text(
                st.characters(exclude_categories=excluded),
                min_size=min_size,
                max_size=max(min_size, min(max_size, 30)),
            ),
            st.lists(st.sampled_from(snippets), min_size=1, max_size=6).map("".join),
            st.sampled_from(snippets).map(lambda s: (s * max_size)[:max_size]),  # at the length limit
        )
        .map(lambda s: s[:max_size])
        .filter(lambda s: len(s) >= min_size)
    )


def huge_text(size: int = 100_000) -> str:
    """A string of ``size`` characters made of the hostile snippets."""
    return ("".join(SNIPPETS) * (size // len("".join(SNIPPETS)) + 1))[:size]


# --- time ------------------------------------------------------------------------------

OFFSETS = (
    UTC,
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
    timezone(timedelta(hours=5, minutes=45)),
    timezone(timedelta(hours=-9, minutes=-30)),
    timezone(timedelta(hours=12, minutes=45)),
    timezone(timedelta(hours=1)),
)


def _stamp(instant: datetime, offset: timezone, zulu: bool) -> str:
    text = instant.astimezone(offset).isoformat()
    return text.replace("+00:00", "Z") if zulu else text


@functools.cache
def timestamps(low: datetime, high: datetime) -> st.SearchStrategy[str]:
    """ISO 8601 timestamps with an offset (odd ones too) whose instant is in [low, high] (UTC)."""
    return st.builds(
        _stamp,
        st.datetimes(low.replace(tzinfo=None), high.replace(tzinfo=None), timezones=st.just(UTC)),
        st.sampled_from(OFFSETS),
        st.booleans(),
    )


ANY_TIME = (EARLIEST_FEED_TIME, LATEST_FEED_TIME)  # the contract's window, both ends included
WINDOW = (datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))  # a realistic fortnight


# --- records -----------------------------------------------------------------------------

VALID_EMAILS = ("alex@example.org", "o'brien+updates@example.co.uk", "zoë@example.org")
VALID_MOBILES = ("07700 900123", "+447700900456", "07700900789")
OFFICER_IDS = ("104233", "<b>9</b>", "O'Brien&1")


def _optional(strategy: st.SearchStrategy[Any], full: bool = False) -> st.SearchStrategy[Any]:
    """The value or null; ``full`` records always carry the value."""
    return strategy if full else st.one_of(st.none(), strategy)


def _object(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]], full: bool
) -> st.SearchStrategy[dict[str, Any]]:
    """An object with its required keys and some (``full``: all) of its optional ones."""
    if full:
        return st.fixed_dictionaries({**required, **optional})
    return st.fixed_dictionaries(required, optional=optional)


@functools.cache
def _json_values(levels: int) -> st.SearchStrategy[Any]:
    """JSON values nesting at most ``levels`` containers deep."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        texts(min_size=0, max_size=40),
    )
    if levels == 0:
        return scalars
    inner = _json_values(levels - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=2),
        st.dictionaries(texts(min_size=0, max_size=12), inner, max_size=2),
    )


DETAILS_LIMIT = 8  # levels the contract allows in milestone details (the details object is level 1)
# The details a message quotes (the contract checks them; every other key is free-form).
QUOTED_DETAILS = ("first_hearing", "disposal")
MESSAGE_TEXT_LIMIT = 120
HEARING_AT_GARBAGE = ("next Tuesday", "", "2026-11-20T10:00:00", "9999-12-31T23:59:59-12:00", 5, ["x"])


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"k": value}
    return value


@functools.cache
def _details(kind: str, e2e: bool) -> st.SearchStrategy[dict[str, Any]]:
    return _draw_details(kind, e2e)


@st.composite
def _draw_details(draw: st.DrawFn, kind: str, e2e: bool) -> dict[str, Any]:
    details: dict[str, Any] = draw(
        st.dictionaries(
            texts(min_size=0, max_size=12).filter(lambda k: k not in (*QUOTED_DETAILS, "modified_at")),
            _json_values(DETAILS_LIMIT - 3),
            max_size=3,
        )
    )
    if kind == "suspect_charged" and draw(st.booleans()):
        hearing = {"court": draw(texts(max_size=MESSAGE_TEXT_LIMIT)), "at": draw(timestamps(*ANY_TIME))}
        details["first_hearing"] = draw(st.one_of(st.just(hearing), st.none()))
    if kind == "out_of_court_disposal" and draw(st.booleans()):
        details["disposal"] = draw(st.one_of(texts(max_size=MESSAGE_TEXT_LIMIT), st.none()))
    if draw(st.integers(0, 9)) == 0:
        details["deep"] = _nested(draw(st.integers(1, DETAILS_LIMIT - 2)))  # up to the limit exactly
    return details


@functools.cache
def person_names(controls: bool = True, full: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    text = _optional(texts(controls=controls), full)
    return _object({}, {"title": text, "forename": text, "surname": text}, full)


@functools.cache
def _emails(full: bool = False) -> st.SearchStrategy[Any]:
    return _optional(st.one_of(st.sampled_from(VALID_EMAILS), texts()), full)


@functools.cache
def _mobiles(full: bool = False) -> st.SearchStrategy[Any]:
    return _optional(st.one_of(st.sampled_from(VALID_MOBILES), texts()), full)


@functools.cache
def victims(e2e: bool = False, full: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    births = st.dates(datetime(1930, 1, 1).date(), datetime(2020, 1, 1).date()) if e2e else st.dates()
    preferences = {
        "channel": st.sampled_from([c.value for c in Channel]),
        "frequency_days": st.integers(1, 365),
        "language": st.one_of(st.sampled_from(["en", "cy", "pl"]), texts(min_size=2, max_size=10)),
        "opted_out": st.booleans(),
    }
    guardian = {
        "name": _optional(person_names(full=full), full),
        "email": _emails(full),
        "mobile": _mobiles(full),
    }
    return _object(
        {"person_id": texts()},
        {
            "name": _optional(person_names(full=full), full),
            "date_of_birth": _optional(births.map(lambda d: d.isoformat()), full),
            "contact": _object({}, {"email": _emails(full), "mobile": _mobiles(full)}, full),
            "preferences": _object({}, preferences, full),
            "safe_contact": _object({}, {"sms": st.booleans(), "email": st.booleans()}, full),
            "enhanced_rights": st.lists(texts(), min_size=int(full), max_size=2),
            "guardian": _optional(_object({}, guardian, full), full),
        },
        full,
    )


@functools.cache
def milestones(e2e: bool = False, full: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    return _draw_milestone(e2e, full)


@st.composite
def _draw_milestone(draw: st.DrawFn, e2e: bool, full: bool) -> dict[str, Any]:
    kind = draw(st.sampled_from([m.value for m in MilestoneType]))
    record: dict[str, Any] = {"id": draw(texts()), "type": kind, "at": draw(timestamps(*ANY_TIME))}
    if full or draw(st.booleans()):
        record["details"] = draw(_details(kind, e2e))
    return record


_REFS = st.one_of(st.sampled_from(["HU/000001/26", "HU/000002/26"]), texts())
_NUMBERS = st.one_of(st.sampled_from(["HU-20261120-0001", "HU-20261120-0002"]), texts())


@functools.cache
def _niche_optional(e2e: bool, full: bool) -> dict[str, st.SearchStrategy[Any]]:
    when = ANY_TIME
    lists = int(full)
    return {
        "incident_numbers": st.lists(texts(), min_size=lists, max_size=3),
        "flags": st.lists(st.sampled_from([f.value for f in Flag]), min_size=lists, max_size=3),
        "outcome": _optional(
            st.fixed_dictionaries({"code": st.integers(1, 22).map(str), "decided_at": timestamps(*when)}),
            full,
        ),
        "oic": _optional(
            _object(
                {"employee_id": st.sampled_from(OFFICER_IDS) if e2e else texts()},
                {"collar_number": _optional(texts(), full)},
                full,
            ),
            full,
        ),
        "milestones": st.lists(milestones(e2e, full), min_size=lists, max_size=4),
        "victims": st.lists(victims(e2e, full), min_size=lists, max_size=3),
    }


@functools.cache
def _storm_optional(e2e: bool, full: bool) -> dict[str, st.SearchStrategy[Any]]:
    when = ANY_TIME
    attendance = {
        "scheduled_for": _optional(timestamps(*when), full),
        "attended_at": _optional(timestamps(*when), full),
    }
    caller = {
        "name": _optional(person_names(full=full), full),
        "contact": _object({}, {"email": _emails(full), "mobile": _mobiles(full)}, full),
        "consent_to_updates": st.booleans(),
    }
    return {
        "opening_category": _optional(texts(), full),
        "closing_category": _optional(texts(), full),
        "crime_reference": _optional(texts(), full),
        "attendance": _optional(_object({}, attendance, full), full),
        "caller": _optional(_object({"person_id": texts()}, caller, full), full),
    }


@st.composite
def niche_records(
    draw: st.DrawFn, e2e: bool = False, crime_reference: str | None = None, full: bool = False
) -> dict[str, Any]:
    """A valid ``niche.occurrence/1`` record as a dict (keys in model order; ``full``: every key)."""
    when = WINDOW if e2e else ANY_TIME  # modified_at: when the record shows in the feed
    ref = crime_reference or draw(_REFS)
    record: dict[str, Any] = {
        "schema": "niche.occurrence/1",
        "occurrence_id": draw(texts()),
        "crime_reference": ref,
        "modified_at": draw(timestamps(*when)),
        "recorded_at": draw(timestamps(*ANY_TIME)),
    }
    optional = _niche_optional(e2e, full)
    for key, strategy in optional.items():
        if full or draw(st.booleans()):
            record[key] = draw(strategy)
    record["offence"] = {
        "code": draw(texts()),
        "description": draw(texts(min_size=0, max_size=2000)),
        "category": draw(texts()),
    }
    record["status"] = draw(st.sampled_from([s.value for s in CaseStatus]))
    return record


@st.composite
def storm_records(
    draw: st.DrawFn, e2e: bool = False, incident_number: str | None = None, full: bool = False
) -> dict[str, Any]:
    """A valid ``storm.incident/1`` record as a dict (keys in model order; ``full``: every key)."""
    when = WINDOW if e2e else ANY_TIME  # modified_at: when the record shows in the feed
    number = incident_number or draw(_NUMBERS)
    record: dict[str, Any] = {
        "schema": "storm.incident/1",
        "incident_number": number,
        "modified_at": draw(timestamps(*when)),
        "opened_at": draw(timestamps(*ANY_TIME)),
        "status": draw(texts()),
    }
    optional = _storm_optional(e2e, full)
    for key, strategy in optional.items():
        if full or draw(st.booleans()):
            record[key] = draw(strategy)
    return record


# --- hostile mutations ----------------------------------------------------------------------

BIG = huge_text()

# Field kinds, by dotted path with "*" for a list index (mirrors the models).
NICHE_FIELDS: dict[str, str] = {
    "schema": "literal",
    "occurrence_id": "short",
    "crime_reference": "short",
    "modified_at": "datetime",
    "recorded_at": "datetime",
    "incident_numbers": "list",
    "incident_numbers.*": "short",
    "offence": "object",
    "offence.code": "short",
    "offence.description": "long",
    "offence.category": "short",
    "flags": "list",
    "flags.*": "enum",
    "status": "enum",
    "outcome": "object?",
    "outcome.code": "outcome_code",
    "outcome.decided_at": "datetime",
    "oic": "object?",
    "oic.employee_id": "short",
    "oic.collar_number": "short?",
    "milestones": "list",
    "milestones.*": "object",
    "milestones.*.id": "short",
    "milestones.*.type": "enum",
    "milestones.*.at": "datetime",
    "milestones.*.details": "dict",
    "victims": "list",
    "victims.*": "object",
    "victims.*.person_id": "short",
    "victims.*.name": "object?",
    "victims.*.name.title": "short?",
    "victims.*.name.forename": "short?",
    "victims.*.name.surname": "short?",
    "victims.*.date_of_birth": "date?",
    "victims.*.contact": "object",
    "victims.*.contact.email": "short?",
    "victims.*.contact.mobile": "short?",
    "victims.*.preferences": "object",
    "victims.*.preferences.channel": "enum",
    "victims.*.preferences.frequency_days": "int",
    "victims.*.preferences.language": "language",
    "victims.*.preferences.opted_out": "bool",
    "victims.*.safe_contact": "object",
    "victims.*.safe_contact.sms": "bool",
    "victims.*.safe_contact.email": "bool",
    "victims.*.enhanced_rights": "list",
    "victims.*.enhanced_rights.*": "short",
    "victims.*.guardian": "object?",
    "victims.*.guardian.name": "object?",
    "victims.*.guardian.name.title": "short?",
    "victims.*.guardian.name.forename": "short?",
    "victims.*.guardian.name.surname": "short?",
    "victims.*.guardian.email": "short?",
    "victims.*.guardian.mobile": "short?",
}
NICHE_REQUIRED = {
    "schema",
    "occurrence_id",
    "crime_reference",
    "modified_at",
    "recorded_at",
    "offence",
    "status",
    "offence.code",
    "offence.description",
    "offence.category",
    "outcome.code",
    "outcome.decided_at",
    "oic.employee_id",
    "milestones.*.id",
    "milestones.*.type",
    "milestones.*.at",
    "victims.*.person_id",
}
STORM_FIELDS: dict[str, str] = {
    "schema": "literal",
    "incident_number": "short",
    "modified_at": "datetime",
    "opened_at": "datetime",
    "status": "short",
    "opening_category": "short?",
    "closing_category": "short?",
    "crime_reference": "short?",
    "attendance": "object?",
    "attendance.scheduled_for": "datetime?",
    "attendance.attended_at": "datetime?",
    "caller": "object?",
    "caller.person_id": "short",
    "caller.name": "object?",
    "caller.name.title": "short?",
    "caller.name.forename": "short?",
    "caller.name.surname": "short?",
    "caller.contact": "object",
    "caller.contact.email": "short?",
    "caller.contact.mobile": "short?",
    "caller.consent_to_updates": "bool",
}
STORM_REQUIRED = {"schema", "incident_number", "modified_at", "opened_at", "status", "caller.person_id"}

FIELDS = {"niche": NICHE_FIELDS, "storm": STORM_FIELDS}
REQUIRED = {"niche": NICHE_REQUIRED, "storm": STORM_REQUIRED}

_TEXT_WRONG: list[Any] = [12345, 1.5, True, [], {"a": "b"}, "", "x" * 201, BIG]
_TIME_WRONG: list[Any] = [
    "2026-11-20T10:00:00",  # naive
    "2026-11-20",  # a date, no time and no offset
    "2026-02-30T10:00:00Z",
    "2026-11-20T10:00:00+24:00",
    "0001-01-01T00:00:00+14:00",  # outside 2000-2100
    "9999-12-31T23:59:59-12:00",
    "1999-12-31T23:59:59Z",
    "2000-01-01T00:00:00+00:01",  # one minute before 2000 UTC
    "2100-01-01T00:00:01Z",
    "next tuesday",
    "",
    "1763632800",  # Unix times, as text and as numbers
    "1763632800000",
    "1.7636328e9",
    1763632800,
    True,
    [],
    {"at": "2026-11-20T10:00:00Z"},
]
# Values the model must refuse.
WRONG: dict[str, list[Any]] = {
    "literal": ["niche.occurrence/2", "NICHE.OCCURRENCE/1", "", 1, None],
    "short": [*_TEXT_WRONG, None],
    "short?": _TEXT_WRONG,
    "long": [12345, False, ["a"], {"a": 1}, "y" * 2001, BIG, None],
    "datetime": [*_TIME_WRONG, None],
    "datetime?": _TIME_WRONG,
    "enum": ["lost", "", "SUSPECT_ARRESTED", "Recorded", 3, [], None, BIG],
    "outcome_code": ["0", "23", "01", "18 ", "", "1a", 18, None],
    "int": [0, 366, -5, "abc", "", "28", 1.5, True, None, [], {}],
    "bool": ["maybe", "true", "yes", 1, 0, 2, 0.5, [], {}, None],
    "date?": ["1990-13-01", "1 January 1990", "1990-01-01T00:00:00Z", "", "0", "631152000", 0, [], {}],
    "language": ["e", "x" * 11, 5, [], None],
    "list": ["P-1", 5, {"a": 1}, True, None],
    "object": ["x", 5, [1], True, None],
    "object?": ["x", 5, [1], True],
    "dict": ["x", 5, [1, 2], None],
}


@dataclass(frozen=True)
class Line:
    """One line of a feed file (without its line ending) and what ingest must make of it."""

    raw: bytes
    valid: bool
    field: str | None = None  # invalid: the field the reason must name; None: the line as a whole
    kind: str = ""  # the mutation, for failure messages
    record: dict[str, Any] | None = None  # valid: the record as the model will read it (last key wins)

    @property
    def text(self) -> str:
        """The line as the feed reader hands it to ingest (undecodable bytes shown as \\xNN)."""
        try:
            return self.raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return self.raw.decode("utf-8", errors="backslashreplace").strip()


@functools.cache
def _records(feed: str, e2e: bool, full: bool) -> st.SearchStrategy[dict[str, Any]]:
    return niche_records(e2e, full=full) if feed == "niche" else storm_records(e2e, full=full)


def _pick(draw: st.DrawFn, values: list[Any]) -> Any:
    return values[draw(st.integers(0, len(values) - 1))]


def _walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        here = (*path, key)
        yield here, ".".join("*" if isinstance(p, int) else str(p) for p in here)
        if key != "details":  # free-form: the model does not look inside
            yield from _walk(child, here)


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def _set(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _delete(record: dict[str, Any], path: tuple[Any, ...]) -> None:
    target: Any = record
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(record))
    return copied


def _compact(record: Any, ascii_only: bool = True) -> bytes:
    return json.dumps(record, ensure_ascii=ascii_only).encode("utf-8")


def _fields(record: dict[str, Any], feed: str) -> list[tuple[tuple[Any, ...], str, str]]:
    table = FIELDS[feed]
    return [(path, pattern, table[pattern]) for path, pattern in _walk(record) if pattern in table]


@st.composite
def valid_lines(draw: st.DrawFn, feed: str, e2e: bool = False) -> Line:
    """A valid record, written compactly, padded, non-ASCII, or with a bad key the last copy overrides."""
    record = draw(_records(feed, e2e, False))
    style = draw(st.sampled_from(["compact", "unicode", "padded", "duplicate_key", "huge_padding"]))
    if style == "unicode":
        raw = _compact(record, ascii_only=False)
    elif style == "padded":
        raw = json.dumps(record, separators=(" ,\t", " \t:  ")).encode("utf-8")
    elif style == "huge_padding":
        raw = b"{" + b" \t" * 1_000_000 + _compact(record)[1:]  # a 2 MB line
    elif style == "duplicate_key":
        # The key appears twice; JSON parsers keep the last, which is the valid one.
        key = draw(st.sampled_from(sorted(k for k in record if k != "modified_at")))
        bad = _pick(draw, WRONG[FIELDS[feed][key]])
        raw = b"{" + _compact(key) + b": " + _compact(bad) + b", " + _compact(record)[1:]
    else:
        raw = _compact(record)
    return Line(raw, True, kind=f"valid:{style}", record=record)


def _mutations(feed: str, e2e: bool) -> list[str]:
    kinds = [
        *["wrong_value"] * 6,
        "missing_key",
        "unknown_key",
        "duplicate_key_last_bad",
        "not_an_object",
        "broken_json",
        "raw_control_character",
        "invalid_utf8",
        "bom",
        "lone_surrogate_escape",
        "nesting_past_the_parser_limit",
        "extremely_long_line",
    ]
    if feed == "niche":
        kinds += ["ten_thousand_milestones", "too_many_victims", "details_too_deep", "quoted_detail_wrong"]
    return kinds


@st.composite
def hostile_lines(draw: st.DrawFn, feed: str, e2e: bool = False) -> Line:
    """A line the model must refuse: one field broken (named), or the line itself broken."""
    # Half the time every optional key is there, so every field can be the one broken.
    full = draw(st.booleans())
    base = draw(_records(feed, e2e, full))
    record = _copy(base)
    kind = draw(st.sampled_from(_mutations(feed, e2e)))
    compact = _compact(record)
    if kind == "wrong_value":
        # A kind first, then one of its fields: small records still get every kind of wrong value.
        fields = _fields(record, feed)
        field_kind = draw(st.sampled_from(sorted({k for _, _, k in fields})))
        path = draw(st.sampled_from([path for path, _, k in fields if k == field_kind]))
        bad = _pick(draw, WRONG[field_kind])
        _set(record, path, bad)
        return Line(_compact(record), False, _dotted(path), f"{kind}:{field_kind}={bad!r:.40}")
    if kind == "missing_key":
        required = REQUIRED[feed]
        present = [(path, pattern) for path, pattern, _ in _fields(record, feed) if pattern in required]
        path, _pattern = draw(st.sampled_from(present))
        _delete(record, path)
        return Line(_compact(record), False, _dotted(path), kind)
    if kind == "unknown_key":
        objects = [()] + [
            path
            for path, _pattern, k in _fields(record, feed)
            if k.startswith("object") and isinstance(_get(record, path), dict)
        ]
        path = draw(st.sampled_from(objects))
        _get(record, path)["unexpected_field"] = draw(st.sampled_from([1, "x", None, BIG]))
        return Line(_compact(record), False, _dotted((*path, "unexpected_field")), kind)
    if kind == "duplicate_key_last_bad":
        key = draw(st.sampled_from(sorted(k for k in record if k != "modified_at")))
        bad = _pick(draw, WRONG[FIELDS[feed][key]])
        raw = compact[:-1] + b", " + _compact(key) + b": " + _compact(bad) + b"}"
        return Line(raw, False, key, kind)
    if kind == "ten_thousand_milestones":
        one = {"id": "M", "type": "suspect_arrested", "at": "2026-11-20T10:00:00Z", "details": {}}
        record["milestones"] = [dict(one, id=f"M-{n}") for n in range(10_000)]
        return Line(_compact(record), False, "milestones", kind)
    if kind == "details_too_deep":
        record.setdefault("milestones", [])
        if not record["milestones"]:
            record["milestones"].append({"id": "M", "type": "suspect_arrested", "at": "2026-11-20T10:00:00Z"})
        index = draw(st.integers(0, len(record["milestones"]) - 1))
        # One level past the limit up to pydantic's own JSON limit (~200): the model names the field.
        record["milestones"][index]["details"] = _nested(draw(st.integers(DETAILS_LIMIT, 180)))
        return Line(_compact(record), False, f"milestones.{index}.details", kind)
    if kind == "quoted_detail_wrong":
        # A court name or disposal a message would quote: too long, empty, not text; a hearing time
        # that cannot be read. The reason names the key inside the details.
        record.setdefault("milestones", [])
        if not record["milestones"]:
            record["milestones"].append({"id": "M", "type": "suspect_charged", "at": "2026-11-20T10:00:00Z"})
        index = draw(st.integers(0, len(record["milestones"]) - 1))
        chosen = record["milestones"][index]
        wrong_text = ["", "x" * (MESSAGE_TEXT_LIMIT + 1), BIG, 5, True, ["Hull"], {"name": "Hull"}]
        hearing = {"court": "Hull Magistrates' Court", "at": "2026-12-01T10:00:00Z"}
        where, details = draw(
            st.sampled_from(
                [
                    ("first_hearing.court", {"first_hearing": dict(hearing, court=_pick(draw, wrong_text))}),
                    (
                        "first_hearing.at",
                        {"first_hearing": dict(hearing, at=_pick(draw, HEARING_AT_GARBAGE))},
                    ),
                    ("first_hearing", {"first_hearing": _pick(draw, ["Hull, 1 December", 5, ["Hull"]])}),
                    ("first_hearing.unexpected_field", {"first_hearing": dict(hearing, unexpected_field=1)}),
                    ("disposal", {"disposal": _pick(draw, wrong_text)}),
                ]
            )
        )
        chosen["type"] = "out_of_court_disposal" if where == "disposal" else "suspect_charged"
        chosen["details"] = {**chosen.get("details", {}), **details}
        return Line(_compact(record), False, f"milestones.{index}.details.{where}", kind)
    if kind == "too_many_victims":
        record["victims"] = [{"person_id": f"P-{n}"} for n in range(51)]
        return Line(_compact(record), False, "victims", kind)
    # The line itself: no field can be named.
    if kind == "not_an_object":
        raw = draw(
            st.sampled_from(
                [
                    b"[" + compact + b"]",
                    b"[]",
                    b"42",
                    b"-0.5e10",
                    b"1" * 5000,  # past Python's int-digits limit
                    b"true",
                    b"null",
                    _compact("a string " + BIG[:100]),
                ]
            )
        )
    elif kind == "broken_json":
        raw = draw(
            st.sampled_from(
                [
                    compact[: len(compact) // 2],
                    compact + b" trailing",
                    compact[:-1] + b",}",
                    compact.replace(b'": ', b"': ", 1),
                    b"{not json",
                    b"\x00" * 10,
                    compact + b"\x00",
                    b"{" + b'"x": "' + b"x" * 1_000_000,
                ]
            )
        )
    elif kind == "raw_control_character":
        char = draw(st.sampled_from([b"\x00", b"\x01", b"\x08", b"\x0b", b"\x1b", b"\x19"]))
        head = b'"' + next(iter(record)).encode() + b'": "'
        raw = compact.replace(head, head + char, 1)
    elif kind == "invalid_utf8":
        junk = draw(
            st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
        )
        head = b'"schema": "'
        inside = compact.replace(head, head + junk, 1)  # inside a string value
        raw = draw(st.sampled_from([junk + compact, compact[:-1] + junk + b"}", junk * 3, inside]))
    elif kind == "bom":
        raw = b"\xef\xbb\xbf" + compact
    elif kind == "lone_surrogate_escape":
        head = b'"' + next(iter(record)).encode() + b'": "'
        raw = compact.replace(head, head + b"\\ud800", 1)
    elif kind == "nesting_past_the_parser_limit":
        # Past pydantic's JSON limit (~200), and past Python's recursion limit (~1000) too.
        depth = draw(st.sampled_from([260, 500, 5_000, 100_000]))
        raw = compact[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    else:  # extremely_long_line
        raw = b'{"schema": ' + _compact(BIG * 10) + b"}"
    return Line(raw, False, None, kind)


def _get(record: dict[str, Any], path: tuple[Any, ...]) -> Any:
    target: Any = record
    for key in path:
        target = target[key]
    return target


def feed_lines(feed: str, *, e2e: bool = False, max_lines: int = 10) -> st.SearchStrategy[list[Line]]:
    """A feed file's lines: valid records and hostile lines in any order."""
    return st.lists(
        st.one_of(valid_lines(feed, e2e), hostile_lines(feed, e2e)), min_size=1, max_size=max_lines
    )


ENDINGS = (b"\n", b"\r\n", b"\n\n", b"\n \t\r\n", b"")


def write_feed(lines: list[Line], endings: list[bytes]) -> bytes:
    """The file: each line with its ending (\\n, \\r\\n, blank lines after it, or none at the very end)."""
    out = bytearray()
    for index, line in enumerate(lines):
        ending = endings[index % len(endings)] if endings else b"\n"
        last = index == len(lines) - 1
        out += line.raw + (ending if ending or last else b"\n")
    return bytes(out)
