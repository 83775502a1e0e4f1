"""The layers hold: steps depend on ports, the domain does no I/O, one module composes.

Checked from the source (every import statement of every module) and by importing
each step in a fresh interpreter, so that a step importing the composition root,
or the domain importing an adapter, fails here rather than in review.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = sorted(p for p in (ROOT / "shared" / "steps").glob("*.py") if p.name != "__init__.py")
DOMAIN = sorted(p for p in (ROOT / "shared" / "domain").rglob("*.py") if p.name != "__init__.py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_step_imports_the_composition_root_or_an_azure_sdk() -> None:
    checked = 0
    for path in STEPS:
        imports = _imports(path)
        assert "shared.bootstrap" not in imports, f"{path.name} imports the composition root"
        assert not any(name.startswith("azure.") for name in imports), f"{path.name} imports an Azure SDK"
        checked += 1
    assert checked >= 8


def test_the_domain_imports_no_adapter_step_template_engine_or_sdk() -> None:
    checked = 0
    for path in DOMAIN:
        for name in _imports(path):
            assert not name.startswith(
                ("shared.adapters", "shared.steps", "shared.bootstrap", "shared.ports", "azure", "jinja2")
            ), f"{path.name} imports {name}"
        checked += 1
    assert checked >= 10


# Calls that read or write files: the domain makes none (templates and the policy file are read
# by adapters and handed in).
_IO_CALLS = {
    "open",
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "is_dir",
    "is_file",
    "exists",
    "rglob",
    "glob",
    "iterdir",
}


def test_the_domain_does_no_file_io() -> None:
    calls = 0
    for path in DOMAIN:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                calls += 1
                name = (
                    node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                )
                assert name not in _IO_CALLS, f"{path.name}:{node.lineno} calls {name}()"
    assert calls > 500


@pytest.mark.parametrize("step", [p.stem for p in STEPS])
def test_importing_a_step_loads_no_azure_sdk(step: str) -> None:
    code = (
        "import json, sys\n"
        f"import shared.steps.{step}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('azure') or m == 'shared.bootstrap')))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
    )
    assert loaded == [], f"importing shared.steps.{step} loads {loaded}"
