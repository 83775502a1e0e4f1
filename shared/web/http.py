"""The request and response the page framework speaks: plain values, no Azure types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Every response carries these. The page is the credential's own address (the link is in the
# URL), so it is never cached, never sent on as a referrer, and runs no script at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
)
NO_STORE = "no-store"
HTML = "text/html; charset=utf-8"


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Request:
    """One HTTP request. ``form`` holds the first value of each urlencoded body field;
    ``headers`` are keyed in lower case; ``client`` is the caller's address when known."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=_empty)
    form: Mapping[str, str] = field(default_factory=_empty)
    headers: Mapping[str, str] = field(default_factory=_empty)
    client: str | None = None


@dataclass(frozen=True)
class Response:
    """One HTTP response: status, body bytes and headers (the security headers are added on the way out)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=_empty)

    def with_security_headers(self) -> Response:
        """The same response with the security headers; ``Cache-Control: no-store`` unless it set its own."""
        headers = {"Cache-Control": NO_STORE, **self.headers, **SECURITY_HEADERS}
        return Response(self.status, self.body, MappingProxyType(headers))


def html(status: int, body: str, **headers: str) -> Response:
    """An HTML response."""
    return Response(status, body.encode("utf-8"), MappingProxyType({"Content-Type": HTML, **headers}))


def redirect(location: str) -> Response:
    """303 See Other: after a POST, the browser GETs ``location`` (POST-redirect-GET)."""
    return Response(303, b"", MappingProxyType({"Location": location}))
