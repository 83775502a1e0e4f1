"""A stub of Application Insights' ingestion endpoint, and a child Python process whose Azure
Monitor distro exports to it (the child keeps the global OpenTelemetry providers out of the test
process). The stub keeps every envelope POSTed to it, and the path it was posted to."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Exported:
    """What a child process exported: the envelopes, the paths they were posted to, and its end."""

    envelopes: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    process: subprocess.CompletedProcess[str] | None = None


def _handler(exported: Exported) -> type[BaseHTTPRequestHandler]:
    class Ingestion(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            items = json.loads(raw)
            exported.paths.append(self.path)
            exported.envelopes.extend(items if isinstance(items, list) else [items])
            answer = json.dumps(
                {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Ingestion


def export_from_child(
    code: str, *args: str, settings: dict[str, str] | None = None, timeout: float = 300
) -> Exported:
    """Run ``python -c code *args`` with the distro pointed at a stub on this machine; what it sent."""
    exported = Exported()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(exported))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("APPLICATIONINSIGHTS_", "OTEL_", "ServiceBus", "StateStorage"))
    }
    env |= {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        f"IngestionEndpoint=http://127.0.0.1:{server.server_port}/",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",  # no cloud metadata probes from a test
        **(settings or {}),
    }
    try:
        exported.process = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        server.shutdown()
    return exported
