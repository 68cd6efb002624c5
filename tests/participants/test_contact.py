"""One normaliser for mobile numbers and one text check for names (participants.contact), and codes only to
numbers of the configured countries."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks

from participants import contact, verification
from participants.models import Organisation, VerificationCode
from participants.verification import MissingContact
from preventicons import messaging
from preventicons.checks import check_mobile_countries
from preventicons.crypto import blind_index_phone
from preventicons.gateways import MemorySmsGateway
from tests.participants.people import make_participant


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("06 12345678", "+31612345678"),
        ("+32 470 12 34 56", "+32470123456"),
        ("+49 151 23456789", "+4915123456789"),
    ],
)
def test_mobile_numbers_of_the_configured_countries_pass(typed: str, expected: str) -> None:
    assert contact.normalise_mobile(typed) == expected


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "missing"),
        ("020-5551234", "landline"),
        ("0612ABCDEF", "unparseable"),
        ("06 1234 567", "invalid"),
        ("0800-1234", "not_mobile"),
        ("+33 6 12 34 56 78", "country"),
        ("+44 7911 123456", "country"),
        ("0" * 40, "unparseable"),
    ],
)
def test_what_is_not_a_mobile_number_of_ours_is_refused(typed: str, code: str) -> None:
    with pytest.raises(contact.MobileRefused) as refused:
        contact.normalise_mobile(typed)
    assert refused.value.code == code


def test_the_countries_are_a_setting(settings: Any) -> None:
    settings.MOBILE_COUNTRIES = ["FR"]

    assert contact.normalise_mobile("+33 6 12 34 56 78") == "+33612345678"
    with pytest.raises(contact.MobileRefused):
        contact.normalise_mobile("06 12345678")


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("=HYPERLINK(1)", "formula"),
        ("+31", "formula"),
        ("-1", "formula"),
        ("@SUM", "formula"),
        ("Jan\u202eseirV", "control_characters"),
        ("Jan\u2066x", "control_characters"),
        ("Jan\x00", "control_characters"),
        ("Jan\nde Vries", "control_characters"),
        ("J" * 201, "too_long"),
        ("   ", "missing"),
    ],
)
def test_names_with_formulas_or_control_characters_are_refused(typed: str, code: str) -> None:
    with pytest.raises(contact.TextRefused) as refused:
        contact.check_text(typed, max_length=200)
    assert refused.value.code == code


@pytest.mark.django_db
def test_no_code_goes_to_a_stored_number_of_another_country(organisation: Organisation) -> None:
    # Stored before MOBILE_COUNTRIES was narrowed: it is checked again where a code goes out.
    participant = make_participant(organisation)
    # A row as it was stored then: set_mobile would refuse the number now, so it is written past it.
    participant.mobile, participant.mobile_index = "+33612345678", blind_index_phone("+33612345678")
    participant.save()

    verification.issue_sms_code(participant=participant, purpose=VerificationCode.Purpose.ACCOUNT)
    with pytest.raises(MissingContact):
        verification.issue_sms_code(participant=participant, purpose=VerificationCode.Purpose.OPEN_LINK)
    messaging.send_due_messages()

    assert MemorySmsGateway.outbox == []


def test_an_unknown_country_is_refused_at_start_up(settings: Any) -> None:
    settings.MOBILE_COUNTRIES = ["NL", "XX"]

    errors = check_mobile_countries()

    assert [error.id for error in errors] == ["preventicons.E020"]
    assert all(error.level == checks.ERROR for error in errors)
    settings.MOBILE_COUNTRIES = ["NL", "BE", "DE"]
    assert check_mobile_countries() == []
