"""The page framework, request to response: routes, the invalid-link page, form tokens, limits, headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from shared.adapters.sqlite_tables import SqliteTableStore
from shared.web import Request, Response, Site
from shared.web.http import CONTENT_SECURITY_POLICY
from shared.web.rate_limit import Limit, RateLimits
from shared.web.site import Pages
from tests.web_example import LINK, OTHER_LINK, REVOKED_LINK, Clock, Saved, example_site

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def tables() -> Iterator[SqliteTableStore]:
    store = SqliteTableStore(":memory:")
    yield store
    store.close()


@pytest.fixture
def saved() -> Saved:
    return Saved()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(tables: SqliteTableStore, saved: Saved, clock: Clock) -> Site:
    return example_site(tables, saved, clock)


def get(site: Site, path: str) -> Response:
    return site.handle(Request("GET", path))


def post(site: Site, path: str, **form: str) -> Response:
    return site.handle(Request("POST", path, form=form))


def token_from(response: Response) -> str:
    found = TOKEN.search(response.body.decode())
    assert found, "the form carries no token"
    return found.group(1)


def text(response: Response) -> str:
    return response.body.decode()


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [f"/{LINK}", f"/{LINK}/done", "/NoSuchLink1", "/short", "/", f"/{LINK}/nope", f"/{LINK}/broken"],
)
def test_every_page_is_uncached_unreferred_unframed_and_scriptless(site: Site, path: str) -> None:
    response = get(site, path)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "script-src" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<script" not in text(response)


def test_the_pages_follow_the_govuk_template_without_relying_on_javascript(site: Site) -> None:
    page = text(get(site, f"/{LINK}"))
    assert '<html lang="en" class="govuk-template">' in page
    assert '<a href="#main-content" class="govuk-skip-link"' in page
    assert '<main class="govuk-main-wrapper" id="main-content">' in page
    assert "Humberside Police" in page.split("</header>")[0]
    assert '<footer class="govuk-footer">' in page
    assert "govuk-frontend-supported" not in page and "js-enabled" not in page
    assert '<link rel="stylesheet" href="/assets/govuk-frontend.min.css">' in page


# --- the invalid-link page -----------------------------------------------------------------


def test_unknown_malformed_and_revoked_links_get_the_same_plain_page(site: Site) -> None:
    answers = [
        get(site, path) for path in ("/NoSuchLink1", f"/{REVOKED_LINK}", "/short", "/Ab3dE6gH9j!", "/")
    ]
    assert {answer.status for answer in answers} == {404}
    assert len({answer.body for answer in answers}) == 1
    page = text(answers[0])
    assert "This link does not work" in page
    assert "call Humberside Police on 101" in page
    assert "13/12345/26" not in page and "P-1" not in page


def test_a_post_to_an_unknown_link_gets_the_same_page_and_changes_nothing(site: Site, saved: Saved) -> None:
    assert post(site, "/NoSuchLink1", channel="email").body == get(site, "/NoSuchLink1").body
    assert saved.forms == []


def test_a_malformed_id_is_never_looked_up_and_a_well_formed_one_always_is(site: Site, saved: Saved) -> None:
    get(site, "/short")
    get(site, "/Ab3dE6gH9jK0")  # 12 characters
    get(site, "/Ab3dE6gH9j-")
    assert saved.lookups == []
    get(site, "/NoSuchLink1")
    get(site, f"/{LINK}")
    assert saved.lookups == ["NoSuchLink1", LINK]


def test_a_page_name_nobody_registered_is_plain_not_found_without_looking_the_link_up(
    site: Site, saved: Saved
) -> None:
    for path in (f"/{LINK}/nope", f"/{LINK}/done/more", "/NoSuchLink1/nope"):
        response = get(site, path)
        assert response.status == 404
        assert "Page not found" in text(response)
    assert saved.lookups == []


def test_a_method_the_page_does_not_take_is_405_with_allow(site: Site) -> None:
    response = post(site, f"/{LINK}/done")
    assert response.status == 405
    assert response.headers["Allow"] == "GET"


def test_a_failing_handler_is_a_plain_500_that_names_nothing(site: Site) -> None:
    response = get(site, f"/{LINK}/broken")
    assert response.status == 500
    assert "13/12345/26" not in text(response) and "RuntimeError" not in text(response)


# --- forms and form tokens -------------------------------------------------------------------


def test_a_valid_post_is_kept_and_redirects_to_a_get(site: Site, saved: Saved) -> None:
    token = token_from(get(site, f"/{LINK}"))
    response = post(site, f"/{LINK}", channel="sms", note="after 5pm", csrf_token=token)
    assert response.status == 303
    assert response.headers["Location"] == f"/{LINK}/done"
    assert saved.forms == [{"channel": "sms", "note": "after 5pm"}]
    assert "govuk-panel--confirmation" in text(get(site, f"/{LINK}/done"))


@pytest.mark.parametrize(
    "token_of",
    [
        lambda token: None,
        lambda token: "",
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: str(int(token.split(".")[0]) + 1) + "." + token.split(".")[1],
        lambda token: "garbage",
        lambda token: token + ".x",
    ],
    ids=["absent", "empty", "mac-tampered", "time-tampered", "garbage", "extra-part"],
)
def test_a_post_without_a_good_token_is_400_and_changes_nothing(site: Site, saved: Saved, token_of) -> None:  # type: ignore[no-untyped-def]
    token = token_of(token_from(get(site, f"/{LINK}")))
    form = {"channel": "email"} | ({} if token is None else {"csrf_token": token})
    response = post(site, f"/{LINK}", **form)
    assert response.status == 400
    assert "Nothing has been changed" in text(response)
    assert saved.forms == []


def test_a_token_from_another_link_is_refused(site: Site, saved: Saved) -> None:
    token = token_from(get(site, f"/{OTHER_LINK}"))
    assert post(site, f"/{LINK}", channel="email", csrf_token=token).status == 400
    assert saved.forms == []


def test_a_token_expires_after_two_hours(site: Site, saved: Saved, clock: Clock) -> None:
    token = token_from(get(site, f"/{LINK}"))
    clock.advance(timedelta(hours=2, seconds=1))
    assert post(site, f"/{LINK}", channel="email", csrf_token=token).status == 400
    fresh = token_from(get(site, f"/{LINK}"))
    assert post(site, f"/{LINK}", channel="email", csrf_token=fresh).status == 303


def test_a_form_with_an_error_shows_the_summary_linked_to_the_field(site: Site, saved: Saved) -> None:
    token = token_from(get(site, f"/{LINK}"))
    response = post(site, f"/{LINK}", note="x" * 101, csrf_token=token)
    page = text(response)
    assert response.status == 400
    assert "<title>Error: " in page
    assert '<a href="#channel">Select how we should contact you</a>' in page
    assert '<a href="#note">Enter 100 characters or fewer</a>' in page
    assert 'id="channel" name="channel" type="radio"' in page
    assert 'id="note" name="note"' in page and "govuk-textarea--error" in page
    assert "x" * 101 in page  # what the victim typed is kept
    assert saved.forms == []


def test_the_textarea_says_its_limit_in_text(site: Site) -> None:
    page = text(get(site, f"/{LINK}"))
    assert (
        'id="note-info" class="govuk-hint govuk-character-count__message">You can enter up to 100 characters'
        in page
    )
    assert 'aria-describedby="note-hint note-info"' in page


def test_what_the_victim_typed_is_escaped(site: Site) -> None:
    token = token_from(get(site, f"/{LINK}"))
    page = text(post(site, f"/{LINK}", note="<script>alert(1)</script>" * 5, csrf_token=token))
    assert "<script>" not in page and "&lt;script&gt;" in page


# --- rate limits -------------------------------------------------------------------------------


def test_a_link_is_limited_to_its_requests_per_window(
    tables: SqliteTableStore, saved: Saved, clock: Clock
) -> None:
    site = example_site(tables, saved, clock, RateLimits(page=Limit(3, timedelta(minutes=10))))
    assert [get(site, f"/{LINK}").status for _ in range(4)] == [200, 200, 200, 429]
    assert get(site, f"/{OTHER_LINK}").status == 200  # another link counts on its own
    assert "Too many requests" in text(get(site, f"/{LINK}"))
    clock.advance(timedelta(minutes=10))
    assert get(site, f"/{LINK}").status == 200


def test_a_named_limit_stops_the_fourth_message_of_the_day(site: Site, saved: Saved, clock: Clock) -> None:
    statuses = []
    for number in range(4):
        token = token_from(get(site, f"/{LINK}"))
        statuses.append(post(site, f"/{LINK}", channel="email", note=str(number), csrf_token=token).status)
    assert statuses == [303, 303, 303, 429]
    assert [form["note"] for form in saved.forms] == ["0", "1", "2"]
    clock.advance(timedelta(days=1))
    token = token_from(get(site, f"/{LINK}"))
    assert post(site, f"/{LINK}", channel="email", csrf_token=token).status == 303


def test_an_unknown_link_counts_nothing(tables: SqliteTableStore, saved: Saved) -> None:
    site = example_site(tables, saved)
    get(site, "/NoSuchLink1")
    assert list(tables.query_partition("PageUse", "NoSuchLink1")) == []


# --- registering pages ---------------------------------------------------------------------------


def test_a_page_cannot_be_registered_twice_or_under_a_path_like_name() -> None:
    pages = Pages()
    pages.add("GET", "status", lambda request, link, page: Response(200))
    with pytest.raises(ValueError, match="twice"):
        pages.add("GET", "status", lambda request, link, page: Response(200))
    with pytest.raises(ValueError, match="letters"):
        pages.add("GET", "a/b", lambda request, link, page: Response(200))
    with pytest.raises(ValueError, match="GET or POST"):
        pages.add("DELETE", "x", lambda request, link, page: Response(200))
