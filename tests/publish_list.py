"""What ``func azure functionapp publish`` uploads: the files Azure Functions Core Tools puts in the zip.

A model of Core Tools used by tests/unit/test_publish.py, kept under tests/ so that it does not ship
with the app itself (``.funcignore`` leaves ``tests/`` out, and that test checks this file is not
in the upload).

Core Tools walks the app's folder (following folder links), always leaves out folders named
``.git`` or ``.vscode`` and files named ``.funcignore``, ``.gitignore``, ``local.settings.json`` or
``project.lock.json``, and leaves out whatever ``.funcignore`` denies. Its ``.funcignore`` parser is
not git's (Azure/azure-functions-core-tools#2701: a reimplementation of the old JavaScript
``gitignore-parser``), and this module reproduces what it does, not what git would do:

* each line (trimmed; ``#`` lines and blank lines skipped) is a pattern; a leading ``!`` makes it
  a keep-pattern; one leading ``/`` is dropped;
* a pattern is matched against the file's path from the app's root (``shared/web/site.py``) as a
  regular expression anchored at the START only: ``tests`` also denies ``tests/…`` and ``tests2``,
  and ``x.css`` keeps ``x.css.map`` too;
* ``**`` is any run of characters (``/`` included, at least one), ``*`` any run of at least one
  character other than ``/``; nothing else is special (``?`` and ``[…]`` are literal). So ``*.key``
  denies ``page-signing.key`` at the root but not ``shared/page-signing.key``: write ``**/*.key``
  as well;
* a file is published when any keep-pattern matches it or no other pattern does: a ``!`` line wins
  whatever its place in the file, and can keep a file inside a denied folder.

``python -m tests.publish_list`` prints the files that would be published from the current folder.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

FUNCIGNORE = ".funcignore"
# Left out by Core Tools whatever .funcignore says (compared without regard to case).
ALWAYS_SKIPPED_FOLDERS = frozenset({".git", ".vscode"})
ALWAYS_SKIPPED_FILES = frozenset({".funcignore", ".gitignore", "local.settings.json", "project.lock.json"})

# The characters Core Tools escapes in a pattern before turning ** and * into expressions.
_ESCAPED = re.compile(r"[-\[\]/{}()+?.\\^$|]")
_NEVER = re.compile(r"$^")


def _expression(pattern: str) -> str:
    escaped = _ESCAPED.sub(lambda found: "\\" + found.group(0), pattern)
    return escaped.replace("**", "(.+)").replace("*", "([^\\/]+)")


def _alternatives(patterns: list[str]) -> re.Pattern[str]:
    if not patterns:
        return _NEVER
    return re.compile("^((" + ")|(".join(_expression(p) for p in sorted(patterns)) + "))")


class FuncIgnore:
    """A ``.funcignore`` read as Core Tools reads it."""

    def __init__(self, text: str) -> None:
        deny: list[str] = []
        keep: list[str] = []
        for raw in text.split("\n"):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negative = line.startswith("!")
            line = line.removeprefix("!").removeprefix("/")
            (keep if negative else deny).append(line)
        self._deny = _alternatives(deny)
        self._keep = _alternatives(keep)

    def accepts(self, path: str) -> bool:
        """Whether the file at ``path`` (from the app's root, ``/`` between folders) is published."""
        return bool(self._keep.match(path)) or not self._deny.match(path)


def _files(folder: Path) -> Iterator[Path]:
    """Files first, then each sub-folder's, as Core Tools walks (into folder links too)."""
    entries = sorted(folder.iterdir())
    for entry in entries:
        if entry.is_file() and entry.name.lower() not in ALWAYS_SKIPPED_FILES:
            yield entry
    for entry in entries:
        if entry.is_dir() and entry.name.lower() not in ALWAYS_SKIPPED_FOLDERS:
            yield from _files(entry)


def published_files(root: Path) -> list[str]:
    """The paths (from ``root``, ``/`` between folders) ``func azure functionapp publish`` uploads."""
    ignore_file = root / FUNCIGNORE
    rules = FuncIgnore(ignore_file.read_text(encoding="utf-8")) if ignore_file.is_file() else None
    found: list[str] = []
    for file in _files(root):
        path = file.relative_to(root).as_posix()
        if rules is None or rules.accepts(path):
            found.append(path)
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(os.curdir)
    for path in published_files(root):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
