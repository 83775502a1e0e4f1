"""The HTTP feed reader, against a local feed endpoint with scripted failures."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.entra import MsalClientCredentials
from shared.adapters.http import RetryPolicy
from shared.adapters.http_feed import ApiKeyAuth, BearerAuth, FeedUnavailable, HttpFeedReader
from shared.adapters.table_layout import CURSORS, QUARANTINE, SNAPSHOTS
from shared.local.host import SimulatedClock
from shared.ports import FeedLine
from shared.settings import load_settings
from shared.steps.ingest import ingest_feed
from tests.builders import embedded, occurrence
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


# --- Page sizes: a large page is asked for again smaller; one huge record is passed over -------

MiB = 1024 * 1024


def record(n: int, size: int = 0) -> dict[str, Any]:
    """A record of ``size`` bytes and a little, whose text is nothing a log line may hold."""
    return {"crime_reference": f"HU/{n:06d}/26", "seq": n, "notes": 'Zoë said ["x"], {y}' + "x" * size}


def limits(feed: FeedStub) -> list[tuple[str | None, str]]:
    return [(r.query.get("modifiedSince"), r.query["limit"]) for r in feed.page_requests()]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_page_over_the_limit_is_asked_for_again_smaller_and_every_record_arrives_once_in_order(
    feed: FeedStub,
    make_reader: Callable[..., HttpFeedReader],
    caplog: pytest.LogCaptureFixture,
    chunked: bool,
) -> None:
    """At the default 4 MiB a page: halved from the same cursor until it fits, then back to the
    full size for the next page; positions still resume at the page a record was in."""
    feed.chunked = chunked  # no Content-Length: the reader stops reading past 4 MiB and asks again
    sizes = [0, MiB, MiB, MiB, 3 * MiB + MiB // 2, 0, MiB, 0, 0, 0]
    feed.items = [record(n, size) for n, size in enumerate(sizes)]

    lines = list(make_reader(page_size=8).read(None, NOW, 100))

    assert [line.raw for line in lines] == [compact(item) for item in feed.items]
    assert limits(feed) == [
        (None, "8"),  # 7.5 MiB
        (None, "4"),
        ("c4", "8"),  # 4.5 MiB
        ("c4", "4"),  # still 4.5 MiB
        ("c4", "2"),
        ("c6", "8"),  # the next page is asked for whole again
        ("c10", "8"),
    ]
    assert [line.position for line in lines] == ["", "", "", "c4", "c4", "c6", "c6", "c6", "c6", "c10"]
    assert "limit=4194304" not in caplog.text and "larger than the 4194304-byte limit" in caplog.text
    assert "Zoë" not in caplog.text and "HU/" not in caplog.text  # cursors and sizes, no record


def test_a_page_of_one_record_between_the_two_limits_is_read_whole(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    """A 6 MiB record: over the 4 MiB of a page, within the 16 MiB of a page of one record."""
    feed.items = [record(0), record(1, 6 * MiB), record(2)]

    lines = list(make_reader().read(None, NOW, 100))

    assert [line.raw for line in lines] == [compact(item) for item in feed.items]
    assert limits(feed) == [(None, "3"), (None, "1"), ("c1", "3"), ("c1", "1"), ("c2", "3"), ("c3", "3")]
    assert [line.position for line in lines] == ["c1", "c2", "c3"]


SMALL_LIMITS = {"max_page_bytes": 64 * 1024, "max_record_page_bytes": 256 * 1024}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_record_over_the_one_record_limit_is_passed_over_as_a_small_unread_line_and_the_feed_goes_on(
    feed: FeedStub,
    make_reader: Callable[..., HttpFeedReader],
    caplog: pytest.LogCaptureFixture,
    chunked: bool,
) -> None:
    feed.chunked = chunked
    feed.items = [record(n, MiB if n == 4 else 0) for n in range(8)]
    page_bytes = len(json.dumps({"items": [feed.items[4]], "next": "c5"}).encode())

    lines = list(make_reader(page_size=4, **SMALL_LIMITS).read(None, NOW, 100))

    raws = [line.raw for line in lines]
    assert raws[:4] + raws[5:] == [compact(item) for n, item in enumerate(feed.items) if n != 4]
    assert json.loads(raws[4]) == {
        "$unread_record": {"position": "c4", "page_bytes": page_bytes, "limit_bytes": 256 * 1024}
    }
    assert lines[4].position == "c5"  # read on from here, the huge record is behind the cursor
    assert len(raws[4]) < 200 and "Zoë" not in raws[4]
    assert limits(feed) == [(None, "4"), ("c4", "4"), ("c4", "2"), ("c4", "1"), ("c5", "4"), ("c8", "4")]
    assert "passed over unread" in caplog.text and f"page {page_bytes} bytes" in caplog.text
    assert "Zoë" not in caplog.text and "HU/" not in caplog.text


def test_ingest_quarantines_a_passed_over_record_with_its_size_and_position_and_reads_on(
    tmp_path: Path, feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    """Through ingest: one small quarantine row naming the position, no byte of the record in it;
    the records after it are stored, and the next tick does not meet it again."""
    records = [occurrence(f"2026-11-20T10:0{n}:00Z", ref=f"HU/00000{n}/26") for n in range(5)]
    records[2]["offence"]["description"] = "Zoë Quartermaine " * 40_000  # 680 KB
    feed.items = records
    services, broker = embedded(
        load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(datetime(2026, 11, 21, tzinfo=UTC))
    )
    services.feeds["niche"] = make_reader(page_size=4, **SMALL_LIMITS)

    report = ingest_feed("niche", services)

    assert (report.read, report.changes, report.quarantined) == (5, 4, 1)
    [row] = services.tables.query_partition(QUARANTINE, "niche")
    assert row.properties["error"] == (
        "record larger than 262144 bytes at position 'c2' (its page: "
        f"{len(json.dumps({'items': [records[2]], 'next': 'c3'}).encode())} bytes), passed over "
        "unread by the feed reader"
    )
    assert len(json.dumps(dict(row.properties), default=str)) < 600
    assert "Quartermaine" not in json.dumps(dict(row.properties), default=str)
    assert all(services.tables.get(SNAPSHOTS, f"HU/00000{n}/26", "niche") for n in (0, 1, 3, 4))
    assert services.tables.get(SNAPSHOTS, "HU/000002/26", "niche") is None
    assert broker.pending("case-changes") == 4
    cursor = services.tables.get(CURSORS, "niche", "cursor")
    assert cursor is not None and cursor.properties["position"] == "c5"
    assert ingest_feed("niche", services).read == 0  # caught up: the feed did not stop at it


def test_a_server_ignoring_the_limit_cannot_be_split_and_fails_clearly_without_moving_the_cursor(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    """Five records of 100 KiB sent whatever the limit: too large even for one record's page, and
    more than one record in it, so nothing is passed over and nothing is yielded."""
    whole = {"items": [record(n, 100 * 1024) for n in range(5)], "next": "c5"}
    feed.then(*[Reply(200, whole)] * 3)

    got, failure = read_until_failure(make_reader(page_size=5, **SMALL_LIMITS).read(None, NOW, 100))

    assert got == []  # ingest keeps its cursor: the next tick asks the same page
    assert failure is not None
    assert "holds more than the one record asked for" in str(failure) and "262144-byte limit" in str(failure)
    assert f"{feed.url} (modifiedSince='', limit=1)" in str(failure)
    assert limits(feed) == [(None, "5"), (None, "2"), (None, "1")]


def test_a_page_of_one_record_that_does_not_end_within_the_read_through_limit_fails_without_moving(
    feed: FeedStub, make_reader: Callable[..., HttpFeedReader]
) -> None:
    feed.items = [record(0), record(1, 2 * MiB), record(2)]
    reader = make_reader(page_size=2, max_passed_over_bytes=MiB, **SMALL_LIMITS)

    got, failure = read_until_failure(reader.read("c1", NOW, 100))

    assert got == []
    assert failure is not None and "larger than 1048576 bytes, the most read through" in str(failure)


def test_settings_mistakes_in_the_size_limits_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="max_page_bytes <= max_record_page_bytes"):
        HttpFeedReader("https://feeds.example.org/niche", auth=None, max_page_bytes=32 * MiB)
    with pytest.raises(ValueError, match="1 <= max_page_bytes"):
        HttpFeedReader("https://feeds.example.org/niche", auth=None, max_page_bytes=0)
