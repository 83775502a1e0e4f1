"""Azurite (the Azure Storage emulator, from npm) started for the tests: its Table and Blob services,
each on a free port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AZURITE = REPO / "node_modules" / ".bin" / "azurite"
# Azurite's published development account: a well-known emulator credential, not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited with status {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"Azurite did not listen on port {port} within {seconds:.0f}s")


@pytest.fixture(scope="session")
def azurite_tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a fresh in-memory Azurite: its Table and Blob services (the state
    tables, and the blobs of records too large for a row)."""
    if not AZURITE.exists():
        pytest.fail("Azurite is not installed: run `make test` (it runs `npm ci`) first", pytrace=False)
    if shutil.which("node") is None:
        pytest.fail("Node.js is needed to run Azurite", pytrace=False)
    ports = {service: _free_port() for service in ("table", "blob", "queue")}
    workspace = tmp_path_factory.mktemp("azurite")
    arguments = [f"--{service}{part}" for service in ports for part in ("Host", "Port")]
    values = [value for service in ports for value in ("127.0.0.1", str(ports[service]))]
    process = subprocess.Popen(
        [
            str(AZURITE),
            *(item for pair in zip(arguments, values, strict=True) for item in pair),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        cwd=workspace,  # Azurite writes its debug and lock files beside it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for port in ports.values():
            _wait_for(port, process, 60)
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"TableEndpoint=http://127.0.0.1:{ports['table']}/{DEV_ACCOUNT};"
            f"BlobEndpoint=http://127.0.0.1:{ports['blob']}/{DEV_ACCOUNT};"
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
