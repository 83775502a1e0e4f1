"""A feed read from the force's HTTP endpoint, page by page from a cursor.

The paging contract (README, "Settings": the feed APIs)::

    GET {url}?modifiedSince={cursor}&limit=N  ->  {"items": [...], "next": "..."}

``next`` is the cursor to ask with for the page after this one; an empty
``items`` means the feed is caught up. The first read of a feed (no cursor)
leaves ``modifiedSince`` out.

Positions: a page cannot be entered part-way, so every item of a page but the
last carries the page's own request cursor as its position, and the last item
carries the page's ``next``. A reader stopped anywhere (a crash, a failed page,
the caller's limit) resumes by re-reading at most the page it was in — records
already seen come round again (ingest ignores identical snapshots), none is
skipped. The first page of a feed has the empty string as its request cursor,
which reads as "from the start".

A page that cannot be had after the bounded retries, or that is not a JSON
object with an ``items`` list, raises FeedUnavailable — after the earlier pages'
items have been yielded, so the caller can keep what it processed.

Size: a page is read as a stream, and at most ``max_page_bytes`` of it (``MAX_PAGE_BYTES``,
4 MiB): a larger page is not read on but asked for again from the same cursor with half the
``limit``, down to one record, so that one large record stops neither the records around it nor
the feed. A page of one record may be larger, up to ``max_record_page_bytes``
(``MAX_RECORD_PAGE_BYTES``, 16 MiB), and is read as any page; ingest quarantines a record over
``MAX_RECORD_BYTES`` (200 KiB) by reference. A record larger still is passed over unread: its page
is read through in bounded memory for its ``next`` cursor only (``shared/adapters/json_outline.py``)
and the reader yields in its place, positioned at that ``next``, the small line
``{"$unread_record": {"position", "page_bytes", "limit_bytes"}}``, which ingest refuses (``unread_reason``)
with the reason "record larger than N bytes at position P", so ingest quarantines it (a row of a
few hundred bytes, none of the record's content) and the cursor moves past it. That is the one
record the service does not get; the quarantine row says where the force finds it. Reading
through stops at ``max_passed_over_bytes`` (``MAX_PASSED_OVER_BYTES``, 1 GiB): a page larger than
that, or one the server sends for ``limit=1`` with more than one record in it (a server ignoring
``limit`` cannot be split), raises FeedUnavailable naming the feed, the cursor and the limit, and
the cursor stays where it was. Log lines give cursors and sizes only, never a record.

``now`` is ignored: a live feed only shows what has already happened.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import requests

from shared import ports
from shared.adapters.entra import TokenProvider
from shared.adapters.http import (
    RequestFailed,
    RetryPolicy,
    Timeout,
    describe_url,
    error_code,
    require_secure_url,
    send_with_retries,
)
from shared.adapters.json_outline import JsonOutline, OutlineTooLarge
from shared.contracts.feeds import unread_record
from shared.ports import FeedLine

logger = logging.getLogger(__name__)

# The most of one page's body a reader reads (a page of 100 records is a few hundred KiB).
MAX_PAGE_BYTES = 4 * 1024 * 1024
# A page of one record may be this large and is still read whole. A record over MAX_RECORD_BYTES is
# only quarantined by reference, so reading it whole buys its quarantine row a digest and first
# characters; the reader and ingest hold it several times over meanwhile (the body, the parsed page,
# the compact line, ingest's own parse). Measured through both: a 15 MiB record of one long text
# peaks at 75 MiB, one of 150,000 small objects at 260 MiB, of an instance's 2,048 MB
# (instanceMemoryMB in infra/bicep/main.bicep) shared with the other invocations; 64 MiB would
# risk a gigabyte. A record passed over (below) costs under 1 MiB whatever its size.
MAX_RECORD_PAGE_BYTES = 16 * 1024 * 1024
# A page of one record larger than the above is read through for its next cursor in bounded memory,
# at 10 to 150 MB/s depending on its shape: this many bytes take at most about 90 s of a tick's
# 10 minutes. A page that does not end by then is not a record but a broken export or a stream.
MAX_PASSED_OVER_BYTES = 1024 * 1024 * 1024
_CHUNK = 64 * 1024


class FeedUnavailable(ports.FeedUnavailable):
    """A feed page could not be read (after retries) or made no sense; earlier pages stand."""


class _PageTooLarge(Exception):
    """A page of more than one record is larger than ``max_page_bytes``: asked again, smaller."""


AuthHeaders = Callable[[], Mapping[str, str]]
"""The headers that authenticate one request; called for every request."""


class BearerAuth:
    """``Authorization: Bearer <token>`` from a TokenProvider (msal client credentials, managed identity)."""

    def __init__(self, tokens: TokenProvider) -> None:
        self.tokens = tokens

    def __call__(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens()}"}


class ApiKeyAuth:
    """An API key in a header (``Ocp-Apim-Subscription-Key`` for API Management, ``x-api-key``, ...)."""

    def __init__(self, header: str, key: str) -> None:
        if not header.strip() or not key:
            raise ValueError("an API key header needs a name and a key")
        self.header = header.strip()
        self._key = key

    def __call__(self) -> dict[str, str]:
        return {self.header: self._key}

    def __repr__(self) -> str:  # never the key
        return f"ApiKeyAuth(header={self.header!r})"


def _compact(item: Any) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


class HttpFeedReader:
    """A FeedReader over the paging contract above.

    ``page_size`` caps each request's ``limit`` (a request asks for
    ``min(page_size, what the caller still wants)``). Should the server send
    more items than asked for, the whole page is yielded anyway — positions
    inside a page cannot be resumed from, so stopping part-way would read the
    same page for ever. ``cursor_param`` and ``limit_param`` name the query
    parameters. Each request has ``timeout`` and is retried by ``retry``
    (429, 5xx, timeouts, connection errors; ``Retry-After`` honoured; waits
    through ``sleep``).
    """

    def __init__(
        self,
        url: str,
        *,
        auth: AuthHeaders | None,
        page_size: int = 100,
        cursor_param: str = "modifiedSince",
        limit_param: str = "limit",
        timeout: Timeout = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
        max_page_bytes: int = MAX_PAGE_BYTES,
        max_record_page_bytes: int = MAX_RECORD_PAGE_BYTES,
        max_passed_over_bytes: int = MAX_PASSED_OVER_BYTES,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if not 1 <= max_page_bytes <= max_record_page_bytes <= max_passed_over_bytes:
            raise ValueError("need 1 <= max_page_bytes <= max_record_page_bytes <= max_passed_over_bytes")
        self.max_page_bytes = max_page_bytes
        self.max_record_page_bytes = max_record_page_bytes
        self.max_passed_over_bytes = max_passed_over_bytes
        self.url = require_secure_url(url, "the feed URL")
        self.auth = auth
        self.page_size = page_size
        self.cursor_param = cursor_param
        self.limit_param = limit_param
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.session = session or requests.Session()
        self._where = describe_url(self.url)
        self.passed_at: datetime | None = None  # every line is this reader's: none is passed over

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.auth is not None:
            headers.update(self.auth())
        return headers

    def source(self, cursor: str) -> str:
        """The feed's address (without credentials or query): its cursors are the server's own."""
        return f"http:{self._where}"

    def read(self, cursor: str | None, now: datetime, limit: int) -> Iterator[FeedLine]:
        request_cursor = cursor or ""
        remaining = limit
        while remaining > 0:
            items, next_cursor = self._page_that_fits(request_cursor, min(self.page_size, remaining))
            if not items:
                return
            last = len(items) - 1
            for index, item in enumerate(items):
                yield FeedLine(raw=_compact(item), position=next_cursor if index == last else request_cursor)
            remaining -= len(items)
            if next_cursor == request_cursor:
                logger.warning(
                    "feed %s: page at cursor %r named itself as next; stopping", self._where, request_cursor
                )
                return
            request_cursor = next_cursor

    def _page_that_fits(self, request_cursor: str, size: int) -> tuple[list[Any], str]:
        """The page at the cursor, asked for again with half the limit while it is too large."""
        while True:
            try:
                return self._page(request_cursor, size)
            except _PageTooLarge as too_large:
                size = max(1, size // 2)
                logger.warning("%s; asking again with %s=%d", too_large, self.limit_param, size)

    def _page(self, request_cursor: str, size: int) -> tuple[list[Any], str]:
        params = {self.limit_param: str(size)}
        if request_cursor:
            params = {self.cursor_param: request_cursor, **params}
        what = f"feed page {self._where} ({self.cursor_param}={request_cursor!r}, {self.limit_param}={size})"
        try:
            response = send_with_retries(
                self.session,
                self.url,
                params=params,
                headers=self._headers,
                timeout=self.timeout,
                retry=self.retry,
                sleep=self.sleep,
                what=what,
                stream=True,
            )
        except RequestFailed as exc:
            logger.warning("%s", exc)
            raise FeedUnavailable(str(exc)) from exc
        with response:
            if response.status_code != 200:
                code = error_code(response)
                message = f"{what}: HTTP {response.status_code}" + (f" ({code})" if code else "")
                logger.error("%s", message)
                raise FeedUnavailable(message)
            limit = self.max_page_bytes if size > 1 else self.max_record_page_bytes
            try:
                raw, rest = self._body(response, limit)
                if rest is not None and size > 1:
                    raise _PageTooLarge(f"{what}: the page is larger than the {limit}-byte limit")
                if rest is not None:
                    return self._passed_over(self._outline(raw, rest, what), request_cursor, what)
            except requests.RequestException as exc:
                raise FeedUnavailable(f"{what}: the page could not be read ({type(exc).__name__})") from exc
            try:
                body = json.loads(raw)
            except ValueError:
                body = _NOT_JSON
        if body is _NOT_JSON:
            raise FeedUnavailable(f"{what}: the page is not JSON")
        items = self._items(body, what)
        if not items:
            return [], request_cursor
        return items, self._next(body, what)

    @staticmethod
    def _items(body: Any, what: str) -> list[Any]:
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise FeedUnavailable(f'{what}: the page is not an object with an "items" list')
        return items

    @staticmethod
    def _next(body: dict[str, Any], what: str) -> str:
        next_cursor = body.get("next")
        if isinstance(next_cursor, int) and not isinstance(next_cursor, bool):
            next_cursor = str(next_cursor)
        if not isinstance(next_cursor, str) or not next_cursor:
            raise FeedUnavailable(f'{what}: a page with items has no "next" cursor')
        return next_cursor

    @staticmethod
    def _body(response: requests.Response, limit: int) -> tuple[bytearray, Iterator[bytes] | None]:
        """The page's body and None when it ends within ``limit`` bytes; else what was read of it
        (nothing, when its declared length says so at once) and the rest of the stream."""
        chunks = response.iter_content(_CHUNK)
        declared = response.headers.get("Content-Length", "")
        body = bytearray()
        if declared.isdigit() and int(declared) > limit:
            return body, chunks
        for chunk in chunks:
            body += chunk
            if len(body) > limit:
                return body, chunks
        return body, None

    def _outline(self, head: bytearray, rest: Iterator[bytes], what: str) -> JsonOutline:
        """A page of one record too large to hold, read through for its outline (bounded memory)."""
        outline = JsonOutline()
        try:
            outline.feed(head)
            del head
            for chunk in rest:
                outline.feed(chunk)
                if outline.bytes_read > self.max_passed_over_bytes:
                    message = (
                        f"{what}: the page is larger than {self.max_passed_over_bytes} bytes, the most "
                        "read through to pass over one record; not read, the cursor stays"
                    )
                    logger.error("%s", message)
                    raise FeedUnavailable(message)
        except OutlineTooLarge as exc:
            raise FeedUnavailable(f"{what}: {exc}") from exc
        return outline

    def _passed_over(self, outline: JsonOutline, request_cursor: str, what: str) -> tuple[list[Any], str]:
        """The unread-record line that stands for the page's one record, and the page's next cursor."""
        try:
            body = outline.value()
        except ValueError:
            raise FeedUnavailable(f"{what}: the page is not JSON") from None
        items = self._items(body, what)
        if not items:
            return [], request_cursor
        if len(items) > 1:
            message = (
                f"{what}: the page holds more than the one record asked for and is larger than the "
                f"{self.max_record_page_bytes}-byte limit; not read, the cursor stays"
            )
            logger.error("%s", message)
            raise FeedUnavailable(message)
        next_cursor = self._next(body, what)
        logger.error(
            "%s: one record larger than the %d-byte limit (its page %d bytes) passed over unread; "
            "ingest quarantines it, next %s=%r",
            what,
            self.max_record_page_bytes,
            outline.bytes_read,
            self.cursor_param,
            next_cursor,
        )
        return [unread_record(request_cursor, outline.bytes_read, self.max_record_page_bytes)], next_cursor


_NOT_JSON = object()
