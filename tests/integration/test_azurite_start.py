"""Azurite started on a port another process took first is started again on other ports.

The tests run on both cores at once, each worker starting servers of its own on ports found free a
moment before; a port can be taken in between, and Azurite then exits with EADDRINUSE. That was a
test error now and then (an Azurite fixture failing to start); it is now a second start.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.local import azurite

pytestmark = pytest.mark.skipif(azurite.missing() is not None, reason="Azurite is not installed")


@pytest.fixture
def busy() -> Iterator[int]:
    """A port another process holds, listening, while the test runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_port_taken_before_azurite_binds_it_means_a_second_start_on_other_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy: int
) -> None:
    handed: list[int] = []
    real = azurite.free_port

    def first_one_taken() -> int:
        port = busy if not handed else real()
        handed.append(port)
        return port

    monkeypatch.setattr(azurite, "free_port", first_one_taken)
    with azurite.started(tmp_path) as running:
        assert running.process.poll() is None
        assert f":{busy}/" not in running.connection_string
    assert len(handed) == 2 * len(azurite.SERVICES)  # a second start, on new ports


def test_a_port_that_stays_taken_is_an_error_naming_what_azurite_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy: int
) -> None:
    monkeypatch.setattr(azurite, "free_port", lambda: busy)
    with (
        pytest.raises(RuntimeError, match=r"(?s)exited with status 1 before listening: .*EADDRINUSE"),
        azurite.started(tmp_path, attempts=2),
    ):
        pass
