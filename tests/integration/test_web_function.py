"""The HTTP-triggered function, called as the Functions host calls it, with a real func.HttpRequest."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest

import function_app
from shared import bootstrap
from shared.local.host import functions_of
from shared.settings import SettingsError, load_settings
from shared.web import azure as web_azure
from tests.web_example import LINK, Saved, example_pages, resolver

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    """Services over a fresh local data folder, installed as the local host installs them."""
    services = bootstrap.bootstrap(load_settings(LOCAL_DATA_DIR=tmp_path), files_only=True)
    bootstrap.install(services)
    try:
        yield tmp_path
    finally:
        bootstrap.install(None)
        web_azure.install_pages(None)


def call(method: str, path: str, body: bytes = b"", **headers: str) -> func.HttpResponse:
    request = func.HttpRequest(
        method=method,
        url=f"http://localhost:7071/{path}",
        headers=headers,
        route_params={"path": path},
        body=body,
    )
    response: func.HttpResponse = function_app.victim_page(request)
    return response


def test_the_trigger_is_anonymous_on_every_path_for_get_and_post() -> None:
    (function,) = [f for f in functions_of(function_app.app) if f.get_function_name() == "victim_page"]
    trigger = function.get_trigger().get_dict_repr()
    assert trigger["type"] == "httpTrigger" and trigger["route"] == "{*path}"
    assert str(trigger["authLevel"].value).lower() == "anonymous"
    assert sorted(str(method.value) for method in trigger["methods"]) == ["GET", "POST"]


def test_host_json_serves_the_link_at_its_own_path() -> None:
    import json

    host = json.loads((Path(function_app.__file__).parent / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == ""


def test_production_opens_no_link_yet_and_answers_with_the_invalid_link_page(data: Path) -> None:
    response = call("GET", LINK)
    assert response.status_code == 404
    assert "This link does not work" in response.get_body().decode()
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.mimetype == "text/html"


def test_the_stylesheet_is_served_and_a_decoded_traversal_is_not(data: Path) -> None:
    css = call("GET", "assets/govuk-frontend.min.css")
    assert css.status_code == 200 and css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert b".govuk-header" in css.get_body()
    assert call("GET", "assets/../../package.json").status_code == 404
    assert call("GET", "assets/../../../../etc/passwd").status_code == 404


def test_a_local_signing_key_is_made_once_and_kept_private(data: Path) -> None:
    call("GET", LINK)
    key_file = data / web_azure.KEY_FILE
    first = key_file.read_text()
    assert len(first) == 64 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    settings = load_settings(LOCAL_DATA_DIR=data)
    assert web_azure.signing_key(settings) == first.encode()
    assert key_file.read_text() == first


def test_the_example_page_round_trips_through_the_function(data: Path) -> None:
    saved = Saved()
    web_azure.install_pages((example_pages(saved), resolver(saved, LINK)))
    page = call("GET", LINK)
    assert page.status_code == 200
    token = TOKEN.search(page.get_body().decode()).group(1)  # type: ignore[union-attr]
    form = f"channel=email&note=after+5pm&csrf_token={token}".encode()
    posted = call("POST", LINK, form, **{"Content-Type": "application/x-www-form-urlencoded"})
    assert posted.status_code == 303 and posted.headers["Location"] == f"/{LINK}/done"
    assert saved.forms == [{"channel": "email", "note": "after 5pm"}]
    refused = call("POST", LINK, b"channel=sms", **{"Content-Type": "application/x-www-form-urlencoded"})
    assert refused.status_code == 400
    assert saved.forms == [{"channel": "email", "note": "after 5pm"}]


def test_in_azure_the_key_must_be_set_and_resolved(tmp_path: Path) -> None:
    azure = {
        "StateStorage__tableServiceUri": "https://account.table.core.windows.net",
        "StateStorage__blobServiceUri": "https://account.blob.core.windows.net",
        "LOCAL_DATA_DIR": tmp_path,
    }
    with pytest.raises(SettingsError, match="PAGE_SIGNING_KEY"):
        web_azure.signing_key(load_settings(**azure))
    unresolved = "@Microsoft.KeyVault(VaultName=kv;SecretName=page-signing-key)"
    with pytest.raises(SettingsError, match="did not resolve"):
        web_azure.signing_key(load_settings(**azure, PAGE_SIGNING_KEY=unresolved))
    assert web_azure.signing_key(load_settings(**azure, PAGE_SIGNING_KEY="x" * 40)) == b"x" * 40
    assert not (tmp_path / web_azure.KEY_FILE).exists()
    with pytest.raises(SettingsError, match="PAGE_SIGNING_KEY"):
        load_settings(PAGE_SIGNING_KEY="too short")
