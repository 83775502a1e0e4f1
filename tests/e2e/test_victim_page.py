"""The recipient's own page through the real function object, over a real run's state (journey-rules.md §13).

A crime is replayed on the local host; a link is taken from what the victim was sent; the page
is asked for as the Functions host asks (``func.HttpRequest`` to ``function_app.victim_page``)
with the run's own services. What the victim does there reaches the journey through the queue:
a later ``run`` into the same folder uses it, and after "stop updates" sends them nothing more.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest

import function_app
from shared import bootstrap
from shared.adapters.repositories import TableJourneys
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.adapters.table_layout import PAGE_CHOICES
from shared.local.host import SimulatedClock
from shared.local.report import print_page
from shared.ops.__main__ import main as ops_main
from shared.settings import load_settings
from shared.web import azure as web_azure
from tests.builders import incident, milestone, occurrence, replay, victim

BASE = "https://vu.example.police.uk/"
LINK = re.compile(re.escape(BASE) + r"([0-9A-Za-z]{11})\b")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGE_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # after the first run, before the news that follows
ALEX = victim("P-1", channel="email", email="alex@example.org", mobile="07700 900123")
FIRST = [occurrence("2026-11-17T09:00:00Z", victims=[ALEX])]
ARREST = milestone("M-1", "suspect_arrested", "2026-11-23T10:00:00Z")
LATER = [*FIRST, occurrence("2026-11-23T10:05:00Z", victims=[ALEX], milestones=[ARREST])]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The first run, and the page served over its folder as the run's own services (a fixed clock)."""
    result = replay(tmp_path, FIRST, end="2026-11-21T00:00:00Z")
    services = bootstrap.bootstrap(
        load_settings(LOCAL_DATA_DIR=result["out"]), clock=SimulatedClock(PAGE_AT), files_only=True
    )
    bootstrap.install(services)
    web_azure.install_pages(None)
    try:
        yield result
    finally:
        bootstrap.install(None)
        web_azure.install_pages(None)


def call(method: str, path: str, form: dict[str, str] | None = None) -> func.HttpResponse:
    body = urlencode(form).encode() if form is not None else b""
    headers = {"content-type": "application/x-www-form-urlencoded"} if form is not None else {}
    request = func.HttpRequest(
        method=method, url=f"http://localhost/{path}", headers=headers, route_params={"path": path}, body=body
    )
    response: func.HttpResponse = function_app.victim_page(request)
    return response


def text(response: func.HttpResponse) -> str:
    return html.unescape(response.get_body().decode("utf-8"))


def link_of(result: dict[str, Any]) -> str:
    [link] = {LINK.search(m["body"]).group(1) for m in result["outbox"]}  # type: ignore[union-attr]
    return link


def token(page: func.HttpResponse) -> str:
    found = TOKEN.search(page.get_body().decode("utf-8"))
    assert found, "the form carries no token"
    return found.group(1)


def test_the_status_page_says_where_the_case_stands_and_nothing_of_the_offence_or_anyone(
    run: dict[str, Any],
) -> None:
    link = link_of(run)
    page = call("GET", link)
    assert page.status_code == 200, text(page)
    said = text(page)
    assert "Crime reference HU/000001/26" in said and "Your case" in said
    assert "Your report was recorded" in said and "delivered" in said  # told, and the report came
    assert "Dealing with your case" in said and "Call 101 and quote HU/000001/26" in said
    for private in ("Alex", "Smith", "alex@example.org", "07700", "1990", "Burglary", "burglary"):
        assert private not in said, private
    assert (
        page.headers["Cache-Control"] == "no-store"
        and "default-src 'none'" in page.headers["Content-Security-Policy"]
    )


def test_a_tampered_link_gets_the_plain_page_that_reveals_nothing(run: dict[str, Any]) -> None:
    link = link_of(run)
    tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
    unknown, malformed = call("GET", tampered), call("GET", link[:-1])
    assert unknown.status_code == malformed.status_code == 404
    assert unknown.get_body() == malformed.get_body()
    assert "HU/000001/26" not in text(unknown) and "This link does not work" in text(unknown)


def test_a_choice_on_the_page_is_used_by_the_next_run(run: dict[str, Any], tmp_path: Path) -> None:
    link = link_of(run)
    form = call("GET", f"{link}/preferences")
    assert form.status_code == 200 and "How we contact you" in text(form)
    # Without the form token nothing changes; with a value not offered, the error summary.
    assert call("POST", f"{link}/preferences", {"channel": "sms"}).status_code == 400
    wrong = call("POST", f"{link}/preferences", {"csrf_token": token(form), "channel": "fax"})
    assert wrong.status_code == 400 and "There is a problem" in text(wrong)
    assert 'href="#channel"' in text(wrong)
    saved = call(
        "POST",
        f"{link}/preferences",
        {"csrf_token": token(form), "channel": "sms", "frequency_days": "14", "language": "en"},
    )
    assert saved.status_code == 303 and saved.headers["Location"] == f"/{link}/preferences-saved"
    # Kept as it was made, in the page's own table, before the journey hears of it.
    store = SqliteTableStore(run["out"] / "state.db")
    try:
        [kept] = list(store.query_partition(PAGE_CHOICES, "HU/000001/26"))
    finally:
        store.close()
    assert kept.row_key.startswith("P-1:")
    assert {k: kept.properties[k] for k in ("channel", "frequency_days", "language", "opted_out", "at")} == {
        "channel": "sms",
        "frequency_days": 14,
        "language": "en",
        "opted_out": False,
        "at": PAGE_AT,
    }
    bootstrap.install(None)
    later = replay(tmp_path, LATER, end="2026-11-30T00:00:00Z")
    arrest = [m for m in later["outbox"] if "m:M-1" in m["duties"]]
    assert [m["channel"] for m in arrest] == ["sms"]  # the page's choice, over the feed's email
    audit = [(a["decision"], a["reason"]) for a in later["audit"] if a["duty"] == "page"]
    assert audit == [("preferences_changed", "channel=sms, frequency_days=14")]
    [task] = [t for t in later["tasks"] if t["reason"].startswith("preferences_changed_on_page")]
    mails = [m for m in later["officer_mail"] if m["task_id"] == task["task_id"]]
    assert mails and "please update the record in Niche" in mails[0]["body"]
    # The officer reads what changed in words, not the audit's codes.
    assert "updates by text message; a check-in every 2 weeks when there is no news" in mails[0]["body"]
    assert "frequency_days" not in mails[0]["body"]


def test_after_stop_updates_a_later_run_sends_them_nothing_more(run: dict[str, Any], tmp_path: Path) -> None:
    link = link_of(run)
    sent_before = len(run["outbox"])
    stop = call("GET", f"{link}/stop")
    done = call("POST", f"{link}/stop", {"csrf_token": token(stop)})
    assert done.status_code == 303 and done.headers["Location"] == f"/{link}/stopped"
    stopped = text(call("GET", f"{link}/stopped"))
    assert "Updates stopped" in stopped and "You can start them again from your page." in stopped
    assert "You can start them again from your page." in text(stop)
    bootstrap.install(None)
    later = replay(tmp_path, LATER, end="2026-11-30T00:00:00Z")
    assert len(later["outbox"]) == sent_before  # the arrest is not sent to them
    [arrest] = [a for a in later["audit"] if a["duty"] == "m:M-1" and a["decision"] == "suppressed"]
    assert arrest["reason"] == "opted_out"


def test_a_message_to_the_officer_becomes_a_task_mailed_to_them(run: dict[str, Any], tmp_path: Path) -> None:
    link = link_of(run)
    form = call("GET", f"{link}/message")
    empty = call("POST", f"{link}/message", {"csrf_token": token(form), "message": "  "})
    assert empty.status_code == 400 and "Enter your message" in text(empty)
    long = call("POST", f"{link}/message", {"csrf_token": token(form), "message": "x" * 501})
    assert long.status_code == 400 and "500 characters or fewer" in text(long)
    words = "I remembered the van was blue."
    sent = call("POST", f"{link}/message", {"csrf_token": token(form), "message": words})
    assert sent.status_code == 303 and sent.headers["Location"] == f"/{link}/message-sent"
    bootstrap.install(None)
    later = replay(tmp_path, LATER, end="2026-11-30T00:00:00Z")
    [task] = [t for t in later["tasks"] if t["reason"].startswith("victim_message")]
    assert task["note"] == words
    [mail] = [m for m in later["officer_mail"] if m["task_id"] == task["task_id"] and m["kind"] == "task"]
    assert words in mail["body"]
    assert not any(words in a["reason"] for a in later["audit"])  # never in the audit


def test_a_mail_programs_one_click_unsubscribe_stops_updates(run: dict[str, Any], tmp_path: Path) -> None:
    link = link_of(run)
    response = call("POST", link, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    bootstrap.install(None)
    later = replay(tmp_path, LATER, end="2026-11-30T00:00:00Z")
    assert not [m for m in later["outbox"] if "m:M-1" in m["duties"]]


def test_a_link_stops_opening_once_the_case_has_been_finalised_for_the_policy_days(
    run: dict[str, Any],
) -> None:
    link = link_of(run)
    store = SqliteTableStore(run["out"] / "state.db")
    try:
        journeys = TableJourneys(store)
        stored = journeys.get("HU/000001/26", "P-1")
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
    # Finalised on 1 August, 90 days before the page is opened at PAGE_AT, and more: it no longer opens.
    response = call("GET", link)
    assert response.status_code == 404 and "This link does not work" in text(response)


def test_the_run_names_one_victims_page_that_opens_and_says_how_to_open_it_here(
    run: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    page = run["summary"]["page"]
    assert page["link"] == BASE + page["link_id"] and page["link_id"] == link_of(run)
    assert call("GET", page["link_id"]).status_code == 200
    print_page(run["out"])
    printed = capsys.readouterr().out
    assert f"a victim's page:   {page['link']}" in printed
    assert f"python -m shared.local serve --data {run['out']}" in printed
    assert f"http://127.0.0.1:8080/{page['link_id']}" in printed


def test_a_revoked_link_opens_nothing_and_the_next_message_carries_a_new_one(
    run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = link_of(run)
    bootstrap.install(None)
    data = ["--data", str(run["out"]), "--at", PAGE_AT.isoformat()]
    assert ops_main(["link", "revoke", "HU/000001/26", "--person", "P-1", *data]) == 0
    assert "revoked the link of HU/000001/26 person P-1" in capsys.readouterr().out
    assert ops_main(["link", "revoke", "HU/000001/26", "--person", "P-9", *data]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line: P-9 has no link
    services = bootstrap.bootstrap(
        load_settings(LOCAL_DATA_DIR=run["out"]), clock=SimulatedClock(PAGE_AT), files_only=True
    )
    bootstrap.install(services)
    assert call("GET", link).status_code == 404
    bootstrap.install(None)
    later = replay(tmp_path, LATER, end="2026-11-30T00:00:00Z")
    [arrest] = [m for m in later["outbox"] if "m:M-1" in m["duties"]]
    new = LINK.search(arrest["body"])
    assert new is not None and new.group(1) != link


def test_a_caller_sees_their_call_and_can_stop_updates_there(tmp_path: Path) -> None:
    first = [incident("2026-11-20T09:00:00Z", scheduled_for="2026-11-20T15:00:00Z")]
    result = replay(tmp_path, [], storm=first, end="2026-11-21T00:00:00Z")
    assert result["outbox"] and all(m["person_id"] == "C-77" for m in result["outbox"])
    link = link_of(result)
    services = bootstrap.bootstrap(
        load_settings(LOCAL_DATA_DIR=result["out"]), clock=SimulatedClock(PAGE_AT), files_only=True
    )
    bootstrap.install(services)
    try:
        status = call("GET", link)
        said = text(status)
        assert status.status_code == 200 and "Incident number HU-20261120-0123" in said
        assert "Change how we contact you" not in said and "Alex" not in said and "07700" not in said
        stop = call("GET", f"{link}/stop")
        # A caller has no choices on their page: they hear how to have updates again, by phone.
        assert "To have them again, call 101." in text(stop) and "from your page" not in text(stop)
        assert call("POST", f"{link}/stop", {"csrf_token": token(stop)}).status_code == 303
        stopped = text(call("GET", f"{link}/stopped"))
        assert "To have them again, call 101." in stopped and "from your page" not in stopped
    finally:
        bootstrap.install(None)
    moved = incident("2026-11-22T09:00:00Z", scheduled_for="2026-11-23T15:00:00Z")
    later = replay(tmp_path, [], storm=[*first, moved], end="2026-11-30T00:00:00Z")
    assert len(later["outbox"]) == len(result["outbox"])  # the new visit time is not sent to them
    assert ("preferences_changed", "opted_out=true") in [
        (a["decision"], a["reason"]) for a in later["audit"] if a["duty"] == "page"
    ]


def test_a_link_opens_nothing_once_the_crime_is_flagged_as_one_automated_contact_must_not_reach(
    run: dict[str, Any], tmp_path: Path
) -> None:
    link = link_of(run)
    assert call("GET", link).status_code == 200
    bootstrap.install(None)
    flagged = occurrence("2026-11-20T09:00:00Z", victims=[ALEX], flags=["domestic_abuse"])
    replay(tmp_path, [*FIRST, flagged], end="2026-11-21T00:00:00Z")
    services = bootstrap.bootstrap(
        load_settings(LOCAL_DATA_DIR=run["out"]), clock=SimulatedClock(PAGE_AT), files_only=True
    )
    bootstrap.install(services)
    page = call("GET", link)
    assert page.status_code == 404 and "This link does not work" in text(page)
    assert "HU/000001/26" not in text(page)
