"""The page framework: routes a request to a page handler behind the link, the limits and the form token.

A path is ``/<link id>`` or ``/<link id>/<page name>``; ``/assets/…`` is GOV.UK
Frontend's stylesheet, fonts and images. For a page, in this order: the route must
exist (else a plain "page not found"); the method must be one it takes (else 405);
the link id must be well formed and the resolver must open it (else the one
invalid-link page, the same bytes whatever the reason); the link must be under its
rate limit (else 429); a POST must carry a valid form token for this link and page
(else 400, and the handler is not called). Every response carries the security
headers of ``shared.web.http``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from shared.domain.policy import ForcePolicy
from shared.ports import TableStore
from shared.web import csrf
from shared.web.assets import StaticAssets
from shared.web.csrf import CsrfTokens
from shared.web.http import Request, Response, html, redirect
from shared.web.links import OpenLink, ResolveLink, is_link_id
from shared.web.rate_limit import PAGE, RateLimiter, RateLimits
from shared.web.templates import render

log = logging.getLogger("victim_updates.web")

Handler = Callable[[Request, OpenLink, "PageKit"], Response]
METHODS = ("GET", "POST")


@dataclass(frozen=True)
class FieldError:
    """A form field's error: ``field`` is the id of the control the error summary links to."""

    field: str
    message: str


class Pages:
    """Page handlers by method and page name ("" is the link's own address, ``/<link id>``)."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def add(self, method: str, name: str, handler: Handler) -> None:
        if method not in METHODS:
            raise ValueError(f"pages take GET or POST, not {method}")
        if name and not name.replace("-", "").isalnum():
            raise ValueError(f"a page name is letters, digits and hyphens: {name!r}")
        if (method, name) in self._handlers:
            raise ValueError(f"{method} /<link>/{name} is registered twice")
        self._handlers[(method, name)] = handler

    def get(self, name: str = "") -> Callable[[Handler], Handler]:
        """Decorator: ``handler`` answers GET ``/<link id>[/<name>]``."""
        return self._decorator("GET", name)

    def post(self, name: str = "") -> Callable[[Handler], Handler]:
        """Decorator: ``handler`` answers POST ``/<link id>[/<name>]`` (after the form token is checked)."""
        return self._decorator("POST", name)

    def _decorator(self, method: str, name: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, name, handler)
            return handler

        return register

    def find(self, method: str, name: str) -> Handler | None:
        return self._handlers.get((method, name))

    def methods(self, name: str) -> list[str]:
        return [method for method in METHODS if (method, name) in self._handlers]


class PageKit:
    """What a page handler may do beyond reading its request: render, issue form tokens, redirect,
    count a named rate limit. Bound to one open link, page and moment."""

    def __init__(self, site: Site, link: OpenLink, page: str, now: datetime) -> None:
        self._site = site
        self.link = link
        self.page = page
        self.now = now

    def url(self, name: str = "") -> str:
        """The path of one of this link's pages."""
        return f"/{self.link.link_id}/{name}" if name else f"/{self.link.link_id}"

    def csrf_token(self, form: str) -> str:
        """A form token for the page ``form`` (the page the form posts to) on this link."""
        return self._site.csrf.issue(self.link.link_id, form, self.now)

    def csrf_field(self, form: str) -> Markup:
        """The hidden input carrying ``csrf_token(form)``."""
        token = escape(self.csrf_token(form))
        return Markup(f'<input type="hidden" name="{csrf.FIELD}" value="{token}">')

    def render(
        self,
        template: str,
        *,
        title: str,
        status: int = 200,
        errors: list[FieldError] | None = None,
        **context: Any,
    ) -> Response:
        """A page from ``shared/templates/web/<template>`` in the common layout.

        The template also sees ``force`` (the policy's force), ``url(name)``,
        ``csrf_field(form)``, ``errors`` and ``error_for(field)``."""
        found = list(errors or [])
        by_field = {error.field: error.message for error in found}
        body = render(
            template,
            {
                **context,
                "title": title,
                "force": self._site.force,
                "errors": found,
                "error_for": by_field.get,
                "url": self.url,
                "csrf_field": self.csrf_field,
            },
        )
        return html(status, body)

    def redirect(self, name: str = "") -> Response:
        """303 to one of this link's pages: the end of every successful POST (POST-redirect-GET)."""
        return redirect(self.url(name))

    def use(self, counter: str) -> bool:
        """Count one use of a named limit (e.g. "message"); False when the link has used them all."""
        return self._site.limiter.use(self.link.link_id, counter, self.now)

    def too_many(self) -> Response:
        """The plain 429 page."""
        return self._site.too_many()


class Site:
    """The victim's page: a request in, a response out, every dependency given."""

    def __init__(
        self,
        *,
        pages: Pages,
        resolve_link: ResolveLink,
        tables: TableStore,
        csrf_tokens: CsrfTokens,
        force: ForcePolicy,
        assets: StaticAssets,
        clock: Callable[[], datetime],
        limits: RateLimits | None = None,
    ) -> None:
        self.pages = pages
        self.resolve_link = resolve_link
        self.csrf = csrf_tokens
        self.force = force
        self.assets = assets
        self.clock = clock
        self.limiter = RateLimiter(tables, limits)
        # Rendered once: an unknown, malformed, revoked or expired link gets these very bytes.
        self._invalid_link = self._plain(
            404,
            "This link does not work",
            "The link may be wrong, or it may no longer work.",
        )

    def handle(self, request: Request) -> Response:
        """Answer one request; never raises."""
        try:
            response = self._route(request)
        except Exception as exc:
            log.error("victim page failed: %s", type(exc).__name__)  # the type only: no personal data
            response = self._plain(500, "Sorry, there is a problem", "Try again later.")
        return response.with_security_headers()

    def _route(self, request: Request) -> Response:
        path = request.path or "/"
        if path.startswith("/assets/") or path == "/favicon.ico":
            if request.method != "GET":
                return self._method_not_allowed(["GET"])
            asset = self.assets.serve("/assets/images/favicon.ico" if path == "/favicon.ico" else path)
            return asset or self._not_found()
        segments = path.removeprefix("/").split("/")
        if len(segments) > 2:
            return self._not_found()
        link_id, name = segments[0], segments[1] if len(segments) == 2 else ""
        allowed = self.pages.methods(name)
        if not allowed:
            return self._not_found() if name else self._invalid_link
        handler = self.pages.find(request.method, name)
        if handler is None:
            return self._method_not_allowed(allowed)
        now = self.clock()
        link = self.resolve_link(link_id, now) if is_link_id(link_id) else None
        if link is None:
            return self._invalid_link
        if not self.limiter.use(link.link_id, PAGE, now):
            return self.too_many()
        if (
            request.method == "POST"
            and not _one_click_unsubscribe(request, name)
            and not self.csrf.check(request.form.get(csrf.FIELD), link.link_id, name, now)
        ):
            return self._plain(
                400,
                "Sorry, that did not work",
                "Nothing has been changed. Go back to your page, reload it and try again.",
            )
        return handler(request, link, PageKit(self, link, name, now))

    def too_many(self) -> Response:
        return self._plain(
            429,
            "Too many requests",
            "This page has been used too many times in a short while. Try again later.",
        )

    def _not_found(self) -> Response:
        return self._plain(404, "Page not found", "Check the link you were sent.")

    def _method_not_allowed(self, allowed: list[str]) -> Response:
        response = self._plain(405, "Sorry, that did not work", "Go back to your page and try again.")
        return Response(response.status, response.body, {**response.headers, "Allow": ", ".join(allowed)})

    def _plain(self, status: int, title: str, *paragraphs: str) -> Response:
        context: Mapping[str, Any] = {
            "title": title,
            "paragraphs": paragraphs,
            "force": self.force,
            "errors": [],
        }
        return html(status, render("plain.html.j2", dict(context)))


def _one_click_unsubscribe(request: Request, name: str) -> bool:
    """A mail program's one-click unsubscribe (RFC 8058): a POST of exactly
    ``List-Unsubscribe=One-Click`` to the link itself. It carries no form token, and needs none:
    the link is the credential, and all it can do is stop updates."""
    return name == "" and request.form == {"List-Unsubscribe": "One-Click"}
