"""The message templates: Jinja2, plain text for SMS, HTML and text for email (the MessageRenderer).

Templates live in ``shared/templates/<language>/`` with the outcome words
(``outcomes.json``); officer mail in ``shared/templates/officer/``. Undefined
values raise (StrictUndefined) rather than print blanks; HTML is autoescaped. What a
message says is worked out in ``shared/domain/wording.py`` and
``shared/domain/officer_mail.py``; this module only loads and fills templates.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment, Template

from shared.contracts.messages import TaskNotice
from shared.domain import officer_mail
from shared.domain.journey import Duty, Journey
from shared.domain.links import link_url
from shared.domain.officer_mail import Recipient, RenderedOfficerMail
from shared.domain.policy import Policy
from shared.domain.wording import (
    OutcomeWords,
    RenderedEmail,
    RenderedSms,
    choose_language,
    email_parts,
    message_context,
    sentence,
    sms_message,
)

TEMPLATE_ROOT = Path(__file__).resolve().parents[1] / "templates"
OFFICER_TEMPLATES = TEMPLATE_ROOT / "officer"


@lru_cache(maxsize=16)
def _environment(folder: Path, html: bool) -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape  # on first use

    env = Environment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False) if html else False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # The templates are deployed with the code: no file is looked at again once compiled
        # (Jinja2 would otherwise check each template's modification time at every render).
        auto_reload=False,
    )
    env.filters["sentence"] = sentence
    return env


@lru_cache(maxsize=16)
def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class MessageTemplates:
    """Renders messages and officer mail from the template folders under ``root``."""

    def __init__(self, root: Path = TEMPLATE_ROOT) -> None:
        self.root = root
        self._languages: frozenset[str] | None = None
        # What each message looks up, kept by name (a path built and hashed per lookup cost more
        # than the lookup): the compiled templates, by folder, HTML or not, and file name.
        self._templates: dict[tuple[str, bool, str], Template] = {}
        self._words: dict[str, OutcomeWords] = {}  # each language's outcome words

    def languages(self) -> frozenset[str]:
        """The languages with a template folder (looked for once: they are deployed with the code,
        as the templates and their outcome words are, which are read once too)."""
        if self._languages is None:
            self._languages = frozenset(
                p.name for p in self.root.iterdir() if p.is_dir() and (p / "outcomes.json").is_file()
            )
        return self._languages

    def choose_language(self, journey: Journey, policy: Policy) -> tuple[str, bool]:
        return choose_language(journey, policy, self.languages())

    def outcome_words(self, language: str) -> OutcomeWords:
        words = self._words.get(language)
        if words is None:
            words = self._words[language] = _json(self.root / language / "outcomes.json")
        return words

    def _template(self, folder: str, html: bool, name: str) -> Template:
        key = (folder, html, name)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = _environment(self.root / folder, html).get_template(name)
        return template

    def sms(
        self,
        journey: Journey,
        duties: list[Duty],
        policy: Policy,
        language: str = "en",
        *,
        link: str,
    ) -> RenderedSms:
        context = message_context(journey, duties, policy, language, link, self.outcome_words(language))
        template = self._template(language, False, "sms.txt.j2")
        return sms_message(template.render, context, duties, policy, language)

    def email(
        self,
        journey: Journey,
        duties: list[Duty],
        policy: Policy,
        language: str = "en",
        *,
        link: str,
    ) -> RenderedEmail:
        context = message_context(journey, duties, policy, language, link, self.outcome_words(language))
        subject, paragraphs = email_parts(
            self._template(language, False, "email_subject.txt.j2").render(context),
            self._template(language, False, "email_body.txt.j2").render(context),
        )
        html = self._template(language, True, "email.html.j2").render(
            {"paragraphs": paragraphs, "subject": subject, "language": language}
        )
        return RenderedEmail(subject, "\n\n".join(paragraphs) + "\n", html, language)

    def officer_mail(self, notice: TaskNotice, policy: Policy, recipient: Recipient) -> RenderedOfficerMail:
        folder = self.root / "officer"
        words: dict[str, str] = _json(folder / "outcomes.json")
        context = officer_mail.mail_context(notice, policy, recipient, words)
        kind = notice.kind
        subject = " ".join(self._template("officer", False, f"{kind}_subject.txt.j2").render(context).split())
        parts = officer_mail.paragraphs(self._template("officer", False, f"{kind}.txt.j2").render(context))
        text = "\n\n".join("\n".join(lines) for lines in parts) + "\n"
        html = self._template("officer", True, "mail.html.j2").render(
            {"subject": subject, "paragraphs": parts, "link": context["link"]}
        )
        return RenderedOfficerMail(subject, text, html)


_DEFAULT = MessageTemplates()


# The tests' and the catalogue's personal link: as long as a real one, in the policy's address.
EXAMPLE_LINK_ID = "Ab3dE6gH9jK"


def render_sms(
    journey: Journey, duties: list[Duty], policy: Policy, language: str = "en", link: str | None = None
) -> RenderedSms:
    """The SMS of these duties, from the shipped templates (with an example link if none is given)."""
    return _DEFAULT.sms(journey, duties, policy, language, link=link or link_url(policy, EXAMPLE_LINK_ID))


def render_email(
    journey: Journey, duties: list[Duty], policy: Policy, language: str = "en", link: str | None = None
) -> RenderedEmail:
    """The email of these duties, from the shipped templates (with an example link if none is given)."""
    return _DEFAULT.email(journey, duties, policy, language, link=link or link_url(policy, EXAMPLE_LINK_ID))


def render_officer_mail(notice: TaskNotice, policy: Policy, recipient: Recipient) -> RenderedOfficerMail:
    """An officer task's mail, from the shipped templates."""
    return _DEFAULT.officer_mail(notice, policy, recipient)
