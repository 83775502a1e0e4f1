"""The Microsoft Graph officer directory, against local stand-ins for Entra ID and Graph."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.adapters.entra import (
    ClientCertificate,
    CredentialTokenProvider,
    MsalClientCredentials,
    TokenError,
    managed_identity_tokens,
)
from shared.adapters.graph_directory import GraphOfficerDirectory, odata_string
from shared.adapters.http import RetryPolicy, parse_retry_after
from shared.contracts.messages import Officer
from shared.ports import DirectoryUnavailable
from tests.http_stubs import (  # the *_fixture imports register the stub fixtures here
    STATIC_TOKEN,
    GraphStub,
    IdentityStub,
    Reply,
    TokenStub,
    graph_stub_fixture,  # noqa: F401
    identity_stub_fixture,  # noqa: F401
    tls_files_fixture,  # noqa: F401
    token_stub_fixture,  # noqa: F401
)

COLLAR = "extension_0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5_collarNumber"


def pc_smith(**overrides: Any) -> dict[str, Any]:
    user = {
        "employeeId": "104233",
        COLLAR: "PC 1234",
        "displayName": "Jo Smith",
        "jobTitle": "Police Constable",
        "mail": "jo.smith@police.example",
        "businessPhones": ["01632 960001"],
        "mobilePhone": "07700 900001",
        "accountEnabled": True,
    }
    user.update(overrides)
    return user


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def secret_tokens(token_stub: TokenStub) -> MsalClientCredentials:
    return MsalClientCredentials(
        tenant_id=token_stub.tenant,
        client_id=token_stub.client_id,
        client_secret=token_stub.client_secret,
        authority_host=token_stub.authority_host,
        verify=token_stub.ca_bundle,
    )


@pytest.fixture
def make_directory(
    graph_stub: GraphStub, secret_tokens: MsalClientCredentials, sleeps: list[float]
) -> Callable[..., GraphOfficerDirectory]:
    def make(**options: Any) -> GraphOfficerDirectory:
        options.setdefault("tokens", secret_tokens)
        options.setdefault("graph_url", graph_stub.base_url)
        options.setdefault("collar_attribute", COLLAR)
        options.setdefault("sleep", sleeps.append)
        return GraphOfficerDirectory(**options)

    return make


def test_lookup_by_employee_id_returns_the_officer_with_collar_number_from_the_configured_attribute(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.add_user(**pc_smith())
    graph_stub.add_user(**pc_smith(employeeId="999999", displayName="Someone Else"))

    officer = make_directory().lookup("104233")

    assert officer == Officer(
        employee_id="104233",
        collar_number="PC 1234",
        display_name="Jo Smith",
        rank="Police Constable",
        email="jo.smith@police.example",
        phone="01632 960001",
        active=True,
    )
    (request,) = graph_stub.requests
    assert request.path == "/v1.0/users"
    assert request.query["$filter"] == "employeeId eq '104233'"
    assert request.query["$count"] == "true"
    assert COLLAR in request.query["$select"].split(",")
    assert request.headers["consistencylevel"] == "eventual"
    assert request.headers["authorization"].startswith("Bearer token-")


def test_without_a_collar_attribute_the_collar_number_is_not_available(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.add_user(**pc_smith())

    officer = make_directory(collar_attribute=None).lookup("104233")

    assert officer is not None and officer.collar_number is None
    assert COLLAR not in graph_stub.requests[0].query["$select"]


def test_the_id_attribute_can_be_an_extension_attribute(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    payroll = "extension_0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5_payrollNumber"
    graph_stub.add_user(**pc_smith(employeeId=None, **{payroll: "P-77"}))

    officer = make_directory(id_attribute=payroll).lookup("P-77")

    assert officer is not None and officer.employee_id == "P-77" and officer.display_name == "Jo Smith"
    assert graph_stub.requests[0].query["$filter"] == f"{payroll} eq 'P-77'"


def test_the_phone_is_the_first_business_phone_else_the_mobile(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.add_user(**pc_smith(businessPhones=[]))

    officer = make_directory().lookup("104233")
    assert officer is not None and officer.phone == "07700 900001"
    no_mobile = make_directory(phone_fallback_to_mobile=False).lookup("104233")
    assert no_mobile is not None and no_mobile.phone is None


def test_the_bearer_token_is_fetched_once_and_reused(
    token_stub: TokenStub, graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.add_user(**pc_smith())
    directory = make_directory()

    for _ in range(3):
        assert directory.lookup("104233") is not None

    assert token_stub.token_requests == [
        {
            "grant_type": "client_credentials",
            "client_id": token_stub.client_id,
            "scope": "https://graph.microsoft.com/.default",
            "credential": "secret",
        }
    ]
    assert len({request.headers["authorization"] for request in graph_stub.requests}) == 1
    # msal asked only the stub: its OpenID configuration once, and no instance discovery.
    assert [(r.method, r.path) for r in token_stub.requests] == [
        ("GET", f"/{token_stub.tenant}/v2.0/.well-known/openid-configuration"),
        ("POST", f"/{token_stub.tenant}/oauth2/v2.0/token"),
    ]


def test_an_unknown_employee_id_gives_none(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.add_user(**pc_smith())

    assert make_directory().lookup("555555") is None
    assert make_directory().lookup("   ") is None
    assert len(graph_stub.requests) == 1  # a blank id is not looked up


def test_a_404_gives_none(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.then(Reply(404, {"error": {"code": "Request_ResourceNotFound"}}))

    assert make_directory().lookup("104233") is None


def test_a_quote_in_the_id_is_escaped_in_the_filter(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.add_user(**pc_smith(employeeId="O'Neil&1 #2"))
    graph_stub.add_user(**pc_smith(employeeId="O", displayName="Wrong Officer"))

    officer = make_directory().lookup("O'Neil&1 #2")

    assert officer is not None and officer.display_name == "Jo Smith"
    assert graph_stub.requests[0].query["$filter"] == "employeeId eq 'O''Neil&1 #2'"
    assert odata_string("it's") == "'it''s'"
    assert make_directory().lookup("O' or employeeId eq 'O") is None  # no way out of the literal


def test_429_with_retry_after_2_sleeps_2_then_succeeds(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory], sleeps: list[float]
) -> None:
    graph_stub.add_user(**pc_smith())
    graph_stub.then(Reply(429, {"error": {"code": "TooManyRequests"}}, headers={"Retry-After": "2"}))

    officer = make_directory().lookup("104233")

    assert officer is not None and officer.display_name == "Jo Smith"
    assert sleeps == [2.0]
    assert len(graph_stub.requests) == 2


def test_repeated_503_raises_directory_unavailable_after_the_bounded_attempts(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory], sleeps: list[float]
) -> None:
    graph_stub.add_user(**pc_smith())
    graph_stub.then(*[Reply(503, {"error": {"code": "ServiceUnavailable"}})] * 10)
    directory = make_directory(retry=RetryPolicy(attempts=4, backoff=0.5, max_backoff=8, max_total_wait=30))

    with pytest.raises(DirectoryUnavailable, match=r"HTTP 503, 4 attempt"):
        directory.lookup("104233")

    assert len(graph_stub.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_retry_after_beyond_the_wait_budget_fails_at_once_without_sleeping(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory], sleeps: list[float]
) -> None:
    graph_stub.then(Reply(429, headers={"Retry-After": "120"}))

    with pytest.raises(DirectoryUnavailable, match="budget"):
        make_directory(retry=RetryPolicy(max_total_wait=30)).lookup("104233")

    assert sleeps == []
    assert len(graph_stub.requests) == 1


def test_a_disabled_account_gives_an_inactive_officer(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.add_user(**pc_smith(accountEnabled=False))

    officer = make_directory().lookup("104233")

    assert officer is not None and officer.active is False


def test_several_users_with_the_id_the_enabled_one_is_chosen_else_none(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.add_user(**pc_smith(displayName="Old Account", accountEnabled=False))
    graph_stub.add_user(**pc_smith(displayName="Jo Smith", accountEnabled=True))
    directory = make_directory()

    chosen = directory.lookup("104233")
    assert chosen is not None and chosen.display_name == "Jo Smith" and chosen.active

    graph_stub.add_user(**pc_smith(displayName="Another Jo", accountEnabled=True))
    assert directory.lookup("104233") is None  # two enabled: ambiguous, never guess

    graph_stub.users = [pc_smith(accountEnabled=False), pc_smith(accountEnabled=False)]
    assert directory.lookup("104233") is None  # none enabled


def test_a_wrong_client_secret_raises_directory_unavailable_at_once(
    token_stub: TokenStub,
    graph_stub: GraphStub,
    make_directory: Callable[..., GraphOfficerDirectory],
    sleeps: list[float],
) -> None:
    graph_stub.add_user(**pc_smith())
    wrong = MsalClientCredentials(
        tenant_id=token_stub.tenant,
        client_id=token_stub.client_id,
        client_secret="not-the-secret",
        authority_host=token_stub.authority_host,
        verify=token_stub.ca_bundle,
    )

    with pytest.raises(DirectoryUnavailable, match=r"invalid_client.*AADSTS7000215") as raised:
        make_directory(tokens=wrong).lookup("104233")

    assert isinstance(raised.value.__cause__.__cause__, TokenError)  # type: ignore[union-attr]
    assert "not-the-secret" not in str(raised.value) and "not-the-secret" not in repr(wrong)
    assert len(token_stub.token_requests) == 1  # a refused secret is not retried
    assert graph_stub.requests == [] and sleeps == []


def test_an_unknown_tenant_raises_directory_unavailable(
    token_stub: TokenStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    tokens = MsalClientCredentials(
        tenant_id="no-such-tenant",
        client_id=token_stub.client_id,
        client_secret=token_stub.client_secret,
        authority_host=token_stub.authority_host,
        verify=token_stub.ca_bundle,
    )

    with pytest.raises(DirectoryUnavailable, match="no access token"):
        make_directory(tokens=tokens).lookup("104233")


def test_a_failing_token_endpoint_raises_directory_unavailable(
    token_stub: TokenStub, graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    token_stub.on(2, Reply(500, "upstream error"))  # 1: OpenID configuration, 2: the token

    with pytest.raises(DirectoryUnavailable, match=r"no access token.*3 attempt"):
        make_directory(retry=RetryPolicy(attempts=3)).lookup("104233")
    assert graph_stub.requests == []
    # msal throttles a failed token request for a few seconds: the retries do not hammer Entra ID.
    assert [r.method for r in token_stub.requests] == ["GET", "POST"]


def test_forbidden_raises_directory_unavailable_naming_the_permission(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory], sleeps: list[float]
) -> None:
    graph_stub.then(Reply(403, {"error": {"code": "Authorization_RequestDenied", "message": "no"}}))

    with pytest.raises(DirectoryUnavailable, match=r"403 \(Authorization_RequestDenied\).*User\.Read\.All"):
        make_directory().lookup("104233")
    assert len(graph_stub.requests) == 1 and sleeps == []


def test_a_body_that_is_not_a_user_list_raises_directory_unavailable(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.then(Reply(200, "<html>proxy login</html>"), Reply(200, {"value": "nope"}))
    directory = make_directory()

    for _ in range(2):
        with pytest.raises(DirectoryUnavailable, match="not a user list"):
            directory.lookup("104233")


def test_a_slow_graph_times_out_and_raises_directory_unavailable(
    graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory], sleeps: list[float]
) -> None:
    graph_stub.then(Reply(200, {"value": []}, delay=1.0), Reply(200, {"value": []}, delay=1.0))
    directory = make_directory(tokens=lambda: STATIC_TOKEN, timeout=0.2, retry=RetryPolicy(attempts=2))

    with pytest.raises(DirectoryUnavailable, match="timed out, 2 attempt"):
        directory.lookup("104233")
    assert sleeps == [0.5]


def test_an_unreachable_graph_raises_directory_unavailable(
    make_directory: Callable[..., GraphOfficerDirectory],
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    directory = make_directory(
        tokens=lambda: STATIC_TOKEN, graph_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=2)
    )

    with pytest.raises(DirectoryUnavailable, match="connection failed"):
        directory.lookup("104233")


def test_a_certificate_credential_signs_a_client_assertion_the_token_endpoint_verifies(
    token_stub: TokenStub, graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    token_stub.certificate_public_key = key.public_key()
    graph_stub.add_user(**pc_smith())
    certificate = ClientCertificate(pem, "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01")
    tokens = MsalClientCredentials(
        tenant_id=token_stub.tenant,
        client_id=token_stub.client_id,
        certificate=certificate,
        authority_host=token_stub.authority_host,
        verify=token_stub.ca_bundle,
    )

    assert make_directory(tokens=tokens).lookup("104233") is not None
    assert [r["credential"] for r in token_stub.token_requests] == ["assertion"]
    assert "PRIVATE KEY" not in repr(certificate)


def test_managed_identity_tokens_come_from_the_app_service_identity_endpoint(
    identity_stub: IdentityStub, graph_stub: GraphStub, make_directory: Callable[..., GraphOfficerDirectory]
) -> None:
    graph_stub.add_user(**pc_smith())
    graph_stub.accepted_tokens = lambda: identity_stub.issued
    directory = make_directory(tokens=managed_identity_tokens())

    assert directory.lookup("104233") is not None
    assert directory.lookup("104233") is not None

    (token_request,) = identity_stub.requests
    assert token_request.query["resource"] == "https://graph.microsoft.com"


def test_a_credential_token_is_kept_until_shortly_before_it_expires() -> None:
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import ClientAuthenticationError

    now = [1_000.0]
    issued: list[str] = []

    class FakeCredential:
        fail = False

        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            if self.fail:
                raise ClientAuthenticationError("no managed identity assigned")
            issued.append(f"t{len(issued) + 1}")
            return AccessToken(issued[-1], int(now[0]) + 3600)

    credential = FakeCredential()
    provider = CredentialTokenProvider(credential, refresh_margin_seconds=300, clock=lambda: now[0])

    assert [provider(), provider()] == ["t1", "t1"]
    now[0] += 3600 - 301
    assert provider() == "t1"
    now[0] += 2
    assert provider() == "t2"
    now[0] += 3600
    credential.fail = True
    with pytest.raises(TokenError, match="no managed identity") as raised:
        provider()
    assert raised.value.transient is False


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("2", now) == 2.0
    assert parse_retry_after("Fri, 20 Nov 2026 10:00:07 GMT", now) == 7.0
    assert parse_retry_after("Fri, 20 Nov 2026 09:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_settings_mistakes_fail_at_construction(secret_tokens: MsalClientCredentials) -> None:
    with pytest.raises(ValueError, match="https"):
        GraphOfficerDirectory(secret_tokens, graph_url="http://graph.example.org")
    with pytest.raises(ValueError, match="attribute"):
        GraphOfficerDirectory(secret_tokens, id_attribute="employeeId eq '1' or true")
    with pytest.raises(ValueError, match="either"):
        MsalClientCredentials(tenant_id="t", client_id="c")


def test_logs_name_employee_ids_but_never_names_emails_or_phones(
    graph_stub: GraphStub,
    make_directory: Callable[..., GraphOfficerDirectory],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="shared.adapters")
    graph_stub.add_user(**pc_smith())
    graph_stub.add_user(**pc_smith(accountEnabled=True))
    graph_stub.then(Reply(429, headers={"Retry-After": "1"}), Reply(500))
    directory = make_directory()

    assert directory.lookup("104233") is None  # retried twice, then ambiguous
    graph_stub.users = [pc_smith(displayName="  ")]
    assert directory.lookup("104233") is None

    assert "104233" in caplog.text
    for personal in ("Jo Smith", "jo.smith@police.example", "01632 960001", "07700 900001", "PC 1234"):
        assert personal not in caplog.text
