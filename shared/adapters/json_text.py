"""Where and why a text stops being JSON, said the same way for every file and record we read."""

from __future__ import annotations

import json


def problem(exc: json.JSONDecodeError, *, line: bool = True) -> str:
    """``Unterminated string starting at line 3, column 5``: the parser's reason (some of its
    messages end in "at", which is left off) and where it stops. ``line=False`` for a one-line
    record, where only the column says anything."""
    where = f"line {exc.lineno}, column {exc.colno}" if line else f"column {exc.colno}"
    return f"{exc.msg.removesuffix(' at')} at {where}"
