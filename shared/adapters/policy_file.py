"""Reads the journey policy file: JSON, validated by the domain's model, its languages' templates there.

The shipped default is ``policy/journey-policy.json``; ``JOURNEY_POLICY_PATH``
names another. Every mistake is one ``PolicyError`` line naming the file and the
field, at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from shared.adapters import json_text
from shared.domain.policy import REFERENCE_LANGUAGE, Policy, PolicyError

DEFAULT_POLICY_PATH = Path(__file__).resolve().parents[2] / "policy" / "journey-policy.json"
# Each language's templates: shared/templates/<code>/ must hold every file that en/ holds.
TEMPLATE_ROOT = Path(__file__).resolve().parents[1] / "templates"


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file (the shipped default when ``path`` is None)."""
    source = path or DEFAULT_POLICY_PATH
    try:
        text = source.read_text(encoding="utf-8")
        json.loads(text)  # a clearer reason for broken JSON than the model's
    except OSError as exc:
        raise PolicyError(f"cannot read journey policy {source}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"journey policy {source} is not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise PolicyError(f"journey policy {source} is not valid JSON: {json_text.problem(exc)}") from exc
    try:
        # JSON mode: strict about types (a number is not a string) while enums are read from text.
        policy = Policy.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        reason = " ".join(first["msg"].removeprefix("Value error, ").split())
        raise PolicyError(f"journey policy {source}: field {field}: {reason}") from exc
    for index, language in enumerate(policy.languages):
        missing = missing_templates(language)
        if missing:
            raise PolicyError(f"journey policy {source}: field languages.{index}: {missing}")
    return policy


def missing_templates(language: str) -> str | None:
    """What the language's template folder lacks that the reference language's holds, if anything."""
    reference = TEMPLATE_ROOT / REFERENCE_LANGUAGE
    needed = sorted(p.relative_to(reference).as_posix() for p in reference.rglob("*") if p.is_file())
    folder = TEMPLATE_ROOT / language
    if not folder.is_dir():
        return f"{language!r} has no template folder shared/templates/{language}/"
    missing = [name for name in needed if not (folder / name).is_file()]
    if not missing:
        return None
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return f"{language!r} has no template {shown} in shared/templates/{language}/"
