"""The real ``serve`` server for the browser tests: in a thread with the example page or the real
pages (on a fixed clock), or the command line."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from shared import bootstrap
from shared.local.azurite import stop
from shared.local.host import SimulatedClock
from shared.settings import load_settings
from shared.web import azure as web_azure
from shared.web.server import make_server, url_of
from tests.web_example import LINK, Saved, example_pages, resolver

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def example_server(data: Path, saved: Saved) -> Iterator[str]:
    """``serve``'s server on a free port over ``data``, the example page in place of production's;
    yields its base URL (ending in /)."""
    server = make_server(data, "127.0.0.1", 0)
    web_azure.install_pages((example_pages(saved), resolver(saved, LINK)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        web_azure.install_pages(None)
        bootstrap.install(None)


@contextmanager
def victim_server(data: Path, now: datetime) -> Iterator[str]:
    """``serve``'s server on a free port over the run folder ``data`` with the production pages, its
    services rebuilt on a clock fixed at ``now`` (as the run's own are); yields its base URL (ending in /)."""
    server = make_server(data, "127.0.0.1", 0)
    served = bootstrap.services()
    services = bootstrap.bootstrap(
        load_settings(LOCAL_DATA_DIR=data), clock=SimulatedClock(now), files_only=True
    )
    bootstrap.install(services)
    _close(served)
    web_azure.install_pages(None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        web_azure.install_pages(None)
        bootstrap.install(None)
        _close(services)


def _close(services: bootstrap.Services) -> None:
    for port in (services.tables, services.publisher):
        close = getattr(port, "close", None)
        if close is not None:
            close()


@contextmanager
def serve_command(data: Path) -> Iterator[str]:
    """``python -m shared.local serve --data DATA --port 0`` in its own process; yields the URL it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.local", "serve", "--data", str(data), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "http://" not in line:
            process.kill()
            raise RuntimeError(f"serve did not start: {line!r} {process.communicate(timeout=10)[1][-2000:]}")
        yield line[line.index("http://") :].split()[0]
    finally:
        stop(process)
