"""Fuzzing the feeds: hostile JSON Lines through ingest, the whole pipeline, and the renderers.

Strategies are in ``tests/strategies.py``: valid records built from the feed contracts,
then broken in one known place (so the reason must name that field) or broken as lines.
Properties (reproducible: ``derandomize=True``):

1. ingest never crashes and accounts for every line (read = changes + unchanged + stale +
   quarantined; every bad line quarantined with a reason naming the field);
2. the cursor never skips a good record, whatever surrounds it, and a further tick reads nothing;
3. a whole local run over a hostile feed completes: six output files, one quarantine line per
   bad record, no dead letters, no failed invocations;
4. rendering hostile names is safe: escaped HTML, no control characters or names in an SMS.

Inputs that once crashed a step, stalled the feed or altered a record have plain
regression tests at the end.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.adapters.table_layout import CURSORS, QUARANTINE, SNAPSHOTS
from shared.adapters.templates import TEMPLATE_ROOT, render_email, render_sms
from shared.bootstrap import Services
from shared.contracts.feeds import FEED_MODELS, LATEST_FEED_TIME, NicheOccurrence, StormIncident, Victim
from shared.contracts.messages import Officer
from shared.domain.journey import Duty, Journey
from shared.domain.policy import Policy
from shared.domain.wording import sms_segments
from shared.local.host import SimulatedClock
from shared.local.run import RunRequest, run
from shared.ports import Entity
from shared.settings import load_settings
from shared.steps.ingest import QUARANTINE_HEAD, QUARANTINE_INLINE_BYTES, IngestReport, ingest_feed
from tests.builders import OFFICER, incident, milestone, occurrence, replay
from tests.builders import embedded as embedded_services
from tests.strategies import (
    ENDINGS,
    OFFICER_IDS,
    WINDOW,
    Line,
    feed_lines,
    has_control,
    hostile_lines,
    niche_records,
    person_names,
    storm_records,
    texts,
    write_feed,
)

FEEDS = ("niche", "storm")
# Late enough for every valid record (2000 to 2100) to be visible to the JSONL reader.
INGEST_NOW = LATEST_FEED_TIME
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
OUTPUT_FILES = (
    "outbox.jsonl",
    "tasks.jsonl",
    "audit.jsonl",
    "quarantine.jsonl",
    "dead-letter.jsonl",
    "summary.json",
)


# --- helpers --------------------------------------------------------------------------------


@contextmanager
def embedded(feeds: dict[str, bytes], batch: int = 500, now: datetime = INGEST_NOW) -> Iterator[Services]:
    """Embedded services over feed files holding exactly these bytes, in a throwaway folder."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "feeds").mkdir()
        for name, data in feeds.items():
            (root / "feeds" / f"{name}.jsonl").write_bytes(data)
        settings_ = load_settings(
            LOCAL_DATA_DIR=root / "data", LOCAL_FEEDS_DIR=root / "feeds", FEED_BATCH_SIZE=batch
        )
        services, broker = embedded_services(settings_, SimulatedClock(now))
        try:
            yield services
        finally:
            broker.close()
            services.tables.close()  # type: ignore[attr-defined]


def ingest_until_still(feed: str, services: Services) -> list[IngestReport]:
    """Tick the ingest step until a tick reads nothing (the cursor has stopped moving)."""
    reports: list[IngestReport] = []
    for _ in range(10_000):
        report = ingest_feed(feed, services)
        reports.append(report)
        if report.read == 0:
            return reports
    raise AssertionError("the cursor never stopped moving")


def total(reports: list[IngestReport], field: str) -> int:
    return sum(int(getattr(report, field)) for report in reports)


def names_field(reason: str, field: str) -> bool:
    """True when one of the reason's ``loc: message`` parts is about ``field`` (or inside it)."""
    return any(part == field or part.startswith((field + ":", field + ".")) for part in reason.split("; "))


def key_of(record: NicheOccurrence | StormIncident) -> str:
    return record.crime_reference if isinstance(record, NicheOccurrence) else record.incident_number


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON Lines split on \\n only: data may hold U+2028, U+0085 or \\x1c, which str.splitlines() splits on."""
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def assert_quarantined_as_received(bad: list[Line], quarantined: list[Entity], context: str) -> None:
    """Each bad line has its own Quarantine row: the line as received, a reason naming the field."""
    errors: dict[str, list[str]] = {}
    for entity in quarantined:
        # A line too large for an entity is kept by reference: its digest, size and first characters.
        digest = entity.properties.get("record_sha256")
        key = str(digest) if digest else str(entity.properties["record"])
        if digest:
            assert int(entity.properties["record_bytes"]) > QUARANTINE_INLINE_BYTES
            assert len(str(entity.properties["record"])) <= QUARANTINE_HEAD
        errors.setdefault(key, []).append(str(entity.properties["error"]))
    for line in bad:
        encoded = line.text.encode("utf-8")
        big = len(encoded) > QUARANTINE_INLINE_BYTES
        reasons = errors.get(hashlib.sha256(encoded).hexdigest() if big else line.text, [])
        assert reasons, f"{line.kind}: not quarantined as received\n{context}"
        reason = reasons.pop()
        assert reason.strip(), f"{line.kind}: empty reason"
        if line.field is not None:
            assert names_field(reason, line.field), f"{line.kind}: {reason!r} does not name {line.field}"


def _as_kept(text: str) -> str:
    """A quarantined line as its row keeps it: whole, or by reference its first characters."""
    return text if len(text.encode("utf-8")) <= QUARANTINE_INLINE_BYTES else text[:QUARANTINE_HEAD]


def _ingest_lines(lines: list[bytes], now: datetime = INGEST_NOW) -> dict[str, Any]:
    with embedded({"niche": b"".join(line + b"\n" for line in lines)}, now=now) as services:
        reports = ingest_until_still("niche", services)
        return {
            "reports": reports,
            "quarantine": list(services.tables.query_partition(QUARANTINE, "niche")),
            "snapshots": {
                ref: services.tables.get(SNAPSHOTS, ref, "niche") for ref in ("HU/000001/26", "HU/000002/26")
            },
        }


def describe(lines: list[Line]) -> str:
    return "\n".join(
        f"  {'valid' if line.valid else 'BAD  '} {line.kind} {line.field or ''}" for line in lines
    )


ingest_cases = st.sampled_from(FEEDS).flatmap(lambda feed: st.tuples(st.just(feed), feed_lines(feed)))


# --- 1. ingest never crashes and accounts for every line ----------------------------------------


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(
    case=ingest_cases,
    endings=st.lists(st.sampled_from(ENDINGS), min_size=1, max_size=3),
    batch=st.integers(1, 4),
)
def test_ingest_never_crashes_and_quarantines_every_bad_line_naming_the_field(
    case: tuple[str, list[Line]], endings: list[bytes], batch: int
) -> None:
    feed, lines = case
    for line in lines:
        event(f"{feed} {line.kind.split('=')[0]}")
    data = write_feed(lines, endings)
    with embedded({feed: data}, batch=batch) as services:
        reports = ingest_until_still(feed, services)
        quarantined = list(services.tables.query_partition(QUARANTINE, feed))

    bad = [line for line in lines if not line.valid]
    context = describe(lines)
    assert total(reports, "read") == len(lines), context
    assert total(reports, "read") == sum(
        total(reports, f) for f in ("changes", "unchanged", "stale", "quarantined")
    ), context
    assert total(reports, "quarantined") == len(bad) == len(quarantined), context

    assert_quarantined_as_received(bad, quarantined, context)


bad_cases = st.sampled_from(FEEDS).flatmap(
    lambda feed: st.tuples(st.just(feed), st.lists(hostile_lines(feed), min_size=1, max_size=8))
)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(case=bad_cases)
def test_every_kind_of_bad_line_is_quarantined_as_received_with_the_field_named(
    case: tuple[str, list[Line]],
) -> None:
    """Only bad lines, many of them: every mutation on every field of the contract."""
    feed, lines = case
    for line in lines:
        event(f"{feed} {line.kind.split('=')[0]}")
    with embedded({feed: write_feed(lines, [b"\n"])}) as services:
        reports = ingest_until_still(feed, services)
        quarantined = list(services.tables.query_partition(QUARANTINE, feed))
        cursor = services.tables.get(CURSORS, feed, "cursor")
    assert total(reports, "quarantined") == total(reports, "read") == len(lines) == len(quarantined)
    assert total(reports, "changes") == 0
    assert cursor is not None and cursor.properties["quarantined"] == len(lines)
    assert_quarantined_as_received(lines, quarantined, describe(lines))


# --- 2. the cursor never skips a good record ---------------------------------------------------------


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(
    case=ingest_cases,
    endings=st.lists(st.sampled_from(ENDINGS), min_size=1, max_size=3),
    batch=st.integers(1, 4),
)
def test_every_good_record_gets_its_snapshot_whatever_surrounds_it(
    case: tuple[str, list[Line]], endings: list[bytes], batch: int
) -> None:
    feed, lines = case
    model = FEED_MODELS[feed]
    data = write_feed(lines, endings)

    # What ingest must end with: per key, the latest record by modified_at (an older one is stale).
    latest: dict[str, NicheOccurrence | StormIncident] = {}
    stale = 0
    for line in lines:
        if not line.valid:
            continue
        record = model.model_validate_json(line.text)
        assert record == model.model_validate(line.record), f"generator: {line.kind} reads differently"
        current = latest.get(key_of(record))
        if current is not None and record.modified_at < current.modified_at:
            stale += 1
        else:
            latest[key_of(record)] = record

    with embedded({feed: data}, batch=batch) as services:
        reports = ingest_until_still(feed, services)
        snapshots = {key: services.tables.get(SNAPSHOTS, key, feed) for key in latest}
        cursor = services.tables.get(CURSORS, feed, "cursor")
        again = ingest_feed(feed, services)
        # A Niche change goes to resolve_officer; a STORM one, with no officer to resolve, on to
        # evaluate_journey.
        settings = services.settings
        to, other = (
            (settings.CASE_CHANGES_QUEUE, settings.JOURNEY_EVENTS_QUEUE)
            if feed == "niche"
            else (settings.JOURNEY_EVENTS_QUEUE, settings.CASE_CHANGES_QUEUE)
        )
        pending = services.publisher.pending(to)  # type: ignore[attr-defined]
        elsewhere = services.publisher.pending(other)  # type: ignore[attr-defined]

    context = describe(lines)
    for key, record in latest.items():
        stored = snapshots[key]
        assert stored is not None, f"no snapshot for {key!r}\n{context}"
        assert model.model_validate_json(str(stored.properties["record"])) == record, context
    assert total(reports, "stale") == stale, context
    valid = sum(line.valid for line in lines)
    assert total(reports, "changes") + total(reports, "unchanged") == valid - stale, context
    assert pending == total(reports, "changes"), "every case change is on the queue"
    assert elsewhere == 0, "and on no other"
    assert again.read == 0, "a tick after the end reads nothing new"
    assert cursor is not None
    position = int(cursor.properties["position"])
    assert data[:position].endswith(b"\n") or position == len(data)
    assert data[position:].decode("utf-8", errors="backslashreplace").strip() == "", (
        "the cursor stopped short"
    )


# --- 3. a whole local run over a hostile feed --------------------------------------------------------


@st.composite
def e2e_feeds(draw: st.DrawFn) -> dict[str, Any]:
    """A folder's worth of hostile feeds: valid records with hostile values, and bad lines among them."""
    niche_valid = [
        draw(niche_records(e2e=True, crime_reference=f"HU/{n:06d}/26{draw(texts(min_size=0, max_size=20))}"))
        for n in range(draw(st.integers(1, 4)))
    ]
    # A long offence description, and a victim whose every name field is hostile, always flow through.
    niche_valid[0]["offence"]["description"] = draw(texts(min_size=2000, max_size=2000))
    niche_valid[0].setdefault("victims", []).append(
        {"person_id": "P-hostile", "name": draw(person_names()), "contact": {"email": "alex@example.org"}}
    )
    storm_valid = [
        draw(
            storm_records(
                e2e=True, incident_number=f"HU-20261120-{n:04d}{draw(texts(min_size=0, max_size=8))}"
            )
        )
        for n in range(draw(st.integers(0, 3)))
    ]
    niche_bad = draw(st.lists(hostile_lines("niche", e2e=True), max_size=4))
    storm_bad = draw(st.lists(hostile_lines("storm", e2e=True), max_size=3))
    niche_lines = draw(
        st.permutations([Line(json.dumps(r).encode(), True, record=r) for r in niche_valid] + niche_bad)
    )
    storm_lines = draw(
        st.permutations([Line(json.dumps(r).encode(), True, record=r) for r in storm_valid] + storm_bad)
    )
    officers = [OFFICER] + [
        {
            "employee_id": employee_id,
            "collar_number": draw(st.one_of(st.none(), texts(max_size=20))),
            "display_name": draw(texts()),
            "rank": draw(st.one_of(st.none(), texts())),
            "email": "officer@example.police.uk",
            "phone": draw(texts(max_size=20)),
            "active": draw(st.booleans()),
        }
        for employee_id in OFFICER_IDS[1:]
    ]
    return {"niche": niche_lines, "storm": storm_lines, "officers": officers}


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(case=e2e_feeds())
def test_a_local_run_over_hostile_feeds_completes_with_every_output_and_no_dead_letters(
    case: dict[str, Any],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        feeds, out = Path(folder) / "feeds", Path(folder) / "out"
        feeds.mkdir()
        for feed in FEEDS:
            (feeds / f"{feed}.jsonl").write_bytes(write_feed(case[feed], [b"\n"]) if case[feed] else b"")
        (feeds / "officers.json").write_text(json.dumps(case["officers"]), encoding="utf-8")
        # The span is given explicitly, to keep the replay short.
        start, end = WINDOW[0] - timedelta(days=1), WINDOW[1] + timedelta(days=9)
        summary = run(RunRequest(feeds, feeds / "officers.json", out, start=start, end=end))

        for name in OUTPUT_FILES:
            assert (out / name).is_file(), name
        quarantine = read_jsonl(out / "quarantine.jsonl")
        dead = read_jsonl(out / "dead-letter.jsonl")
        audit = read_jsonl(out / "audit.jsonl")
        read_jsonl(out / "outbox.jsonl")
        read_jsonl(out / "tasks.jsonl")

    assert dead == [], [d["reason"][:300] for d in dead]
    assert summary["dead_letters"] == 0
    assert summary["failures"] == {}, summary["failures"]
    bad = Counter((feed, _as_kept(line.text)) for feed in FEEDS for line in case[feed] if not line.valid)
    assert Counter((row["feed"], row["record"]) for row in quarantine) == bad
    assert all(row["error"] for row in quarantine)
    assert summary["records"] == {
        "niche": len(case["niche"]),
        "storm": len(case["storm"]),
        "quarantined": sum(bad.values()),
    }
    # Every victim of every good record got its acknowledgement decided (sent, tasked or suppressed).
    acked = {(row["crime_reference"], row["person_id"]) for row in audit if row["duty"] == "ack"}
    for line in case["niche"]:
        if line.valid:
            assert line.record is not None
            for person in line.record.get("victims", []):
                assert (line.record["crime_reference"], person["person_id"]) in acked


# --- 4. rendering hostile values ------------------------------------------------------------------------

POLICY = Policy()
TEMPLATES = sorted({p.name.split(".")[0] for p in (TEMPLATE_ROOT / "en" / "updates").glob("*.sms.j2")})
SENTINEL = "Qvzx"  # in every name part; appears in no template
_TAGS = re.compile(
    r'<!DOCTYPE html>|<html lang="[a-z]+">|</?(?:html|head|title|body|p)>|<meta charset="utf-8">|<body style="[^"<>]*">'
)


@st.composite
def journeys(draw: st.DrawFn) -> tuple[Journey, list[Duty]]:
    """A victim's journey with hostile names, a hostile officer and hostile duty details."""
    plain = texts().filter(lambda s: SENTINEL not in s)  # control and bidi characters included

    def named() -> st.SearchStrategy[str]:
        return texts(max_size=150).map(lambda s: s + SENTINEL)

    name = {"title": draw(named()), "forename": draw(named()), "surname": draw(named())}
    journey = Journey(
        crime_reference=draw(plain),
        person_id=draw(texts()),
        role="victim",
        victim=Victim.model_validate({"person_id": "P-1", "name": name}),
        officer=Officer(
            employee_id=draw(texts()),
            display_name=draw(texts()),
            rank=draw(st.one_of(st.none(), texts())),
            collar_number=draw(st.one_of(st.none(), plain)),
            email=draw(st.one_of(st.none(), texts())),
            generic=draw(st.booleans()),
        ),
    )
    moments = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC))
    # A time the renderer cannot read (free-form hearing details) must not stop the message.
    times = st.one_of(
        moments.map(datetime.isoformat),
        st.sampled_from(["next Tuesday", "", "2026-11-20T10:00:00", "9999-12-31T23:59:59-12:00", "None"]),
    )
    duties = []
    for n, template in enumerate(draw(st.lists(st.sampled_from(TEMPLATES), min_size=1, max_size=4))):
        details = {
            "milestone": draw(texts()),
            "court": draw(texts()),
            "hearing_at": draw(times),
            "appointment": draw(times),
            "outcome": draw(st.one_of(st.integers(1, 22).map(str), texts())),
            "first_officer": draw(st.sampled_from(["yes", "no", "<b>yes</b>"])),
            "disposal": draw(texts()),
        }
        duties.append(
            Duty(
                key=f"k{n}:{template}",
                template=template,
                event_at=draw(moments),
                change_id="c",
                details=details,
            )
        )
    return journey, duties


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(case=journeys())
def test_rendering_hostile_names_escapes_the_email_and_keeps_names_and_controls_out_of_the_sms(
    case: tuple[Journey, list[Duty]],
) -> None:
    journey, duties = case
    email = render_email(journey, duties, POLICY)
    assert "<script" not in email.html.lower()
    leftover = _TAGS.sub("", email.html)
    assert "<" not in leftover and ">" not in leftover, "markup from data in the email HTML"
    # The escaped HTML says exactly what the plain text says.
    paragraphs = [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", email.html, flags=re.S)]
    assert paragraphs == email.text.strip().split("\n\n")
    title = re.search(r"<title>(.*?)</title>", email.html, flags=re.S)
    assert title is not None and html.unescape(title.group(1)) == email.subject
    assert "\n" not in email.subject and "\r" not in email.subject

    sms = render_sms(journey, duties, POLICY)
    assert SENTINEL not in sms.text, "an SMS named the victim"
    assert not has_control(sms.text), repr(sms.text)
    assert not any(unicodedata.category(ch) == "Cf" for ch in sms.text), "a bidi or format character"
    assert sms.segments == sms_segments(sms.text)


# --- inputs that used to crash a step (fixed in e69aa40): end to end, they no longer dead-letter ---------


def _nested_details(depth: int) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for _ in range(depth):
        details = {"k": details}
    return details


ONCE_FATAL = {
    # details just under pydantic's JSON limit: resolve_officer/evaluate_journey could not re-parse them
    "details-196-deep": (
        [milestone("M-1", "suspect_arrested", "2026-11-20T10:00:00Z", _nested_details(196))],
        None,
    ),
    "details-197-deep": (
        [milestone("M-1", "suspect_arrested", "2026-11-20T10:00:00Z", _nested_details(197))],
        None,
    ),
    # dates at the ends of datetime's range: OverflowError in code_deadline
    "milestone-at-year-9999": ([milestone("M-1", "suspect_arrested", "9999-12-31T00:00:00Z")], None),
    # hearing and attendance times the renderer could not read: ValueError/OverflowError in send_message
    "hearing-at-words": (
        [
            milestone(
                "M-1",
                "suspect_charged",
                "2026-11-20T10:00:00Z",
                {"first_hearing": {"court": "Hull", "at": "next Tuesday"}},
            )
        ],
        None,
    ),
    "hearing-at-number": (
        [
            milestone(
                "M-1",
                "suspect_charged",
                "2026-11-20T10:00:00Z",
                {"first_hearing": {"court": "Hull", "at": 5}},
            )
        ],
        None,
    ),
    "hearing-at-year-9999": (
        [
            milestone(
                "M-1",
                "suspect_charged",
                "2026-11-20T10:00:00Z",
                {"first_hearing": {"court": "Hull", "at": "9999-12-31T23:59:59-12:00"}},
            )
        ],
        None,
    ),
    "attendance-year-9999": (None, "9999-12-31T23:59:59-12:00"),
    "attendance-2100": (None, "2100-01-01T00:00:00Z"),
}


@pytest.mark.parametrize("name", sorted(ONCE_FATAL))
def test_inputs_that_once_crashed_a_step_are_quarantined_or_flow_through(name: str, tmp_path: Path) -> None:
    milestones, attendance = ONCE_FATAL[name]
    niche = [occurrence("2026-11-20T10:00:00Z", milestones=milestones)] if milestones else []
    storm = [incident("2026-11-20T10:00:00Z", scheduled_for=attendance)] if attendance else None
    result = replay(tmp_path, niche, storm=storm, end="2026-12-05T00:00:00+00:00")
    summary = result["summary"]
    assert summary["dead_letters"] == 0 and summary["failures"] == {}
    assert summary["records"]["quarantined"] + len(result["outbox"]) + len(result["tasks"]) > 0


def test_a_record_dated_year_1_is_quarantined_and_not_dead_lettered(tmp_path: Path) -> None:
    record = occurrence("2026-11-20T10:00:00Z") | {"recorded_at": "0001-01-01T00:00:00Z"}
    summary = replay(tmp_path, [record], end="2026-12-05T00:00:00+00:00")["summary"]
    assert summary["records"]["quarantined"] == 1 and summary["dead_letters"] == 0


# Fixed in 46bee27: times and dates must be ISO 8601 text (shared/contracts/feeds.py).
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("modified_at", "1763632800"),
        ("recorded_at", "1763632800000"),
        ("recorded_at", "1.7636328e9"),
        ("victims.0.date_of_birth", "0"),
        ("victims.0.date_of_birth", "631152000"),
    ],
)
def test_a_digit_string_in_a_time_or_date_field_is_quarantined_naming_the_field(
    field: str, value: Any
) -> None:
    record = occurrence("2026-11-20T10:00:00Z", ref="HU/000001/26")
    target: Any = record
    *parents, last = field.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    result = _ingest_lines([json.dumps(record).encode()])
    assert [names_field(str(e.properties["error"]), field) for e in result["quarantine"]] == [True]


# --- bugs the fuzzing found, now fixed: regression tests -----------------------------------------------------


JUNK_FROM_2099 = b'{"modified_at": "2099-12-31T00:00:00Z", "junk": 1}'


# Fixed: a line the contract rejects no longer holds the reader or sets the run's span.
def test_a_bad_line_with_a_future_time_does_not_hold_back_the_records_behind_it() -> None:
    good = json.dumps(occurrence("2026-11-20T10:00:00Z", ref="HU/000001/26")).encode()
    result = _ingest_lines([JUNK_FROM_2099, good], now=datetime(2026, 12, 1, tzinfo=UTC))
    assert len(result["quarantine"]) == 1
    assert result["snapshots"]["HU/000001/26"] is not None


# Fixed: a line the contract rejects no longer holds the reader or sets the run's span.
def test_a_bad_line_with_a_future_time_does_not_stretch_the_default_run(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    good = json.dumps(occurrence("2026-11-20T10:00:00Z")).encode()
    (feeds / "niche.jsonl").write_bytes(good + b"\n" + JUNK_FROM_2099 + b"\n")
    (feeds / "officers.json").write_text(json.dumps([OFFICER]))

    def guard(start: datetime, now: datetime, end: datetime, counts: object) -> None:
        assert end < datetime(2027, 1, 1, tzinfo=UTC), f"the replay would run until {end.isoformat()}"

    run(RunRequest(feeds, feeds / "officers.json", tmp_path / "out"), guard)
