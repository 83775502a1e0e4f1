"""The compliance report a duty manager acts on (python -m shared.ops compliance), on a generated local
run: breaches with their reason in words, task and assignee; messages by channel from the ledger; duty
types in words; every time in London time, the zone named once; the repeat-contact figures and --go-live."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import JOURNEYS, MESSAGES, TASKS, journey_from
from shared.domain.officer_mail import MILESTONE_WORDS
from shared.domain.policy import Policy
from shared.local.generate import SYNTHETIC_MARKER
from shared.ops.__main__ import main
from shared.ports import Entity
from tests.builders import generated_sample_run

LONDON = ZoneInfo("Europe/London")
FIRST, LAST, GO_LIVE = "2026-10-01", "2027-01-31", "2026-10-19"
# A time as the page gives it: "Tue 20 Oct 2026 14:05".
PAGE_TIME = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}\b")


@pytest.fixture(autouse=True)
def _embedded_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection", "LOCAL_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 crimes over 10 days through the local host (polled hourly, to keep it quick)."""
    base = tmp_path_factory.mktemp("generated")
    generated_sample_run(base)
    return base


def report(
    capsys: pytest.CaptureFixture[str],
    data: Path,
    out: Path,
    *extra: str,
    first: str = FIRST,
    last: str = LAST,
) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(
            ["compliance", "--from", first, "--to", last, "--data", str(data), "--out", str(out), *extra]
        )
    except SystemExit as stop:
        code = int(stop.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class _Tables(HTMLParser):
    """Every table of a page as rows of cell texts (headers included), by the heading before it."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.heading = ""
        self._in_heading = False
        self._cell: list[str] | None = None
        self._rows: list[list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "h3"):
            self._in_heading, self.heading = True, ""
        elif tag == "table":
            self._rows = self.tables.setdefault(self.heading, [])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "h3"):
            self._in_heading = False
        elif tag == "table":
            self._rows = None
        elif tag in ("td", "th") and self._cell is not None and self._rows is not None:
            self._rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.heading += data.strip()
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def page_text(html: str) -> str:
    """The page without its embedded charts (whose base64 may spell anything)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def written(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "StateStorage",
            "StateStorage__tableServiceUri",
            "ServiceBusConnection",
            "LOCAL_DATA_DIR",
        ):
            patch.delenv(name, raising=False)
        code = main(
            [
                "compliance",
                "--from",
                FIRST,
                "--to",
                LAST,
                "--data",
                str(generated / "run"),
                "--out",
                str(out),
                "--go-live",
                GO_LIVE,
            ]
        )
    assert code == 0
    html = (out / "compliance.html").read_text(encoding="utf-8")
    return {"out": out, "html": html, "tables": tables(html), "duties": rows(out / "compliance.csv")}


def _tasks(run_folder: Path) -> dict[str, dict[str, Any]]:
    store = SqliteTableStore(run_folder / "state.db")
    try:
        return {e.row_key: json.loads(e.properties["task"]) for e in store.export(TASKS)}
    finally:
        store.close()


# --- breaches ----------------------------------------------------------------------------------------


def test_each_breach_has_its_reason_in_words_its_task_id_and_its_assignee(
    generated: Path, written: dict[str, Any]
) -> None:
    policy = Policy()
    tasks = _tasks(generated / "run")
    store = SqliteTableStore(generated / "run" / "state.db")
    escalations = {
        (j.crime_reference, j.person_id, d.key): d.escalation_task_id
        for j in map(journey_from, store.export(JOURNEYS))
        for d in j.duties.values()
        if d.compliance.value == "breached"
    }
    store.close()
    breached = [row for row in written["duties"] if row["compliance"] == "breached"]
    assert len(breached) == len(escalations) >= 3
    page = written["tables"]["Breaches to act on"]
    assert page[0] == ["crime", "person", "duty", "due", "why it was breached", "task", "assignee"]
    assert len(page) - 1 == len(breached)
    for row in breached:
        task_id = escalations[(row["crime_reference"], row["person_id"], row["duty"])]
        assert task_id and row["task_id"] == task_id
        task = tasks[task_id]
        assert task["reason"] == "deadline_breached" and row["duty"] in task["duties"]
        if task["assignee"] == "team":
            assert row["assignee"] == f"team mailbox {policy.force.team_mailbox}"
        else:
            assert row["assignee"] == f"officer {task['assignee']} {task['assignee_email']}".strip()
        reason = row["breach_reason"]
        assert len(reason.split()) >= 6 and not re.search(r"[a-z]+_[a-z]+", reason), reason
        listed = [
            line for line in page[1:] if line[0] == row["crime_reference"] and row["task_id"] in line[5]
        ]
        assert len(listed) == 1, row
        assert listed[0][4] == reason and listed[0][6] == row["assignee"]
        assert listed[0][3] == f"{datetime.fromisoformat(row['due_by']).astimezone(LONDON):%a %d %b %Y %H:%M}"
    assert all(row["breach_reason"] == "" for row in written["duties"] if row["compliance"] != "breached")


# --- messages by channel ---------------------------------------------------------------------------------


def _channel_table(html: str) -> dict[str, dict[str, int]]:
    table = tables(html)["Messages by channel"]
    header = table[0]
    return {
        line[0]: {name: int(value) for name, value in zip(header[1:], line[1:], strict=True)}
        for line in table[1:]
    }


def test_messages_by_channel_count_what_the_ledger_says_became_of_them_zero_when_none(
    generated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The local host's provider reports every message delivered unless told otherwise, so some are
    # moved back to awaiting a report and some on to undelivered: the report must count each status
    # from the ledger as it is.
    run_folder = shutil.copytree(generated / "run", tmp_path / "run")
    store = SqliteTableStore(run_folder / "state.db")
    handed = [e for e in store.export(MESSAGES) if e.properties.get("status") == "delivered"]
    by_channel = {
        channel: [e for e in handed if e.properties["channel"] == channel] for channel in ("email", "sms")
    }
    assert len(by_channel["email"]) > 10 and len(by_channel["sms"]) > 10
    changed = {
        ("email", "sent"): 4,
        ("email", "undelivered"): 2,
        ("sms", "sent"): 7,
        ("sms", "undelivered"): 3,
    }
    for (channel, status), count in changed.items():
        for entity in by_channel[channel][:count]:
            properties = dict(entity.properties, status=status)
            if status == "sent":  # no report yet
                properties = {
                    k: v for k, v in properties.items() if k not in ("delivery_status", "reported_at")
                }
            else:
                properties["delivery_status"] = "Bounced" if channel == "email" else "Failed"
            store.upsert(MESSAGES, Entity(entity.partition_key, entity.row_key, properties))
        by_channel[channel] = by_channel[channel][count:]
    expected: dict[str, Counter[str]] = {"email": Counter(), "sms": Counter()}
    for entity in store.export(MESSAGES):
        expected[entity.properties["channel"]][entity.properties["status"]] += 1
    store.close()

    code, _, err = report(capsys, run_folder, tmp_path / "report")
    assert code == 0, err
    counts = _channel_table((tmp_path / "report" / "compliance.html").read_text(encoding="utf-8"))
    assert list(counts) == ["email", "sms", "total"]
    for channel in ("email", "sms"):
        seen, ledger = counts[channel], expected[channel]
        assert seen["delivered"] == ledger["delivered"] > 10
        assert seen["not delivered"] == ledger["undelivered"] >= changed[(channel, "undelivered")]
        assert seen["no delivery report yet"] == ledger["sent"] >= changed[(channel, "sent")]
        assert seen["handed over"] == ledger["sent"] + ledger["delivered"] + ledger["undelivered"]
        assert seen["refused by the provider"] == ledger["failed"]
        assert seen["not sent"] == ledger["suppressed"]
    assert counts["total"] == {name: counts["email"][name] + counts["sms"][name] for name in counts["total"]}

    code, _, _ = report(capsys, run_folder, tmp_path / "empty", first="2020-01-01", last="2020-01-31")
    assert code == 0
    empty = _channel_table((tmp_path / "empty" / "compliance.html").read_text(encoding="utf-8"))
    assert list(empty) == ["email", "sms", "total"] and {v for c in empty.values() for v in c.values()} == {0}


# --- words and times ---------------------------------------------------------------------------------------


def test_every_time_is_london_time_and_the_zone_is_named_once(written: dict[str, Any]) -> None:
    text = page_text(written["html"])
    assert text.count("Europe/London") == 1
    assert not re.search(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|\d{2}:\d{2}:\d{2}|[+-]\d{2}:\d{2}\b|\bUTC\b|\bGMT\b|\bBST\b", text
    )
    times = PAGE_TIME.findall(text)
    breaches = len(written["tables"]["Breaches to act on"]) - 1
    assert len(times) >= 3 + breaches  # generated at, the figures' first and last moments, each due time
    # Every clock time on the page is one of those (day, date, hours and minutes).
    assert len(re.findall(r"\b\d{2}:\d{2}\b", text)) == len(times)
    for row in written["duties"]:
        for column in ("event_at", "due_by", "handed_at"):
            if row[column]:
                moment = datetime.fromisoformat(row[column])
                assert moment.utcoffset() == moment.astimezone(LONDON).utcoffset(), (column, row[column])
    offsets = {datetime.fromisoformat(row["due_by"]).utcoffset() for row in written["duties"]}
    assert offsets == {timedelta(hours=1), timedelta(0)}  # the range spans the end of summer time


def test_duty_types_are_in_words(written: dict[str, Any]) -> None:
    kinds: dict[str, set[str]] = {}
    for row in written["duties"]:
        kinds.setdefault(row["duty"].split(":")[0], set()).add(row["what"])
    assert kinds["ack"] == {"acknowledgement"}
    assert all(re.fullmatch(r"new officer in charge \(employee \d+\)", what) for what in kinds["oic"])
    assert all(
        re.fullmatch(r"outcome of the investigation \(Home Office outcome \d+\)", w) for w in kinds["outcome"]
    )
    milestones = "|".join(re.escape(words) for words in MILESTONE_WORDS.values())
    assert all(re.fullmatch(rf"update: ({milestones}) \(milestone M-\d+\)", what) for what in kinds["m"])
    by_type = [line[0] for line in written["tables"]["Duties by type"][1:]]
    assert "acknowledgement" in by_type and "outcome of the investigation" in by_type
    assert any(name.startswith("update: the suspect was ") for name in by_type)
    assert not any("_" in name or ":" in name.removeprefix("update:") for name in by_type), by_type


# --- repeat contacts ------------------------------------------------------------------------------------------


def test_the_repeat_contact_weeks_add_up_to_the_period_and_to_the_calls_in_the_feeds(
    generated: Path, written: dict[str, Any]
) -> None:
    policy = Policy()
    weekly = rows(written["out"] / "repeat-contacts.csv")
    weeks = [row for row in weekly if row["period"] in ("week", "part week")]
    whole = next(row for row in weekly if row["period"] == "whole period")
    before = next(row for row in weekly if row["period"] == "before go-live")
    after = next(row for row in weekly if row["period"] == "from go-live")
    assert [date.fromisoformat(row["week_commencing"]).weekday() for row in weeks] == [0] * len(weeks)
    for column in ("repeat_contacts", "after_update_contacts", "no_update_contacts"):
        assert (
            sum(int(row[column]) for row in weeks)
            == int(whole[column])
            == int(before[column]) + int(after[column])
        )
    assert sum(float(row["open_crime_weeks"]) for row in weeks) == pytest.approx(
        float(whole["open_crime_weeks"]), abs=0.01
    )
    assert int(whole["repeat_contacts"]) == int(whole["after_update_contacts"]) + int(
        whole["no_update_contacts"]
    )
    assert float(whole["per_100_open_crimes"]) == pytest.approx(
        100 * int(whole["repeat_contacts"]) / float(whole["open_crime_weeks"]), abs=0.01
    )
    assert before["last_day"] == "2026-10-18" and after["first_day"] == GO_LIVE

    latest: dict[str, dict[str, Any]] = {}
    for line in (generated / "feeds" / "storm.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            latest[record["incident_number"]] = record
        except (ValueError, KeyError, TypeError):
            continue  # malformed on purpose
    calls = [
        r
        for r in latest.values()
        if policy.storm.is_update_request(r.get("opening_category")) and r.get("crime_reference")
    ]
    assert len(calls) == int(whole["repeat_contacts"]) > 20

    lines = [line for line in written["tables"]["Before and after go-live (Mon 19 Oct 2026)"]]
    assert lines[0] == ["calls per 100 open crimes a week", "before go-live", "from go-live", "change"]
    assert lines[1][1] == f"{float(before['per_100_open_crimes']):.1f} ({before['repeat_contacts']} calls)"
    assert lines[1][2] == f"{float(after['per_100_open_crimes']):.1f} ({after['repeat_contacts']} calls)"
    change = float(after["per_100_open_crimes"]) / float(before["per_100_open_crimes"]) - 1
    assert lines[1][3] == f"{change:+.0%}"


def test_the_page_says_the_data_are_synthetic_only_when_they_are(
    generated: Path, written: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "Synthetic data." in written["html"] and "seed 3" in written["html"]
    assert "not an effect of going live" in written["html"]
    real = shutil.copytree(
        generated / "run", tmp_path / "run", ignore=shutil.ignore_patterns(SYNTHETIC_MARKER)
    )
    code, out, _ = report(capsys, real, tmp_path / "report")
    assert code == 0 and "synthetic" not in out
    html = (tmp_path / "report" / "compliance.html").read_text(encoding="utf-8")
    assert "Synthetic data" not in html and "data are synthetic" not in html
    code, out, _ = report(capsys, generated / "run", tmp_path / "again")
    assert code == 0 and "the data are synthetic" in out


# --- the command line ----------------------------------------------------------------------------------------------


def test_go_live_splits_the_figure_and_the_command_says_so(
    generated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = report(capsys, generated / "run", tmp_path, "--go-live", GO_LIVE, "--update-days", "7")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert re.fullmatch(
        r"repeat contacts: \d+\.\d \(\d+ calls\) per 100 open crimes a week; after an update in the previous 7 days "
        r"\d+\.\d \(\d+ calls\), without \d+\.\d \(\d+ calls\)",
        lines[1],
    ), lines[1]
    assert re.fullmatch(
        rf"before go-live {GO_LIVE}: \d+\.\d \(\d+ calls\); from go-live: \d+\.\d \(\d+ calls\); change [+-]\d+%",
        lines[2],
    ), lines[2]
    assert "previous 7 days" in (tmp_path / "compliance.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--go-live", "2026-13-01"], "argument --go-live: not a date (YYYY-MM-DD): '2026-13-01'"),
        (["--go-live", "19 Oct"], "argument --go-live: not a date (YYYY-MM-DD): '19 Oct'"),
        (["--go-live", "2026-10-01"], "--go-live 2026-10-01 is not after --from 2026-10-01"),
        (["--go-live", "2027-02-01"], "and on or before --to 2027-01-31"),
        (["--update-days", "0"], "argument --update-days: must be 1 to 365 days: 0"),
        (["--update-days", "two"], "argument --update-days: not a whole number of days: 'two'"),
    ],
)
def test_a_bad_go_live_or_window_is_one_line_and_exit_status_2(
    args: list[str], complaint: str, generated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = report(capsys, generated / "run", tmp_path / "report", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("python -m shared.ops compliance: error: ")
    assert complaint in err
    assert not (tmp_path / "report").exists()


def test_the_generated_times_of_the_run_are_in_range(generated: Path) -> None:
    # The fixture's feeds lie within the report's range, so the figures above cover all of them.
    first = json.loads((generated / "feeds" / "niche.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert datetime.fromisoformat(first["recorded_at"]) > datetime(2026, 10, 1, tzinfo=UTC)
