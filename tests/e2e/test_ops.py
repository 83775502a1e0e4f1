"""Operations commands (python -m shared.ops) on small local runs, through the real host and functions."""

from __future__ import annotations

import csv
import getpass
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import function_app
from shared.adapters.sqlite_queue import QueueConfig, SqliteQueueBroker
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import (
    AUDIT,
    CRIMES,
    FACTS_ROW,
    JOURNEYS,
    QUARANTINE,
    SNAPSHOTS,
    facts_from,
    journey_from,
)
from shared.contracts.messages import CaseChange
from shared.local.run import RunRequest, run
from shared.ops.context import Context, OpsError
from shared.ports import OutgoingMessage
from tests.azurite import azurite_tables  # noqa: F401  (fixture)
from tests.builders import copy_to_table_storage, generated_sample_run, ops
from tests.conftest import SCENARIOS, read_jsonl

REPO = Path(__file__).resolve().parents[2]
ADULT = "HU/000101/26"


def _scenario_run(name: str, out: Path, **options: Any) -> dict[str, Any]:
    folder = SCENARIOS / name
    return run(RunRequest(folder, folder / "officers.json", out, **options))


@pytest.fixture(autouse=True)
def _no_service_bus_or_table_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands read the settings from the environment: these tests mean the embedded stores.
    for name in ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection", "LOCAL_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 crimes over 10 days (10 records malformed on purpose), polled hourly to keep it quick."""
    return generated_sample_run(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="module")
def dead_letter_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """first_journey with send_message failing, every time, for the adult victim's acknowledgement."""
    out = tmp_path_factory.mktemp("dead") / "run"
    real = function_app.send_message_step

    def broken(body: bytes | str, services: Any, properties: Any = None) -> Any:
        message = json.loads(body)
        if message["crime_reference"] == ADULT and message["duties"] == ["ack"]:
            raise RuntimeError("template bug: acknowledgement cannot be rendered")
        return real(body, services, properties)

    with pytest.MonkeyPatch.context() as patch:
        for name in ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection"):
            patch.delenv(name, raising=False)
        patch.setattr(function_app, "send_message_step", broken)
        summary = _scenario_run("first_journey", out)
    assert summary["dead_letters"] == 1
    return out


def _copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


# --- dead letters -----------------------------------------------------------------------------


def test_dead_letters_list_gives_queue_id_session_and_reason_and_never_the_body(
    dead_letter_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _copy(dead_letter_run, tmp_path / "run")
    code, out, err = ops(capsys, "dead-letters", "list", "--data", data)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 1
    queue, message_id, session, reason = lines[0].split("\t")
    body = read_jsonl(data / "dead-letter.jsonl")[0]["message"]  # the run's own export holds the body
    assert queue == "outbound-messages" and session == "-"  # outbound messages have no session
    assert message_id == body["message_key"]
    assert reason.startswith("MaxDeliveryCountExceeded: ") and "template bug" in reason
    assert body["crime_reference"] == ADULT and ADULT not in out and body["person_id"] not in out
    # --queue narrows the list; another queue has none.
    assert ops(capsys, "dead-letters", "list", "--queue", "case-changes", "--data", data)[:2] == (0, "")


def test_a_dead_letter_replayed_after_the_fix_is_sent_and_leaves_the_dead_letters(
    dead_letter_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _copy(dead_letter_run, tmp_path / "run")
    before = [m for m in read_jsonl(data / "outbox.jsonl") if m["crime_reference"] == ADULT]
    assert "acknowledgement" not in [m["template"] for m in before]
    message_id = read_jsonl(data / "dead-letter.jsonl")[0]["message"]["message_key"]

    # The fix is in (send_message is no longer patched): replay it, and the next run sends it.
    code, out, err = ops(capsys, "dead-letters", "replay", "--id", message_id, "--data", data)
    assert code == 0 and err == ""
    assert out.splitlines() == [
        f"replayed\toutbound-messages\t{message_id}\tas {message_id}#replay-1",
        "1 dead letter replayed",
    ]
    assert ops(capsys, "dead-letters", "list", "--data", data)[1] == ""
    assert ops(capsys, "dead-letters", "replay", "--all", "--data", data)[1] == "0 dead letters replayed\n"

    summary = _scenario_run("first_journey", data)
    assert summary["dead_letters"] == 0
    after = [m for m in read_jsonl(data / "outbox.jsonl") if m["crime_reference"] == ADULT]
    acks = [m for m in after if m["template"] == "acknowledgement"]
    assert len(acks) == 1 and acks[0]["to"] == "alex@example.org"
    assert acks[0]["sent_at"] == summary["clock"]["end"]  # sent when replayed: the run's end
    assert len(after) == len(before) + 1  # nothing else was sent twice


def test_a_replayed_message_that_fails_again_can_be_replayed_again_under_a_new_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    SqliteTableStore(tmp_path / "state.db").close()
    broker = SqliteQueueBroker(
        tmp_path / "queues.db", [QueueConfig("case-changes", sessions=True, max_delivery_count=1)], lambda: at
    )
    broker.send("case-changes", [OutgoingMessage("poison", "m-1", session_id="S")])
    for replays, expected_id in enumerate(("m-1", "m-1#replay-1")):
        received = broker.receive("case-changes", receiver="host", now=at)
        assert received is not None and received.message_id == expected_id
        broker.abandon(received, now=at, error="still broken")  # one delivery allowed: dead-lettered
        listed = ops(capsys, "dead-letters", "list", "--data", tmp_path, "--at", at.isoformat())[1]
        assert listed.split("\t")[:3] == ["case-changes", expected_id, "S"]
        out = ops(capsys, "dead-letters", "replay", "--all", "--data", tmp_path, "--at", at.isoformat())[1]
        # Within the duplicate-detection window, yet not dropped: each replay has an id of its own.
        assert f"as m-1#replay-{replays + 1}" in out
        assert broker.pending("case-changes") == 1
    broker.close()


def test_a_replay_id_is_the_original_id_and_which_replay_of_it_whatever_else_is_dead_lettered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    SqliteTableStore(tmp_path / "state.db").close()
    queues = [
        QueueConfig(name, sessions=True, max_delivery_count=1) for name in ("case-changes", "journey-events")
    ]
    broker = SqliteQueueBroker(tmp_path / "queues.db", queues, lambda: at)

    def dead_letter(queue: str, message_id: str, *, sent: bool = False) -> None:
        if not sent:
            broker.send(queue, [OutgoingMessage("poison", message_id, session_id=message_id[0])])
        received = broker.receive(queue, receiver="host", now=at)
        assert received is not None and received.message_id == message_id
        broker.abandon(received, now=at, error="still broken")  # one delivery allowed: dead-lettered

    def replayed(*args: str) -> list[str]:
        out = ops(capsys, "dead-letters", "replay", *args, "--data", tmp_path, "--at", at.isoformat())[1]
        return [line.split("\t")[-1] for line in out.splitlines() if line.startswith("replayed")]

    for queue, message_id in [("case-changes", "a"), ("journey-events", "b"), ("case-changes", "c")]:
        dead_letter(queue, message_id)
    # The third dead letter, the first replay of "c": c#replay-1, not a count of dead letters.
    assert replayed("--id", "c") == ["as c#replay-1"]
    dead_letter("case-changes", "c#replay-1", sent=True)  # the replay fails in its turn
    assert replayed("--id", "c#replay-1") == ["as c#replay-2"]
    dead_letter("journey-events", "d")
    assert replayed("--queue", "journey-events", "--all") == ["as b#replay-1", "as d#replay-1"]
    assert replayed("--id", "a") == ["as a#replay-1"]
    broker.close()


def test_with_service_bus_settings_the_local_queues_are_refused_not_shown_empty(
    dead_letter_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dead letters then come from Service Bus (tests/integration/test_servicebus_dead_letters.py), and quarantine
    # reingest emits there (below): the run folder's queues are not what the settings name.
    monkeypatch.setenv("StateStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv(
        "ServiceBusConnection", "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=v"
    )
    with Context(dead_letter_run) as context, pytest.raises(OpsError, match="queues are not used"):
        context.broker  # noqa: B018


# --- quarantine -------------------------------------------------------------------------------


def test_quarantine_list_gives_feed_row_key_and_error_and_never_the_record(
    generated_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ops(capsys, "quarantine", "list", "--data", generated_run)
    assert code == 0 and err == ""
    stored = {
        (e.partition_key, e.row_key): e.properties
        for e in SqliteTableStore(generated_run / "state.db").export(QUARANTINE)
    }
    lines = [line.split("\t") for line in out.splitlines()]
    assert len(lines) == len(stored) >= 5  # about 1% of the sample's records are malformed on purpose
    for feed, row_key, error, _ in lines:
        assert error == stored[(feed, row_key)]["error"]
    assert "{" not in out and "person_id" not in out
    storm = ops(capsys, "quarantine", "list", "--feed", "storm", "--data", generated_run)[1]
    assert {line.split("\t")[0] for line in storm.splitlines()} == {"storm"}


def test_quarantine_list_names_each_records_crime_or_incident_and_quarantine_jsonl_its_row_key(
    generated_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = [
        line.split("\t")
        for line in ops(capsys, "quarantine", "list", "--data", generated_run)[1].splitlines()
    ]
    exported = {(row["feed"], row["row_key"]): row for row in read_jsonl(generated_run / "quarantine.jsonl")}
    assert {(feed, row_key) for feed, row_key, _, _ in listed} == set(
        exported
    )  # the same rows, by the same keys
    named = 0
    for feed, row_key, error, reference in listed:
        row = exported[(feed, row_key)]
        assert row["error"] == error and set(row) >= {"feed", "record", "error", "row_key"}
        key = "crime_reference" if feed == "niche" else "incident_number"
        try:
            record = json.loads(row["record"])
        except ValueError:  # cut short: named if the key's value is there whole, else says so
            found = re.search(rf'"{key}": ?"([^"]+)"', row["record"])
            assert reference == (found.group(1) if found else f"no {key} (not valid JSON)")
            continue
        value = record.get(key) if isinstance(record, dict) else None
        assert reference == (value if isinstance(value, str) and value else f"no {key} in the record")
        named += reference == value
    assert named >= 3


def test_an_empty_listing_says_so_in_one_line_and_leaves_stdout_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "run"
    _scenario_run("first_journey", data)  # nothing dead-lettered, nothing quarantined
    for args, said in (
        (["dead-letters", "list"], "no dead letters\n"),
        (["dead-letters", "list", "--queue", "case-changes"], "no dead letters on queue case-changes\n"),
        (["quarantine", "list"], "no quarantined records\n"),
        (["quarantine", "list", "--feed", "storm"], "no quarantined records in the storm feed\n"),
    ):
        assert ops(capsys, *args, "--data", data) == (0, "", said), args


def test_reingesting_one_row_reports_that_row_and_how_many_remain_quarantined_in_all(
    generated_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _copy(generated_run, tmp_path / "run")
    rows = [line.split("\t") for line in ops(capsys, "quarantine", "list", "--data", data)[1].splitlines()]
    total = len(rows)
    by_feed = {feed: sum(row[0] == feed for row in rows) for feed in ("niche", "storm")}
    assert total >= 5 and by_feed["niche"] and by_feed["storm"]
    feed, row_key, reason, _ = rows[-1]
    # Still failing: kept, with its reason; every row is still there.
    code, out, _ = ops(capsys, "quarantine", "reingest", "--row", row_key, "--feed", feed, "--data", data)
    assert code == 0
    assert out.splitlines() == [
        f"kept\t{feed}\t{row_key}\t{reason}",
        f"0 reingested, 1 kept; {total} still quarantined (niche {by_feed['niche']}, storm {by_feed['storm']})",
    ]
    # Replaced by a record that validates (one already stored, so nothing changes): one fewer remains.
    stored = SqliteTableStore(data / "state.db")
    snapshot = next(e for e in stored.export(SNAPSHOTS) if e.row_key == feed)
    stored.close()
    (tmp_path / "fixed.json").write_text(str(snapshot.properties["record"]), encoding="utf-8")
    code, out, _ = ops(
        capsys, "quarantine", "reingest", "--row", row_key, "--feed", feed,
        "--record-file", tmp_path / "fixed.json", "--data", data,
    )  # fmt: skip
    left = {**by_feed, feed: by_feed[feed] - 1}
    assert code == 0 and out.splitlines()[0].startswith(f"reingested\t{feed}\t{row_key}\t")
    assert out.splitlines()[1] == (
        f"1 reingested, 0 kept; {total - 1} still quarantined (niche {left['niche']}, storm {left['storm']})"
    )


def test_a_corrected_record_is_reingested_and_its_victim_told_while_a_still_bad_one_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "run"
    first = _scenario_run("malformed", data)
    rows = [line.split("\t") for line in ops(capsys, "quarantine", "list", "--data", data)[1].splitlines()]
    (_, missing_ref, _, no_ref), (_, broken_json, broken_reason, not_json) = rows
    assert (no_ref, not_json) == ("no crime_reference in the record", "no crime_reference (not valid JSON)")
    raw = json.loads(read_jsonl(data / "quarantine.jsonl")[0]["record"])
    corrected = raw | {
        "crime_reference": "HU/000303/26",
        "victims": [
            {
                "person_id": "P-3",
                "name": {"forename": "Kim", "surname": "Lee"},
                "contact": {"email": "kim@example.org"},
            }
        ],
    }
    record_file = tmp_path / "fixed.json"
    record_file.write_text(json.dumps(corrected, indent=2), encoding="utf-8")

    code, out, err = ops(
        capsys, "quarantine", "reingest", "--row", missing_ref, "--record-file", record_file, "--data", data
    )
    assert code == 0 and err == ""
    assert out.splitlines() == [
        f"reingested\tniche\t{missing_ref}\tcase change emitted for HU/000303/26",
        "1 reingested, 0 kept; 1 still quarantined (niche 1, storm 0)",
    ]
    state = SqliteTableStore(data / "state.db")
    assert state.get(QUARANTINE, "niche", missing_ref) is None
    assert state.get(SNAPSHOTS, "HU/000303/26", "niche") is not None
    audit = [e.properties["decision"] for e in state.query_partition(AUDIT, "HU/000303/26")]
    assert audit == ["reingested"]
    queues = SqliteQueueBroker(
        data / "queues.db", [QueueConfig("case-changes", sessions=True)], lambda: datetime.now(UTC)
    )
    assert queues.pending("case-changes") == 1
    queues.close()

    # Without a fix the broken record is kept, and says why.
    code, out, _ = ops(capsys, "quarantine", "reingest", "--all", "--data", data)
    assert code == 0
    assert out.splitlines() == [
        f"kept\tniche\t{broken_json}\t{broken_reason}",
        "0 reingested, 1 kept; 1 still quarantined (niche 1, storm 0)",
    ]
    assert state.get(QUARANTINE, "niche", broken_json) is not None

    # The next run takes the case change from the queue: the new victim is told, once.
    end = datetime.fromisoformat(first["clock"]["end"]).replace(day=10)
    _scenario_run("malformed", data, end=end)
    told = [m for m in read_jsonl(data / "outbox.jsonl") if m["crime_reference"] == "HU/000303/26"]
    assert [(m["template"], m["to"]) for m in told] == [("acknowledgement", "kim@example.org")]
    journey = state.get(JOURNEYS, "HU/000303/26", "P-3")
    assert journey is not None and "ack" in journey_from(journey).duties
    state.close()


def test_case_change_from_a_reingest_is_the_one_ingest_would_emit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "run"
    _scenario_run("malformed", data)
    row = ops(capsys, "quarantine", "list", "--data", data)[1].splitlines()[0].split("\t")[1]
    raw = json.loads(read_jsonl(data / "quarantine.jsonl")[0]["record"]) | {
        "crime_reference": "HU/000303/26",
        "victims": [{"person_id": "P-3", "contact": {"email": "kim@example.org"}}],
    }
    (tmp_path / "fixed.json").write_text(json.dumps(raw), encoding="utf-8")
    at = "2026-12-01T12:00:00+00:00"
    ops(
        capsys,
        "quarantine",
        "reingest",
        "--row",
        row,
        "--record-file",
        tmp_path / "fixed.json",
        "--data",
        data,
        "--at",
        at,
    )
    broker = SqliteQueueBroker(
        data / "queues.db", [QueueConfig("case-changes", sessions=True)], lambda: datetime.fromisoformat(at)
    )
    message = broker.receive("case-changes", receiver="test", now=datetime.fromisoformat(at))
    broker.close()
    assert message is not None and message.session_id == "HU/000303/26"
    change = CaseChange.model_validate_json(message.body)
    assert change.feed == "niche" and change.crime_reference == "HU/000303/26"
    assert change.detected_at == datetime.fromisoformat(at)
    assert change.niche is not None and change.niche.occurrence_id == "HU-26-000303"
    assert "traceparent" in message.application_properties


# --- journey show -----------------------------------------------------------------------------


def _busiest_crime(data: Path) -> str:
    counts: dict[str, int] = {}
    for entity in SqliteTableStore(data / "state.db").export(AUDIT):
        counts[entity.partition_key] = counts.get(entity.partition_key, 0) + 1
    return max(sorted(counts), key=lambda crime: counts[crime])


def test_journey_show_gives_duties_and_the_whole_audit_trail_in_time_order_without_personal_data(
    generated_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crime = _busiest_crime(generated_run)
    state = SqliteTableStore(generated_run / "state.db")
    # The crime's own partition, then each linked incident's (its caller's journey is kept there).
    facts = state.get(CRIMES, crime, FACTS_ROW)
    partitions = [crime, *sorted(facts_from(facts).incidents if facts else [])]
    journeys = [journey_from(e) for p in partitions for e in state.query_partition(JOURNEYS, p)]
    audit = [e for p in partitions for e in state.query_partition(AUDIT, p)]
    personal = set()
    for journey in journeys:
        for person in (journey.victim, journey.caller):
            if person is not None:
                personal |= {v for v in (person.contact.email, person.contact.mobile) if v}
                if person.name is not None and person.name.surname:
                    personal.add(person.name.surname)

    code, out, err = ops(capsys, "journey", "show", crime, "--format", "json", "--data", generated_run)
    assert code == 0 and err == ""
    view = json.loads(out)
    assert view["personal_data_included"] is False
    assert [j["person_id"] for j in view["journeys"]] == [j.person_id for j in journeys]
    for shown, journey in zip(view["journeys"], journeys, strict=True):
        assert {d["key"] for d in shown["duties"]} == set(journey.duties)
        for duty in shown["duties"]:
            assert {"status", "due_by", "compliance", "messages", "task_id"} <= set(duty)
    assert len(view["audit"]) == len(audit) > 5
    times = [datetime.fromisoformat(entry["at"]) for entry in view["audit"]]
    assert times == sorted(times)
    assert personal and not any(value in out for value in personal)

    code, text, _ = ops(capsys, "journey", "show", crime, "--data", generated_run)
    assert code == 0 and "Audit trail" in text and "--include-personal-data" in text
    # A caller's journey holds the crime's status as it was last told (journey-rules.md §7), and says so.
    callers = sum(journey.role == "caller" for journey in journeys)
    assert text.count("\n  case status when last told: ") == callers
    assert text.count("\n  case status: ") == len(journeys) - callers
    assert not any(value in text for value in personal)
    trail = text.split("Audit trail")[1].splitlines()[1:]
    assert [datetime.fromisoformat(line.split()[0]) for line in trail] == times

    # Personal data only with a reason, and every showing kept in the access log (issue 15, finding 2).
    refused = ops(capsys, "journey", "show", crime, "--include-personal-data", "--data", generated_run)
    assert refused[0] == 2 and refused[2].count("\n") == 1 and "--reason" in refused[2]
    assert not any(value in refused[1] for value in personal)
    assert ops(capsys, "access-log", "--data", generated_run)[1].strip() == "no access recorded"
    why = "subject access request SAR-1234"
    shown = ops(
        capsys, "journey", "show", crime, "--include-personal-data", "--reason", why, "--data", generated_run
    )[1]
    assert all(value in shown for value in personal)
    code, log, _ = ops(capsys, "access-log", "--data", generated_run)
    [line] = log.strip().splitlines()
    assert code == 0 and f"  show  {crime}  {why}" in line and getpass.getuser() in line
    assert not any(value in log for value in personal)
    state.close()


def test_journey_show_for_one_person_leaves_out_everyone_else(
    generated_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = SqliteTableStore(generated_run / "state.db")
    by_crime: dict[str, list[str]] = {}
    for entity in state.export(JOURNEYS):
        by_crime.setdefault(entity.partition_key, []).append(entity.row_key)
    state.close()
    crime, people = next((c, p) for c, p in sorted(by_crime.items()) if len(p) > 1)
    code, out, _ = ops(
        capsys, "journey", "show", crime, "--person", people[0], "--format", "json", "--data", generated_run
    )
    view = json.loads(out)
    assert code == 0 and [j["person_id"] for j in view["journeys"]] == [people[0]]
    assert {entry["person_id"] for entry in view["audit"]} <= {people[0], ""}
    assert all(task["person_id"] == people[0] for task in view["tasks"])
    assert people[1] not in out


# --- compliance -------------------------------------------------------------------------------


def test_compliance_report_has_a_csv_row_per_duty_due_in_range_and_a_self_contained_html_page(
    generated_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = date(2026, 10, 12), date(2026, 10, 25)
    london = ZoneInfo("Europe/London")
    expected = [
        (j.crime_reference, j.person_id, d.key, d.compliance.value)
        for j in map(journey_from, SqliteTableStore(generated_run / "state.db").export(JOURNEYS))
        for d in j.duties.values()
        if d.due_by is not None and first <= d.due_by.astimezone(london).date() <= last
    ]
    out_dir = tmp_path / "report"
    code, out, err = ops(
        capsys, "compliance", "--from", first, "--to", last, "--out", out_dir, "--data", generated_run
    )
    assert code == 0 and err == ""
    with (out_dir / "compliance.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "crime_reference",
        "person_id",
        "duty",
        "template",
        "event_at",
        "due_by",
        "handed_at",
        "compliance",
        "what",
        "breach_reason",
        "task_id",
        "assignee",
    ]
    assert len(rows) == len(expected) > 50
    assert sorted((r["crime_reference"], r["person_id"], r["duty"], r["compliance"]) for r in rows) == sorted(
        expected
    )
    met = sum(1 for e in expected if e[3] == "met")
    breached = sum(1 for e in expected if e[3] == "breached")
    figure = f"{met / (met + breached):.1%}"
    assert out.splitlines()[0].endswith(f"compliance {figure}")

    html = (out_dir / "compliance.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 4
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.IGNORECASE)
    # The charts' base64 may spell anything once lower-cased: look at the page without them.
    page = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html).lower()
    assert "http" not in page and "<script" not in page and "<link" not in page
    assert figure in html


def test_compliance_over_a_range_with_no_duties_still_writes_both_files(
    generated_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = ops(
        capsys,
        "compliance",
        "--from",
        "2020-01-01",
        "--to",
        "2020-01-31",
        "--out",
        tmp_path,
        "--data",
        generated_run,
    )
    assert code == 0 and out.startswith("0 duties due") and "compliance n/a" in out
    assert (tmp_path / "compliance.csv").read_text(encoding="utf-8").count("\n") == 1
    assert (tmp_path / "compliance.html").read_text(encoding="utf-8").count("data:image/png;base64,") == 4


# --- Table Storage ----------------------------------------------------------------------------


@pytest.fixture
def state_in_table_storage(
    azurite_tables: str,  # noqa: F811
    dead_letter_run: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """The first_journey run's state copied into Azurite, with the settings pointing there."""
    copy_to_table_storage(dead_letter_run, azurite_tables, monkeypatch).close()
    yield dead_letter_run


def test_journey_and_compliance_read_table_storage_when_the_settings_name_it(
    state_in_table_storage: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    show = ("journey", "show", ADULT, "--format", "json")
    report = ("compliance", "--from", "2026-11-01", "--to", "2026-11-30")
    code, in_azure, err = ops(capsys, *show, "--data", tmp_path / "nothing-here")
    assert code == 0, err
    azure_report = ops(capsys, *report, "--out", tmp_path / "azure")
    assert azure_report[0] == 0, azure_report[2]
    monkeypatch.delenv("StateStorage")
    embedded = ops(capsys, *show, "--data", state_in_table_storage)[1]
    assert json.loads(in_azure) == json.loads(embedded)
    assert (
        ops(capsys, *report, "--out", tmp_path / "local", "--data", state_in_table_storage)[1].splitlines()[0]
        == azure_report[1].splitlines()[0]
    )
    assert (tmp_path / "azure" / "compliance.csv").read_text() == (
        tmp_path / "local" / "compliance.csv"
    ).read_text()


def test_in_azure_a_reingested_record_goes_to_service_bus_and_its_row_leaves_table_storage(
    azurite_tables: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.adapters.servicebus import ServiceBusPublisher, to_service_bus

    data = tmp_path / "run"
    _scenario_run("malformed", data)
    remote = copy_to_table_storage(data, azurite_tables, monkeypatch)
    monkeypatch.setenv(
        "ServiceBusConnection", "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=v"
    )
    sent: list[tuple[str, Any]] = []

    def send(self: ServiceBusPublisher, queue: str, messages: Any) -> None:
        sent.extend((queue, to_service_bus(message)) for message in messages)  # what the sender gets

    monkeypatch.setattr(ServiceBusPublisher, "send", send)
    rows = [line.split("\t") for line in ops(capsys, "quarantine", "list")[1].splitlines()]
    missing_ref = rows[0][1]
    raw = json.loads(read_jsonl(data / "quarantine.jsonl")[0]["record"])
    record_file = tmp_path / "fixed.json"
    victim = {"person_id": "P-3", "name": {"forename": "Kim", "surname": "Lee"}, "contact": {}}
    corrected = raw | {"crime_reference": "HU/000303/26", "victims": [victim]}
    record_file.write_text(json.dumps(corrected), encoding="utf-8")
    before = (data / "queues.db").read_bytes()

    code, out, err = ops(capsys, "quarantine", "reingest", "--row", missing_ref, "--record-file", record_file)
    assert code == 0 and err == "", err
    assert out.splitlines()[-1] == "1 reingested, 0 kept; 1 still quarantined (niche 1, storm 0)"
    [(queue, message)] = sent
    assert queue == "case-changes" and message.session_id == "HU/000303/26"
    assert json.loads(str(message))["crime_reference"] == "HU/000303/26"
    assert remote.get(QUARANTINE, "niche", missing_ref) is None
    assert remote.get(SNAPSHOTS, "HU/000303/26", "niche") is not None
    assert (data / "queues.db").read_bytes() == before  # nothing went to the run folder's queues
    remote.close()


# --- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ([], "required"),
        (["purge"], "invalid choice"),
        (["dead-letters"], "required"),
        (["dead-letters", "replay"], "one of the arguments --id --all is required"),
        (["dead-letters", "replay", "--id", "x", "--all"], "not allowed with"),
        (["dead-letters", "list", "--queue", "nope"], "unknown queue 'nope'"),
        (["dead-letters", "replay", "--id", "no-such-id"], "no dead letter with message id 'no-such-id'"),
        (["quarantine", "list", "--feed", "rms"], "invalid choice"),
        (["quarantine", "reingest"], "one of the arguments --row --all is required"),
        (["quarantine", "reingest", "--all", "--record-file", "x.json"], "--record-file needs --row"),
        (["quarantine", "reingest", "--row", "nope"], "no quarantined record with row key 'nope'"),
        (
            ["quarantine", "reingest", "--row", "r", "--record-file", "/no/such/file"],
            "cannot read --record-file",
        ),
        (["journey", "show"], "CRIME_REF"),
        (["journey", "show", "HU/999999/26"], "nothing is recorded for crime reference"),
        (["journey", "show", "HU/000101/26", "--format", "xml"], "invalid choice"),
        (["compliance", "--from", "2026-11-01", "--to", "2026-11-30"], "--out"),
        (["compliance", "--from", "1 Nov", "--to", "2026-11-30", "--out", "o"], "not a date"),
        (["compliance", "--from", "2026-12-01", "--to", "2026-11-30", "--out", "o"], "is after --to"),
        (["journey", "show", "HU/000101/26", "--at", "2026-11-01T00:00:00"], "offset"),
    ],
)
def test_a_bad_argument_is_one_line_on_stderr_and_exit_status_2(
    args: list[str], complaint: str, dead_letter_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    needs_data = args and args[0] in ("dead-letters", "quarantine", "journey", "compliance") and len(args) > 1
    code, out, err = ops(capsys, *args, *(["--data", str(dead_letter_run)] if needs_data else []))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("python -m shared.ops")
    assert complaint in err


def test_a_folder_that_is_not_a_run_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = ops(capsys, "journey", "show", "HU/000101/26", "--data", tmp_path)
    assert code == 2 and err.count("\n") == 1 and f"no local state at {tmp_path / 'state.db'}" in err
    code, _, err = ops(capsys, "dead-letters", "list", "--data", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "no local queues" in err
    assert not (tmp_path / "state.db").exists() and not (tmp_path / "queues.db").exists()


def test_the_module_runs_as_a_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shared.ops", "dead-letters", "replay", "--data", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "python -m shared.ops dead-letters replay: error: one of the arguments --id --all is required\n"
    )
