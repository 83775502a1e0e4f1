"""The victim's page in a real browser: Debian's Chromium, driven by Playwright, checked by axe-core.

The pages are served by the real ``serve`` server (a thread per xdist worker, on a free
port; and once the command line itself, in its own process). axe-core comes from
node_modules and is injected into the page: the page's own CSP forbids every script, so
the contexts that inject it bypass the CSP (``bypass_csp``); one context does not, and
shows the page styled and its console free of CSP reports. Screenshots go to
out/test-artifacts/web/. Without /usr/bin/chromium the tests are skipped, saying so.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.web_browser import axe_page, focused, launch, screenshot, skip_without_chromium, violations
from tests.web_example import LINK, MAX_NOTE, Saved
from tests.web_server import ROOT, example_server, serve_command

skip_without_chromium()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch() as launched:
        yield launched


@pytest.fixture
def saved() -> Saved:
    return Saved()


@pytest.fixture
def site(tmp_path: Path, saved: Saved) -> Iterator[str]:
    with example_server(tmp_path / "data", saved) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with axe_page(browser) as opened:
        yield opened


def test_the_example_page_passes_axe(page: Page, site: str) -> None:
    response = page.goto(site + LINK)
    assert response is not None and response.status == 200
    assert violations(page) == []
    screenshot(page, "example")


def test_the_invalid_link_page_passes_axe_and_says_how_to_reach_the_force(page: Page, site: str) -> None:
    response = page.goto(site + "NoSuchLink1")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "This link does not work"
    assert "call Humberside Police on 101" in page.locator("main").inner_text()
    assert violations(page) == []
    screenshot(page, "invalid-link")


def test_keyboard_alone_reaches_the_skip_link_and_every_control_and_submits(
    page: Page, site: str, saved: Saved
) -> None:
    page.goto(site + LINK)
    page.keyboard.press("Tab")
    first = focused(page)
    assert "govuk-skip-link" in first["cls"] and first["text"] == "Skip to main content"
    screenshot(page, "skip-link-focused")
    page.keyboard.press("Enter")
    # Following the link is Chromium's work after the key press returns: wait for it, then check.
    page.wait_for_function("location.hash === '#main-content'", timeout=5000)
    assert page.url.endswith("#main-content")
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert [(f["tag"], f["id"]) for f in order[:3]] == [
        ("input", "channel"),
        ("textarea", "note"),
        ("button", ""),
    ]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused(page)["id"] == "channel"
    page.keyboard.press("ArrowDown")  # the second radio, selected by the arrow as a radio group does
    page.keyboard.press("Tab")
    page.keyboard.type("after 5pm")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/{LINK}/done")
    assert page.locator(".govuk-panel__title").inner_text() == "Saved"
    assert saved.forms == [{"channel": "sms", "note": "after 5pm"}]
    assert violations(page) == []
    screenshot(page, "done")


def test_a_form_with_an_error_shows_the_summary_linked_to_the_field(
    page: Page, site: str, saved: Saved
) -> None:
    page.goto(site + LINK)
    page.locator("#note").fill("x" * (MAX_NOTE + 1))
    page.locator("button.govuk-button").click()
    summary = page.locator(".govuk-error-summary")
    assert summary.is_visible()
    links = summary.locator("a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == ["#channel", "#note"]
    assert page.title().startswith("Error: ")
    assert page.locator("#note").input_value() == "x" * (MAX_NOTE + 1)
    assert violations(page) == []
    screenshot(page, "error-summary")
    links.nth(1).focus()
    page.keyboard.press("Enter")
    page.wait_for_function("location.hash === '#note'", timeout=5000)  # as for the skip link
    assert page.url.endswith("#note")
    assert focused(page)["id"] == "note"
    assert saved.forms == []


def test_a_post_without_the_form_token_is_refused_and_changes_nothing(
    page: Page, site: str, saved: Saved
) -> None:
    page.goto(site + LINK)
    page.evaluate("() => document.querySelector('input[name=csrf_token]').remove()")
    page.locator("#channel").check()
    with page.expect_navigation():
        page.locator("button.govuk-button").click()
    assert "Nothing has been changed" in page.locator("main").inner_text()
    direct = page.request.post(site + LINK, form={"channel": "email"})
    assert direct.status == 400
    assert saved.forms == []
    screenshot(page, "csrf-refused")


def test_with_its_own_csp_the_page_is_styled_and_reports_nothing(browser: Browser, site: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    try:
        page.goto(site + LINK)
        page.wait_for_load_state("networkidle")
        font = page.evaluate("() => getComputedStyle(document.querySelector('h1')).fontFamily")
        assert font.startswith('"GDS Transport"')
        header = page.evaluate(
            "() => getComputedStyle(document.querySelector('.govuk-header')).backgroundColor"
        )
        assert header == "rgb(11, 12, 12)"  # the stylesheet applied: the header's black
        assert page.evaluate("() => document.fonts.check('19px \"GDS Transport\"')")
        assert messages == []
    finally:
        context.close()


def test_the_serve_command_serves_the_invalid_link_page(page: Page, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()  # a run folder with nothing in it yet (a missing one is refused)
    with serve_command(tmp_path / "run") as url:
        response = page.goto(url + "Ab3dE6gH9jK")
        assert response is not None and response.status == 404
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert violations(page) == []
    assert (tmp_path / "run" / "page-signing.key").is_file()


def test_serve_with_a_bad_argument_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shared.local", "serve", "--data", str(tmp_path), "--port", "99999"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--port" in done.stderr
