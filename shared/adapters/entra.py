"""Access tokens from Microsoft Entra ID, for the Graph directory and the feed APIs.

A ``TokenProvider`` is a no-argument callable returning a bearer access token;
it raises ``TokenError`` (transient or not) when it cannot. Three plug in:

- ``MsalClientCredentials`` with a client secret or a certificate (msal's
  ``ConfidentialClientApplication``; msal caches the token in memory and
  fetches a new one shortly before it expires);
- ``CredentialTokenProvider`` around any azure-identity ``TokenCredential``,
  for instance ``managed_identity_tokens()`` (``ManagedIdentityCredential``);
- any function returning a token (tests).

Without a scope, a provider asks for Microsoft Graph's (``GRAPH_SCOPE``); the
feed APIs name their own. msal and azure-identity are imported on first use,
so importing this module stays cheap. The repr of ``MsalClientCredentials``
and ``ClientCertificate`` never shows a secret or a private key.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# The default audience: Microsoft Graph's .default scope (graph_directory.graph_scope
# gives a national cloud's). Callers of other APIs pass their own scope.
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
AUTHORITY_HOST = "https://login.microsoftonline.com"

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
