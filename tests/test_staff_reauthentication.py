"""Changing how a staff account logs in needs the password and a current code again; locks and recovery.

The attacker here holds a verified staff session (a laptop left unlocked, a stolen session cookie) but not
the password or the phone: they must not add their own phone, read or renew the backup codes, or change
the password. And a platform admin who resets someone's credentials leaves a trace.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from two_factor.plugins.phonenumber.models import PhoneDevice

from participants.models import StaffUser
from preventicons.gateways import MemorySmsGateway
from preventicons.models import StaffLoginGuard
from preventicons.staffauth import Verdict, locked_until, verify_second_factor
from tests.conftest import STAFF_PASSWORD, login_verified

pytestmark = pytest.mark.usefixtures("empty_cache")

REAUTH = "/account/two_factor/reauthenticate/"


def code_of(user: StaffUser) -> str:
    device = TOTPDevice.objects.get(user=user)
    return str(totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)).zfill(6)


def reauthenticate(client: Client, user: StaffUser, *, password: str = STAFF_PASSWORD, code: str = "") -> Any:
    return client.post(REAUTH, {"password": password, "otp_token": code or code_of(user), "next": "/x/"})


@pytest.fixture
def staff_client(employer: StaffUser) -> Client:
    return login_verified(Client(), employer)


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "two_factor:phone_create"),
        ("post", "two_factor:phone_create"),
        ("get", "two_factor:backup_tokens"),
        ("post", "two_factor:backup_tokens"),
        ("get", "two_factor:password_change"),
        ("post", "two_factor:password_change"),
    ],
)
def test_a_verified_session_alone_cannot_change_how_the_account_logs_in(
    staff_client: Client, employer: StaffUser, method: str, name: str
) -> None:
    path = reverse(name)

    response = getattr(staff_client, method)(path, {"old_password": STAFF_PASSWORD})

    assert response.status_code == 302
    assert response["Location"].startswith(f"{REAUTH}?next=")
    assert not StaticDevice.objects.filter(user=employer).exists()
    assert not PhoneDevice.objects.filter(user=employer).exists()


def test_removing_a_backup_phone_needs_reauthentication(staff_client: Client, employer: StaffUser) -> None:
    phone = PhoneDevice.objects.create(user=employer, name="backup", number="+31612345678", method="sms")
    path = reverse("two_factor:phone_delete", args=[phone.pk])

    assert staff_client.post(path)["Location"].startswith(REAUTH)
    assert PhoneDevice.objects.filter(pk=phone.pk).exists()

    assert reauthenticate(staff_client, employer).status_code == 302
    assert staff_client.post(path).status_code == 302
    assert not PhoneDevice.objects.filter(pk=phone.pk).exists()


def test_after_reauthentication_someone_elses_phone_is_not_found(
    staff_client: Client, employer: StaffUser, other_employer: StaffUser
) -> None:
    theirs = PhoneDevice.objects.create(
        user=other_employer, name="backup", number="+31687654321", method="sms"
    )
    reauthenticate(staff_client, employer)

    assert staff_client.post(reverse("two_factor:phone_delete", args=[theirs.pk])).status_code == 404
    assert PhoneDevice.objects.filter(pk=theirs.pk).exists()


def test_reauthentication_opens_the_pages_and_returns_to_where_it_was_asked(
    staff_client: Client, employer: StaffUser
) -> None:
    wanted = reverse("two_factor:backup_tokens")
    asked = staff_client.get(wanted)["Location"]
    assert staff_client.get(asked).status_code == 200

    response = staff_client.post(
        REAUTH, {"password": STAFF_PASSWORD, "otp_token": code_of(employer), "next": wanted}
    )

    assert response.status_code == 302 and response["Location"] == wanted
    assert staff_client.post(wanted).status_code == 302
    assert StaticDevice.objects.get(user=employer).token_set.count() == 10
    assert staff_client.get(reverse("two_factor:phone_create")).status_code == 200


def test_reauthentication_does_not_send_elsewhere(staff_client: Client, employer: StaffUser) -> None:
    response = staff_client.post(
        REAUTH, {"password": STAFF_PASSWORD, "otp_token": code_of(employer), "next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("two_factor:profile")


def test_reauthentication_lasts_only_a_few_minutes(staff_client: Client, employer: StaffUser) -> None:
    reauthenticate(staff_client, employer)
    assert staff_client.get(reverse("two_factor:backup_tokens")).status_code == 200

    with time_machine.travel(dt.timedelta(seconds=settings.STAFF_REAUTH_SECONDS + 1)):
        assert staff_client.get(reverse("two_factor:backup_tokens"))["Location"].startswith(REAUTH)


@pytest.mark.parametrize("wrong", ["password", "code"])
def test_a_wrong_password_or_code_reauthenticates_nothing_and_counts(
    staff_client: Client, employer: StaffUser, wrong: str
) -> None:
    right = code_of(employer)
    if wrong == "password":
        response = reauthenticate(staff_client, employer, password="not the password")
    else:
        response = reauthenticate(staff_client, employer, code=str((int(right) + 1) % 1_000_000).zfill(6))

    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert StaffLoginGuard.objects.get(user=employer).failures == 1
    assert staff_client.get(reverse("two_factor:backup_tokens"))["Location"].startswith(REAUTH)


def test_a_changed_password_after_reauthentication_keeps_the_session(
    staff_client: Client, employer: StaffUser
) -> None:
    reauthenticate(staff_client, employer)
    new = "another long passphrase 77"

    response = staff_client.post(
        reverse("two_factor:password_change"),
        {"old_password": STAFF_PASSWORD, "new_password1": new, "new_password2": new},
    )

    assert response.status_code == 302
    employer.refresh_from_db()
    assert employer.check_password(new)
    assert staff_client.get(reverse("staff-home")).status_code == 200


# --- the lock ------------------------------------------------------------------------------------


def wrong_code(user: StaffUser) -> str:
    return str((int(code_of(user)) + 500_000) % 1_000_000).zfill(6)


def lock(user: StaffUser) -> None:
    device = TOTPDevice.objects.get(user=user)
    for _ in range(settings.STAFF_SECOND_FACTOR_MAX_FAILURES):
        assert verify_second_factor(user=user, device=device, token=wrong_code(user)) is Verdict.WRONG


def test_the_account_locks_at_the_limit_and_refuses_even_the_right_code(employer: StaffUser) -> None:
    device = TOTPDevice.objects.get(user=employer)
    lock(employer)

    assert locked_until(user=employer) is not None
    assert verify_second_factor(user=employer, device=device, token=code_of(employer)) is Verdict.LOCKED


def test_the_lock_times_out(employer: StaffUser) -> None:
    device = TOTPDevice.objects.get(user=employer)
    lock(employer)

    with time_machine.travel(dt.timedelta(minutes=settings.STAFF_SECOND_FACTOR_LOCK_MINUTES, seconds=1)):
        assert verify_second_factor(user=employer, device=device, token=code_of(employer)) is Verdict.VERIFIED
        assert StaffLoginGuard.objects.get(user=employer).failures == 0


def test_a_platform_admin_releases_the_lock_and_it_is_logged(
    employer: StaffUser, platform_admin: StaffUser, caplog: pytest.LogCaptureFixture
) -> None:
    device = TOTPDevice.objects.get(user=employer)
    lock(employer)
    admin_client = login_verified(Client(), platform_admin)

    with caplog.at_level(logging.WARNING):
        response = admin_client.post(
            reverse("admin:participants_staffuser_changelist"),
            {"action": "release_second_factor_lock", "_selected_action": [employer.pk]},
        )

    assert response.status_code == 302
    assert locked_until(user=employer) is None
    assert (
        f"staff user {employer.pk}: second-factor lock released by staff user {platform_admin.pk}"
        in caplog.text
    )
    assert verify_second_factor(user=employer, device=device, token=code_of(employer)) is Verdict.VERIFIED


def test_a_locked_account_is_sent_no_text_message(client: Client, employer: StaffUser) -> None:
    TOTPDevice.objects.filter(user=employer).update(name="totp")
    PhoneDevice.objects.create(user=employer, name="default", number="+31612345678", method="sms")
    phone = PhoneDevice.objects.get(user=employer)
    for _ in range(settings.STAFF_SECOND_FACTOR_MAX_FAILURES):
        verify_second_factor(user=employer, device=phone, token="000000")

    response = client.post(
        "/account/login/",
        {
            "login_view-current_step": "auth",
            "auth-username": employer.username,
            "auth-password": STAFF_PASSWORD,
        },
    )

    assert response.status_code == 200
    assert "locked" in response.content.decode()
    assert MemorySmsGateway.outbox == []


# --- what an admin does to someone else's credentials leaves a trace ---------------------------------


def test_an_admin_setting_someone_elses_password_reauthenticates_and_is_logged(
    platform_admin: StaffUser, employer: StaffUser, caplog: pytest.LogCaptureFixture
) -> None:
    admin_client = login_verified(Client(), platform_admin)
    path = reverse("admin:auth_user_password_change", args=[employer.pk])
    new = "chosen by the admin 4242"
    data = {"password1": new, "password2": new, "usable_password": "true"}

    assert admin_client.post(path, data)["Location"].startswith(REAUTH)
    employer.refresh_from_db()
    assert employer.check_password(STAFF_PASSWORD)

    reauthenticate(admin_client, platform_admin)
    with caplog.at_level(logging.WARNING):
        response = admin_client.post(path, data)

    assert response.status_code == 302
    employer.refresh_from_db()
    assert employer.check_password(new)
    assert f"staff user {platform_admin.pk} set the password of staff user {employer.pk}" in caplog.text
    # The new password alone logs nobody in: the second factor stayed the employer's.
    assert TOTPDevice.objects.filter(user=employer).exists()


def test_an_admin_removing_a_lost_device_is_logged(
    platform_admin: StaffUser, employer: StaffUser, caplog: pytest.LogCaptureFixture
) -> None:
    admin_client = login_verified(Client(), platform_admin)
    device = TOTPDevice.objects.get(user=employer)

    with caplog.at_level(logging.WARNING):
        admin_client.post(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"})

    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert f"staff user {platform_admin.pk} removed totpdevice {device.pk} of staff user {employer.pk}" in (
        caplog.text
    )


def test_the_admins_own_password_change_needs_reauthentication(platform_admin: StaffUser) -> None:
    admin_client = login_verified(Client(), platform_admin)

    assert admin_client.get(reverse("admin:password_change"))["Location"].startswith(REAUTH)
    reauthenticate(admin_client, platform_admin)
    assert admin_client.get(reverse("admin:password_change")).status_code == 200
