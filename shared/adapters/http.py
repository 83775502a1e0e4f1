"""HTTP plumbing shared by the Graph directory and the feed readers.

Timeouts and bounded retries honouring ``Retry-After`` (``RetryPolicy``,
``send_with_retries``, ``RequestFailed``); a transient ``TokenError`` from the
request's headers is retried like a 5xx, a permanent one fails at once. URLs
are https (http only to this machine) and described without user info or
query string (``require_secure_url``, ``describe_url``). ``error_code`` reads
the code of a Graph-style or OAuth error body.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from shared.adapters.entra import TokenError

logger = logging.getLogger(__name__)

Timeout = float | tuple[float, float]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request.

    At most ``attempts`` attempts in all. Between attempts: the server's
    ``Retry-After`` when it sends one, else ``backoff`` doubling each time up
    to ``max_backoff``. When the next wait would take the total over
    ``max_total_wait`` the request fails at once instead of sleeping.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_total_wait: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_total_wait < 0:
            raise ValueError("waits cannot be negative")

    def backoff_for(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based) when the server named none."""
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


class RequestFailed(Exception):
    """A request failed for good: after its retries, or at once when retrying cannot help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def describe_url(url: str) -> str:
    """The URL without user info or query string: safe to log and to put in an error."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def require_secure_url(url: str, what: str) -> str:
    """``url`` without a trailing slash; https, or http only to this machine (tests, emulators).

    User info in the URL is refused: requests would send it as Basic
    authentication in place of the configured credentials.
    """
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must not carry a user name or password: {describe_url(url)!r}")
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname:
        if parts.hostname == "localhost":
            return url.rstrip("/")
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return url.rstrip("/")
        except ValueError:
            pass
    raise ValueError(f"{what} must be an https URL (http only to localhost), not {describe_url(url)!r}")


def send_with_retries(
    session: requests.Session,
    url: str,
    *,
    params: Mapping[str, str] | str | None,
    headers: Callable[[], Mapping[str, str]],
    timeout: Timeout,
    retry: RetryPolicy,
    sleep: Callable[[float], None],
    what: str,
    stream: bool = False,
) -> requests.Response:
    """GET ``url``, retrying 429, 5xx, timeouts, connection errors and transient token errors.

    Returns any other response (2xx, 3xx, 4xx) for the caller to judge; raises
    RequestFailed when the retries or the wait budget run out, or at once on a
    permanent token error. ``headers`` is called for every attempt (tokens are
    cached by their providers). Redirects are not followed: credentials stay
    with the host they were meant for. ``what`` names the request in messages.
    ``stream``: the body is left unread, for the caller to read as far as it will.
    """
    waited = 0.0
    for attempt in range(1, retry.attempts + 1):
        server_wait: float | None = None
        status: int | None = None
        try:
            response = session.get(
                url,
                params=params,
                headers=dict(headers()),
                timeout=timeout,
                allow_redirects=False,
                stream=stream,
            )
        except TokenError as exc:
            if not exc.transient:
                raise RequestFailed(f"{what}: no access token: {exc}") from exc
            reason = f"no access token ({exc})"
        except requests.Timeout:
            reason = "timed out"
        except requests.RequestException as exc:
            reason = f"connection failed ({type(exc).__name__})"
        else:
            status = response.status_code
            if status != 429 and status < 500:
                return response
            reason = f"HTTP {status}"
            server_wait = parse_retry_after(response.headers.get("Retry-After"))
            response.close()
        if attempt == retry.attempts:
            raise RequestFailed(f"{what}: {reason}, {attempt} attempt(s) made", status=status)
        wait = server_wait if server_wait is not None else retry.backoff_for(attempt)
        if waited + wait > retry.max_total_wait:
            raise RequestFailed(
                f"{what}: {reason}; waiting {wait:g}s more would pass the {retry.max_total_wait:g}s budget",
                status=status,
            )
        logger.warning(
            "%s: %s; attempt %d of %d, retrying in %gs", what, reason, attempt, retry.attempts, wait
        )
        sleep(wait)
        waited += wait
    raise AssertionError("unreachable")  # pragma: no cover


def error_code(response: requests.Response) -> str:
    """The error code of a Graph-style (``{"error": {"code"}}``) or OAuth (``{"error"}``) body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return str(error["code"])[:100]
        if isinstance(error, str):
            return error[:100]
    return ""
