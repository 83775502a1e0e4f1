"""The local command line's arguments (python -m shared.local): a bad one is one line saying what is
wrong, exit status 2, never a traceback; every flag has help; generate --start."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.local.__main__ import _parser, main
from shared.ops.__main__ import _parser as ops_parser

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "tests/scenarios/first_journey"


def _local(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main([str(arg) for arg in args])
    except SystemExit as stop:
        code = int(stop.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _paths(tmp_path: Path) -> dict[str, Path]:
    """A missing path, a file, a folder, and a path under a file (which can be neither)."""
    (tmp_path / "a-file").write_text("{}\n", encoding="utf-8")
    (tmp_path / "a-folder").mkdir()
    return {
        "missing": tmp_path / "missing",
        "file": tmp_path / "a-file",
        "folder": tmp_path / "a-folder",
        "under-a-file": tmp_path / "a-file" / "below",
    }


def _one_line(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("python -m shared.local"), err
    assert "Traceback" not in err
    assert all(name in err for name in names), err


GENERATE = ["generate", "--crimes", "2", "--days", "1", "--seed", "1"]


@pytest.mark.parametrize("kind", ["file", "under-a-file"])
def test_generate_into_a_path_that_cannot_be_a_folder_is_one_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _paths(tmp_path)[kind]
    code, stdout, err = _local(capsys, *GENERATE, "--out", out)
    _one_line(code, err, "--out", str(out))
    assert stdout == ""


def test_generate_into_an_existing_file_is_one_line_from_the_command_too(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("mine\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "shared.local", *GENERATE, "--out", str(tmp_path / "taken")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr
        == f"python -m shared.local generate: error: --out is not a folder: {tmp_path / 'taken'}\n"
    )
    assert (tmp_path / "taken").read_text(encoding="utf-8") == "mine\n"


# Each of run's path arguments with each wrong kind of path: what the error must name.
RUN_PATHS = {
    "--feeds": ("folder", ["missing", "file", "under-a-file"]),
    "--officers": ("file", ["missing", "folder", "under-a-file"]),
    "--policy": ("file", ["missing", "folder", "under-a-file"]),
    "--delivery-reports": ("file", ["missing", "folder", "under-a-file"]),
    "--out": ("folder", ["file", "under-a-file"]),
}


@pytest.mark.parametrize(
    ("flag", "kind"), [(flag, kind) for flag, (_, kinds) in RUN_PATHS.items() for kind in kinds]
)
def test_each_run_path_argument_of_the_wrong_kind_is_one_line_naming_it(
    flag: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _paths(tmp_path)
    arguments = {
        "--feeds": SCENARIO,
        "--officers": SCENARIO / "officers.json",
        "--out": tmp_path / "run",
        flag: paths[kind],
    }
    code, _, err = _local(capsys, "run", *[str(x) for pair in arguments.items() for x in pair])
    _one_line(code, err, str(paths[kind]))


@pytest.mark.parametrize("kind", ["file", "under-a-file", "missing"])
def test_serve_over_a_path_that_is_not_a_folder_is_one_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _paths(tmp_path)[kind]
    code, _, err = _local(capsys, "serve", "--data", data, "--port", "0")
    _one_line(code, err, str(data))
    assert kind != "missing" or not data.exists()  # nothing made where nothing was


@pytest.mark.parametrize("start", ["5 Oct", "2026-13-01", "2026-10-05T08:00:00+00:00", ""])
def test_generate_start_must_be_a_date(
    start: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _local(capsys, *GENERATE, "--start", start, "--out", tmp_path / "feeds")
    _one_line(code, err, "--start", "YYYY-MM-DD")
    assert not (tmp_path / "feeds").exists()


def _first_recorded(feeds: Path) -> str:
    with (feeds / "niche.jsonl").open(encoding="utf-8") as lines:
        return min(json.loads(line)["recorded_at"] for line in lines if line.startswith('{"'))


def test_generate_start_is_the_samples_first_day_and_defaults_to_what_it_always_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _local(capsys, *GENERATE, "--out", tmp_path / "default")[0] == 0
    assert _local(capsys, *GENERATE, "--start", "2026-10-05", "--out", tmp_path / "same")[0] == 0
    assert _local(capsys, *GENERATE, "--start", "2027-03-01", "--out", tmp_path / "later")[0] == 0
    for name in ("niche.jsonl", "storm.jsonl", "officers.json", "delivery-reports.json"):
        assert (tmp_path / "same" / name).read_bytes() == (tmp_path / "default" / name).read_bytes(), name
    assert _first_recorded(tmp_path / "default").startswith("2026-10-05")
    assert _first_recorded(tmp_path / "later").startswith("2027-03-01")
    marker = json.loads((tmp_path / "later" / "synthetic.json").read_text(encoding="utf-8"))
    assert marker["arguments"]["start"].startswith("2027-03-01")


def _commands(parser: argparse.ArgumentParser, prog: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command and sub-command that takes arguments, by its name."""
    found = [(prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{prog} {name}")
    return found


@pytest.mark.parametrize(
    ("prog", "parser"),
    [pytest.param(*found, id=found[0]) for found in _commands(_parser(), "shared.local")]
    + [pytest.param(*found, id=found[0]) for found in _commands(ops_parser(), "shared.ops")],
)
def test_every_flag_and_argument_of_every_command_has_help(
    prog: str, parser: argparse.ArgumentParser
) -> None:
    bare = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and not (action.help or "").strip()
    ]
    assert bare == [], prog


@pytest.mark.parametrize("start", [[], ["--start", "2026-11-01T00:00:00Z"]])
def test_run_over_a_folder_without_feed_files_is_refused_naming_it_and_the_files_it_expects(
    start: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "niche.json").write_text("{}\n", encoding="utf-8")  # not a feed file: the name is wrong
    officers = SCENARIO / "officers.json"
    code, out, err = _local(
        capsys, "run", "--feeds", feeds, "--officers", officers, "--out", tmp_path / "o", *start
    )
    _one_line(code, err, str(feeds), "niche.jsonl", "storm.jsonl")
    assert out == "" and not (tmp_path / "o").exists()


def _bad_officers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    (tmp_path / "officers.json").write_text("officers\n", encoding="utf-8")
    return ["--officers", str(tmp_path / "officers.json")]


def _bad_delivery_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    (tmp_path / "reports.json").write_text("[1]\n", encoding="utf-8")
    return [
        "--officers",
        str(SCENARIO / "officers.json"),
        "--delivery-reports",
        str(tmp_path / "reports.json"),
    ]


def _crash_part_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # A step that fails when the run is under way (the host is running, outputs are being written).
    from shared.local import host

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the host crashed part-way")

    monkeypatch.setattr(host.LocalHost, "run_simulated", crash)
    return ["--officers", str(SCENARIO / "officers.json")]


@pytest.mark.parametrize("failure", [_bad_officers, _bad_delivery_reports, _crash_part_way])
@pytest.mark.parametrize("out_before", ["missing", "empty", "an earlier run"])
def test_a_run_that_fails_takes_away_what_it_made_so_a_rerun_starts_clean(
    failure: Callable[[Path, pytest.MonkeyPatch], list[str]],
    out_before: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "deep" / "run"
    officers = ["--officers", str(SCENARIO / "officers.json")]
    if out_before == "empty":
        out.mkdir(parents=True)
    elif out_before == "an earlier run":
        assert _local(capsys, "run", "--feeds", SCENARIO, *officers, "--out", out)[0] == 0
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} if out.exists() else None
    try:
        code, _, err = _local(
            capsys, "run", "--feeds", SCENARIO, *failure(tmp_path, monkeypatch), "--out", out
        )
    except RuntimeError:  # not an argument error: the traceback is the host's to show
        code, err = 1, ""
    assert code != 0 and "Traceback" not in err
    if before is None:
        assert not (tmp_path / "deep").exists()  # every folder it made, too
    else:
        assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["compliance", "--from", "2026-11-01", "--to", "2026-11-30", "--out"], "file"),
        (["compliance", "--from", "2026-11-01", "--to", "2026-11-30", "--out"], "under-a-file"),
        (["quarantine", "reingest", "--row", "r", "--record-file"], "folder"),
        (["quarantine", "reingest", "--row", "r", "--record-file"], "missing"),
        (["journey", "show", "HU/000101/26", "--data"], "file"),
        (["dead-letters", "list", "--data"], "under-a-file"),
    ],
)
def test_each_ops_path_argument_of_the_wrong_kind_is_one_line_naming_it(
    args: list[str],
    kind: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.adapters.sqlite_tables import SqliteTableStore
    from tests.builders import ops

    for name in ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection", "LOCAL_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "run"
    data.mkdir()
    SqliteTableStore(data / "state.db").close()
    path = _paths(tmp_path)[kind]
    code, out, err = ops(capsys, *args, path, *([] if "--data" in args else ["--data", data]))
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and err.startswith("python -m shared.ops") and "Traceback" not in err
    assert str(path) in err


@pytest.mark.parametrize(
    ("flag", "kind"),
    [("--out", "file"), ("--out", "under-a-file"), ("--policy", "folder"), ("--policy", "missing")],
)
def test_each_catalogue_path_argument_of_the_wrong_kind_is_one_line_naming_it(
    flag: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.ops.catalogue import main as catalogue

    path = _paths(tmp_path)[kind]
    arguments = {"--out": str(tmp_path / "catalogue"), flag: str(path)}
    capsys.readouterr()
    code = catalogue([x for pair in arguments.items() for x in pair])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", err
    assert (
        err.count("\n") == 1
        and err.startswith("python -m shared.ops.catalogue: error: ")
        and str(path) in err
    )


def test_a_run_whose_table_storage_is_not_there_is_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.local.azurite import DEV_ACCOUNT, DEV_KEY, free_port

    nowhere = f"http://127.0.0.1:{free_port()}/{DEV_ACCOUNT}"
    monkeypatch.setenv(
        "StateStorage",
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"TableEndpoint={nowhere};BlobEndpoint={nowhere}",
    )
    feeds = tmp_path / "feeds"
    assert _local(capsys, *GENERATE, "--out", feeds)[0] == 0
    code, out, err = _local(
        capsys, "run", "--feeds", feeds, "--officers", feeds / "officers.json", "--out", tmp_path / "o"
    )
    _one_line(code, err, "cannot reach the state in Table Storage (StateStorage)")
    assert DEV_KEY not in err and out == "" and not (tmp_path / "o").exists()


def test_a_run_into_state_that_read_its_feed_files_before_says_it_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection"):
        monkeypatch.delenv(name, raising=False)
    feeds, out = tmp_path / "feeds", tmp_path / "out"
    assert _local(capsys, *GENERATE, "--out", feeds)[0] == 0
    run = ["run", "--feeds", feeds, "--officers", feeds / "officers.json", "--out", out]
    code, first, _ = _local(capsys, *run)
    assert code == 0 and "resumed:" not in first
    before = json.loads((out / "summary.json").read_text())["records"]
    code, again, _ = _local(capsys, *run)
    assert code == 0
    resumed = json.loads((out / "summary.json").read_text())["resumed"]
    assert resumed == {feed: before[feed] for feed in ("niche", "storm") if before[feed]}
    line = next(line for line in again.splitlines() if line.strip().startswith("resumed:"))
    assert f"Niche after {before['niche']:,} records" in line and "only what is new was read" in line


def test_a_function_that_fails_during_a_run_is_counted_in_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.steps.retention

    for name in ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection"):
        monkeypatch.delenv(name, raising=False)

    def broken(services: object) -> None:
        raise RuntimeError("the blob store is not there")

    monkeypatch.setattr(shared.steps.retention, "retention", broken)
    feeds, out = tmp_path / "feeds", tmp_path / "out"
    assert _local(capsys, *GENERATE, "--out", feeds)[0] == 0
    code, printed, _ = _local(
        capsys, "run", "--feeds", feeds, "--officers", feeds / "officers.json", "--out", out
    )
    assert code == 0  # a failing timer is the Functions host's to log and retry, as in Azure
    failures = json.loads((out / "summary.json").read_text())["failures"]
    assert set(failures) == {"retention"} and failures["retention"] >= 1
    assert f"function failures: retention {failures['retention']:,} (each on stderr" in printed


@pytest.mark.parametrize("processes", ["1", "2"])
def test_an_end_before_the_start_is_one_line_before_anything_is_read_or_made(
    processes: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.local import parts, run

    def unread(*_: object) -> None:
        raise AssertionError("the feeds were read")

    monkeypatch.setattr(run, "feed_span", unread)
    monkeypatch.setattr(parts.Parting, "of", unread)
    code, out, err = _local(
        capsys, "run", "--feeds", SCENARIO, "--officers", SCENARIO / "officers.json",
        "--out", tmp_path / "o", "--start", "2026-11-02T00:00:00Z", "--end", "2026-11-01T00:00:00Z",
        "--processes", processes,
    )  # fmt: skip
    _one_line(code, err, "--end 2026-11-01T00:00:00+00:00 is before --start 2026-11-02T00:00:00+00:00")
    assert out == "" and not (tmp_path / "o").exists()
