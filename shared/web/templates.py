"""The page templates (``shared/templates/web/``): Jinja2, autoescaped, undefined names raise."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

WEB_TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "web"


@lru_cache(maxsize=4)
def environment(folder: Path = WEB_TEMPLATES) -> Environment:
    """The templates of ``folder``, loaded once per worker."""
    return Environment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, context: dict[str, Any], folder: Path = WEB_TEMPLATES) -> str:
    """Fill one template."""
    return environment(folder).get_template(template).render(context)
