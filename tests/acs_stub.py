"""A local stub of the Azure Communication Services Email and SMS REST APIs, for the adapter tests.

It listens on 127.0.0.1 on a free port (threaded ``http.server``) and answers the
routes the pinned SDKs really call (read from their source, not guessed):

- ``POST /emails:send?api-version=2025-09-01`` (azure-communication-email 1.1.0,
  ``build_email_send_request``) → 202, ``Operation-Location`` header and
  ``{"id", "status": "Running"}``;
- ``GET /emails/operations/{id}?api-version=2025-09-01`` (the URL in
  Operation-Location, which the SDK's LRO poller follows) → 200 ``{"id", "status": "Succeeded"}``;
- ``POST /sms?api-version=2021-03-07`` (azure-communication-sms 1.1.0,
  ``SmsOperations.send``) → 202 ``{"value": [{"to", "messageId", "httpStatusCode": 202,
  "repeatabilityResult": "accepted", "successful": true}]}``.

Every request must carry the HMAC-SHA256 signature ACS checks (``x-ms-date``,
``x-ms-content-sha256`` = base64 SHA-256 of the body, ``Authorization: HMAC-SHA256
SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=…`` over
``VERB\\n<path?query>\\n<date>;<host>;<hash>`` with the base64-decoded access key),
dated within 15 minutes of now; otherwise 401.

Idempotency, as the service documents it (learn.microsoft.com, "Repeatable requests"):

- Email: ``Operation-Id`` must be present and a GUID (stricter than ACS, which makes
  one up when it is absent: our adapter must always send one). A repeated id answers
  the original operation again and accepts no second message. (Whether ACS answers
  409 while the first is still running is not something a stub can settle; the
  adapter treats 409 as "retry later".)
- SMS (api 2021-03-07): the repeatability fields are per recipient in the body,
  ``repeatabilityRequestId`` (a GUID) and ``repeatabilityFirstSent`` (IMF-fixdate).
  Missing or malformed → that recipient fails with 400 (stricter than ACS, which
  treats a recipient without them as non-repeatable). First-sent older than the
  tracked window (5 minutes) → 412. A repeated id with the same first-sent, number
  and text → the original result, no new message; a repeated id that does not match
  the first request (a different first-sent, say) → 400 ``rejected``, as the
  repeatable-requests table says. The stub answers per-recipient failures inside a
  202, as the multi-status response model allows.

Tests script it: ``fail_next`` queues whole-request failures (429 with Retry-After,
500, 503 …) for the next N requests, ``fail_next_recipient`` a per-recipient failure;
``recorded`` holds every request (method, path, query, headers, JSON body, answer)
and ``accepted_emails`` / ``accepted_sms`` the distinct messages accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

# A made-up, test-only access key (base64 of 32 bytes, as ACS keys are).
ACCESS_KEY = base64.b64encode(b"acs-stub-test-only-access-key-32").decode()
EMAIL_API_VERSION = "2025-09-01"  # azure-communication-email 1.1.0 default
SMS_API_VERSION = "2021-03-07"  # azure-communication-sms 1.1.0, fixed in the generated operation
SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
_AUTHORIZATION = re.compile(r"^HMAC-SHA256 SignedHeaders=(?P<headers>[^&]+)&Signature=(?P<signature>\S+)$")
_IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} GMT$"
)
_OPERATION = re.compile(r"^/emails/operations/(?P<id>[^/]+)$")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stub saw it, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any
    raw: bytes
    status: int

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class AcceptedEmail:
    operation_id: str
    message: dict[str, Any]
    status: str = "Running"


@dataclass
class AcceptedSms:
    request_id: str
    first_sent: str
    sender: str
    to: str
    message: str
    options: dict[str, Any]
    result: dict[str, Any]


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    route: str | None
    message: str


@dataclass
class _Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def sign(method: str, target: str, host: str, date: str, body: bytes, access_key: str) -> dict[str, str]:
    """The headers ACS expects on a request (what the SDKs' HMACCredentialsPolicy computes)."""
    content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    to_sign = f"{method}\n{target}\n{date};{host};{content_hash}"
    digest = hmac.new(base64.b64decode(access_key), to_sign.encode(), hashlib.sha256).digest()
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": content_hash,
        "Authorization": f"HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={base64.b64encode(digest).decode()}",
    }


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> _Answer:
    return _Answer(status, {"error": {"code": code, "message": message}}, headers or {})


def _is_guid(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(value) == 36 and uuid.UUID(value) is not None
    except ValueError:
        return False


def _imf_fixdate(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _IMF_FIXDATE.match(value):
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


class AcsStub:
    """The stub service: start it, point the SDK clients at ``endpoint``, inspect what arrived."""

    def __init__(
        self,
        access_key: str = ACCESS_KEY,
        *,
        repeatability_window: timedelta = timedelta(minutes=5),
        max_clock_skew: timedelta = timedelta(minutes=15),
    ) -> None:
        self.access_key = access_key
        self.repeatability_window = repeatability_window
        self.max_clock_skew = max_clock_skew
        self.recorded: list[RecordedRequest] = []
        self.accepted_emails: dict[str, AcceptedEmail] = {}
        self.accepted_sms: dict[str, AcceptedSms] = {}
        self._failures: list[_Failure] = []
        self._recipient_failures: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> AcsStub:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="acs-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> AcsStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the stub is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def connection_string(self, access_key: str | None = None) -> str:
        return f"endpoint={self.endpoint}/;accesskey={access_key or self.access_key}"

    # --- scripting ----------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | int | None = None,
        route: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` signed requests (to ``route``: "email"/"sms", or any) with ``status``."""
        with self._lock:
            for _ in range(times):
                wait = None if retry_after is None else str(retry_after)
                self._failures.append(_Failure(status, wait, route, message or f"scripted HTTP {status}"))

    def fail_next_recipient(
        self, status: int = 400, error_message: str = "Invalid To phone number format."
    ) -> None:
        """The next SMS recipient fails with this per-recipient status (inside a 202)."""
        with self._lock:
            self._recipient_failures.append((status, error_message))

    def requests_to(self, route: str) -> list[RecordedRequest]:
        """Recorded requests to one route: "email" (send), "email-status" (poll) or "sms"."""
        with self._lock:
            return [request for request in self.recorded if _route(request.method, request.path) == route]

    # --- the service ------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Answer:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            answer = self._answer(method, target, parts.path, query, headers, raw, body)
            self.recorded.append(
                RecordedRequest(method, parts.path, query, headers, body, raw, answer.status)
            )
        return answer

    def _answer(
        self,
        method: str,
        target: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        raw: bytes,
        body: Any,
    ) -> _Answer:
        problem = self._signature_problem(method, target, headers, raw)
        if problem is not None:
            return _error(401, "Denied", f"Denied by the resource provider: {problem}")
        route = _route(method, path)
        if route is None:
            return _error(404, "NotFound", f"no route for {method} {path}")
        expected = SMS_API_VERSION if route == "sms" else EMAIL_API_VERSION
        if query.get("api-version") != expected:
            return _error(400, "UnsupportedApiVersion", f"api-version must be {expected}")
        for index, failure in enumerate(self._failures):
            if failure.route in (None, route.removesuffix("-status")):
                del self._failures[index]
                extra = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
                return _error(failure.status, "Scripted", failure.message, extra)
        if route == "email":
            return self._send_email(headers, body)
        if route == "email-status":
            return self._email_status(path)
        return self._send_sms(body)

    def _signature_problem(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> str | None:
        date, content_hash = headers.get("x-ms-date"), headers.get("x-ms-content-sha256")
        host, authorization = headers.get("host"), headers.get("authorization")
        if not (date and content_hash and host and authorization):
            return "x-ms-date, x-ms-content-sha256, host and Authorization are required"
        try:
            sent = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return "x-ms-date is not an HTTP date"
        if sent.tzinfo is None or abs(datetime.now(UTC) - sent) > self.max_clock_skew:
            return "x-ms-date is too far from now"
        if not hmac.compare_digest(content_hash, base64.b64encode(hashlib.sha256(raw).digest()).decode()):
            return "x-ms-content-sha256 does not match the body"
        match = _AUTHORIZATION.match(authorization)
        if match is None or match["headers"] != SIGNED_HEADERS:
            return f"Authorization must be HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature=…"
        expected = sign(method, target, host, date, raw, self.access_key)["Authorization"]
        if not hmac.compare_digest(authorization, expected):
            return "signature mismatch"
        return None

    def _send_email(self, headers: dict[str, str], body: Any) -> _Answer:
        operation_id = headers.get("operation-id")
        if not _is_guid(operation_id):
            return _error(400, "InvalidOperationId", "Operation-Id must be a GUID")
        assert operation_id is not None
        problem = _email_problem(body)
        if problem is not None:
            return _error(400, "BadRequest", problem)
        accepted = self.accepted_emails.get(operation_id)
        if accepted is None:
            accepted = self.accepted_emails[operation_id] = AcceptedEmail(operation_id, body)
        location = (
            f"http://{headers['host']}/emails/operations/{operation_id}?api-version={EMAIL_API_VERSION}"
        )
        return _Answer(202, {"id": operation_id, "status": accepted.status}, {"Operation-Location": location})

    def _email_status(self, path: str) -> _Answer:
        match = _OPERATION.match(path)
        accepted = self.accepted_emails.get(match["id"]) if match else None
        if accepted is None:
            return _error(404, "NotFound", "no such operation")
        accepted.status = "Succeeded"
        return _Answer(200, {"id": accepted.operation_id, "status": accepted.status})

    def _send_sms(self, body: Any) -> _Answer:
        if not isinstance(body, dict) or not body.get("from") or not isinstance(body.get("message"), str):
            return _error(400, "BadRequest", "from and message are required")
        recipients = body.get("smsRecipients")
        if not isinstance(recipients, list) or not 1 <= len(recipients) <= 100:
            return _error(400, "BadRequest", "smsRecipients must hold 1 to 100 recipients")
        results = [self._sms_recipient(body, recipient) for recipient in recipients]
        return _Answer(202, {"value": results})

    def _sms_recipient(self, body: dict[str, Any], recipient: Any) -> dict[str, Any]:
        to = recipient.get("to") if isinstance(recipient, dict) else None

        def failed(status: int, message: str, repeatability: str | None = "rejected") -> dict[str, Any]:
            result: dict[str, Any] = {"to": to, "httpStatusCode": status, "successful": False}
            if repeatability:
                result["repeatabilityResult"] = repeatability
            result["errorMessage"] = message
            return result

        if not isinstance(to, str) or not to:
            return failed(400, "to is required", None)
        request_id = recipient.get("repeatabilityRequestId")
        first_sent_text = recipient.get("repeatabilityFirstSent")
        first_sent = _imf_fixdate(first_sent_text)
        if not _is_guid(request_id) or first_sent is None:
            return failed(
                400, "repeatabilityRequestId must be a GUID and repeatabilityFirstSent an IMF-fixdate"
            )
        if datetime.now(UTC) - first_sent > self.repeatability_window:
            return failed(412, "Repeatability-First-Sent is outside the tracked window")
        previous = self.accepted_sms.get(request_id)
        if previous is not None:
            if (previous.first_sent, previous.to, previous.message) != (first_sent_text, to, body["message"]):
                return failed(400, "repeated request id does not match the first request")
            return previous.result
        if self._recipient_failures:
            status, message = self._recipient_failures.pop(0)
            return failed(status, message, None)
        result = {
            "to": to,
            "messageId": f"Outgoing_{datetime.now(UTC):%Y%m%d%H%M%S}{uuid.uuid4()}_noam",
            "httpStatusCode": 202,
            "repeatabilityResult": "accepted",
            "successful": True,
        }
        self.accepted_sms[request_id] = AcceptedSms(
            request_id,
            first_sent_text,
            body["from"],
            to,
            body["message"],
            body.get("smsSendOptions") or {},
            result,
        )
        return result


def _route(method: str, path: str) -> str | None:
    if method == "POST" and path == "/emails:send":
        return "email"
    if method == "GET" and _OPERATION.match(path):
        return "email-status"
    if method == "POST" and path == "/sms":
        return "sms"
    return None


def _email_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not body.get("senderAddress"):
        return "senderAddress is required"
    to = (body.get("recipients") or {}).get("to")
    if not isinstance(to, list) or not to or not all(isinstance(r, dict) and r.get("address") for r in to):
        return "recipients.to must list at least one address"
    content = body.get("content") or {}
    if not content.get("subject") or not (content.get("plainText") or content.get("html")):
        return "content needs a subject and plainText or html"
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping a kept-alive connection is not a stub failure; anything else is.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: AcsStub

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.owner.handle(self.command, self.path, headers, raw)
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures anyway
        pass


@pytest.fixture
def acs_stub() -> Iterator[AcsStub]:
    """A running ACS stub, fresh for each test."""
    with AcsStub() as stub:
        yield stub
