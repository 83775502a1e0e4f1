"""The victim's own page (RULES.md §10): a small web framework over one anonymous HTTP trigger.

``http`` is the request and response the framework speaks (no Azure types);
``site`` routes a request to a page handler, behind the link resolver, the rate
limits and the CSRF check, and answers everything else with a plain page;
``azure`` converts the Functions host's request and response. Page handlers are
registered on ``Pages`` (see docs/victim-page.md).

The names below are read from their modules when first asked for: importing
``shared.web.azure`` (as ``function_app`` does, for every function of the app)
does not import the site and its templates (Jinja2), which only the page needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.web.http import Request, Response
    from shared.web.links import OpenLink, ResolveLink
    from shared.web.site import PageKit, Pages, Site

__all__ = ["OpenLink", "PageKit", "Pages", "Request", "ResolveLink", "Response", "Site"]

_HOMES = {
    "Request": "http",
    "Response": "http",
    "OpenLink": "links",
    "ResolveLink": "links",
    "PageKit": "site",
    "Pages": "site",
    "Site": "site",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
