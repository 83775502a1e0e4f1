"""The working days come from shared/domain/bank_holidays.py, written from the holidays package
(shared/local/bank_holidays.py): the module is what the pinned package gives, and every day's
answer is the package's, the years outside the module's included."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path

import holidays

from shared.domain.bank_holidays import BANK_HOLIDAYS, SOURCE
from shared.domain.deadlines import FIRST_YEAR, LAST_YEAR, SUBDIVISIONS, is_working_day
from shared.local.bank_holidays import MODULE, from_the_package, module_text

ROOT = Path(__file__).resolve().parents[2]


def test_the_module_is_what_the_pinned_package_gives_as_make_bank_holidays_writes_it() -> None:
    assert from_the_package() == BANK_HOLIDAYS, "run make bank-holidays after upgrading holidays"
    assert f"holidays {version('holidays')}, {FIRST_YEAR} to {LAST_YEAR}" == SOURCE
    assert MODULE.read_text(encoding="utf-8") == module_text()  # byte for byte: nothing edited by hand


def test_every_day_is_a_working_day_exactly_when_the_package_says_so() -> None:
    seen = {"working": 0, "weekend": 0, "bank holiday": 0, "outside the file": 0}
    for nation, subdivision in SUBDIVISIONS.items():
        day = date(FIRST_YEAR - 1, 1, 1)
        while day <= date(LAST_YEAR + 2, 12, 31):
            package = holidays.country_holidays("GB", subdiv=subdivision, years=day.year)
            expected = day.weekday() < 5 and day not in package
            assert is_working_day(day, nation) is expected, (nation, day)
            if not FIRST_YEAR <= day.year <= LAST_YEAR:
                seen["outside the file"] += 1
            seen["working" if expected else "weekend" if day.weekday() >= 5 else "bank holiday"] += 1
            day += timedelta(days=1)
    assert seen["bank holiday"] >= 3 * 26 * 7 and seen["outside the file"] >= 3 * 3 * 365, seen


def test_a_deadline_in_the_files_years_does_not_import_the_package() -> None:
    code = (
        "import sys\n"
        "from datetime import date\n"
        "from shared.domain.deadlines import add_working_days\n"
        "add_working_days(date(2026, 12, 22), 5, 'scotland')\n"
        "print('holidays' in sys.modules)\n"
        "add_working_days(date(2045, 12, 22), 5, 'scotland')\n"
        "print('holidays' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
