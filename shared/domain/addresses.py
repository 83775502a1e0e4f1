"""Contact addresses: UK mobiles in E.164 and email syntax, with no network look-ups."""

from __future__ import annotations

import re
from functools import lru_cache

# phonenumbers and email_validator are imported on first use: they cost ~35 ms of a cold start.

_OFCOM_DRAMA_MOBILE_PREFIX = "7700900"
_UK_MOBILE_DIGITS = 10  # 07xxx xxxxxx without its 0
# What a mobile number may be written with. phonenumbers reads letters as a keypad's digits
# ("07700 900 ABC" is 07700 900222): a number with letters is a typo or a trap, never a mobile.
_DIALLABLE = re.compile(r"[0-9 +\-().]+")


@lru_cache(maxsize=4096)  # pure; asked again at each routing decision and send (minutes apart)
def uk_mobile_e164(raw: str | None) -> str | None:
    """The number in E.164 when it is a valid UK mobile, else None."""
    if not raw or not _DIALLABLE.fullmatch(raw):
        return None
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, "GB")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 44 or not phonenumbers.is_possible_number(number):
        return None
    # Ofcom reserves 07700 900000-900999 for drama and testing; libphonenumber calls it
    # invalid, but test teams and our samples rely on it, and it can never reach a real person.
    # Only a whole one: ten digits after the 0 (a short "07700 9001" is possible to
    # libphonenumber, which keeps its 0 as a leading zero and writes "+44077009001").
    national = str(number.national_number)
    reserved = (
        len(national) == _UK_MOBILE_DIGITS
        and national.startswith(_OFCOM_DRAMA_MOBILE_PREFIX)
        and not number.italian_leading_zero
    )
    if not reserved and (
        not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def valid_email(raw: str | None) -> str | None:
    """The normalised address when its syntax is valid, else None."""
    if not raw:
        return None
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
