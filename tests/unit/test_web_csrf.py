"""Form tokens: bound to the link, the form and the time; a changed byte is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.web.csrf import CsrfTokens
from tests.web_example import LINK, NOW, OTHER_LINK

TOKENS = CsrfTokens(b"s" * 32)


def test_a_token_is_good_for_its_link_and_form_until_it_expires() -> None:
    token = TOKENS.issue(LINK, "preferences", NOW)
    assert TOKENS.check(token, LINK, "preferences", NOW)
    assert TOKENS.check(token, LINK, "preferences", NOW + timedelta(hours=2))
    assert not TOKENS.check(token, LINK, "preferences", NOW + timedelta(hours=2, seconds=1))


def test_a_token_is_no_good_for_another_link_another_form_or_another_key() -> None:
    token = TOKENS.issue(LINK, "preferences", NOW)
    assert not TOKENS.check(token, OTHER_LINK, "preferences", NOW)
    assert not TOKENS.check(token, LINK, "message", NOW)
    assert not CsrfTokens(b"t" * 32).check(token, LINK, "preferences", NOW)


def test_every_changed_character_is_refused() -> None:
    token = TOKENS.issue(LINK, "message", NOW)
    for index, character in enumerate(token):
        for replacement in {"0", "A", "_", "."} - {character}:
            tampered = token[:index] + replacement + token[index + 1 :]
            assert not TOKENS.check(tampered, LINK, "message", NOW), tampered


def test_a_token_from_the_future_beyond_clock_skew_is_refused() -> None:
    token = TOKENS.issue(LINK, "message", NOW + timedelta(minutes=6))
    assert not TOKENS.check(token, LINK, "message", NOW)
    assert TOKENS.check(TOKENS.issue(LINK, "message", NOW + timedelta(minutes=4)), LINK, "message", NOW)


@pytest.mark.parametrize("token", [None, "", ".", "1.", ".abc", "x.y", "1.2.3", "99999999999999.abc", "é.é"])
def test_malformed_tokens_are_refused_without_error(token: str | None) -> None:
    assert not TOKENS.check(token, LINK, "message", NOW)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        CsrfTokens(b"short")
