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

A page is read as a stream and at most ``max_page_bytes`` of it (``MAX_PAGE_BYTES``, 4 MiB,
unless set): a larger one raises FeedUnavailable naming the feed and the limit, before any of
its items is yielded, so the cursor stays where it was.

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
from shared.ports import FeedLine

logger = logging.getLogger(__name__)

# The most of one page's body a reader reads (a page of 100 records is a few hundred KiB).
MAX_PAGE_BYTES = 4 * 1024 * 1024
_CHUNK = 64 * 1024


class FeedUnavailable(ports.FeedUnavailable):
    """A feed page could not be read (after retries) or made no sense; earlier pages stand."""


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
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if max_page_bytes < 1:
            raise ValueError("max_page_bytes must be at least 1")
        self.max_page_bytes = max_page_bytes
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

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.auth is not None:
            headers.update(self.auth())
        return headers

    def read(self, cursor: str | None, now: datetime, limit: int) -> Iterator[FeedLine]:
        request_cursor = cursor or ""
        remaining = limit
        while remaining > 0:
            items, next_cursor = self._page(request_cursor, min(self.page_size, remaining))
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
            raw = self._body(response, what)
            try:
                body = json.loads(raw)
            except ValueError:
                body = _NOT_JSON
        if body is _NOT_JSON:
            raise FeedUnavailable(f"{what}: the page is not JSON")
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise FeedUnavailable(f'{what}: the page is not an object with an "items" list')
        if not items:
            return [], request_cursor
        next_cursor = body.get("next")
        if isinstance(next_cursor, int) and not isinstance(next_cursor, bool):
            next_cursor = str(next_cursor)
        if not isinstance(next_cursor, str) or not next_cursor:
            raise FeedUnavailable(f'{what}: a page with items has no "next" cursor')
        return items, next_cursor

    def _body(self, response: requests.Response, what: str) -> bytes:
        """The page's body, read until it ends or passes ``max_page_bytes`` (then FeedUnavailable)."""
        limit = self.max_page_bytes
        too_big = f"{what}: the page is larger than the {limit}-byte limit; not read"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            logger.error("%s", too_big)
            raise FeedUnavailable(too_big)
        body = bytearray()
        try:
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if len(body) > limit:
                    logger.error("%s", too_big)
                    raise FeedUnavailable(too_big)
        except requests.RequestException as exc:
            raise FeedUnavailable(f"{what}: the page could not be read ({type(exc).__name__})") from exc
        return bytes(body)


_NOT_JSON = object()
