"""The Functions host's HTTP request and response, to and from the framework's own.

``serve(request, services)`` is what the HTTP-triggered function calls: it builds
the site once per worker (per set of services) and answers the request. The site,
the pages and their templates (Jinja2) are imported then, on the first request:
``function_app`` imports this module for every function of the app, and only the
page needs them.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import azure.functions as func

from shared.settings import Settings, SettingsError

if TYPE_CHECKING:
    from shared.web.http import Request, Response
    from shared.web.links import ResolveLink
    from shared.web.site import Pages, Site
    from shared.web.victim_pages import PageServices

APP_ROOT = Path(__file__).resolve().parents[2]
KEY_FILE = "page-signing.key"
MAX_FORM_BYTES = 64 * 1024  # a page's form is a few radios and a short message


def signing_key(settings: Settings) -> bytes:
    """PAGE_SIGNING_KEY; unset, locally, a random key made on first use in the data folder.

    In Azure (state through the managed identity) the setting is required: instances
    share it, and a key made on one would refuse another's tokens."""
    if settings.PAGE_SIGNING_KEY is not None:
        key = settings.PAGE_SIGNING_KEY.get_secret_value()
        if key.startswith("@Microsoft.KeyVault("):  # the host leaves a reference it cannot resolve as it is
            raise SettingsError(
                "app setting PAGE_SIGNING_KEY is a Key Vault reference the host did not resolve"
            )
        return key.encode("utf-8")
    if settings.StateStorage__tableServiceUri:
        raise SettingsError("app setting PAGE_SIGNING_KEY must be set (a Key Vault reference) in Azure")
    path = settings.LOCAL_DATA_DIR / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="ascii") as made:  # exclusive: two workers starting at once
            path.chmod(0o600)
            made.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 64:
        raise SettingsError(f"{path} does not hold a page signing key; delete it to make a new one")
    return key.encode("ascii")


def assets_dir(settings: Settings) -> Path:
    folder = settings.WEB_ASSETS_DIR
    return folder if folder.is_absolute() else APP_ROOT / folder


def production_pages(services: PageServices) -> Pages:
    """The pages the Function App serves: the recipient's own (journey-rules.md §13)."""
    from shared.web.victim_pages import recipient_pages

    return recipient_pages(services)


def production_resolver(services: PageServices) -> ResolveLink:
    """The link resolver the Function App uses: the Links table, while the journey keeps it open."""
    from shared.web.victim_pages import links_resolver

    return links_resolver(services)


def build_site(
    services: PageServices, pages: Pages | None = None, resolve_link: ResolveLink | None = None
) -> Site:
    """The site over the worker's services (table store, clock, policy, settings); by default with
    the production pages and resolver."""
    from shared.web.assets import StaticAssets
    from shared.web.csrf import CsrfTokens
    from shared.web.site import Site

    return Site(
        pages=pages if pages is not None else production_pages(services),
        resolve_link=resolve_link if resolve_link is not None else production_resolver(services),
        tables=services.tables,
        csrf_tokens=CsrfTokens(signing_key(services.settings)),
        force=services.policy.force,
        assets=StaticAssets(assets_dir(services.settings)),
        clock=services.clock.now,
    )


def to_request(request: func.HttpRequest) -> Request:
    """The framework's request; a body that is not a small urlencoded form is an empty form."""
    from shared.web.http import Request

    headers = {name.lower(): value for name, value in request.headers.items()}
    form: dict[str, str] = {}
    body = request.get_body() or b""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    urlencoded = content_type == "application/x-www-form-urlencoded"
    if request.method == "POST" and urlencoded and len(body) <= MAX_FORM_BYTES:
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        form = {name: values[0] for name, values in fields.items()}
    path = "/" + (request.route_params.get("path") or "").lstrip("/")
    client = headers.get("x-forwarded-for", "").split(",")[0].strip() or None
    return Request(request.method.upper(), path, dict(request.params), form, headers, client)


def to_http_response(response: Response) -> func.HttpResponse:
    """The host's response; its mimetype too, which the Python worker falls back on."""
    content_type = response.headers.get("Content-Type", "text/plain; charset=utf-8")
    return func.HttpResponse(
        body=response.body,
        status_code=response.status,
        headers=dict(response.headers),
        mimetype=content_type.split(";")[0].strip(),
    )


_lock = threading.Lock()
_site: tuple[PageServices, Site] | None = None
_replacement: tuple[Pages, ResolveLink] | None = None


def serve(request: func.HttpRequest, services: PageServices) -> func.HttpResponse:
    """Answer one HTTP request with the site built over ``services`` (built once, rebuilt if they change)."""
    global _site
    with _lock:
        if _site is None or _site[0] is not services:
            pages, resolver = _replacement if _replacement is not None else (None, None)
            _site = (services, build_site(services, pages, resolver))
        site = _site[1]
    return to_http_response(site.handle(to_request(request)))


def install_pages(replacement: tuple[Pages, ResolveLink] | None) -> None:
    """Serve these pages and this resolver instead of production's (the tests' example page);
    None goes back to production's."""
    global _site, _replacement
    with _lock:
        _replacement = replacement
        _site = None
