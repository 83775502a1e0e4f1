"""The officer directory from a JSON file (locally, in place of Microsoft Graph)."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from shared.contracts.messages import Officer

_OFFICERS = TypeAdapter(list[Officer])


class JsonOfficerDirectory:
    """An OfficerDirectory read once from a JSON array of officer entries."""

    def __init__(self, path: Path | None) -> None:
        self._officers: dict[str, Officer] = {}
        if path is None:
            return
        try:
            officers = _OFFICERS.validate_json(path.read_bytes())
        except OSError as exc:
            raise ValueError(f"cannot read officer directory {path}: {exc.strerror}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"officer directory {path} is malformed at {where}: {first['msg']}") from exc
        self._officers = {officer.employee_id: officer for officer in officers}

    def lookup(self, employee_id: str) -> Officer | None:
        return self._officers.get(employee_id)
