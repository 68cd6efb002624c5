"""Staff login codes by SMS: one budget per staff user (phone registration included), and pages that say
whether the text message really went out."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from two_factor.plugins.phonenumber.models import PhoneDevice

from participants.models import StaffUser
from preventicons.gateways import MemorySmsGateway
from preventicons.roles import Role
from tests.conftest import STAFF_PASSWORD, login_verified, make_staff
from tests.preventicons.test_ratelimit import REDIS_AWAY
from tests.test_staff_reauthentication import reauthenticate

pytestmark = [pytest.mark.usefixtures("empty_cache", "english"), pytest.mark.django_db]

SENT = "We sent you a text message with a code"
NOT_SENT = "We did not send a text message"
COULD_NOT = "We could not send a text message just now"


def phone_first(user: StaffUser, number: str = "+31612345678") -> PhoneDevice:
    """The user's default device is a phone (TOTP renamed away), as the locked-account test sets it up."""
    TOTPDevice.objects.filter(user=user).update(name="totp")
    return PhoneDevice.objects.create(user=user, name="default", number=number, method="sms")


def login_page(user: StaffUser) -> str:
    response = Client().post(
        "/account/login/",
        {"login_view-current_step": "auth", "auth-username": user.username, "auth-password": STAFF_PASSWORD},
    )
    assert response.status_code == 200
    return response.content.decode()


def reauthenticated(user: StaffUser) -> Client:
    client = login_verified(Client(), user)
    assert reauthenticate(client, user).status_code == 302
    return client


def register_phone(client: Client, number: str) -> str:
    response = client.post(
        "/account/two_factor/phone/register/",
        {"staff_phone_setup_view-current_step": "setup", "setup-number": number, "setup-method": "sms"},
    )
    assert response.status_code == 200
    return response.content.decode()


def test_the_login_page_says_a_text_message_was_sent_only_when_it_was(
    employer: StaffUser, settings: Any
) -> None:
    settings.STAFF_SMS_PER_HOUR = 1
    phone_first(employer)

    first = login_page(employer)
    second = login_page(employer)

    assert SENT in first and NOT_SENT not in first
    assert NOT_SENT in second and SENT not in second and "try again in" in second
    assert len(MemorySmsGateway.outbox) == 1


def test_with_redis_away_the_login_page_says_no_message_could_be_sent(
    employer: StaffUser, settings: Any
) -> None:
    phone_first(employer)
    settings.CACHES = REDIS_AWAY

    page = login_page(employer)

    assert COULD_NOT in page and SENT not in page
    assert MemorySmsGateway.outbox == []


def test_phone_registration_spends_the_users_own_budget(db: Any, settings: Any) -> None:
    settings.STAFF_SMS_PER_HOUR = 1
    anna = make_staff("hr-anna", Role.EMPLOYER)
    bram = make_staff("hr-bram", Role.EMPLOYER)

    annas = reauthenticated(anna)
    annas_first = register_phone(annas, "+31611111111")
    annas_second = register_phone(annas, "+31611111112")
    # Another user's registration is not held up by Anna's (once one shared "staff-sms:None" bucket).
    brams = register_phone(reauthenticated(bram), "+31622222222")

    assert SENT in annas_first
    assert NOT_SENT in annas_second and SENT not in annas_second
    assert SENT in brams
    assert [sms["to"] for sms in MemorySmsGateway.outbox] == ["+31611111111", "+31622222222"]


def test_a_registration_and_a_login_share_the_users_budget(db: Any, settings: Any) -> None:
    settings.STAFF_SMS_PER_HOUR = 1
    anna = make_staff("hr-anna", Role.EMPLOYER)
    register_phone(reauthenticated(anna), "+31611111111")
    phone_first(anna, "+31611111111")

    assert NOT_SENT in login_page(anna)
    assert len(MemorySmsGateway.outbox) == 1
