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


def from_the_package() -> dict[str, dict[str, str]]:
    """Each nation's bank holidays, FIRST_YEAR to LAST_YEAR, as the holidays package gives them:
    for each year (written as text), its days as MM-DD, in order, separated by spaces."""
    import holidays

    nations: dict[str, dict[str, str]] = {}
    for nation, subdivision in SUBDIVISIONS.items():
        days = sorted(
            holidays.country_holidays("GB", subdiv=subdivision, years=range(FIRST_YEAR, LAST_YEAR + 1))
        )
        nations[nation] = {
            str(year): " ".join(f"{day:%m-%d}" for day in days if day.year == year)
            for year in range(FIRST_YEAR, LAST_YEAR + 1)
        }
    return nations


def module_text() -> str:
    """The module, laid out as ruff formats it (one year a line). The years are text, as the days
    are: a module's literal numbers are among the values Hypothesis tries in a property test's
    integers, and a table of years would change what the derandomized properties generate."""
    lines = [
        f'"""The UK nations\' bank holidays: written by python -m shared.local.bank_holidays from {source()}.',
        "",
        "Each year's days are MM-DD, separated by spaces. Do not edit: upgrade the holidays package and",
        "run make bank-holidays.",
        '"""',
        "",
        f'SOURCE = "{source()}"',
        "BANK_HOLIDAYS: dict[str, dict[str, str]] = {",
    ]
    for nation, years in from_the_package().items():
        lines.append(f'    "{nation}": {{')
        lines.extend(f'        "{year}": "{days}",' for year, days in years.items())
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    MODULE.write_text(module_text(), encoding="utf-8")
    print(f"wrote {MODULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
