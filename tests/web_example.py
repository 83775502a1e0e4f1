"""The example page the web tests register (never production), and a site built around it.

GET /<link> shows a form (radios, a textarea with a limit, the form token); POST
/<link> checks it, counts the "message" limit, keeps what was sent and redirects
to GET /<link>/done, a confirmation panel. It is the pattern a real page follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.domain.policy import ForcePolicy
from shared.ports import TableStore
from shared.web import OpenLink, PageKit, Pages, Request, Response, Site
from shared.web.assets import StaticAssets
from shared.web.csrf import CsrfTokens
from shared.web.links import ResolveLink
from shared.web.rate_limit import RateLimits
from shared.web.site import FieldError

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "node_modules" / "govuk-frontend" / "dist" / "govuk"
LINK = "Ab3dE6gH9jK"
OTHER_LINK = "Zz9yX8wV7uT"
REVOKED_LINK = "Rr0vOk3dL1n"
KEY = b"k" * 32
MAX_NOTE = 100
NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


@dataclass
class Clock:
    """A clock the test moves."""

    moment: datetime = NOW

    def now(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


@dataclass
class Saved:
    """What the example page's POST kept, and every link id the resolver was asked about."""

    forms: list[dict[str, str]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)


def resolver(saved: Saved, *open_ids: str) -> ResolveLink:
    """A resolver that opens ``open_ids`` only, noting every lookup."""

    def resolve(link_id: str, now: datetime) -> OpenLink | None:
        saved.lookups.append(link_id)
        if link_id not in open_ids:
            return None
        return OpenLink(link_id, crime_reference="13/12345/26", person_id="P-1")

    return resolve


def example_pages(saved: Saved) -> Pages:
    pages = Pages()

    def show(page: PageKit, form: dict[str, str], errors: list[FieldError], status: int = 200) -> Response:
        return page.render(
            "example.html.j2",
            title="How should we contact you?",
            status=status,
            errors=errors,
            form=form,
            max_length=MAX_NOTE,
        )

    @pages.get("")
    def form_page(request: Request, link: OpenLink, page: PageKit) -> Response:
        return show(page, {}, [])

    @pages.post("")
    def submit(request: Request, link: OpenLink, page: PageKit) -> Response:
        form = {"channel": request.form.get("channel", ""), "note": request.form.get("note", "")}
        errors = []
        if form["channel"] not in ("email", "sms"):
            errors.append(FieldError("channel", "Select how we should contact you"))
        if len(form["note"]) > MAX_NOTE:
            errors.append(FieldError("note", f"Enter {MAX_NOTE} characters or fewer"))
        if errors:
            return show(page, form, errors, status=400)
        if not page.use("message"):
            return page.too_many()
        saved.forms.append(form)
        return page.redirect("done")

    @pages.get("done")
    def done(request: Request, link: OpenLink, page: PageKit) -> Response:
        return page.render("example-done.html.j2", title="Saved")

    @pages.get("broken")
    def broken(request: Request, link: OpenLink, page: PageKit) -> Response:
        raise RuntimeError(f"a failure that names {link.crime_reference}")

    return pages


def example_site(
    tables: TableStore, saved: Saved, clock: Clock | None = None, limits: RateLimits | None = None
) -> Site:
    return Site(
        pages=example_pages(saved),
        resolve_link=resolver(saved, LINK, OTHER_LINK),
        tables=tables,
        csrf_tokens=CsrfTokens(KEY),
        force=ForcePolicy(),
        assets=StaticAssets(ASSETS),
        clock=(clock or Clock()).now,
        limits=limits,
    )
