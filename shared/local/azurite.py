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
def started(workspace: Path, seconds: float = 60, attempts: int = 3) -> Iterator[Azurite]:
    """A fresh in-memory Azurite on free ports, stopped on leaving (also on an error).

    A port found free can be taken by another process before Azurite binds it (tests run in
    parallel, each starting servers of its own): Azurite then exits, and is started again on other
    ports, up to ``attempts`` times. Any other early exit is an error naming what Azurite said."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    why = missing()
    if why is not None:
        raise AzuriteMissing(why)
    workspace.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        process, connection_string, error = _start(workspace, seconds)
        if error is None:
            break
        stop(process)
        if "EADDRINUSE" not in error or attempt == attempts:
            raise RuntimeError(error)
    try:
        yield Azurite(connection_string, process)
    finally:
        stop(process)


def _start(workspace: Path, seconds: float) -> tuple[subprocess.Popen[bytes], str, str | None]:
    """Azurite started on ports free a moment ago: its process, its connection string, and why it
    did not come up (None: each service says it is listening on its port)."""
    ports = {service: free_port() for service in SERVICES}
    arguments = [f"--{service}{part}" for service in ports for part in ("Host", "Port")]
    values = [value for service in ports for value in ("127.0.0.1", str(ports[service]))]
    # What Azurite says: each service's "successfully listening" line, or why it could not start.
    said, said_wrong = workspace / "azurite-stdout.log", workspace / "azurite-stderr.log"
    with said.open("wb") as stdout, said_wrong.open("wb") as stderr:
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
            stdout=stdout,
            stderr=stderr,
            preexec_fn=_ends_with_its_parent if sys.platform == "linux" else None,
        )
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"TableEndpoint=http://127.0.0.1:{ports['table']}/{DEV_ACCOUNT};"
        f"BlobEndpoint=http://127.0.0.1:{ports['blob']}/{DEV_ACCOUNT};"
    )
    try:
        why = listening(process, said, ports, seconds, said_wrong)
    except BaseException:
        stop(process)
        raise
    return process, connection_string, why


def listening(
    process: subprocess.Popen[Any],
    said: Path,
    ports: dict[str, int],
    seconds: float,
    said_wrong: Path | None = None,
) -> str | None:
    """Wait until Azurite, writing its output to ``said`` (its errors to ``said_wrong``, or to
    ``said`` too), says each service in ``ports`` is listening on its port: None, or why not.

    Its own word, not a connection: a port another process took first would answer a connection
    while Azurite exits with EADDRINUSE (the reason, when it exits, ends what is returned)."""
    ready = [
        f"{service.capitalize()} service is successfully listening at http://127.0.0.1:{port}"
        for service, port in ports.items()
    ]
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            tail = (said_wrong or said).read_text(encoding="utf-8", errors="replace").strip()[-500:]
            why = f"Azurite exited with status {process.returncode} before listening"
            return f"{why}: {tail}" if tail else why
        if all(line in said.read_text(encoding="utf-8", errors="replace") for line in ready):
            return None
        if time.monotonic() > deadline:
            return f"Azurite did not listen within {seconds:.0f}s"
        time.sleep(0.1)


def stop(process: subprocess.Popen[Any]) -> None:
    """Ask a child process to end, and end it if it has not within 10 seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
