"""Azurite (the Azure Storage emulator, from npm) started for the tests: its Table and Blob services,
each on a free port (the start-up is shared/local/azurite.py's, which the benchmark uses too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.local import azurite


def needs_azurite() -> None:
    """Fail the test, as the fixture does, when Azurite or Node.js is missing."""
    why = azurite.missing()
    if why is not None:
        pytest.fail(why, pytrace=False)


@pytest.fixture(scope="session")
def azurite_tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a fresh in-memory Azurite: its Table and Blob services (the state
    tables, and the blobs of records too large for a row)."""
    needs_azurite()
    with azurite.started(tmp_path_factory.mktemp("azurite")) as running:
        yield running.connection_string
