"""GOV.UK Frontend's stylesheet, fonts and images, served under ``/assets/``.

The stylesheet asks for ``/assets/fonts/…`` and ``/assets/images/…``, which are
``<root>/assets/…`` in the package (``root`` is its ``dist/govuk`` folder); the
stylesheet itself is ``/assets/govuk-frontend.min.css``. Only files of the listed
types under the root are served: a path that climbs out of it, names a hidden
file or any other type is not found. No script is served — the pages have none.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from shared.web.http import Response

STYLESHEET = "govuk-frontend.min.css"
CONTENT_TYPES = MappingProxyType(
    {
        ".css": "text/css; charset=utf-8",
        ".woff2": "font/woff2",
        ".woff": "font/woff",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".ico": "image/x-icon",
    }
)
# The file names carry no version, so a day, not a year: a new govuk-frontend shows within one.
CACHE = "public, max-age=86400"


class StaticAssets:
    """Files under GOV.UK Frontend's ``dist/govuk`` folder, by ``/assets/`` path."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def file_for(self, path: str) -> Path | None:
        """The file a ``/assets/…`` path names, or None when it names nothing we serve."""
        if not path.startswith("/assets/"):
            return None
        relative = path.removeprefix("/assets/")
        parts = relative.split("/")
        if any(part in ("", ".", "..") or part.startswith(".") or "\\" in part for part in parts):
            return None
        if "\x00" in relative or Path(relative).suffix not in CONTENT_TYPES:
            return None
        base = self.root if relative == STYLESHEET else self.root / "assets"
        candidate = (base / relative).resolve()
        if not candidate.is_relative_to(base.resolve()) or not candidate.is_file():
            return None
        return candidate

    def serve(self, path: str) -> Response | None:
        """The asset's response, or None when the path names nothing we serve."""
        found = self.file_for(path)
        if found is None:
            return None
        headers = {"Content-Type": CONTENT_TYPES[found.suffix], "Cache-Control": CACHE}
        return Response(200, found.read_bytes(), MappingProxyType(headers))
