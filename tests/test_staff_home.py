"""Each staff role's start page and navigation, the staff footer, and the error pages (DEBUG too)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from participants.models import StaffUser
from tests.conftest import login_verified

PARTICIPANT_FOOTER = "Your employer never sees who takes part"
STAFF_FOOTER = "Preventicons for professionals."


def english(user: StaffUser) -> Client:
    return login_verified(Client(HTTP_ACCEPT_LANGUAGE="en"), user)


def test_the_employer_lands_on_a_page_with_the_import_the_invitations_and_the_reports(
    employer: StaffUser,
) -> None:
    page = english(employer).get("/staff/").content.decode()

    assert 'href="/staff/import/"' in page and 'href="/staff/invitations/"' in page
    assert 'href="/reports/"' in page
    assert 'href="/attestations/"' in page
    assert 'href="/admin/"' not in page
    assert STAFF_FOOTER in page and PARTICIPANT_FOOTER not in page
    assert "Not available yet" not in page


def test_the_platform_admin_finds_the_admin(platform_admin: StaffUser) -> None:
    page = english(platform_admin).get("/staff/").content.decode()

    assert 'href="/admin/"' in page and 'href="/staff/import/"' in page


def test_the_auditor_finds_the_organisations_they_audit(auditor: StaffUser) -> None:
    page = english(auditor).get("/staff/").content.decode()

    assert 'href="/notary/"' in page and "Not available yet" not in page
    assert 'href="/staff/import/"' not in page and 'href="/admin/"' not in page
    assert 'href="/account/two_factor/"' in page


def test_a_staff_page_refused_to_a_role_is_the_styled_403_with_the_staff_footer(employer: StaffUser) -> None:
    response = english(employer).get("/admin/")

    page = response.content.decode()
    assert response.status_code == 403
    assert "You have no access to this page" in page and 'href="/staff/"' in page
    assert STAFF_FOOTER in page and PARTICIPANT_FOOTER not in page


@pytest.mark.parametrize("debug", [False, True], ids=["production", "make run (DEBUG)"])
def test_a_missing_page_is_the_styled_404_never_django_s_list_of_url_patterns(
    debug: bool, settings: Any, db: Any
) -> None:
    settings.DEBUG = debug

    response = Client(HTTP_ACCEPT_LANGUAGE="nl").get("/no-such-page/at-all/?mark=k3y-fragment")

    page = response.content.decode()
    assert response.status_code == 404
    assert "Deze pagina bestaat niet" in page
    # Nothing of the address comes back, not even in the language switch.
    assert "no-such-page" not in page and "k3y-fragment" not in page
    for debug_text in ("URLconf", "admin/", "staff/import", "Page not found <span>"):
        assert debug_text not in page


def test_under_debug_a_view_s_own_404_page_is_left_alone(settings: Any, db: Any) -> None:
    settings.DEBUG = True

    # The enrolment pages answer an unknown visitor with their own 404 page, not an exception.
    response = Client(HTTP_ACCEPT_LANGUAGE="en").get("/enrol/")

    assert response.status_code == 404
    assert "This page does not exist" not in response.content.decode()


def test_under_debug_a_view_s_http404_is_the_styled_page(settings: Any, employer: StaffUser) -> None:
    settings.DEBUG = True

    # two-factor's QR view raises Http404 when no set-up is in progress.
    response = english(employer).get("/account/two_factor/qrcode/")

    assert response.status_code == 404
    assert "This page does not exist" in response.content.decode()


def test_the_500_page_renders_without_a_request() -> None:
    from django.template import loader

    page = loader.render_to_string("500.html")

    assert "Something went wrong on our side" in page or "Er ging bij ons iets mis" in page


def dutch_admin(user: StaffUser) -> Client:
    return login_verified(Client(HTTP_ACCEPT_LANGUAGE="nl"), user)


def test_the_admin_reads_dutch_apps_models_roles_and_columns(
    platform_admin: StaffUser, employer: StaffUser
) -> None:
    client = dutch_admin(platform_admin)

    index = client.get("/admin/").content.decode()
    staff = client.get("/admin/participants/staffuser/").content.decode()
    devices = client.get("/admin/otp_totp/totpdevice/").content.decode()

    for dutch in (
        "Deelnemers en organisaties",
        "Verwerkersovereenkomsten",
        "Authenticator-apps",
        "Back-upcodes",
    ):
        assert dutch in index
    for english in ("Participants", "TOTP devices", "Static devices", "Staff users"):
        assert english not in index
    # Roles by their Dutch names in the filter and the column; the groups keep the names the code checks.
    assert "werkgever (HR)" in staff and ">employer<" not in staff
    assert "Bevestigd" in devices and ">Confirmed<" not in devices


def test_the_admin_says_je(platform_admin: StaffUser) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=platform_admin)
    page = dutch_admin(platform_admin).get(f"/admin/otp_totp/totpdevice/{device.pk}/delete/").content.decode()

    assert "Weet je zeker dat je" in page
    assert "Weet u" not in page


def test_a_request_too_large_to_read_is_the_styled_400(employer: StaffUser, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = english(employer).post("/staff/import/", {"step": "confirm", "payload": "A" * 4096})

    assert response.status_code == 400
    assert "We could not read this request" in response.content.decode()


def test_the_casemanager_finds_the_dossiers(casemanager: StaffUser) -> None:
    page = english(casemanager).get("/staff/").content.decode()

    assert 'href="/dossiers/"' in page and "Not available yet: Dossiers" not in page
