"""What the command lines share: one-line argument errors and ISO 8601 times with an offset."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def iso8601(value: str) -> datetime:
    """An argument that must be an ISO 8601 time with an offset."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time needs an offset, e.g. {value}Z or {value}+00:00")
    return moment


def day(value: str) -> date:
    """An argparse type: a day written YYYY-MM-DD (not the basic 20261005, which Python also reads)."""
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None
    if len(value) != 10 or not value[4:5] == "-" == value[7:8]:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}")
    return parsed


def file_in_the_way(folder: Path) -> Path | None:
    """The file that stops ``folder`` being made (a parent of it that is a file), if any."""
    above = next((parent for parent in folder.absolute().parents if parent.exists()), None)
    return above if above is not None and not above.is_dir() else None
