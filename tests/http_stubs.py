"""Local HTTP stand-ins for Entra ID, Microsoft Graph and a force's feed endpoint.

Each stub is a stdlib threaded HTTP server on a free 127.0.0.1 port that records
every request and can be scripted to misbehave: ``stub.on(n, Reply(...))``
answers the n-th request (1-based, counted per stub) with that reply,
``stub.then(*replies)`` answers the next requests with these replies in turn.

- ``TokenStub``: an OAuth2 v2.0 token endpoint (``POST /{tenant}/oauth2/v2.0/token``)
  with the OpenID configuration msal fetches first
  (``GET /{tenant}/v2.0/.well-known/openid-configuration``), over HTTPS with a
  throwaway certificate because msal only accepts https authorities. It checks
  the client id and the client secret, or the signature of a certificate
  credential's client assertion, and records grant type and client id.
- ``GraphStub``: ``GET /v1.0/users?$filter=<attr> eq '<value>'`` over a list of
  users, checking the bearer token and the advanced-query parameters.
- ``FeedStub``: ``GET /feed?modifiedSince=<cursor>&limit=N`` over a list of
  items; cursors are ``c<index>``.
- ``IdentityStub``: an App Service managed identity endpoint
  (``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``), plain HTTP as in App Service.

The fixtures (``tls_files``, ``token_stub``, ``graph_stub``, ``feed_stub``,
``identity_stub``) are the ``*_fixture`` functions: import the ones a test
module needs, dependencies included (``token_stub`` needs ``tls_files``,
``graph_stub`` needs ``token_stub``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import json
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

# --- Requests, replies, the server ------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One request as the stub saw it."""

    method: str
    path: str
    query: dict[str, str]  # first value of each parameter, decoded
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""

    @property
    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode("utf-8")).items()}


@dataclass
class Reply:
    """What to answer: a status, a body (JSON-encoded unless bytes or str), headers, a delay;
    ``chunked``: the body in chunks of 64 KiB with no Content-Length, as a server streaming it sends it."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunked: bool = False


def _encode(body: Any) -> tuple[bytes, str]:
    if body is None:
        return b"", "application/json"
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    return json.dumps(body).encode("utf-8"), "application/json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body in two writes cost a delayed ACK (40 ms)
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Recorded(
            method=self.command,
            path=parts.path,
            query={key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()},
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )
        reply = self.server.stub._dispatch(request)
        if reply.delay:
            time.sleep(reply.delay)
        payload, content_type = _encode(reply.body)
        try:
            self.send_response(reply.status)
            headers = {"Content-Type": content_type, **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(payload), 64 * 1024):
                    part = payload[start : start + 64 * 1024]
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True  # the client gave up (a timeout test)

    do_GET = _serve
    do_POST = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stub: StubServer) -> None:
        self.stub = stub
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet on dropped clients
        pass


class StubServer:
    """Base class: a started server, its recorded requests and its script."""

    def __init__(self, tls: TlsFiles | None = None) -> None:
        self.requests: list[Recorded] = []
        self._scripted: dict[int, Reply] = {}
        self._queued: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = _Server(self)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01})
        self._thread.daemon = True
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def on(self, nth: int, reply: Reply) -> None:
        """Answer the ``nth`` request (1-based) with ``reply``."""
        self._scripted[nth] = reply

    def then(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in turn (after any ``on``)."""
        self._queued.extend(replies)

    def _dispatch(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            nth = len(self.requests)
            if nth in self._scripted:
                return self._scripted.pop(nth)
            if self._queued:
                return self._queued.popleft()
        return self.handle(request)

    def handle(self, request: Recorded) -> Reply:
        raise NotImplementedError


STATIC_TOKEN = "static-token"  # accepted by the Graph stub, for tests that skip the token endpoint


def _bearer(request: Recorded) -> str | None:
    value = request.headers.get("authorization", "")
    return value[len("Bearer ") :] if value.startswith("Bearer ") else None


# --- TLS for the token stub -------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # also the CA bundle clients verify against
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (its own CA), written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1 test stub")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "stub-cert.pem", directory / "stub-key.pem")
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


# --- Entra ID ------------------------------------------------------------------------------


class TokenStub(StubServer):
    """An Entra ID tenant's v2.0 token endpoint for one app registration."""

    TENANT = "test-tenant"
    CLIENT_ID = "11111111-2222-3333-4444-555555555555"
    CLIENT_SECRET = "s3cret-value"

    def __init__(self, tls: TlsFiles) -> None:
        super().__init__(tls)
        self.ca_bundle = str(tls.cert)
        self.tenant = self.TENANT
        self.client_id = self.CLIENT_ID
        self.client_secret = self.CLIENT_SECRET
        self.certificate_public_key: Any = None  # set to accept certificate credentials
        self.token_requests: list[dict[str, str]] = []  # grant_type, client_id, scope, credential kind
        self.issued: list[str] = []
        self.expires_in = 3600
        self._serial = itertools.count(1)

    @property
    def authority_host(self) -> str:
        return self.base_url

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/token"

    def handle(self, request: Recorded) -> Reply:
        base = f"/{self.tenant}"
        if request.method == "GET" and request.path == f"{base}/v2.0/.well-known/openid-configuration":
            return Reply(
                body={
                    "issuer": f"{self.base_url}/{self.tenant}/v2.0",
                    "authorization_endpoint": f"{self.base_url}/{self.tenant}/oauth2/v2.0/authorize",
                    "token_endpoint": self.token_endpoint,
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                }
            )
        if request.method == "POST" and request.path == f"{base}/oauth2/v2.0/token":
            return self._token(request.form)
        if request.path.endswith("/.well-known/openid-configuration"):
            return Reply(
                400, {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."}
            )
        return Reply(404, {"error": "not_found"})

    def _token(self, form: dict[str, str]) -> Reply:
        kind = "secret" if "client_secret" in form else "assertion" if "client_assertion" in form else "none"
        self.token_requests.append(
            {
                "grant_type": form.get("grant_type", ""),
                "client_id": form.get("client_id", ""),
                "scope": form.get("scope", ""),
                "credential": kind,
            }
        )
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id:
            return Reply(
                400, {"error": "unauthorized_client", "error_description": "AADSTS700016: unknown app"}
            )
        if not self._credential_ok(form):
            return Reply(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
            )
        token = f"token-{next(self._serial)}"
        self.issued.append(token)
        return Reply(body={"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})

    def _credential_ok(self, form: dict[str, str]) -> bool:
        if "client_secret" in form:
            return form["client_secret"] == self.client_secret
        if "client_assertion" in form and self.certificate_public_key is not None:
            import jwt

            try:
                claims = jwt.decode(
                    form["client_assertion"],
                    self.certificate_public_key,
                    algorithms=["RS256", "PS256"],
                    audience=self.token_endpoint,
                )
            except jwt.PyJWTError:
                return False
            return bool(
                form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                and claims.get("iss") == self.client_id
                and claims.get("sub") == self.client_id
            )
        return False


class IdentityStub(StubServer):
    """An App Service managed identity endpoint (``IDENTITY_ENDPOINT``, header ``X-IDENTITY-HEADER``)."""

    HEADER = "identity-header-value"

    def __init__(self) -> None:
        super().__init__()
        self.issued: list[str] = []
        self._serial = itertools.count(1)

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/msi/token"

    def handle(self, request: Recorded) -> Reply:
        if request.path != "/msi/token" or request.headers.get("x-identity-header") != self.HEADER:
            return Reply(401, {"error": "unauthorized"})
        token = f"mi-token-{next(self._serial)}"
        self.issued.append(token)
        return Reply(
            body={
                "access_token": token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": request.query.get("resource", ""),
                "token_type": "Bearer",
            }
        )


# --- Microsoft Graph ---------------------------------------------------------------------------

_FILTER = re.compile(r"^(?P<attr>[A-Za-z0-9_]+) eq '(?P<value>(?:[^']|'')*)'$")


class GraphStub(StubServer):
    """``/v1.0/users`` over ``users`` (a list of Graph user objects)."""

    def __init__(self, accepted_tokens: Callable[[], list[str]]) -> None:
        super().__init__()
        self.users: list[dict[str, Any]] = []
        self.accepted_tokens = accepted_tokens

    def add_user(self, **user: Any) -> dict[str, Any]:
        user.setdefault("id", f"object-{len(self.users) + 1}")
        self.users.append(user)
        return user

    def handle(self, request: Recorded) -> Reply:
        if request.path != "/v1.0/users":
            return Reply(404, {"error": {"code": "Request_ResourceNotFound", "message": "no such resource"}})
        if _bearer(request) not in self.accepted_tokens():
            return Reply(401, {"error": {"code": "InvalidAuthenticationToken", "message": "bad token"}})
        if request.headers.get("consistencylevel") != "eventual" or request.query.get("$count") != "true":
            return Reply(
                400, {"error": {"code": "Request_UnsupportedQuery", "message": "needs advanced query"}}
            )
        match = _FILTER.match(request.query.get("$filter", ""))
        if match is None:
            return Reply(400, {"error": {"code": "BadRequest", "message": "invalid filter clause"}})
        attribute, value = match["attr"], match["value"].replace("''", "'")
        found = [user for user in self.users if str(user.get(attribute)) == value]
        selected = request.query.get("$select", "").split(",")
        top = int(request.query.get("$top", "100"))
        rows = [{key: user.get(key) for key in ["id", *selected] if key} for user in found[:top]]
        return Reply(body={"@odata.count": len(found), "value": rows})


# --- A feed ----------------------------------------------------------------------------------


class FeedStub(StubServer):
    """``GET /feed?modifiedSince=c<i>&limit=N`` -> ``{"items": items[i:i+N], "next": "c<i+n>"}``.

    Authentication: a bearer token from ``accepted_tokens`` or, when
    ``api_key`` is set, that key in the ``api_key_header`` header. ``chunked``: pages are sent
    in chunks with no Content-Length.
    """

    def __init__(self) -> None:
        super().__init__()
        self.items: list[Any] = []
        self.chunked = False
        self.accepted_tokens: Callable[[], list[str]] = lambda: ["feed-token"]
        self.api_key_header = "Ocp-Apim-Subscription-Key"
        self.api_key: str | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/feed"

    def page_requests(self) -> list[Recorded]:
        return [request for request in self.requests if request.path == "/feed"]

    def handle(self, request: Recorded) -> Reply:
        if request.path != "/feed":
            return Reply(404, {"error": "not_found"})
        if self.api_key is not None:
            if request.headers.get(self.api_key_header.lower()) != self.api_key:
                return Reply(401, {"error": "bad_api_key"})
        elif _bearer(request) not in self.accepted_tokens():
            return Reply(401, {"error": "invalid_token"})
        cursor = request.query.get("modifiedSince", "")
        try:
            start = int(cursor[1:]) if cursor else 0
            limit = int(request.query["limit"])
        except (KeyError, ValueError):
            return Reply(400, {"error": "bad_request"})
        page = self.items[start : start + limit]
        return Reply(body={"items": page, "next": f"c{start + len(page)}"}, chunked=self.chunked)


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session", name="tls_files")
def tls_files_fixture(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(name="token_stub")
def token_stub_fixture(tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenStub]:
    """The token endpoint; give msal ``verify=token_stub.ca_bundle``.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own
    ``verify`` (psf/requests#3829), and msal sets ``verify`` on its session, so
    those variables are cleared for the test.
    """
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    stub = TokenStub(tls_files)
    yield stub
    stub.close()


@pytest.fixture(name="graph_stub")
def graph_stub_fixture(token_stub: TokenStub) -> Iterator[GraphStub]:
    """Graph accepting the tokens the token stub issued, and ``STATIC_TOKEN``."""
    stub = GraphStub(lambda: [*token_stub.issued, STATIC_TOKEN])
    yield stub
    stub.close()


@pytest.fixture(name="feed_stub")
def feed_stub_fixture() -> Iterator[FeedStub]:
    stub = FeedStub()
    yield stub
    stub.close()


@pytest.fixture(name="identity_stub")
def identity_stub_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityStub]:
    """An App Service managed identity endpoint, with IDENTITY_ENDPOINT/IDENTITY_HEADER set to it."""
    stub = IdentityStub()
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", stub.endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", IdentityStub.HEADER)
    yield stub
    stub.close()
