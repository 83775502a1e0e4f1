"""What ``func azure functionapp publish`` would upload: the app, and no victims' data (issue 15, finding 5).

The list is built as Azure Functions Core Tools builds it (``tests.publish_list``: its walk, the files it
always leaves out, and its own ``.funcignore`` parser, which is not git's) over a copy of the
repository in which every folder that holds victims' data, secrets or tooling has files in it, so
that no check passes because a folder happens to be absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.web.assets import STYLESHEET, StaticAssets
from tests import publish_list
from tests.publish_list import FUNCIGNORE, FuncIgnore, published_files

ROOT = Path(__file__).resolve().parents[2]
# The model of Core Tools these tests use: a test helper, which must not ship with the app.
HELPER = Path(publish_list.__file__).resolve().relative_to(ROOT).as_posix()
GOVUK = "node_modules/govuk-frontend/dist/govuk/"
REAL_GOVUK_FRONTEND = ROOT / "node_modules" / "govuk-frontend"

# Files a working copy holds besides the repository's own: none of these may be uploaded.
MADE_LOCALLY = [
    ".local/state.db",
    ".local/queues.db-wal",
    ".local/outbox.jsonl",
    ".local/officer-mail.jsonl",
    ".local/feeds/niche.jsonl",
    ".local/feeds/officers.json",
    ".local/page-signing.key",
    "out/outbox.jsonl",
    "out/demo/run/outbox.jsonl",
    "out/demo/report.html",
    "page-signing.key",
    "state.db",
    "shared/local/stray.db",
    "shared/web/stray.key",
    "local.settings.json",
    ".env",
    ".venv/bin/python",
    ".venv/pyvenv.cfg",
    ".venv/lib/python3.11/site-packages/requests/__init__.py",
    ".venv-iac/bin/python",
    ".venv-iac/lib/python3.11/site-packages/checkov/__init__.py",
    "venv/bin/python",
    "node_modules/.installed",
    "node_modules/.package-lock.json",
    "node_modules/azurite/package.json",
    "node_modules/azurite/dist/src/azurite.js",
    "node_modules/axe-core/axe.min.js",
    "node_modules/govuk-frontend/package.json",
    "node_modules/govuk-frontend/dist/govuk/all.bundle.js",
    "node_modules/govuk-frontend/dist/govuk/index.scss",
    ".hypothesis/examples/0a1b/2c3d",
    ".pytest_cache/v/cache/lastfailed",
    ".mypy_cache/3.11/shared/telemetry.data.json",
    ".ruff_cache/0.17.5/123",
    "__pycache__/function_app.cpython-311.pyc",
    "shared/__pycache__/telemetry.cpython-311.pyc",
    "shared/web/__pycache__/assets.cpython-311.pyc",
    ".git",  # a worktree's: a file naming the repository
    ".vscode/settings.json",
]
# GOV.UK Frontend's files the victim's page serves (faked here; the real package in the last test).
FAKE_ASSETS = [
    GOVUK + STYLESHEET,
    GOVUK + "assets/fonts/bold-b542beb274-v2.woff2",
    GOVUK + "assets/images/favicon.ico",
    GOVUK + "assets/images/govuk-crest.svg",
]


def _repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [path for path in listed.stdout.split("\0") if path and (ROOT / path).is_file()]


def _working_copy(folder: Path, *, with_funcignore: bool = True) -> Path:
    """A copy of the repository's files, with everything a working copy makes beside them."""
    for path in _repository_files():
        if path == FUNCIGNORE and not with_funcignore:
            continue
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, folder / path)
    for path in [*MADE_LOCALLY, *FAKE_ASSETS]:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("jane@example.org +447700900123\n", encoding="utf-8")
    return folder


def _must_not_ship(path: str) -> str | None:
    """Why ``path`` must not be uploaded, or None."""
    parts = path.split("/")
    name = parts[-1]
    if parts[0] == "node_modules":
        kept = path == GOVUK + STYLESHEET or path.startswith(GOVUK + "assets/")
        return None if kept else "a node package the page does not serve"
    checks = {
        "a virtual environment": parts[0] in (".venv", ".venv-iac", "venv", "env"),
        "tests": parts[0] == "tests",
        "victims' data (out/)": "out" in parts[:-1],
        "victims' data (.local/)": ".local" in parts[:-1],
        "local settings": name == "local.settings.json" or name == ".env",
        "a key": name.endswith((".key", ".pem", ".pfx")),
        "a database or feed": re.search(r"\.db(-\w+)?$|\.jsonl$", name) is not None,
        "a cache": any(p in (".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache") for p in parts)
        or "__pycache__" in parts
        or name.endswith(".pyc"),
        "the repository or tooling": parts[0] in (".git", ".vscode", ".ci", "infra", "docs"),
    }
    return next((why for why, found in checks.items() if found), None)


def test_the_publish_list_holds_no_victims_data_secrets_environments_tests_or_tools(tmp_path: Path) -> None:
    shipped = published_files(_working_copy(tmp_path))
    assert [(path, why) for path in shipped if (why := _must_not_ship(path))] == []
    assert not set(MADE_LOCALLY) & set(shipped)
    assert HELPER not in shipped, "the publish-list model is a test helper"


def test_without_the_funcignore_the_same_copy_would_upload_them(tmp_path: Path) -> None:
    # The copy really holds what the check above looks for: only .funcignore keeps it out
    # (Core Tools itself leaves out local.settings.json and .vscode/, and a .git folder, not a .git file).
    shipped = set(published_files(_working_copy(tmp_path, with_funcignore=False)))
    assert set(MADE_LOCALLY) - shipped == {"local.settings.json", ".vscode/settings.json"}
    assert {"tests/unit/test_publish.py", HELPER, "infra/bicep/main.bicep"} <= shipped


def test_the_publish_list_holds_what_the_app_needs(tmp_path: Path) -> None:
    shipped = set(published_files(_working_copy(tmp_path)))
    needed = {
        path
        for path in _repository_files()
        if path in ("function_app.py", "host.json", "requirements.txt")
        or path.startswith(("shared/", "policy/"))
    }
    assert len(needed) > 150
    assert needed - shipped == set()
    assert set(FAKE_ASSETS) <= shipped
    top = {path.split("/")[0] for path in shipped}
    assert top == {"function_app.py", "host.json", "requirements.txt", "shared", "policy", "node_modules"}


@pytest.mark.skipif(not REAL_GOVUK_FRONTEND.is_dir(), reason="govuk-frontend is not installed: run make test")
def test_every_asset_the_page_asks_for_is_uploaded_from_the_real_package(tmp_path: Path) -> None:
    copy = _working_copy(tmp_path)
    shutil.rmtree(copy / "node_modules" / "govuk-frontend")
    (copy / "node_modules" / "govuk-frontend").symlink_to(REAL_GOVUK_FRONTEND, target_is_directory=True)
    shipped = set(published_files(copy))
    root = copy / GOVUK
    stylesheet = (root / STYLESHEET).read_text(encoding="utf-8")
    layout = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "shared/templates/web").glob("*.j2"))
    asked = {"/assets/" + STYLESHEET}
    asked |= set(re.findall(r"url\((/assets/[^)]+)\)", stylesheet))
    asked |= set(re.findall(r"""["'](/assets/[^"'{}]+\.\w+)["']""", layout))
    assert len(asked) >= 6 and "/assets/images/favicon.ico" in asked
    assets = StaticAssets(root)
    for path in sorted(asked):
        found = assets.file_for(path)
        assert found is not None, path
        assert found.relative_to(root.resolve()).as_posix() in {
            p.removeprefix(GOVUK) for p in shipped if p.startswith(GOVUK)
        }, path
    # And nothing else of the package: no scripts, Sass or components' templates.
    others = [p for p in shipped if p.startswith("node_modules/") and not p.startswith(GOVUK)]
    assert others == []
    assert not [p for p in shipped if p.startswith(GOVUK) and p.endswith((".js", ".mjs", ".scss", ".njk"))]


def test_with_a_git_compliant_parser_nothing_that_must_not_ship_would_either(tmp_path: Path) -> None:
    # Should Core Tools read .funcignore as git does (Azure/azure-functions-core-tools#2701 asks for
    # it), the denials still hold: real git lists what the same file leaves in.
    copy = _working_copy(tmp_path / "app")
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "git")], check=True)
    listed = subprocess.run(
        [
            "git",
            f"--git-dir={tmp_path / 'git'}",
            f"--work-tree={copy}",
            "ls-files",
            "--others",
            f"--exclude-from={copy / FUNCIGNORE}",
            "-z",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    kept = [path for path in listed.stdout.split("\0") if path]
    assert "function_app.py" in kept and len(kept) > 150
    assert [(path, why) for path in kept if (why := _must_not_ship(path))] == []


@pytest.mark.parametrize(
    ("rules", "path", "published"),
    [
        # Azure/azure-functions-core-tools#2701: "*.ts" does not reach into folders.
        ("*.ts", "index.ts", False),
        ("*.ts", "src/index.ts", True),
        ("**/*.ts", "src/index.ts", False),
        # A pattern is a prefix: a folder's name denies its files, and any longer name too.
        ("tests", "tests/unit/test_x.py", False),
        ("tests", "tests2.txt", False),
        (".venv", ".venv-iac/bin/python", False),
        ("/out/", "out/outbox.jsonl", False),
        ("out/", "shared/out/x", True),
        # "?" and "[...]" are literal characters.
        ("?.db", "a.db", True),
        # A "!" line wins wherever it stands, even inside a denied folder.
        ("!node_modules/a/\nnode_modules", "node_modules/a/x.css", True),
        ("node_modules\n!node_modules/a/", "node_modules/a/x.css", True),
        ("node_modules\n!node_modules/a/", "node_modules/b/x.css", False),
        ("# a comment\n\n   x.txt   ", "x.txt", False),
    ],
)
def test_funcignore_is_read_as_core_tools_reads_it(rules: str, path: str, published: bool) -> None:
    assert FuncIgnore(rules).accepts(path) is published
