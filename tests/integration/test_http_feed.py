"""The HTTP feed reader, against a local feed endpoint with scripted failures."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.adapters.entra import MsalClientCredentials
from shared.adapters.http import RetryPolicy
from shared.adapters.http_feed import ApiKeyAuth, BearerAuth, FeedUnavailable, HttpFeedReader
from shared.ports import FeedLine
from tests.http_stubs import (  # the *_fixture imports register the stub fixtures here
    FeedStub,
    Reply,
    TokenStub,
    feed_stub_fixture,  # noqa: F401
    tls_files_fixture,  # noqa: F401
    token_stub_fixture,  # noqa: F401
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ITEMS: list[Any] = [
    {"schema": "niche.occurrence/1", "crime_reference": f"HU/{n:06d}/26", "seq": n} for n in range(8)
]


def compact(item: Any) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def feed(feed_stub: FeedStub) -> FeedStub:
    feed_stub.items = list(ITEMS)
    return feed_stub


@pytest.fixture
def make_reader(feed: FeedStub, sleeps: list[float]) -> Callable[..., HttpFeedReader]:
    def make(**options: Any) -> HttpFeedReader:
        options.setdefault("auth", BearerAuth(lambda: "feed-token"))
        options.setdefault("page_size", 3)
        options.setdefault("retry", RetryPolicy(attempts=3, backoff=0.5))
        options.setdefault("sleep", sleeps.append)
        return HttpFeedReader(options.pop("url", feed.url), **options)

    return make


def read_until_failure(lines: Iterator[FeedLine]) -> tuple[list[FeedLine], FeedUnavailable | None]:
    """Everything a caller gets before the reader stops, and the failure if it stopped on one."""
    got: list[FeedLine] = []
    try:
        for line in lines:
            got.append(line)
    except FeedUnavailable as exc:
        return got, exc
    return got, None


def test_reads_all_pages_in_order_with_modified_since_limit_and_auth_header(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    lines = list(make_reader().read(None, NOW, 100))

    assert [line.raw for line in lines] == [compact(item) for item in ITEMS]
    # Every item but a page's last resumes at its own page; the last at the next page.
    assert [line.position for line in lines] == ["", "", "c3", "c3", "c3", "c6", "c6", "c8"]
    requests = feed.page_requests()
    assert [(r.query.get("modifiedSince"), r.query["limit"]) for r in requests] == [
        (None, "3"),
        ("c3", "3"),
        ("c6", "3"),
        ("c8", "3"),  # an empty page: caught up
    ]
    assert list(requests[1].query) == ["modifiedSince", "limit"]
    assert all(r.headers["authorization"] == "Bearer feed-token" for r in requests)


def test_the_limit_caps_each_request_and_the_records_yielded(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    lines = list(make_reader().read(None, NOW, 4))

    assert [line.raw for line in lines] == [compact(item) for item in ITEMS[:4]]
    assert lines[-1].position == "c4"
    assert [r.query["limit"] for r in feed.page_requests()] == ["3", "1"]


def test_resumes_from_a_stored_position_without_re_reading_earlier_pages(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    reader = make_reader()
    first = list(reader.read(None, NOW, 3))
    requests_before = len(feed.page_requests())

    rest = list(reader.read(first[-1].position, NOW, 100))

    assert first[-1].position == "c3"
    assert [line.raw for line in rest] == [compact(item) for item in ITEMS[3:]]
    assert feed.page_requests()[requests_before].query["modifiedSince"] == "c3"


def test_an_empty_page_means_caught_up(feed: FeedStub, make_reader: Callable[..., HttpFeedReader]) -> None:
    assert list(make_reader().read("c8", NOW, 100)) == []
    assert len(feed.page_requests()) == 1


def test_items_are_compact_json_and_non_objects_are_still_yielded(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    feed.items = [{"name": "Zoë", "n": [1, 2]}, 42, "text", None, [1]]

    raws = [line.raw for line in make_reader().read(None, NOW, 100)]

    assert raws == ['{"name":"Zoë","n":[1,2]}', "42", '"text"', "null", "[1]"]


def test_a_500_in_the_middle_yields_earlier_pages_then_raises_feed_unavailable(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader], sleeps: list[float]
) -> None:
    for nth in (3, 4, 5):  # page 3 and both its retries
        feed.on(nth, Reply(500, {"error": "boom"}))
    reader = make_reader()

    got, failure = read_until_failure(reader.read(None, NOW, 100))

    assert failure is not None and "HTTP 500, 3 attempt" in str(failure)
    assert [line.raw for line in got] == [compact(item) for item in ITEMS[:6]]
    assert sleeps == [0.5, 1.0]
    # Resuming from the last position yielded reads on from the failed page: nothing missed.
    rest = list(reader.read(got[-1].position, NOW, 100))
    assert [line.raw for line in got + rest] == [compact(item) for item in ITEMS]


def test_stopping_anywhere_and_resuming_from_the_last_position_misses_nothing(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    reader = make_reader()
    expected = [compact(item) for item in ITEMS]
    for stop_after in range(len(ITEMS) + 1):
        first = list(itertools.islice(reader.read(None, NOW, 100), stop_after))
        cursor = first[-1].position if first else None
        rest = [line.raw for line in reader.read(cursor, NOW, 100)]
        seen = [line.raw for line in first] + rest
        assert set(seen) == set(expected), f"stopped after {stop_after}"
        # The resumed read starts no later than the first record not yet processed.
        assert rest == expected[len(expected) - len(rest) :]
        assert len(rest) >= len(expected) - stop_after


def test_resuming_after_failures_on_any_page_eventually_yields_every_item(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    reader = make_reader(retry=RetryPolicy(attempts=1))
    expected = [compact(item) for item in ITEMS]
    for failing_request in range(1, 5):
        feed.on(len(feed.requests) + failing_request, Reply(503))
        processed: list[str] = []
        cursor: str | None = None
        for _tick in range(10):
            got, failure = read_until_failure(reader.read(cursor, NOW, 5))
            processed += [line.raw for line in got]
            cursor = got[-1].position if got else cursor  # what ingest stores
            if failure is None and not got:
                break
        assert set(processed) == set(expected), f"failing request {failing_request}"


def test_429_retry_after_is_honoured(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader], sleeps: list[float]
) -> None:
    feed.on(2, Reply(429, {"error": "slow down"}, headers={"Retry-After": "3"}))
    feed.on(4, Reply(503, headers={"Retry-After": "1"}))

    lines = list(make_reader().read(None, NOW, 100))

    assert len(lines) == len(ITEMS)
    assert sleeps == [3.0, 1.0]
    assert [r.query.get("modifiedSince") for r in feed.page_requests()] == [
        None,
        "c3",
        "c3",
        "c6",
        "c6",
        "c8",
    ]


def test_a_retry_after_beyond_the_budget_stops_at_once(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader], sleeps: list[float]
) -> None:
    feed.on(2, Reply(429, headers={"Retry-After": "600"}))

    got, failure = read_until_failure(make_reader().read(None, NOW, 100))

    assert len(got) == 3 and failure is not None and "budget" in str(failure)
    assert sleeps == []


def test_api_key_header_mode(feed: FeedStub, make_reader: Callable[..., HttpFeedReader]) -> None:
    feed.api_key = "k-123"
    auth = ApiKeyAuth("Ocp-Apim-Subscription-Key", "k-123")

    lines = list(make_reader(auth=auth).read(None, NOW, 100))

    assert len(lines) == len(ITEMS)
    assert all(r.headers["ocp-apim-subscription-key"] == "k-123" for r in feed.page_requests())
    assert all("authorization" not in r.headers for r in feed.page_requests())
    assert "k-123" not in repr(auth)


def test_a_wrong_api_key_raises_feed_unavailable_without_retrying(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader], sleeps: list[float]
) -> None:
    feed.api_key = "k-123"

    with pytest.raises(FeedUnavailable, match=r"HTTP 401 \(bad_api_key\)"):
        list(make_reader(auth=ApiKeyAuth("Ocp-Apim-Subscription-Key", "wrong")).read(None, NOW, 100))
    assert len(feed.requests) == 1 and sleeps == []


def test_oauth_client_credentials_through_msal_with_a_configured_scope(
    feed: FeedStub, token_stub: TokenStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    feed.accepted_tokens = lambda: token_stub.issued
    tokens = MsalClientCredentials(
        tenant_id=token_stub.tenant,
        client_id=token_stub.client_id,
        client_secret=token_stub.client_secret,
        scopes=["api://niche-feed/.default"],
        authority_host=token_stub.authority_host,
        verify=token_stub.ca_bundle,
    )

    lines = list(make_reader(auth=BearerAuth(tokens)).read(None, NOW, 100))

    assert len(lines) == len(ITEMS)
    assert [(r["grant_type"], r["scope"]) for r in token_stub.token_requests] == [
        ("client_credentials", "api://niche-feed/.default")
    ]


def test_a_page_that_is_not_json_raises_feed_unavailable_naming_the_url_without_credentials(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    feed.on(2, Reply(200, "<html>gateway error</html>"))
    url = feed.url + "?code=s3cr3t-function-key"  # an Azure Functions key, say

    got, failure = read_until_failure(make_reader(url=url).read(None, NOW, 100))

    assert len(got) == 3
    assert failure is not None
    assert f"{feed.url} " in str(failure) and "not JSON" in str(failure)
    assert "s3cr3t" not in str(failure)
    assert feed.page_requests()[0].query["code"] == "s3cr3t-function-key"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"records": []}, '"items" list'),
        ([{"a": 1}], '"items" list'),
        ({"items": {"a": 1}}, '"items" list'),
        ({"items": [{"a": 1}]}, 'no "next"'),
        ({"items": [{"a": 1}], "next": ""}, 'no "next"'),
    ],
)
def test_a_malformed_page_raises_feed_unavailable(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader], body: Any, complaint: str
) -> None:
    feed.then(Reply(200, body))

    with pytest.raises(FeedUnavailable, match=complaint):
        list(make_reader().read(None, NOW, 100))


def test_a_slow_page_times_out_and_raises_feed_unavailable(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    feed.then(Reply(200, {"items": []}, delay=1.0), Reply(200, {"items": []}, delay=1.0))

    with pytest.raises(FeedUnavailable, match="timed out, 2 attempt"):
        list(make_reader(timeout=0.2, retry=RetryPolicy(attempts=2)).read(None, NOW, 100))


def test_now_is_ignored(feed: FeedStub, make_reader: Callable[..., HttpFeedReader]) -> None:
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)

    assert len(list(make_reader().read(None, long_ago, 100))) == len(ITEMS)


def test_settings_mistakes_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="https"):
        HttpFeedReader("http://feeds.example.org/niche", auth=None)
    with pytest.raises(ValueError, match="user name or password") as raised:
        HttpFeedReader("https://user:hunter2@feeds.example.org/niche", auth=None)
    assert "hunter2" not in str(raised.value)
    with pytest.raises(ValueError, match="page_size"):
        HttpFeedReader("https://feeds.example.org/niche", auth=None, page_size=0)
    with pytest.raises(ValueError, match="API key"):
        ApiKeyAuth("x-api-key", "")


def test_a_page_larger_than_the_limit_is_refused_and_the_cursor_does_not_move(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    """The feed serves a 5 MiB page; the reader reads at most 4 MiB of one, yields nothing of it,
    and says which feed and which limit; a stored position reads as it did (a retry re-asks it)."""
    feed.items = [{"crime_reference": f"HU/{n:06d}/26", "notes": "x" * 1024 * 1024} for n in range(5)]
    got, failure = read_until_failure(make_reader(page_size=5).read(None, NOW, 100))
    assert failure is not None, f"read all {len(got)} records of a 5 MiB page"
    assert got == []
    assert "larger than the 4194304-byte limit" in str(failure) and "feed page" in str(failure)
    assert "/feed" in str(failure)
    # A smaller page from the same position goes through: nothing was skipped.
    small = make_reader(page_size=1, max_page_bytes=2 * 1024 * 1024)
    first = next(iter(small.read(None, NOW, 1)))
    assert json.loads(first.raw)["crime_reference"] == "HU/000000/26"
