"""Writes shared/domain/bank_holidays.py from the holidays package: ``python -m shared.local.bank_holidays``
(``make bank-holidays``), after the package is upgraded.

The deadlines read the module, so that a worker's first deadline does not import the package (it
loads every country's module to give the UK's, about 110 ms of a cold start);
tests/unit/test_bank_holidays.py checks the module against the package as pinned.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

from shared.domain.deadlines import FIRST_YEAR, LAST_YEAR, SUBDIVISIONS

MODULE = Path(__file__).resolve().parents[1] / "domain" / "bank_holidays.py"


def source() -> str:
    return f"holidays {version('holidays')}, {FIRST_YEAR} to {LAST_YEAR}"


def from_the_package() -> dict[str, tuple[str, ...]]:
    """Each nation's bank holidays, FIRST_YEAR to LAST_YEAR, as the holidays package gives them."""
    import holidays

    return {
        nation: tuple(
            sorted(
                day.isoformat()
                for day in holidays.country_holidays(
                    "GB", subdiv=subdivision, years=range(FIRST_YEAR, LAST_YEAR + 1)
                )
            )
        )
        for nation, subdivision in SUBDIVISIONS.items()
    }


def module_text() -> str:
    """The module, laid out as ruff formats it (one date a line)."""
    lines = [
        f'"""The UK nations\' bank holidays: written by python -m shared.local.bank_holidays from {source()}.',
        "",
        "Do not edit: upgrade the holidays package and run make bank-holidays.",
        '"""',
        "",
        f'SOURCE = "{source()}"',
        "BANK_HOLIDAYS: dict[str, tuple[str, ...]] = {",
    ]
    for nation, days in from_the_package().items():
        lines.append(f'    "{nation}": (')
        lines.extend(f'        "{day}",' for day in days)
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    MODULE.write_text(module_text(), encoding="utf-8")
    print(f"wrote {MODULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
