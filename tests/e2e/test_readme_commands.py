"""The README's commands, as a newcomer reads them.

First, every command the README documents is one the command lines accept as written: each
``python -m shared.local`` / ``python -m shared.ops`` line of its ``sh`` blocks, and each synopsis
of the "Operations" section, is parsed by the real parser with every optional part left out and put
in, every alternative in turn, and every placeholder given a sample value of its kind. A flag the
parser does not know fails naming the README line.

Then the ``sh`` blocks that can run here run as written, in real processes, on a small generated
sample: ``generate``, ``run``, ``make azurite`` on other ports with the ``run`` against it through the
connection string the README gives, ``serve``, and a few operations commands on the run folder.
The commands run in a temporary folder (the repository on ``PYTHONPATH``), so the README's relative
paths (``out/demo/feeds`` …) land there, never in the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from shared.domain.policy import Policy
from shared.local import azurite
from shared.local.__main__ import _parser as local_parser
from shared.ops.__main__ import _parser as ops_parser
from tests.builders import ops
from tests.conftest import read_jsonl

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "shared.local": local_parser,
    "shared.ops": ops_parser,
}
SETTINGS = ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection", "LOCAL_DATA_DIR")

# A valid sample value for each placeholder the README uses (a new one fails until it has one).
SAMPLES = {
    "DIR": "out/sample",
    "FILE": "out/sample/file.json",
    "N": "3",
    "D": "3",
    "S": "7",
    "P": "8080",
    "ISO8601": "2026-10-05T09:00:00+01:00",
    "YYYY-MM-DD": "2026-10-05",
    "DATE": "2026-10-05",
    "CRIME_REF": "HU/000101/26",
    "ID": "P-1",
    "MESSAGE_ID": "message-1",
    "TEXT": "a subject access request",
    "KEY": "row-1",
    "ROWKEY": "row-1",
    "Q": "case-changes",
    "F": "niche",
}


# --- reading the README -------------------------------------------------------------------------


@dataclass(frozen=True)
class Synopsis:
    line: int  # in README.md, 1-based
    module: str  # shared.local or shared.ops
    text: str  # the arguments after ``python -m MODULE``
    env: tuple[str, ...] = ()  # NAME=value assignments before ``python``

    def where(self) -> str:
        return f"README.md:{self.line}: python -m {self.module} {self.text}"


def _readme() -> list[str]:
    return README.read_text(encoding="utf-8").splitlines()


def _sh_lines() -> list[tuple[int, str]]:
    """Each logical line (``\\`` continuations joined) of every ```sh block, with its line number."""
    found: list[tuple[int, str]] = []
    inside, pending, start = False, "", 0
    for number, line in enumerate(_readme(), 1):
        if not inside:
            inside = line.strip() == "```sh"
            continue
        if line.strip() == "```":
            inside = False
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        found.append((start, " ".join((pending + line).split())))
        pending = ""
    return found


COMMAND = re.compile(r"^((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)python -m (shared\.local|shared\.ops)\b\s*(.*)$")


def _without_comment(text: str) -> str:
    return re.split(r"\s#\s", " " + text, maxsplit=1)[0].strip()


def sh_commands() -> list[Synopsis]:
    """Every ``python -m shared.local|ops`` line of the README's sh blocks."""
    commands = []
    for number, line in _sh_lines():
        match = COMMAND.match(_without_comment(line))
        if match:
            env = tuple(match.group(1).split())
            commands.append(Synopsis(number, match.group(2), match.group(3).strip(), env))
    return commands


def ops_synopses() -> list[Synopsis]:
    """The backticked synopses at the start of each bullet of the Operations section (and after
    `` / ``), e.g. ``dead-letters list [--queue Q]``."""
    lines = _readme()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("## Operations (`python -m shared.ops`)")
    )
    found = []
    for number, line in enumerate(lines[start + 1 :], start + 2):
        if line.startswith("## "):
            break
        rest = line[2:] if line.startswith("- `") else None
        while rest is not None and rest.startswith("`"):
            text, rest = rest[1:].split("`", 1)
            found.append(Synopsis(number, "shared.ops", text))
            rest = rest[3:] if rest.startswith(" / `") else None
    return found


def _readme_text() -> str:
    return " ".join(README.read_text(encoding="utf-8").split())


# --- expanding a synopsis -------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    """Words, with brackets and parentheses split off their edges; a lone ``|`` separates
    alternatives, a ``|`` inside a word (``text|json``) chooses its value."""
    tokens: list[str] = []
    for word in text.replace("…", " ").split():
        opening: list[str] = []
        while word[:1] in ("[", "("):
            opening.append(word[0])
            word = word[1:]
        closing: list[str] = []
        while word[-1:] in ("]", ")"):
            closing.insert(0, word[-1])
            word = word[:-1]
        tokens += opening + ([word] if word else []) + closing
    return tokens


def _alternatives(tokens: list[str], at: int, until: str | None) -> tuple[list[list[str]], int]:
    """Every argument list the tokens from ``at`` stand for, up to ``until``; and where it stopped."""
    choices: list[list[str]] = []
    sequence: list[list[str]] = [[]]
    while at < len(tokens) and tokens[at] != until:
        token = tokens[at]
        if token == "|":
            choices += sequence
            sequence = [[]]
            at += 1
            continue
        parts: list[list[str]]
        if token in ("[", "("):
            inner, at = _alternatives(tokens, at + 1, "]" if token == "[" else ")")
            parts = ([[]] if token == "[" else []) + inner
            at += 1
        elif "|" in token and not token.startswith("|"):
            parts = [[value] for value in token.split("|")]
            at += 1
        else:
            parts = [[token]]
            at += 1
        sequence = [done + part for done, part in itertools.product(sequence, parts)]
    if until is not None and at >= len(tokens):
        raise ValueError(f"no closing {until!r}")
    return choices + sequence, at


PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z0-9_]*|YYYY-MM-DD|ISO8601)$")


def _sample(word: str) -> str:
    if not PLACEHOLDER.match(word):
        return word
    if word not in SAMPLES:
        raise KeyError(word)
    return SAMPLES[word]


def argument_lists(synopsis: Synopsis) -> list[list[str]]:
    lists, _ = _alternatives(_tokens(_without_comment(synopsis.text)), 0, None)
    return [[_sample(word) for word in words] for words in lists]


# --- parsing -------------------------------------------------------------------------------------


def _subcommand(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    """The (sub)parser the leading command words of ``words`` choose."""
    for word in words:
        chooser = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if chooser is None or word not in chooser.choices:
            break
        parser = chooser.choices[word]
    return parser


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def parse_error(synopsis: Synopsis, words: list[str]) -> str | None:
    """Why the real parser refuses ``words`` (None when it parses them), naming every flag it does
    not know outright (argparse would also take an abbreviation)."""
    parser = PARSERS[synopsis.module]()
    known = _flags(_subcommand(parser, words))
    unknown = [word for word in words if word.startswith("--") and word.split("=")[0] not in known]
    if unknown:
        return f"{synopsis.where()}: the parser has no {', '.join(unknown)} (arguments: {shlex.join(words)})"
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(words)
    except SystemExit as stop:
        if stop.code:
            return f"{synopsis.where()}: {shlex.join(words)}: {said.getvalue().strip()}"
    return None


def test_every_command_and_synopsis_of_the_readme_parses_as_written() -> None:
    commands, synopses = sh_commands(), ops_synopses()
    # The sh blocks' run, generate, run against Azurite and serve; the ten operations bullets.
    assert len(commands) >= 4, commands
    assert len(synopses) >= 10, synopses
    # `--at ISO8601` is an option of every command: checked with each of them.
    common = [s for s in synopses if s.text.startswith("--")]
    assert [s.text for s in common] == ["--at ISO8601"]
    errors, checked, lists = [], 0, 0
    for synopsis in commands + synopses:
        if synopsis in common:
            continue
        variants = argument_lists(synopsis)
        if synopsis.module == "shared.ops":
            extra = [words for c in common for words in argument_lists(c)]
            variants += [words + more for words in variants[:1] for more in extra]
        for words in variants:
            lists += 1
            if (why := parse_error(synopsis, words)) is not None:
                errors.append(why)
        checked += 1
    assert not errors, "\n".join(errors)
    assert checked == len(commands) + len(synopses) - len(common) >= 13
    assert lists >= 2 * checked  # every one had an optional part or a choice, or the --at variant


def test_the_expansion_leaves_out_and_puts_in_each_optional_part_and_takes_each_alternative() -> None:
    synopsis = Synopsis(
        0, "shared.ops", "quarantine reingest [--feed F] (--row KEY [--record-file FILE] | --all)"
    )
    assert sorted(map(" ".join, argument_lists(synopsis))) == sorted(
        [
            "quarantine reingest --row row-1",
            "quarantine reingest --row row-1 --record-file out/sample/file.json",
            "quarantine reingest --all",
            "quarantine reingest --feed niche --row row-1",
            "quarantine reingest --feed niche --row row-1 --record-file out/sample/file.json",
            "quarantine reingest --feed niche --all",
        ]
    )
    formats = argument_lists(
        Synopsis(0, "shared.ops", "journey show CRIME_REF [--format text|json]  # a comment")
    )
    assert formats == [
        ["journey", "show", "HU/000101/26"],
        ["journey", "show", "HU/000101/26", "--format", "text"],
        ["journey", "show", "HU/000101/26", "--format", "json"],
    ]


def test_a_synopsis_naming_a_flag_the_parser_lacks_fails_naming_the_readme_line() -> None:
    synopsis = Synopsis(612, "shared.ops", "access-log [--since YYYY-MM-DD]")
    outcomes = [parse_error(synopsis, words) for words in argument_lists(synopsis)]
    assert outcomes[0] is None
    assert outcomes[1] is not None and outcomes[1].startswith("README.md:612: ") and "--since" in outcomes[1]
    # An abbreviation argparse would accept is still not the flag's name.
    abbreviated = Synopsis(7, "shared.local", "generate --crimes 1 --days 1 --seed 1 --o DIR")
    assert "no --o" in (parse_error(abbreviated, argument_lists(abbreviated)[0]) or "")


# --- running the sh blocks -----------------------------------------------------------------------


def _only(module: str, words: str) -> Synopsis:
    """The one sh-block command of ``module`` whose arguments start with ``words``."""
    found = [c for c in sh_commands() if c.module == module and c.text.startswith(words)]
    assert len(found) == 1, (words, found)
    return found[0]


def _filled(synopsis: Synopsis, values: dict[str, str]) -> list[str]:
    """The command as written, optional parts left out, each placeholder given the value for the
    flag before it (``values["--out"]``) or for itself (``values["N"]``)."""
    words = argument_lists(Synopsis(synopsis.line, synopsis.module, _bare(synopsis.text)))[0]
    placeholders = _tokens(_bare(synopsis.text))
    filled = []
    for at, word in enumerate(placeholders):
        if PLACEHOLDER.match(word):
            key = placeholders[at - 1] if placeholders[at - 1] in values else word
            filled.append(values[key])
        else:
            filled.append(word)
    assert len(filled) == len(words)
    return [sys.executable, "-m", synopsis.module, *filled]


def _bare(text: str) -> str:
    """The arguments without their optional parts."""
    text = _without_comment(text)
    while "[" in text:
        text = re.sub(r"\[[^\[\]]*\]", "", text)
    return " ".join(text.split())


def _environment(**settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **settings}


def _run(command: list[str], cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=_environment(**settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _files_named(text: str) -> set[str]:
    return set(re.findall(r"`([\w.-]+\.jsonl?)`", text))


@dataclass(frozen=True)
class Sample:
    root: Path  # where the commands ran (their cwd)
    feeds: Path
    run: Path
    generate: subprocess.CompletedProcess[str]
    replay: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """``generate`` (8 crimes over 3 days) then ``run`` over it, as the README writes them, in a
    temporary folder: the feeds in ``out/demo/feeds``, the run in ``out/demo/run``."""
    root = tmp_path_factory.mktemp("readme")
    generate = _filled(
        _only("shared.local", "generate"), {"N": "8", "D": "3", "S": "5", "--out": "out/demo/feeds"}
    )
    made = _run(generate, root)
    replay = _filled(
        _only("shared.local", "run --feeds DIR"),
        {"--feeds": "out/demo/feeds", "--officers": "out/demo/feeds/officers.json", "--out": "out/demo/run"},
    )
    ran = _run(replay, root) if made.returncode == 0 else made
    return Sample(root, root / "out/demo/feeds", root / "out/demo/run", made, ran)


def test_generate_as_written_writes_the_files_the_readme_promises(sample: Sample) -> None:
    assert sample.generate.returncode == 0, sample.generate.stderr
    lines = _readme_text()
    promised = _files_named(lines[lines.index("`generate` writes a deterministic sample") :][:1200])
    assert promised >= {
        "niche.jsonl",
        "storm.jsonl",
        "officers.json",
        "delivery-reports.json",
        "synthetic.json",
    }
    missing = sorted(name for name in promised if not (sample.feeds / name).is_file())
    assert not missing, f"README: generate writes {sorted(promised)}; missing from {sample.feeds}: {missing}"


def _run_outputs() -> set[str]:
    """The files of the table after "It writes, one JSON object a line, under `--out`:"."""
    lines = _readme()
    start = next(i for i, line in enumerate(lines) if line.endswith("object a line, under `--out`:"))
    table = itertools.takewhile(lambda line: line.startswith("|") or not line.strip(), lines[start + 1 :])
    return {match.group(1) for line in table if (match := re.match(r"\| `([\w.-]+)` \|", line))}


def test_run_as_written_exits_0_and_writes_the_files_the_readme_lists(sample: Sample) -> None:
    assert sample.replay.returncode == 0, sample.replay.stderr
    listed = _run_outputs()
    assert len(listed) >= 9 and {"outbox.jsonl", "summary.json", "audit.jsonl"} <= listed
    missing = sorted(name for name in listed if not (sample.run / name).is_file())
    assert not missing, f"README lists {sorted(listed)} under --out; missing from {sample.run}: {missing}"
    assert not [line for line in sample.replay.stderr.splitlines() if " failed" in line], sample.replay.stderr
    assert sample.replay.stderr.rstrip().splitlines()[-1].startswith("progress: done")
    summary = json.loads((sample.run / "summary.json").read_text(encoding="utf-8"))
    assert summary["records"]["niche"] > 0 and summary["messages"]["email"] + summary["messages"]["sms"] > 0


# --- Azurite, as the README starts it on other ports ---------------------------------------------


@dataclass(frozen=True)
class AzuriteRun:
    connection: str
    ran: subprocess.CompletedProcess[str]
    out: Path


def _other_ports() -> tuple[str, str]:
    """The README's ``make azurite`` on other ports, and the connection string it gives for them."""
    text = _readme_text()
    make = re.search(r"`(make azurite (?:AZURITE_\w+_PORT=\d+ ?)+)`", text)
    connection = re.search(r"`(DefaultEndpointsProtocol=[^`]+)`", text)
    assert make and connection, (
        "README: no `make azurite AZURITE_…_PORT=…` or no connection string for other ports"
    )
    return make.group(1).strip(), connection.group(1)


@contextlib.contextmanager
def _process_group(
    command: list[str], cwd: Path, output: IO[bytes] | int
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` started in its own process group (stderr with stdout into ``output``), and the
    whole group (for ``make``: make, the shell and Node) killed on leaving, even on a failure."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is left
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def azurite_run(sample: Sample) -> Iterator[AzuriteRun]:
    why = azurite.missing()
    if why is None and not (REPO / "node_modules" / ".installed").exists():
        why = "node_modules/.installed is missing: `make azurite` would run npm ci (run `make test` first)"
    if why is not None:
        pytest.skip(why)
    assert sample.generate.returncode == 0, sample.generate.stderr
    make, readme_connection = _other_ports()
    readme_ports = {name.lower(): port for name, port in re.findall(r"AZURITE_(\w+)_PORT=(\d+)", make)}
    assert set(readme_ports) == {"table", "blob", "queue"}, make
    # The connection string names the ports of the make command: Tables and Blobs.
    named = dict(re.findall(r"(\w+)Endpoint=http://127\.0\.0\.1:(\d+)/", readme_connection))
    assert named == {"Table": readme_ports["table"], "Blob": readme_ports["blob"]}, readme_connection
    block = _only("shared.local", "run --feeds out/demo/feeds")
    assert block.env == ("StateStorage=UseDevelopmentStorage=true",), block
    command = [sys.executable, "-m", block.module, *shlex.split(_bare(block.text))]
    # A port found free can be taken before Azurite binds it: then it exits (EADDRINUSE), and is
    # started again on other ports, as shared/local/azurite.py does.
    for attempt in range(1, 4):
        ports = {name: azurite.free_port() for name in readme_ports}
        on_ports = make
        for name, port in readme_ports.items():
            on_ports = on_ports.replace(f"={port}", f"={ports[name]}")
        connection = readme_connection
        for name in ("table", "blob"):
            connection = connection.replace(f":{readme_ports[name]}/", f":{ports[name]}/")
        # -o: never remake the node_modules stamp (the test does not install; `make test` has).
        make_command = ["make", "-C", str(REPO), "-o", "node_modules/.installed", *shlex.split(on_ports)[1:]]
        said = sample.root / "make-azurite.log"
        with said.open("wb") as log, _process_group(make_command, sample.root, log) as process:
            why = azurite.listening(process, said, ports, 60)
            if why is None:
                prefix = "readme" + os.urandom(4).hex()
                ran = _run(command, sample.root, StateStorage=connection, STATE_TABLE_PREFIX=prefix)
                yield AzuriteRun(connection, ran, sample.root / "out/azurite")
                return
        if "EADDRINUSE" not in why or attempt == 3:
            pytest.fail(f"make azurite did not start: {why}")


def test_run_against_make_azurite_on_other_ports_through_the_readmes_connection_string(
    azurite_run: AzuriteRun,
) -> None:
    assert azurite_run.ran.returncode == 0, azurite_run.ran.stderr
    assert azurite_run.ran.stderr.rstrip().splitlines()[-1].startswith("progress: done")
    assert (azurite_run.out / "summary.json").is_file()
    # The state went to Table Storage: no state.db in --out, only the queues.
    assert not (azurite_run.out / "state.db").exists() and (azurite_run.out / "queues.db").exists()


def test_no_function_fails_in_the_run_against_make_azurite(azurite_run: AzuriteRun) -> None:
    failures = sorted({line for line in azurite_run.ran.stderr.splitlines() if " failed" in line})
    assert not failures, failures


# --- serve ---------------------------------------------------------------------------------------


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


def test_serve_as_written_answers_over_the_run_folder(sample: Sample) -> None:
    assert sample.replay.returncode == 0, sample.replay.stderr
    port = str(azurite.free_port())
    command = _filled(_only("shared.local", "serve"), {"--data": "out/demo/run"})
    command += ["--port", port]  # the synopsis's [--port 8080], on a free port
    with _process_group(command, sample.root, subprocess.PIPE) as server:
        assert server.stdout is not None
        said = ""
        for line in server.stdout:  # until it says where it listens (or ends)
            said += line.decode()
            if line.startswith(b"serving"):
                break
        address = f"http://127.0.0.1:{port}/"
        assert f" on {address} " in said, said
        status, page = _get(address)
        assert status == 404 and "This link does not work" in page
        # "To open a link from outbox.jsonl, put that address in place of the link's scheme and host."
        base = Policy().force.link_base_url
        message = read_jsonl(sample.run / "outbox.jsonl")[-1]
        link = re.search(re.escape(base) + r"/[0-9A-Za-z]{11}", message["body"])
        assert link, message["message_id"]
        status, page = _get(address + link.group(0).removeprefix(base + "/"))
        assert status == 200 and message["crime_reference"] in page


# --- operations commands on the run folder -------------------------------------------------------


def test_operations_commands_from_the_readme_on_the_run_folder(
    sample: Sample, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert sample.replay.returncode == 0, sample.replay.stderr
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    data = str(sample.run)
    listed = {" ".join(s.text.split()[:2]) for s in ops_synopses()}
    crime = read_jsonl(sample.run / "audit.jsonl")[0]["crime_reference"]
    clock = json.loads((sample.run / "summary.json").read_text(encoding="utf-8"))["clock"]
    first, last = clock["start"][:10], clock["end"][:10]
    commands = [
        ["quarantine", "list", "--data", data],
        ["journey", "show", crime, "--data", data],
        ["journey", "show", crime, "--format", "json", "--data", data],
        ["access-log", "--data", data],
        ["compliance", "--from", first, "--to", last, "--out", str(tmp_path / "report"), "--data", data],
    ]
    for command in commands:
        assert any(" ".join(command[:2]).startswith(name) for name in listed), command
        code, out, err = ops(capsys, *command)
        assert code == 0 and err == "", (command, err)
        assert out.strip(), command
    assert len(read_jsonl(sample.run / "quarantine.jsonl")) == len(
        ops(capsys, "quarantine", "list", "--data", data)[1].splitlines()
    )
    assert json.loads(ops(capsys, "journey", "show", crime, "--format", "json", "--data", data)[1])
    assert {p.name for p in (tmp_path / "report").iterdir()} >= {
        "compliance.csv",
        "repeat-contacts.csv",
        "compliance.html",
    }
