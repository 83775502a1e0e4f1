"""The officer directory from a JSON file (locally, in place of Microsoft Graph)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from shared.adapters import json_text
from shared.contracts.messages import Officer

_OFFICERS = TypeAdapter(list[Officer])


def _read(path: Path) -> object:
    """The file's JSON; a file that is not JSON at all is named with where it stops being JSON."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read officer directory {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"officer directory {path} is not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"officer directory {path} is not JSON: {json_text.problem(exc)}") from exc
    except RecursionError:
        raise ValueError(
            f"officer directory {path} is not JSON this reader can take: nested too deeply"
        ) from None


class JsonOfficerDirectory:
    """An OfficerDirectory read once from a JSON array of officer entries."""

    def __init__(self, path: Path | None) -> None:
        self._officers: dict[str, Officer] = {}
        if path is None:
            return
        data = _read(path)
        try:
            officers = _OFFICERS.validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            at = f" at {where}" if where else ""  # the file as a whole has no location to name
            raise ValueError(f"officer directory {path} is malformed{at}: {first['msg']}") from exc
        self._officers = {officer.employee_id: officer for officer in officers}

    def lookup(self, employee_id: str) -> Officer | None:
        return self._officers.get(employee_id)
