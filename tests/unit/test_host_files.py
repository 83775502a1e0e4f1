"""The files the Functions host and a workstation read (host.json, the sample settings, the Service
Bus emulator's compose file) say nothing the host ignores and pin what they pull."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from shared.settings import Settings

ROOT = Path(__file__).parents[2]

# What the Functions host, the Python worker or the Azure SDKs read, not our code.
_HOST_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",  # the worker to start
    "AzureWebJobsStorage",  # the host's own storage (timers' schedule monitor, leases)
    "AZURE_CLIENT_ID",  # DefaultAzureCredential's user-assigned managed identity
    "APPLICATIONINSIGHTS_CONNECTION_STRING",  # the host's and our OpenTelemetry exporter
    "PYTHON_ENABLE_OPENTELEMETRY",  # the Python worker passes the host's trace context on
}


def test_the_sample_settings_hold_only_what_the_code_or_the_host_reads() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    unread = set(sample) - set(Settings.model_fields) - _HOST_SETTINGS
    # Worker indexing is how the v2 model is always indexed now: its feature flag is obsolete.
    assert not unread, f"local.settings.sample.json holds settings nothing reads: {sorted(unread)}"


def test_host_json_has_no_application_insights_settings_the_opentelemetry_mode_ignores() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    # Under OpenTelemetry the host's Application Insights SDK is not used: samplingSettings and
    # the rest of logging.applicationInsights do nothing (sampling is the exporter's, telemetry.py).
    assert "applicationInsights" not in host.get("logging", {})


def test_the_emulators_compose_file_pins_every_image_and_uses_no_retired_one() -> None:
    compose = (ROOT / "infra" / "servicebus-emulator" / "docker-compose.yml").read_text()
    images = re.findall(r"^\s*image:\s*(\S+)\s*$", compose, flags=re.MULTILINE)
    assert len(images) == 2, images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", f"{image} is not pinned"
        assert "azure-sql-edge" not in name, f"{image}: Azure SQL Edge is retired"


def test_indexing_the_app_as_the_worker_does_logs_no_warning() -> None:
    """The worker imports function_app and lists its functions: a warning there (such as "Auth
    level is not applied to non http function app") would sit in every deployment's host log."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format='%(levelname)s %(message)s')\n"
        "import function_app\n"
        "functions = function_app.app.get_functions()\n"
        "print('indexed', len(functions))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("indexed ") and int(lines[-1].split()[1]) >= 9, lines
    assert lines[:-1] == [], lines
