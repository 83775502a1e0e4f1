"""Blobs as files in a folder (the embedded twin of Azure Blob Storage's one container)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

# The names this service writes: path segments of letters, digits, '.', '_' and '-'.
_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


class FileBlobStore:
    """One file a blob under ``root``, written to a temporary name then renamed, so a reader sees
    either the old blob or the new one whole."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name) or any(part in (".", "..") for part in name.split("/")):
            raise ValueError(f"not a blob name: {name!r}")
        return self.root.joinpath(*name.split("/"))

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}.partial")
        staging.write_bytes(data)
        os.replace(staging, path)

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def written_before(self, before: datetime) -> Iterator[str]:
        if not self.root.is_dir():
            return
        cutoff = before.timestamp()
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".") and path.stat().st_mtime < cutoff:
                yield path.relative_to(self.root).as_posix()
