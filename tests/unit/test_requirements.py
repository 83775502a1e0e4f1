"""What each requirements file pins. The deployed app's (requirements.txt) pins every third-party
module the app imports and nothing else it does not need; the operations commands install from
requirements-ops.txt on a staff laptop: every third-party module they import (directly, or through
the shared modules they import) is pinned there, and a command whose library is missing says so at
once, naming the file."""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Mapping
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPS = "requirements-ops.txt"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (relative imports resolved)."""
    found: set[str] = set()
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule, if it is one
    return found


def _shared_file(module: str) -> Path | None:
    path = REPO.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _third_party_imports(roots: list[Path]) -> set[str]:
    """The third-party modules these files import, following the shared modules they import."""
    todo = sorted(roots)
    seen: set[Path] = set()
    outside: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports(path):
            top = module.split(".")[0]
            if top == "shared":
                if (found := _shared_file(module)) is not None:
                    todo.append(found)
            elif top not in sys.stdlib_module_names and top != "__future__":
                outside.add(module)
    return outside


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return packages_distributions()


def _distribution_of(module: str) -> str:
    """The installed distribution that provides a module (a namespace package's, by its files)."""
    top = module.split(".")[0]
    candidates = _distributions().get(top, [])
    if len(set(candidates)) == 1:
        return candidates[0].lower()
    parts = module.split(".")
    for depth in range(len(parts), 1, -1):  # the deepest module or package whose file one distribution has
        stem = "/".join(parts[:depth])
        own = {f"{stem}.py", f"{stem}/__init__.py"}
        holders = {
            name.lower()
            for name in candidates
            if any(str(file) in own for file in distribution(name).files or ())
        }
        if len(holders) == 1:
            return holders.pop()
    raise AssertionError(f"no single installed distribution provides {module}: {candidates}")


def _pins(name: str) -> dict[str, str]:
    """Distribution -> pinned version, following -r includes."""
    pins: dict[str, str] = {}
    for line in (REPO / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            pins.update(_pins(line[3:].strip()))
        elif line:
            found = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
            assert found, f"{name}: not pinned: {line}"
            pins[_normal(found.group(1))] = found.group(2)
    return pins


def _needed(modules: set[str]) -> dict[str, set[str]]:
    """Distribution (normalised name) -> the modules of it imported."""
    needed: dict[str, set[str]] = {}
    for module in modules:
        try:
            name = _distribution_of(module)
        except AssertionError:
            if module.rsplit(".", 1)[0] in modules:
                continue  # "from package import name": the name is not a module of its own
            raise
        needed.setdefault(_normal(name), set()).add(module)
    return needed


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_module_the_ops_commands_import_is_pinned_in_requirements_ops() -> None:
    modules = _third_party_imports(list((REPO / "shared/ops").glob("*.py")))
    assert {"matplotlib.figure", "azure.servicebus", "jinja2"} <= modules  # the walk sees them
    pins = _pins(OPS)
    needed = _needed(modules)
    assert {name: sorted(mods) for name, mods in needed.items() if name not in pins} == {}
    # ... at the version installed here, the one the tests ran with.
    assert {name: pins[name] for name in needed if pins[name] != distribution(name).version} == {}


def test_the_test_environment_installs_the_ops_requirements() -> None:
    assert f"-r {OPS}" in (REPO / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    assert set(_pins(OPS)) <= set(_pins("requirements-dev.txt"))


def _requires(name: str) -> set[str]:
    """The distributions ``name`` needs when installed, with what those need in turn."""
    found: set[str] = set()
    todo = [name]
    while todo:
        for requirement in distribution(todo.pop()).requires or ():
            if "extra ==" in requirement:
                continue
            needed = _normal(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
            if needed not in found:
                found.add(needed)
                todo.append(needed)
    return found


def test_the_deployed_app_pins_what_it_imports_and_nothing_it_does_not_need() -> None:
    """Every third-party module the function app imports (function_app.py and the shared modules it
    reaches, inside functions too) is pinned in requirements.txt at the version the tests ran with;
    and every pin there is imported by the app or needed by one that is: the command line's own
    libraries (tqdm) are not uploaded to Azure."""
    modules = _third_party_imports([REPO / "function_app.py"])
    assert {"azure.functions", "azure.servicebus", "azure.data.tables", "jinja2"} <= modules  # seen
    pins = _pins("requirements.txt")
    needed = _needed(modules)
    assert {name: sorted(mods) for name, mods in needed.items() if name not in pins} == {}
    assert {name: pins[name] for name in needed if pins[name] != distribution(name).version} == {}
    reached = set(needed).union(*(_requires(name) for name in needed))
    assert sorted(set(pins) - reached) == []


def test_a_command_whose_library_is_missing_fails_at_once_naming_the_file_to_install_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.adapters.sqlite_tables import SqliteTableStore
    from tests.builders import ops

    for name in ("StateStorage", "StateStorage__tableServiceUri", "ServiceBusConnection", "LOCAL_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: importing it fails
    data = tmp_path / "run"
    data.mkdir()
    SqliteTableStore(data / "state.db").close()
    report = tmp_path / "report"
    code, out, err = ops(
        capsys, "compliance", "--from", "2026-11-01", "--to", "2026-11-30", "--out", report, "--data", data
    )
    assert code == 1 and out == ""
    assert err == (
        "python -m shared.ops compliance: error: the compliance report needs matplotlib, which is not "
        f"installed: pip install -r {OPS}\n"
    )
    assert not report.exists()  # nothing written half-way
