"""The compliance page in a real browser: headless Chromium (Debian's ``chromium``) renders it from a
file without the network, and its screenshot is a page, not a blank.

``make test`` installs Chromium first (``make chromium``: ``apt-get install -y chromium`` as root when
/usr/bin/chromium is missing). Without it this test is skipped, saying so; it never passes unseen.
Chromium's NetLog (``--log-net-log``) records every request the network stack sees: those the page
made carry its (file) origin as initiator, the browser's own (component updates and the like, which
the flags mostly switch off) carry none. A page that fetches something is caught, as the control
below shows.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shared.local.generate import copy_synthetic_marker, generate
from shared.local.run import RunRequest, run
from shared.ops.__main__ import main

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WIDTH, HEIGHT = 1280, 2000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-extension:", "devtools:")


def chromium() -> str:
    found = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    )
    if found is None:
        pytest.skip(
            "chromium not found (no chromium or chromium-browser on PATH, no /usr/bin/chromium): run "
            "`make chromium` as root (apt-get install -y chromium) to run the compliance page's screenshot test"
        )
    return found


def screenshot(page: Path, work: Path) -> tuple[Path, list[str]]:
    """Render ``page`` headless; the PNG, and the URLs of the network requests the page made."""
    browser = chromium()
    profile, png, netlog = work / "profile", work / "page.png", work / "netlog.json"
    profile.mkdir(parents=True)
    done = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--log-net-log={netlog}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return png, page_requests(netlog)


def page_requests(netlog: Path) -> list[str]:
    """The URLs of requests a page made, from a Chromium NetLog (the browser's own have no initiator)."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    urls: list[str] = []
    for event in log["events"]:
        params: dict[str, Any] = event.get("params") or {}
        url = params.get("url")
        if names.get(event["type"]) != "URL_REQUEST_START_JOB" or not isinstance(url, str):
            continue
        if url.startswith(LOCAL_SCHEMES) or params.get("initiator") == "not an origin":
            continue
        urls.append(url)
    return urls


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compliance page of a small generated run (with breaches, calls and every chart)."""
    chromium()  # skip before the run if there is no browser
    base = tmp_path_factory.mktemp("screenshot")
    generate(base / "feeds", crimes=80, days=7, seed=3)
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "StateStorage",
            "StateStorage__tableServiceUri",
            "ServiceBusConnection",
            "LOCAL_DATA_DIR",
        ):
            patch.delenv(name, raising=False)
        patch.setenv("NICHE_POLL_SCHEDULE", "0 0 * * * *")
        patch.setenv("STORM_POLL_SCHEDULE", "0 0 * * * *")
        run(RunRequest(base / "feeds", base / "feeds" / "officers.json", base / "run"))
        copy_synthetic_marker(base / "feeds", base / "run")
        args = ["compliance", "--from", "2026-10-01", "--to", "2026-12-31", "--go-live", "2026-10-12"]
        assert main([*args, "--data", str(base / "run"), "--out", str(base / "report")]) == 0
    return base / "report" / "compliance.html"


def _colours(png: Path) -> tuple[tuple[int, int], int, float]:
    """The image's size, how many colours it has, and the share of the commonest one."""
    from PIL import Image  # matplotlib's own dependency: already installed

    with Image.open(io.BytesIO(png.read_bytes())) as image:
        pixels = image.convert("RGB")
        counts = pixels.getcolors(maxcolors=WIDTH * HEIGHT)
        assert counts is not None
        commonest = Counter({colour: count for count, colour in counts}).most_common(1)[0][1]
        return pixels.size, len(counts), commonest / (pixels.size[0] * pixels.size[1])


def test_the_compliance_page_renders_offline_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    png, requests = screenshot(page, tmp_path)
    assert requests == [], f"the page loaded network resources: {requests}"
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 50_000, len(data)
    size, colours, commonest = _colours(png)
    assert size == (WIDTH, HEIGHT)
    # Text, tables and charts: many colours, and the background short of the whole page.
    assert colours > 200 and commonest < 0.95, (colours, commonest)


def test_a_page_that_fetches_something_is_caught(tmp_path: Path) -> None:
    """The control: the same check on a page with an image from the network finds its request."""
    fetching = tmp_path / "fetching.html"
    fetching.write_text(
        '<!DOCTYPE html><html><body><p>remote</p><img src="http://127.0.0.1:9/chart.png"></body></html>',
        encoding="utf-8",
    )
    png, requests = screenshot(fetching, tmp_path / "control")
    assert requests == ["http://127.0.0.1:9/chart.png"]
    assert png.read_bytes().startswith(PNG_SIGNATURE)
