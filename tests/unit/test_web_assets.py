"""GOV.UK Frontend's files under /assets/: the right types, a cache for them, nothing outside the folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.adapters.sqlite_tables import SqliteTableStore
from shared.web import Request
from shared.web.assets import StaticAssets
from tests.web_example import ASSETS, Saved, example_site

pytestmark = pytest.mark.skipif(not ASSETS.is_dir(), reason="govuk-frontend is not installed: run make test")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/assets/govuk-frontend.min.css", "text/css; charset=utf-8"),
        ("/assets/images/govuk-crest.svg", "image/svg+xml"),
        ("/assets/images/favicon.ico", "image/x-icon"),
        ("/assets/images/govuk-icon-180.png", "image/png"),
    ],
)
def test_assets_are_served_with_their_type(path: str, content_type: str) -> None:
    response = StaticAssets(ASSETS).serve(path)
    assert response is not None and response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert response.body == StaticAssets(ASSETS).file_for(path).read_bytes()  # type: ignore[union-attr]


def test_every_file_the_stylesheet_asks_for_is_served() -> None:
    css = (ASSETS / "govuk-frontend.min.css").read_text(encoding="utf-8")
    wanted = set(re.findall(r"url\((/assets/[^)]+)\)", css))
    assert any(path.endswith(".woff2") for path in wanted)
    for path in wanted:
        response = StaticAssets(ASSETS).serve(path)
        assert response is not None, path
        assert response.headers["Content-Type"].startswith(("font/", "image/")), path


@pytest.mark.parametrize(
    "path",
    [
        "/assets/../package.json",
        "/assets/../../package.json",
        "/assets/fonts/../../govuk-frontend.min.css",
        "/assets/./govuk-frontend.min.css",
        "/assets//etc/passwd",
        "/assets/%2e%2e/package.json",
        "/assets/images\\..\\..\\package.json",
        "/assets/all.bundle.js",
        "/assets/govuk-frontend.min.css.map",
        "/assets/manifest.json",
        "/assets/.hidden.css",
        "/assets/images/nothing.png",
        "/assets/fonts/bold-b542beb274-v2.woff2\x00.css",
        "/assets/",
        "/assets/images",
    ],
)
def test_paths_outside_the_folder_or_of_other_types_are_not_served(path: str) -> None:
    assert StaticAssets(ASSETS).serve(path) is None


def test_a_symlink_out_of_the_folder_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "assets" / "images").mkdir(parents=True)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for you")
    (tmp_path / "assets" / "images" / "link.png").symlink_to(secret)
    assert StaticAssets(tmp_path).serve("/assets/images/link.png") is None


def test_through_the_site_assets_cache_for_a_day_and_keep_the_security_headers() -> None:
    site = example_site(SqliteTableStore(":memory:"), Saved())
    response = site.handle(Request("GET", "/assets/govuk-frontend.min.css"))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    missing = site.handle(Request("GET", "/assets/../package.json"))
    assert missing.status == 404 and missing.headers["Cache-Control"] == "no-store"
    assert site.handle(Request("POST", "/assets/govuk-frontend.min.css")).status == 405
    favicon = site.handle(Request("GET", "/favicon.ico"))
    assert favicon.status == 200 and favicon.headers["Content-Type"] == "image/x-icon"
