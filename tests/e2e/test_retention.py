"""Keeping personal data no longer than needed (journey-rules.md §16), through the command line
and the local host: ``python -m shared.ops erase`` and the daily ``retention`` timer function.

The rule: after an erasure, or once a case has been finalised its policy days, no byte of the
person's name, contact details or date of birth is left in any table (on SQLite, in the file
itself; on Azurite, through the Table API), while everyone else's data stays.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import function_app
from shared.adapters.azure_tables import AzureTableStore
from shared.adapters.repositories import TableLinks
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import ALL_TABLES, AUDIT, JOURNEYS, RETENTION, journey_from
from shared.local.generate import generate
from shared.local.run import RunRequest, run
from tests.azurite import azurite_tables  # noqa: F401  (fixture)
from tests.builders import copy_to_table_storage, generated_sample_run, ops
from tests.personal_data import people_in


def _people(feeds: Path) -> dict[str, set[str]]:
    """Each person's personal data in the feeds; an officer may share a forename with a victim,
    so what the officers' file holds is set apart as the officers' own."""
    people = people_in(feeds)
    officers = (feeds / "officers.json").read_text(encoding="utf-8")
    people["(officers)"] = {value for values in people.values() for value in values if value in officers}
    return people


def _own(people: dict[str, set[str]], person_id: str) -> set[str]:
    """What identifies the person and nobody else (a surname shared with another victim is theirs too)."""
    others = set().union(*(values for pid, values in people.items() if pid != person_id))
    return people[person_id] - others


def _stored(tables: Any) -> str:
    """Every table's every entity, keys and properties, as one text."""
    return "\n".join(
        f"{e.partition_key}\t{e.row_key}\t{json.dumps(dict(e.properties), default=str, ensure_ascii=False)}"
        for table in ALL_TABLES
        for e in tables.export(table)
    )


@pytest.fixture
def sample_run(tmp_path: Path) -> Path:
    return generated_sample_run(tmp_path)


def _chosen(run_folder: Path, feeds: Path) -> tuple[str, str, dict[str, set[str]]]:
    """A victim and a caller with journeys and something of their own to erase."""
    people = _people(feeds)
    tables = SqliteTableStore(run_folder / "state.db")
    try:
        journeys = [journey_from(e) for e in tables.export(JOURNEYS)]
    finally:
        tables.close()

    def pick(role: str) -> str:
        for journey in journeys:
            own = _own(people, journey.person_id) if journey.person_id in people else set()
            if journey.role == role and len(own) >= 3:
                return journey.person_id
        raise AssertionError(f"the sample has no {role} with data of their own")

    return pick("victim"), pick("caller"), people


def _left_in(text: str, own: set[str]) -> list[str]:
    """Which of the values are still in the text."""
    return sorted(value for value in own if value in text)


@pytest.mark.parametrize("person_role", ["victim", "caller"])
def test_after_erase_no_byte_of_the_person_is_left_in_the_sqlite_files(
    sample_run: Path, person_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    feeds = sample_run.parent / "feeds"
    victim, caller, people = _chosen(sample_run, feeds)
    person = victim if person_role == "victim" else caller
    own = _own(people, person)
    files = (sample_run / "state.db", sample_run / "queues.db")
    before = b"".join(path.read_bytes() for path in files)
    assert [v for v in own if v.encode() in before], "the person's data is stored before the erasure"
    everyone_else = set().union(*(v for pid, v in people.items() if pid != person)) - own

    code, out, err = ops(
        capsys, "erase", "--person", person, "--reason", "erasure request ER-7", "--data", sample_run
    )

    assert code == 0, err
    assert f"of person {person} erased" in out and "journey erased" in out
    after = b"".join(path.read_bytes() for path in files)  # the files themselves: nothing left in free pages
    assert [v for v in own if v.encode() in after] == []
    tables = SqliteTableStore(sample_run / "state.db")
    try:
        text = _stored(tables)
        left = {v for v in everyone_else if v in text}
        assert len(left) > 0.9 * len({v for v in everyone_else if v.encode() in before})  # the rest stays
        journeys = [journey_from(e) for e in tables.export(JOURNEYS) if e.row_key == person]
        assert journeys and all(j.erased_at is not None and j.erased_because == "request" for j in journeys)
        assert all(j.victim is None and j.caller is None and not j.duties for j in journeys)
        erased_rows = [e for e in tables.export(AUDIT) if e.properties["decision"] == "erased"]
        assert {(e.partition_key, e.properties["person_id"]) for e in erased_rows} == {
            (j.crime_reference, person) for j in journeys
        }
    finally:
        tables.close()
    shown = ops(
        capsys, "journey", "show", journeys[0].crime_reference, "--person", person, "--data", sample_run
    )[1]
    assert "erased " in shown and "(request)" in shown  # an operator reading it sees why it is empty
    log = ops(capsys, "access-log", "--data", sample_run)[1]
    assert f"erase  {journeys[0].crime_reference} person {person}  erasure request ER-7" in log

    again = ops(capsys, "erase", "--person", person, "--reason", "again", "--data", sample_run)
    assert again[0] == 0 and "already erased" in again[1]  # a second request changes nothing more


# --- the run folder's output files -------------------------------------------------------------

# What the providers received: not our store, left as it is (DESIGN.md).
PROVIDERS_COPIES = {"outbox.jsonl", "officer-mail.jsonl"}


@pytest.fixture(scope="module")
def run_with_dead_letters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample run (it quarantines a few records of victims), with the case changes of two
    crimes after their first dead-lettered: the officer lookup fails for them, every time. Crimes
    with no STORM incident, so that their victims' contact details are not a caller's as well."""
    real = function_app.resolve_officer_step
    deliveries: Counter[str] = Counter()
    failing: list[str] = []

    def broken(body: bytes | str, services: Any, properties: Any = None) -> Any:
        change = json.loads(body)
        crime = change["crime_reference"]
        deliveries[crime] += 1
        niche = change.get("niche") or {}
        chosen = niche.get("victims") and not niche["incident_numbers"]
        if len(failing) < 2 and deliveries[crime] == 2 and chosen:
            failing.append(crime)
        if crime in failing and deliveries[crime] >= 2:
            raise RuntimeError("directory bug: the officer cannot be looked up")
        return real(body, services, properties)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(function_app, "resolve_officer_step", broken)
        folder = generated_sample_run(tmp_path_factory.mktemp("dead-letters"))
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8"))["dead_letters"] >= 1
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of the run folder (SQLite's journal files too) but the providers' copies."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in PROVIDERS_COPIES
    }


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("holder", ["quarantine.jsonl", "dead-letter.jsonl"])
def test_after_erase_no_byte_of_the_person_is_left_in_the_run_folder_but_in_what_the_providers_received(
    run_with_dead_letters: Path, holder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A person whose record the run quarantined, or whose case change it dead-lettered: after
    erase, no file of the run folder holds their name, contact or date of birth (outbox.jsonl and
    officer-mail.jsonl aside), and the files still hold everyone else's."""
    feeds = run_with_dead_letters.parent / "feeds"
    folder = Path(shutil.copytree(run_with_dead_letters, tmp_path / "run"))
    people = _people(feeds)
    tables = SqliteTableStore(folder / "state.db")
    try:
        with_journeys = {e.row_key for e in tables.export(JOURNEYS)}
    finally:
        tables.close()
    held = (folder / holder).read_text(encoding="utf-8")
    person = next(
        pid for pid in sorted(with_journeys & set(people)) if len(_left_in(held, _own(people, pid))) >= 2
    )
    own = _own(people, person)
    # What does not name them is kept as it was (a quarantined record naming them goes whole).
    not_theirs = [line for line in held.splitlines() if person not in line]
    assert not_theirs, f"{holder} holds someone else's data too"

    code, out, err = ops(capsys, "erase", "--person", person, "--reason", "request", "--data", folder)

    assert code == 0, err
    assert "tasks.jsonl, quarantine.jsonl, dead-letter.jsonl, summary.json of the run folder" in out
    left = {name: _left_in(data.decode("utf-8", "replace"), own) for name, data in _files(folder).items()}
    assert {name: values for name, values in left.items() if values} == {}
    assert set(not_theirs) <= set((folder / holder).read_text(encoding="utf-8").splitlines())
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["records"]["quarantined"] == _lines(folder / "quarantine.jsonl")
    assert summary["dead_letters"] == _lines(folder / "dead-letter.jsonl")
    assert summary["tasks"] == _lines(folder / "tasks.jsonl")


def test_after_erase_the_summary_shows_another_victim_s_page(
    sample_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """summary.json names one victim's personal link for a test team to open: once that victim is
    erased, their link opens nothing and the summary names another victim's (or none)."""
    shown = json.loads((sample_run / "summary.json").read_text(encoding="utf-8"))["page"]
    tables = SqliteTableStore(sample_run / "state.db")
    try:
        link = TableLinks(tables).get(shown["link_id"])
    finally:
        tables.close()
    assert link is not None

    assert (
        ops(capsys, "erase", "--person", link.person_id, "--reason", "request", "--data", sample_run)[0] == 0
    )

    page = json.loads((sample_run / "summary.json").read_text(encoding="utf-8"))["page"]
    assert page is not None and page["link_id"] != shown["link_id"]
    files = _files(sample_run)
    assert [name for name, data in files.items() if shown["link_id"].encode() in data] == []
    tables = SqliteTableStore(sample_run / "state.db")
    try:
        assert TableLinks(tables).get(page["link_id"]) is not None  # the page shown opens
    finally:
        tables.close()


def test_an_erased_person_is_not_brought_back_by_a_later_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Niche sends the whole crime again, the person in it: they are taken out as it is read, and
    nothing reaches them."""
    feeds = tmp_path / "feeds"
    generate(feeds, crimes=40, days=6, seed=5)
    lines = (feeds / "niche.jsonl").read_text(encoding="utf-8").splitlines()
    first_half, second_half = lines[: len(lines) // 2], lines[len(lines) // 2 :]
    (feeds / "niche.jsonl").write_text("\n".join(first_half) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    run(RunRequest(feeds, feeds / "officers.json", out))
    tables = SqliteTableStore(out / "state.db")
    journeys = [journey_from(e) for e in tables.export(JOURNEYS)]
    tables.close()
    victims = [j for j in journeys if j.role == "victim" and j.case_status != "finalised"]
    people = _people(feeds)
    later = [json.loads(x) for x in second_half if x.strip().startswith("{")]
    # A victim of an open case whose crime Niche sends again in the second half, changed.
    target = next(
        j
        for j in victims
        if j.person_id in people
        and len(_own(people, j.person_id)) >= 2
        and any(isinstance(r, dict) and r.get("crime_reference") == j.crime_reference for r in later)
    )
    outbox_before = (out / "outbox.jsonl").read_text(encoding="utf-8").count(target.person_id)
    assert ops(capsys, "erase", "--person", target.person_id, "--reason", "request", "--data", out)[0] == 0

    (feeds / "niche.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run(RunRequest(feeds, feeds / "officers.json", out))  # the same folder: it carries on

    own = _own(_people(feeds), target.person_id)
    stored = b"".join(path.read_bytes() for path in (out / "state.db", out / "queues.db"))
    assert [v for v in own if v.encode() in stored] == []
    assert (out / "outbox.jsonl").read_text(encoding="utf-8").count(target.person_id) == outbox_before


# --- Azurite ----------------------------------------------------------------------------------


@pytest.fixture
def run_in_table_storage(
    sample_run: Path,
    azurite_tables: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Path, AzureTableStore]]:
    """The sample run's state copied into fresh Azurite tables, the settings pointing there."""
    remote = copy_to_table_storage(sample_run, azurite_tables, monkeypatch)
    yield sample_run, remote
    remote.close()


def test_after_erase_no_byte_of_the_person_is_left_in_table_storage(
    run_in_table_storage: tuple[Path, AzureTableStore], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, remote = run_in_table_storage
    victim, caller, people = _chosen(folder, folder.parent / "feeds")
    before = _stored(remote)
    for person in (victim, caller):
        assert _left_in(before, _own(people, person)), "stored before the erasure"
        code, _, err = ops(capsys, "erase", "--person", person, "--reason", "request", "--data", folder)
        assert code == 0, err
    after = _stored(remote)
    assert _left_in(after, _own(people, victim) | _own(people, caller)) == []
    assert len(after) > 0.8 * len(before)  # everyone else's data is still there


def _niche_records(feeds: Path) -> list[dict[str, Any]]:
    """The feed's Niche records that validate, in order."""
    from shared.contracts.feeds import NicheOccurrence

    found = []
    for line in (feeds / "niche.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            NicheOccurrence.model_validate_json(line)
        except ValueError:
            continue
        found.append(json.loads(line))
    return found


def test_erase_with_service_bus_configured_takes_the_person_out_of_its_dead_letters(
    run_in_table_storage: tuple[Path, AzureTableStore],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`ops erase` with ServiceBusConnection set: the tables as without it, then each queue's dead
    letters (a fake client for the namespace: no emulator here), and a summary that says what it
    cannot reach."""
    from azure.servicebus import ServiceBusClient

    from shared.contracts.messages import MessageToOfficer
    from tests.builders import niche_change
    from tests.servicebus_fake import DeadLetter, FakeNamespace, sent_body

    folder, remote = run_in_table_storage
    feeds = folder.parent / "feeds"
    person, _, people = _chosen(folder, feeds)
    own = _own(people, person)
    records = _niche_records(feeds)
    theirs = [r for r in records if any(v["person_id"] == person for v in r["victims"])][-1]
    other = next(r for r in records if r["crime_reference"] != theirs["crime_reference"])
    reference = theirs["crime_reference"]
    wrote = MessageToOfficer(
        event_id="w-1",
        crime_reference=reference,
        person_id=person,
        text="Please ring me after six",
        at=datetime(2026, 1, 10, 9, 0, tzinfo=UTC),
    )
    namespace = FakeNamespace(
        {
            "case-changes": [
                DeadLetter("c-theirs", 1, niche_change(theirs).case.model_dump_json(), session_id=reference),
                DeadLetter(
                    "c-other",
                    2,
                    niche_change(other).case.model_dump_json(),
                    session_id=other["crime_reference"],
                ),
            ],
            "journey-events": [DeadLetter("w-1", 3, wrote.model_dump_json(), session_id=reference)],
            "outbound-messages": [],
            "officer-tasks": [],
        }
    )
    untouched = namespace.dead["case-changes"][1].body_text
    assert _left_in(namespace.dead["case-changes"][0].body_text, own), "the dead letter names them"
    connection = "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=v"
    monkeypatch.setenv("ServiceBusConnection", connection)
    monkeypatch.setattr(
        ServiceBusClient, "from_connection_string", staticmethod(lambda _: namespace.client())
    )

    code, out, err = ops(capsys, "erase", "--person", person, "--reason", "request ER-9", "--data", folder)

    assert code == 0, err
    assert "journey erased" in out
    assert out.splitlines()[-1].endswith(
        "; 1 Service Bus dead letter sent again to its queue without them, 1 removed; messages waiting"
        " on the Service Bus queues cannot be rewritten: they are consumed within minutes, and nothing"
        " moves an erased journey or is sent for it"
    )
    assert _left_in(out + err, own) == []
    (copy,) = namespace.sent["case-changes"]
    assert (copy.message_id, copy.session_id) == ("c-theirs#replay-1", reference)
    body = sent_body(copy)
    assert _left_in(body, own) == []
    assert all(v["person_id"] in body for v in theirs["victims"] if v["person_id"] != person)
    assert [(m.message_id, m.body_text) for m in namespace.dead["case-changes"]] == [("c-other", untouched)]
    assert namespace.dead["journey-events"] == [] and namespace.sent["journey-events"] == []
    assert _left_in(_stored(remote), own) == []
    assert namespace.clients and all(client.closed for client in namespace.clients)


# --- the retention timer ------------------------------------------------------------------------

SHORT = {"page": {"days_after_finalised": 2}, "retention": {"days_after_finalised": 3, "quarantine_days": 4}}


def test_the_retention_timer_erases_every_case_kept_its_days_after_finalisation_and_no_other(
    tmp_path: Path,
) -> None:
    feeds = tmp_path / "feeds"
    generate(feeds, crimes=60, days=8, seed=11)
    policy = json.loads(Path("policy/journey-policy.json").read_text(encoding="utf-8"))
    for section, values in SHORT.items():
        policy[section] = {**policy.get(section, {}), **values}
    (tmp_path / "policy.json").write_text(json.dumps(policy), encoding="utf-8")
    out = tmp_path / "run"
    run(RunRequest(feeds, feeds / "officers.json", out, policy=tmp_path / "policy.json"))

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    end = summary["clock"]["end"]
    tables = SqliteTableStore(out / "state.db")
    try:
        journeys = [journey_from(e) for e in tables.export(JOURNEYS)]
        kinds: Counter[tuple[str, str | None]] = Counter()
        for journey in journeys:
            due = journey.finalised_at is not None and journey.case_status == "finalised"
            due = due and journey.finalised_at.isoformat() < _minus_days(
                end, 4
            )  # a day's slack for the daily timer
            if due:
                assert journey.erased_because == "retention", journey.crime_reference
            if journey.case_status != "finalised":
                assert journey.erased_at is None, "an open case is never erased by the timer"
            kinds[(journey.role, journey.erased_because)] += 1
        assert kinds[("victim", "retention")] >= 5 and kinds[("caller", "retention")] >= 5, kinds
        assert list(tables.export(RETENTION)) == [] or all(
            e.partition_key > _minus_days(end, 4)[:10] for e in tables.export(RETENTION)
        )
        quarantined = list(tables.export("Quarantine"))
        assert quarantined == []  # every quarantined record was set aside more than 4 days before the end
    finally:
        tables.close()
    people = _people(feeds)
    gone = {j.person_id for j in journeys if j.erased_at is not None}
    kept = {j.person_id for j in journeys if j.erased_at is None}
    stored = (out / "state.db").read_bytes() + (out / "queues.db").read_bytes()
    leaked = [p for p in gone - kept if p in people and any(v.encode() in stored for v in _own(people, p))]
    assert leaked == []
    assert len(gone - kept) >= 10


def _minus_days(iso: str, days: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(iso) - timedelta(days=days)).isoformat()
