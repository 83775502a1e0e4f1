"""The officer directory from Microsoft Entra ID, through Microsoft Graph.

``GraphOfficerDirectory.lookup`` asks Graph for the users whose employee id
attribute equals the id (an advanced query: ``ConsistencyLevel: eventual`` and
``$count=true``) and maps the one found to an ``Officer``. The caller
(resolve_officer) caches the result and falls back when this raises
``DirectoryUnavailable``; this module only talks to Graph.

Tokens come from a ``TokenProvider``: a no-argument callable returning a bearer
access token. Three plug in:

- ``MsalClientCredentials`` with a client secret or a certificate (msal's
  ``ConfidentialClientApplication``; msal caches the token in memory and
  fetches a new one shortly before it expires);
- ``CredentialTokenProvider`` around any azure-identity ``TokenCredential``,
  for instance ``managed_identity_tokens()`` (``ManagedIdentityCredential``);
- any function returning a token (tests).

The HTTP plumbing (bounded retries honouring ``Retry-After``, timeouts, URLs
described without credentials) is shared with ``http_feed``.

Nothing here logs a name, an email address or a phone number: only employee
ids, status codes and error codes.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests

from shared.contracts.messages import Officer
from shared.ports import DirectoryUnavailable

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

GRAPH_URL = "https://graph.microsoft.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
AUTHORITY_HOST = "https://login.microsoftonline.com"

# --- Tokens ---------------------------------------------------------------------

TokenProvider = Callable[[], str]
"""Returns a bearer access token; raises TokenError when it cannot."""


class TokenError(Exception):
    """No access token could be obtained.

    ``transient`` is False when asking again cannot help (a wrong secret, an
    unknown client or tenant, a scope the app may not have).
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


# Token endpoint error codes worth asking again for; the rest are configuration errors.
_TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error", "slow_down"})


class ClientCertificate:
    """A certificate credential for an app registration: its private key and thumbprint.

    ``thumbprint`` is the certificate's SHA-1 thumbprint as shown in the portal
    (hex). With ``public_certificate_pem`` instead (or as well), msal works the
    thumbprints out itself and sends the certificate chain (subject name / issuer
    authentication).
    """

    def __init__(
        self,
        private_key_pem: str,
        thumbprint: str | None = None,
        *,
        public_certificate_pem: str | None = None,
        passphrase: str | None = None,
    ) -> None:
        if not thumbprint and not public_certificate_pem:
            raise ValueError("a client certificate needs its thumbprint or its public certificate")
        self.private_key_pem = private_key_pem
        self.thumbprint = thumbprint
        self.public_certificate_pem = public_certificate_pem
        self.passphrase = passphrase

    def msal_credential(self) -> dict[str, str]:
        credential = {"private_key": self.private_key_pem}
        if self.thumbprint:
            credential["thumbprint"] = self.thumbprint.replace(":", "").replace(" ", "")
        if self.public_certificate_pem:
            credential["public_certificate"] = self.public_certificate_pem
        if self.passphrase:
            credential["passphrase"] = self.passphrase
        return credential

    def __repr__(self) -> str:  # never the key
        return f"ClientCertificate(thumbprint={self.thumbprint!r})"


class MsalClientCredentials:
    """A TokenProvider: OAuth2 client credentials through msal, with a secret or a certificate.

    The msal application is built on first use (building it fetches the
    tenant's OpenID configuration), so a worker starts even while Entra ID is
    unreachable. msal keeps the token in memory and reuses it until shortly
    before it expires.

    ``authority_host`` is where the tenant lives (a national cloud, or a local
    stub in tests: any https URL; msal's instance discovery, which would ask
    login.microsoftonline.com about an unfamiliar host, is switched off).
    ``verify`` is passed to msal's HTTP session (a CA bundle path in tests).
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str | None = None,
        certificate: ClientCertificate | None = None,
        scopes: Sequence[str] = (GRAPH_SCOPE,),
        authority_host: str = AUTHORITY_HOST,
        timeout: float = 10.0,
        verify: bool | str = True,
    ) -> None:
        if (client_secret is None) == (certificate is None):
            raise ValueError("give either a client secret or a client certificate")
        if not tenant_id or not client_id:
            raise ValueError("tenant id and client id are required")
        if not scopes:
            raise ValueError("at least one scope is required")
        self.client_id = client_id
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self.scopes = list(scopes)
        self._credential: str | dict[str, str]
        if certificate is not None:
            self._credential = certificate.msal_credential()
        else:
            assert client_secret is not None
            self._credential = client_secret
        self._timeout = timeout
        self._verify = verify
        self._app: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the secret
        return f"MsalClientCredentials(authority={self.authority!r}, client_id={self.client_id!r})"

    def _application(self) -> Any:
        with self._lock:
            if self._app is None:
                import msal  # type: ignore[import-untyped]

                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=self._credential,
                        authority=self.authority,
                        instance_discovery=False,
                        timeout=self._timeout,
                        verify=self._verify,
                    )
                except Exception as exc:
                    raise _token_failure(f"cannot set up the token client for {self.authority}", exc) from exc
            return self._app

    def __call__(self) -> str:
        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=self.scopes)
        except Exception as exc:
            raise _token_failure(f"token request to {self.authority} failed", exc) from exc
        if not isinstance(result, dict):
            raise TokenError(f"token request to {self.authority} returned nothing", transient=True)
        token = result.get("access_token")
        if isinstance(token, str) and token:
            return token
        code = str(result.get("error") or "unknown_error")
        description = str(result.get("error_description") or "").strip()
        detail = f": {description.splitlines()[0][:300]}" if description else ""
        raise TokenError(
            f"token request to {self.authority} for client {self.client_id} was refused ({code}){detail}",
            transient=code in _TRANSIENT_TOKEN_ERRORS,
        )


def _token_failure(message: str, exc: Exception) -> TokenError:
    # msal raises ValueError for an authority it cannot use (an unknown tenant: a 4xx on
    # the OpenID configuration); network errors and 5xx surface as other exceptions.
    permanent = isinstance(exc, ValueError) and not isinstance(exc, json.JSONDecodeError)
    reason = str(exc).splitlines()[0][:300] if permanent else type(exc).__name__
    return TokenError(f"{message}: {reason}", transient=not permanent)


class CredentialTokenProvider:
    """A TokenProvider over an azure-identity ``TokenCredential`` (managed identity, ...).

    Keeps the token until ``refresh_margin_seconds`` before it expires, so
    each request does not go back to the credential.
    """

    def __init__(
        self,
        credential: TokenCredential,
        scope: str = GRAPH_SCOPE,
        *,
        refresh_margin_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credential = credential
        self.scope = scope
        self._margin = refresh_margin_seconds
        self._clock = clock
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._token is not None and self._clock() < self._expires_on - self._margin:
                return self._token
            from azure.core.exceptions import ClientAuthenticationError

            try:
                access = self.credential.get_token(self.scope)
            except ClientAuthenticationError as exc:
                # Covers CredentialUnavailableError: no managed identity here, or none assigned.
                first = (exc.message or type(exc).__name__).splitlines()[0][:300]
                raise TokenError(f"{type(self.credential).__name__}: {first}", transient=False) from exc
            except Exception as exc:
                raise TokenError(
                    f"{type(self.credential).__name__} failed: {type(exc).__name__}", transient=True
                ) from exc
            self._token, self._expires_on = access.token, float(access.expires_on)
            return access.token


def managed_identity_tokens(
    scope: str = GRAPH_SCOPE, *, client_id: str | None = None
) -> CredentialTokenProvider:
    """Tokens from the Function App's managed identity (user-assigned when ``client_id`` is given)."""
    from azure.identity import ManagedIdentityCredential

    credential = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    return CredentialTokenProvider(credential, scope)


def graph_scope(graph_url: str = GRAPH_URL) -> str:
    """The ``.default`` scope of a Graph deployment (national clouds have their own)."""
    return f"{graph_url.rstrip('/')}/.default"


# --- HTTP: timeouts, bounded retries, URLs without credentials ---------------------

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
) -> requests.Response:
    """GET ``url``, retrying 429, 5xx, timeouts, connection errors and transient token errors.

    Returns any other response (2xx, 3xx, 4xx) for the caller to judge; raises
    RequestFailed when the retries or the wait budget run out, or at once on a
    permanent token error. ``headers`` is called for every attempt (tokens are
    cached by their providers). Redirects are not followed: credentials stay
    with the host they were meant for. ``what`` names the request in messages.
    """
    waited = 0.0
    for attempt in range(1, retry.attempts + 1):
        server_wait: float | None = None
        status: int | None = None
        try:
            response = session.get(
                url, params=params, headers=dict(headers()), timeout=timeout, allow_redirects=False
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


# --- The directory ------------------------------------------------------------------

_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,119}$")
_SELECT = ("id", "displayName", "jobTitle", "mail", "businessPhones", "mobilePhone", "accountEnabled")


def odata_string(value: str) -> str:
    """An OData string literal: quoted, with single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


class GraphOfficerDirectory:
    """An OfficerDirectory over Microsoft Graph (application permission ``User.Read.All``).

    - ``id_attribute``: the user attribute holding the Niche employee id,
      ``employeeId`` or a directory extension such as
      ``extension_<appid-without-dashes>_payrollNumber``.
    - ``collar_attribute``: the attribute holding the collar number (usually
      an extension attribute); None when the directory does not hold it.
    - rank is ``jobTitle``; phone is the first ``businessPhones`` entry, else
      ``mobilePhone`` (when ``phone_fallback_to_mobile``); active is
      ``accountEnabled`` (only an explicit true counts).

    Results: no user with the id (or a 404) gives None. Several users with
    the id: the one whose account is enabled; when none or more than one is
    enabled, None — the caller then uses the team contact rather than risk
    giving a victim the wrong officer's details. Graph's advanced queries are
    eventually consistent: a user created moments ago may not be found yet.

    Failures raise DirectoryUnavailable: Graph unreachable, timing out or
    answering 429/5xx after the bounded retries (``retry``, sleeping through
    ``sleep``), no token (a wrong secret fails at once, without retries), 401
    or 403 (the app lacks ``User.Read.All``), 400 (usually a misnamed
    attribute), or a body that is not a user list.
    """

    def __init__(
        self,
        tokens: TokenProvider,
        *,
        graph_url: str = GRAPH_URL,
        id_attribute: str = "employeeId",
        collar_attribute: str | None = None,
        phone_fallback_to_mobile: bool = True,
        timeout: Timeout = (5.0, 10.0),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        for name, attribute in (("id_attribute", id_attribute), ("collar_attribute", collar_attribute)):
            if attribute is not None and not _ATTRIBUTE.match(attribute):
                raise ValueError(f"{name} {attribute!r} is not a Graph attribute name")
        self.tokens = tokens
        self.users_url = require_secure_url(graph_url, "the Graph URL") + "/v1.0/users"
        self.id_attribute = id_attribute
        self.collar_attribute = collar_attribute
        self.phone_fallback_to_mobile = phone_fallback_to_mobile
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.session = session or requests.Session()
        select = list(_SELECT)
        for attribute in (id_attribute, collar_attribute):
            if attribute is not None and attribute not in select:
                select.append(attribute)
        self._select = ",".join(select)

    def _query(self, employee_id: str) -> str:
        expression = f"{self.id_attribute} eq {odata_string(employee_id)}"
        return (
            f"$filter={quote(expression, safe='')}&$select={quote(self._select, safe=',')}&$count=true&$top=5"
        )

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.tokens()}",
            "ConsistencyLevel": "eventual",
            "Accept": "application/json",
        }

    def lookup(self, employee_id: str) -> Officer | None:
        if not employee_id.strip():
            return None
        what = f"directory lookup of employee {employee_id!r}"
        try:
            response = send_with_retries(
                self.session,
                self.users_url,
                params=self._query(employee_id),
                headers=self._headers,
                timeout=self.timeout,
                retry=self.retry,
                sleep=self.sleep,
                what=what,
            )
        except RequestFailed as exc:
            logger.warning("%s", exc)
            raise DirectoryUnavailable(str(exc)) from exc
        with response:
            status = response.status_code
            if status == 404:
                return None
            if status != 200:
                code = error_code(response)
                message = f"{what}: Graph answered HTTP {status}" + (f" ({code})" if code else "")
                if status in (401, 403):
                    message += "; check the app registration has the User.Read.All application permission"
                elif status == 400:
                    message += f"; check the attribute names {self.id_attribute!r}/{self.collar_attribute!r}"
                logger.error("%s", message)
                raise DirectoryUnavailable(message)
            try:
                body = response.json()
            except ValueError:
                body = None
        users = body.get("value") if isinstance(body, dict) else None
        if not isinstance(users, list) or not all(isinstance(user, dict) for user in users):
            message = f"{what}: Graph's answer is not a user list"
            logger.error("%s", message)
            raise DirectoryUnavailable(message)
        return self._choose(employee_id, users)

    def _choose(self, employee_id: str, users: list[dict[str, Any]]) -> Officer | None:
        if not users:
            return None
        if len(users) > 1:
            enabled = [user for user in users if user.get("accountEnabled") is True]
            if len(enabled) != 1:
                logger.warning(
                    "employee %r matches %d directory users, %d of them enabled: treated as unknown",
                    employee_id,
                    len(users),
                    len(enabled),
                )
                return None
            users = enabled
        return self._officer(employee_id, users[0])

    def _officer(self, employee_id: str, user: Mapping[str, Any]) -> Officer | None:
        name = _text(user.get("displayName"))
        if name is None:
            logger.warning(
                "employee %r has no display name in the directory: treated as unknown", employee_id
            )
            return None
        phones = user.get("businessPhones")
        phone = next((p for p in map(_text, phones) if p), None) if isinstance(phones, list) else None
        if phone is None and self.phone_fallback_to_mobile:
            phone = _text(user.get("mobilePhone"))
        return Officer(
            employee_id=employee_id,
            collar_number=_text(user.get(self.collar_attribute)) if self.collar_attribute else None,
            display_name=name,
            rank=_text(user.get("jobTitle")),
            email=_text(user.get("mail")),
            phone=phone,
            active=user.get("accountEnabled") is True,
        )
