"""The victim's own page (RULES.md §10): a small web framework over one anonymous HTTP trigger.

``http`` is the request and response the framework speaks (no Azure types);
``site`` routes a request to a page handler, behind the link resolver, the rate
limits and the CSRF check, and answers everything else with a plain page;
``azure`` converts the Functions host's request and response. Page handlers are
registered on ``Pages`` (see docs/victim-page.md).
"""

from shared.web.http import Request, Response
from shared.web.links import OpenLink, ResolveLink
from shared.web.site import PageKit, Pages, Site

__all__ = ["OpenLink", "PageKit", "Pages", "Request", "ResolveLink", "Response", "Site"]
