"""Azurite (the Azure Storage emulator, from npm) started on free ports: its Table, Blob and Queue
services, in memory, for the tests' fixtures and the benchmark's ``--state azurite``.

``started(workspace)`` is a context manager: Azurite listening, its connection string (Table and
Blob endpoints) and its process; stopped on leaving, also on an error or Ctrl-C, and (on Linux)
when the process that started it is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / "node_modules" / ".bin" / "azurite"
# Azurite's published development account: a well-known emulator credential, not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SERVICES = ("table", "blob", "queue")


class AzuriteMissing(RuntimeError):
    """Azurite or Node.js is not installed; the message says what to do."""


def missing() -> str | None:
    """Why Azurite cannot start here (one line), or None when it can."""
    if not AZURITE.exists():
        return "Azurite is not installed: run `make test` (it runs `npm ci`) first"
    if shutil.which("node") is None:
        return "Node.js is needed to run Azurite"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[bytes], seconds: float) -> None:
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


@dataclass(frozen=True)
class Azurite:
    """A running Azurite: its connection string and its process."""

    connection_string: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float | None:
        """Azurite's own CPU so far (user + system, from /proc), or None where there is no /proc.

        Azurite is a Node.js process beside ours: its CPU is not in this process's figures."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1]
        except OSError:
            return None
        utime, stime = (int(value) for value in fields.split()[11:13])  # fields 14 and 15 of stat
        return (utime + stime) / os.sysconf("SC_CLK_TCK")


def _ends_with_its_parent() -> None:
    """In the child before Azurite starts: SIGTERM when the process that started it ends, even
    killed outright (Linux's PR_SET_PDEATHSIG, tied to the thread that started it; elsewhere
    nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


@contextmanager
def started(workspace: Path, seconds: float = 60) -> Iterator[Azurite]:
    """A fresh in-memory Azurite on free ports, stopped on leaving (also on an error)."""
    why = missing()
    if why is not None:
        raise AzuriteMissing(why)
    ports = {service: free_port() for service in SERVICES}
    workspace.mkdir(parents=True, exist_ok=True)
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
        preexec_fn=_ends_with_its_parent if sys.platform == "linux" else None,
    )
    try:
        for port in ports.values():
            wait_for(port, process, seconds)
        yield Azurite(
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"TableEndpoint=http://127.0.0.1:{ports['table']}/{DEV_ACCOUNT};"
            f"BlobEndpoint=http://127.0.0.1:{ports['blob']}/{DEV_ACCOUNT};",
            process,
        )
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    """Ask a child process to end, and end it if it has not within 10 seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
