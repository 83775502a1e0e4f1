"""Parse Bicep files with pycep-parser and print them as one JSON document.

Run with the IaC virtual environment (the one checkov uses, so a file this parses is a
file checkov scans): ``.venv-iac/bin/python infra/bicep/tools/bicep_json.py FILE...``.
Output: ``{"files": {path: parsed JSON}, "errors": {path: message}}``; exit status 1
when any file failed to parse. Used by tests/integration/test_infra.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(paths: list[str]) -> int:
    from pycep import BicepParser

    parser = BicepParser()
    files: dict[str, object] = {}
    errors: dict[str, str] = {}
    for name in paths:
        try:
            files[name] = parser.parse(file_path=Path(name))
        except Exception as exc:  # every parse error, reported against its file
            errors[name] = f"{type(exc).__name__}: {exc}"[:2000]
    json.dump({"files": files, "errors": errors}, sys.stdout, default=str)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
