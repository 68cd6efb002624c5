"""The rules for a mobile number and a typed name, one set wherever they come from.

The employer's address list (participants.importing), enrolment and the account page all read numbers
through ``normalise_mobile`` and names through ``check_text``: a number or a name one of them refuses, the
others refuse too (the enrolment form once took the landline 020-5551234 as a mobile and the account page
0612ABCDEF, which the import refused; names typed by a participant skipped the import's checks).
"""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

# Numbers without a country prefix are read as Dutch.
PHONE_REGION = "NL"
MAX_MOBILE_INPUT_LENGTH = 32
# A value starting with one of these is run as a formula when it is ever opened in a spreadsheet (CSV
# injection): an export, or the employer's list opened again. A name never needs to start with one.
FORMULA_STARTS = ("=", "+", "-", "@")
# Control characters (Unicode category Cc), line and paragraph separators, and the bidirectional marks,
# overrides and isolates that make text display differently from what it holds (spoofing).
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Digits with the separators people write; phonenumbers would read letters as keypad digits (0612ABCDEF).
_PHONE_CHARACTERS = re.compile(r"\+?[0-9\s().\-/]+")


class MobileRefused(ValueError):
    """Not a mobile number we accept; ``code`` says why (the callers word it for their page)."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)


class TextRefused(ValueError):
    """A name (or department) we do not store; ``code`` says why, ``char`` the offending first character."""

    def __init__(self, code: str, char: str = "") -> None:
        self.code = code
        self.char = char
        super().__init__(code)


def mobile_countries() -> list[str]:
    return [str(region).upper() for region in settings.MOBILE_COUNTRIES]


def normalise_mobile(raw: str) -> str:
    """The mobile number in E.164 form; raises MobileRefused with code missing, unparseable, invalid,
    landline, not_mobile (a service number) or country (not one of settings.MOBILE_COUNTRIES)."""
    value = raw.strip()
    if not value:
        raise MobileRefused("missing")
    if len(value) > MAX_MOBILE_INPUT_LENGTH or not _PHONE_CHARACTERS.fullmatch(value):
        raise MobileRefused("unparseable")
    try:
        number = phonenumbers.parse(value, PHONE_REGION)
    except NumberParseException:
        raise MobileRefused("unparseable") from None
    # number_type() is UNKNOWN exactly when is_valid_number() is False; asking once halves the cost.
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        raise MobileRefused("invalid")
    if kind == PhoneNumberType.FIXED_LINE:
        raise MobileRefused("landline")
    if kind not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise MobileRefused("not_mobile")
    if phonenumbers.region_code_for_number(number) not in mobile_countries():
        raise MobileRefused("country")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def may_receive_codes(e164: str) -> bool:
    """Whether a stored number may be sent a code: one of a configured country's calling codes.

    Numbers are checked in full when they come in (normalise_mobile); this checks again where a code goes
    out, for numbers stored before the countries were narrowed.
    """
    try:
        number = phonenumbers.parse(e164, PHONE_REGION)
    except NumberParseException:
        return False
    countries = phonenumbers.region_codes_for_country_code(number.country_code or 0)
    return any(region in mobile_countries() for region in countries)


def countries_text() -> str:
    """The configured countries with their calling codes, for messages: "NL (+31), BE (+32), DE (+49)"."""
    return ", ".join(
        f"{region} (+{phonenumbers.country_code_for_region(region)})" for region in mobile_countries()
    )


def check_text(raw: str, *, max_length: int) -> str:
    """The value stripped; raises TextRefused with code missing, control_characters, too_long or formula."""
    value = raw.strip()
    if not value:
        raise TextRefused("missing")
    if CONTROL_CHARACTERS.search(value):
        raise TextRefused("control_characters")
    if len(value) > max_length:
        raise TextRefused("too_long")
    if value.startswith(FORMULA_STARTS):
        raise TextRefused("formula", char=value[0])
    return value


# What a participant reads about a number or a name they typed (enrolment, account).
MOBILE_MESSAGES: dict[str, Promise] = {
    "missing": _("Enter your mobile number."),
    "unparseable": _("Enter a valid mobile number, for example 06 12345678 or +31 6 12345678."),
    "invalid": _("This number does not exist (wrong number of digits or an unknown prefix)."),
    "landline": _("This is a landline number; text messages cannot reach it. Enter a mobile number."),
    "not_mobile": _("This is a service number, not a mobile number; text messages cannot reach it."),
    "country": _("We can send text messages only to mobile numbers of these countries: %(countries)s."),
}
NAME_MESSAGES: dict[str, Promise] = {
    "missing": _("Enter your name."),
    "control_characters": _(
        "The name contains invisible control characters (such as a tab, a line break or a direction mark)."
    ),
    "too_long": _("This name is too long."),
    "formula": _("A name cannot start with “%(char)s”."),
}


def mobile_message(refused: MobileRefused) -> str:
    return str(MOBILE_MESSAGES[refused.code]) % (
        {"countries": countries_text()} if refused.code == "country" else {}
    )


def name_message(refused: TextRefused) -> str:
    message = str(NAME_MESSAGES[refused.code])
    return message % {"char": refused.char} if refused.code == "formula" else message
