"""The recipient's real pages (journey-rules.md §13) in a real browser: Chromium, Playwright, axe-core.

A crime is replayed on the local host; the victim's link is taken from what they were sent and
opened on the real ``serve`` server (a thread on a free port, per test and so per xdist worker)
over the run's folder, on a clock fixed after the run as the run's own is. Every page visited is
checked by axe-core and saved as a full-page screenshot in out/test-artifacts/web/victim-page/.
What the victim does reaches the journey through the run's queue: a later ``run`` into the same
folder uses it. Without /usr/bin/chromium the tests are skipped, naming ``make chromium``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from shared.adapters.repositories import TableJourneys
from shared.adapters.sqlite_tables import SqliteTableStore
from tests.builders import milestone, occurrence, replay, victim
from tests.web_browser import ARTIFACTS, Checks, axe_page, focused, launch, skip_without_chromium
from tests.web_server import victim_server

skip_without_chromium()

BASE = "https://vu.example.police.uk/"
LINK = re.compile(re.escape(BASE) + r"([0-9A-Za-z]{11})\b")
REFERENCE = "HU/000001/26"
PAGE_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # after the first run, before the news that follows
AFTER_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # after the later run
ALEX = victim("P-1", channel="email", email="alex@example.org", mobile="07700 900123")
FIRST = [occurrence("2026-11-17T09:00:00Z", victims=[ALEX])]
ARREST = milestone("M-1", "suspect_arrested", "2026-11-23T10:00:00Z")
LATER = [*FIRST, occurrence("2026-11-23T10:05:00Z", victims=[ALEX], milestones=[ARREST])]
PRIVATE = ("Alex", "Smith", "alex@example.org", "07700", "900123", "1990", "Burglary", "burglary")
SHOTS = ARTIFACTS / "victim-page"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with axe_page(browser) as opened:
        yield opened


@pytest.fixture
def checks() -> Checks:
    return Checks(folder=SHOTS)


@pytest.fixture
def run(tmp_path: Path) -> dict[str, Any]:
    return replay(tmp_path, FIRST, end="2026-11-21T00:00:00Z")


@pytest.fixture
def link(run: dict[str, Any]) -> str:
    """The victim's one link, from what they were sent (every message carries it)."""
    found = {LINK.search(m["body"]) for m in run["outbox"]}
    assert None not in found, "a message without the link"
    [only] = {m.group(1) for m in found if m is not None}
    return only


@pytest.fixture
def site(run: dict[str, Any]) -> Iterator[str]:
    with victim_server(run["out"], PAGE_AT) as url:
        yield url


def main_text(page: Page) -> str:
    return page.locator("main").inner_text()


def assert_nothing_private(page: Page) -> None:
    content = page.content()
    for private in PRIVATE:
        assert private not in content, private


def submit(page: Page, button: str) -> int:
    """Click the form's button; the status of the page it leads to (after any redirect)."""
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button).click()
    response = navigation.value
    assert response is not None
    return response.status


def follow_error_link(page: Page, field: str) -> None:
    """The error summary's link, by keyboard: it moves the focus to the field."""
    link = page.locator(".govuk-error-summary a")
    assert link.get_attribute("href") == f"#{field}"
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**#{field}")
    assert focused(page)["id"] == field


def test_the_status_page_shows_the_case_and_nothing_of_the_victim(
    page: Page, site: str, link: str, checks: Checks
) -> None:
    response = page.goto(site + link)
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert page.locator(".govuk-caption-l").inner_text() == f"Crime reference {REFERENCE}"
    assert page.locator("h1").inner_text() == "Your case"
    rows = page.locator(".govuk-summary-list__row")
    summary = {
        rows.nth(i).locator("dt").inner_text(): rows.nth(i).locator("dd").inner_text()
        for i in range(rows.count())
    }
    assert summary["Dealing with your case"] == "Jo Bloggs, PC 1234"
    assert summary["How to reach them"].startswith(f"Call 101 and quote {REFERENCE}")
    assert summary["Next update"].startswith("By ")
    assert page.get_by_role("heading", name="What we have told you").is_visible()
    told = page.locator(".govuk-table__body tr")
    cells = [told.nth(i).locator("td").all_inner_texts() for i in range(told.count())]
    assert cells == [["Tuesday 17 November 2026", "Your report was recorded", "Email", "delivered"]]
    assert_nothing_private(page)
    checks.check(page, "status")
    assert checks.checked == ["status"]


def test_the_channel_is_changed_by_keyboard_alone_and_the_next_run_uses_it(
    page: Page, run: dict[str, Any], link: str, tmp_path: Path, checks: Checks
) -> None:
    with victim_server(run["out"], PAGE_AT) as site:
        page.goto(site + link)
        page.get_by_role("link", name="Change how we contact you").focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url == f"{site}{link}/preferences"
        assert page.locator("h1").inner_text() == "How we contact you"
        assert page.locator("#channel").is_checked()  # email, as the feed says
        checks.check(page, "preferences")
        page.keyboard.press("Tab")
        assert "govuk-skip-link" in focused(page)["cls"]
        page.keyboard.press("Tab")
        assert focused(page)["id"] == "channel"  # the radio group, at its chosen radio
        page.keyboard.press("ArrowDown")  # text message: the arrow moves and selects, as in a radio group
        assert focused(page)["id"] == "channel-2"
        assert page.locator("#channel-2").is_checked() and page.locator(
            "#channel-2 + label"
        ).inner_text() == ("Text message")
        for _ in range(3):  # how often, which language, then the button
            page.keyboard.press("Tab")
        assert focused(page) | {"cls": ""} == {
            "id": "",
            "tag": "button",
            "cls": "",
            "text": "Save your choices",
        }
        with page.expect_navigation():
            page.keyboard.press("Space")
        page.wait_for_url(f"**/{link}/preferences-saved")
        assert page.locator(".govuk-panel__title").inner_text() == "Your choices are saved"
        checks.check(page, "preferences-saved")
    assert checks.checked == ["preferences", "preferences-saved"]
    later = replay(tmp_path, LATER, end="2026-11-30T00:00:00Z")
    arrest = [m for m in later["outbox"] if "m:M-1" in m["duties"]]
    assert [m["channel"] for m in arrest] == ["sms"]  # the choice made by keyboard, over the feed's email
    audit = [(a["decision"], a["reason"]) for a in later["audit"] if a["duty"] == "page"]
    assert audit == [("preferences_changed", "channel=sms")]  # only what changed: every 4 weeks, as before


def test_preferences_with_no_channel_show_the_error_summary_that_moves_the_focus(
    page: Page, site: str, link: str, checks: Checks
) -> None:
    page.goto(f"{site}{link}/preferences")
    page.evaluate(
        "() => document.querySelectorAll('input[name=channel]').forEach(r => {"
        " r.removeAttribute('checked'); r.checked = false; })"
    )
    assert submit(page, "Save your choices") == 400
    assert page.title().startswith("Error: How we contact you")
    summary = page.locator(".govuk-error-summary")
    assert summary.locator("h2").inner_text() == "There is a problem"
    assert summary.locator("a").all_inner_texts() == ["Select how we should contact you"]
    assert "Select how we should contact you" in page.locator("#channel-error").inner_text()
    assert page.locator("#frequency_days-2").is_checked()  # every 4 weeks, as submitted, is kept
    checks.check(page, "preferences-error")
    follow_error_link(page, "channel")
    assert checks.checked == ["preferences-error"]


def test_a_message_to_the_officer_empty_then_sent(page: Page, site: str, link: str, checks: Checks) -> None:
    page.goto(site + link)
    with page.expect_navigation():
        page.get_by_role("link", name="Send a message to your officer").first.click()
    assert page.locator("h1").inner_text() == "Send a message to your officer"
    assert page.locator("#message-info").inner_text() == "You can enter up to 500 characters"
    checks.check(page, "message")
    assert submit(page, "Send message") == 400
    assert page.locator(".govuk-error-summary a").all_inner_texts() == ["Enter your message"]
    assert page.title().startswith("Error: ")
    checks.check(page, "message-error")
    follow_error_link(page, "message")
    page.keyboard.type("I remembered the van was blue.")
    assert submit(page, "Send message") == 200
    assert page.url == f"{site}{link}/message-sent"
    assert page.locator(".govuk-panel__title").inner_text() == "Message sent"
    checks.check(page, "message-sent")
    assert checks.checked == ["message", "message-error", "message-sent"]


def test_after_stop_updates_on_the_page_a_later_run_sends_them_nothing_more(
    page: Page, run: dict[str, Any], link: str, tmp_path: Path, checks: Checks
) -> None:
    sent_before = len(run["outbox"])
    with victim_server(run["out"], PAGE_AT) as site:
        page.goto(site + link)
        with page.expect_navigation():
            page.get_by_role("link", name="Stop updates").click()
        assert page.locator("h1").inner_text() == "Stop updates"
        checks.check(page, "stop")
        assert submit(page, "Stop updates") == 200
        assert page.url == f"{site}{link}/stopped"
        assert page.locator(".govuk-panel__title").inner_text() == "Updates stopped"
        checks.check(page, "stopped")
    later = replay(tmp_path, LATER, end="2026-11-30T00:00:00Z")
    assert len(later["outbox"]) == sent_before  # the arrest is not sent to them
    assert not [m for m in later["outbox"] if "m:M-1" in m["duties"]]
    [arrest] = [a for a in later["audit"] if a["duty"] == "m:M-1" and a["decision"] == "suppressed"]
    assert arrest["reason"] == "opted_out"
    with victim_server(run["out"], AFTER_AT) as site:  # and their page says so
        page.goto(site + link)
        rows = page.locator(".govuk-summary-list__row").filter(has_text="Next update")
        assert rows.locator("dd").inner_text() == "You have stopped updates"
        assert page.get_by_role("link", name="Stop updates").count() == 0
        checks.check(page, "status-stopped")
    assert checks.checked == ["stop", "stopped", "status-stopped"]


def finalise_long_ago(out: Path) -> None:
    """The case finalised on 1 August: more than the policy's days before PAGE_AT."""
    store = SqliteTableStore(out / "state.db")
    try:
        journeys = TableJourneys(store)
        stored = journeys.get(REFERENCE, "P-1")
        assert stored is not None
        journey = stored.journey.model_copy(update={"case_status": "finalised"})
        closed = journey.duties["ack"].model_copy(
            update={"key": "outcome:18", "event_at": datetime(2026, 8, 1, tzinfo=UTC)}
        )
        journey.duties["outcome:18"] = closed
        write = journeys.save(journey, stored)
        assert write is not None and write.etag is not None
        store.update(write.table, write.entity, etag=write.etag)
    finally:
        store.close()


def test_a_tampered_link_and_an_expired_link_say_only_that_the_link_does_not_work(
    page: Page, site: str, run: dict[str, Any], link: str, checks: Checks
) -> None:
    tampered = link[:5] + ("x" if link[5] != "x" else "y") + link[6:]
    assert len(tampered) == len(link) and tampered != link
    said = []
    for address, name in ((tampered, "invalid-link"), (None, "expired-link")):
        if address is None:
            finalise_long_ago(run["out"])
            address = link
        response = page.goto(site + address)
        assert response is not None and response.status == 404
        assert page.locator("h1").inner_text() == "This link does not work"
        text = main_text(page)
        for case in (REFERENCE, "Jo Bloggs", "PC 1234", "What we have told you", "Next update"):
            assert case not in text, (name, case)
        assert "call Humberside Police on 101" in text
        assert_nothing_private(page)
        said.append(text)
        checks.check(page, name)
    assert said[0] == said[1]  # an expired link is told apart from a made-up one by nothing
    assert checks.checked == ["invalid-link", "expired-link"]
