"""The browser harness the page tests share: Debian's Chromium through Playwright, axe-core, screenshots.

``skip_without_chromium()`` skips a test module (naming ``make chromium``) when /usr/bin/chromium
is missing; ``launch()`` starts the one headless browser a module uses. axe-core comes from
node_modules and is injected into the page, so the contexts that run it bypass the page's CSP.
``Checks`` runs axe on a page, saves its full-page screenshot and keeps the names it checked.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.web_server import ROOT

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "out" / "test-artifacts" / "web"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VIEWPORT: ViewportSize = {"width": 1024, "height": 900}
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def skip_without_chromium() -> None:
    """Skip the calling test module, saying how to install Chromium, when it is missing."""
    if not CHROMIUM.is_file():
        pytest.skip(
            "/usr/bin/chromium is missing: run `make chromium` as root (apt-get install -y chromium) "
            "to run the victim page's browser tests",
            allow_module_level=True,
        )


@contextmanager
def launch() -> Iterator[Browser]:
    """Headless Chromium (one per test module and xdist worker); fails if axe-core is not installed."""
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make test` (it runs `npm ci`) first", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def axe_page(browser: Browser) -> Iterator[Page]:
    """A page in its own context that bypasses the CSP, so axe-core can be injected."""
    context = browser.new_context(bypass_csp=True, viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()


def axe(page: Page) -> dict[str, list[dict[str, Any]]]:
    """axe-core's run on the page as it is now: its violations, and the rules the page passes."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, list[dict[str, Any]]] = page.evaluate(
        "async () => { const r = await axe.run(document); return {violations: r.violations, passes: r.passes}; }"
    )
    if result["violations"]:
        print("axe violations:", [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]])
    return result


def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (their ids and nodes printed, if any)."""
    return axe(page)["violations"]


def png_size(path: Path) -> tuple[int, int]:
    """The width and height of a PNG file, from its IHDR chunk; fails if it is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def screenshot(page: Page, name: str, folder: Path = ARTIFACTS) -> Path:
    """A full-page screenshot at ``folder/name.png``, checked to be a PNG as wide as the viewport."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    width, height = png_size(path)
    assert width == VIEWPORT["width"] and height >= 200, (path, width, height)
    assert path.stat().st_size > 10_000, f"{path} is too small to show a page"
    return path


def focused(page: Page) -> dict[str, str]:
    return page.evaluate(
        "() => ({id: document.activeElement.id, tag: document.activeElement.tagName.toLowerCase(),"
        " cls: document.activeElement.className, text: document.activeElement.textContent.trim()})"
    )


@dataclass
class Checks:
    """axe-core and a screenshot for every page a test visits, and the names of those it checked."""

    folder: Path = ARTIFACTS
    checked: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)

    def check(self, page: Page, name: str) -> None:
        """axe-core finds nothing on the page, having run its rules (some pass), and it is saved."""
        result = axe(page)
        found = result["violations"]
        assert found == [], f"{name}: " + "; ".join(
            f"{v['id']} at {[n['target'] for n in v['nodes']]}" for v in found
        )
        passed = {rule["id"] for rule in result["passes"]}
        assert {"document-title", "html-has-lang", "landmark-one-main", "color-contrast"} <= passed, (
            name,
            sorted(passed),
        )
        self.shots.append(screenshot(page, name, self.folder))
        self.checked.append(name)
