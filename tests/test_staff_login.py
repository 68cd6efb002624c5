"""Staff login with a password and a second factor, the set-up of that factor, roles and the Django admin."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from participants.models import Organisation, Participant, ProcessingAgreement, StaffUser
from preventicons.roles import Role, check_organisation_access, organisation_of
from tests.conftest import ALL_DATABASES, STAFF_PASSWORD, login_verified, make_staff

LOGIN = "/account/login/"
SETUP = "/account/two_factor/setup/"


def current_code(device: TOTPDevice) -> str:
    """The code an authenticator app would show right now for this device."""
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
    return str(code).zfill(device.digits)


def submit_password(client: Client, username: str, password: str = STAFF_PASSWORD) -> Any:
    return client.post(
        LOGIN,
        {"login_view-current_step": "auth", "auth-username": username, "auth-password": password},
    )


def submit_code(client: Client, code: str) -> Any:
    return client.post(LOGIN, {"login_view-current_step": "token", "token-otp_token": code})


def is_verified_session(client: Client) -> bool:
    return DEVICE_ID_SESSION_KEY in client.session


def login_password_only(client: Client, user: StaffUser) -> Client:
    """A session that passed the password but not the second factor."""
    client.force_login(user)
    return client


# --- login ---------------------------------------------------------------------------------------


def test_password_and_totp_code_reach_the_staff_dashboard(client: Client, employer: StaffUser) -> None:
    response = submit_password(client, employer.username)
    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "token"
    assert not is_verified_session(client)

    response = submit_code(client, current_code(TOTPDevice.objects.get(user=employer)))

    assert response.status_code == 302
    assert response["Location"] == reverse("staff-home")
    assert is_verified_session(client)
    assert client.get(reverse("staff-home")).status_code == 200


def test_wrong_password_stays_on_the_password_step(client: Client, employer: StaffUser) -> None:
    response = submit_password(client, employer.username, "not the password")

    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "auth"
    assert response.context["form"].non_field_errors()
    assert "_auth_user_id" not in client.session


def test_wrong_code_leaves_the_session_logged_out(client: Client, employer: StaffUser) -> None:
    submit_password(client, employer.username)
    right = current_code(TOTPDevice.objects.get(user=employer))
    wrong = str((int(right) + 1) % 1_000_000).zfill(6)

    response = submit_code(client, wrong)

    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "token"
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("staff-home"))["Location"].startswith(LOGIN)


def test_a_code_cannot_be_used_twice(employer: StaffUser) -> None:
    device = TOTPDevice.objects.get(user=employer)
    code = current_code(device)
    first, second = Client(), Client()
    submit_password(first, employer.username)
    assert submit_code(first, code).status_code == 302

    submit_password(second, employer.username)
    response = submit_code(second, code)

    assert response.status_code == 200
    assert "_auth_user_id" not in second.session


def test_logging_out_closes_the_staff_pages(client: Client, employer: StaffUser) -> None:
    login_verified(client, employer)

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.get(reverse("staff-home"))["Location"].startswith(LOGIN)


def test_logout_refuses_a_get(client: Client, employer: StaffUser) -> None:
    login_verified(client, employer)

    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("staff-home")).status_code == 200


# --- a session with the password only ----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/staff/", "/admin/", "/account/two_factor/", "/account/two_factor/backup/tokens/"]
)
def test_password_only_session_is_sent_back_to_the_login(
    client: Client, platform_admin: StaffUser, path: str
) -> None:
    login_password_only(client, platform_admin)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_password_only_session_cannot_add_its_own_device_through_the_setup_wizard(
    client: Client, employer: StaffUser
) -> None:
    # two-factor's own SetupView only checks for an existing device on GET; driving the wizard by POST
    # from a password-only session would add a second device and come out verified.
    login_password_only(client, employer)

    response = client.post(SETUP, {"staff_setup_view-current_step": "welcome"})

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert TOTPDevice.objects.filter(user=employer).count() == 1
    assert not is_verified_session(client)


def test_setup_sends_a_verified_user_with_a_device_to_account_security(
    client: Client, employer: StaffUser
) -> None:
    login_verified(client, employer)

    response = client.get(SETUP)

    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor:profile")


# --- first login of staff without a second factor ------------------------------------------------


@pytest.fixture
def newcomer(organisation: Organisation) -> StaffUser:
    """Employer staff whose account was just made: a password, no second factor yet."""
    user = StaffUser.objects.create_user(
        username="hr-new", password=STAFF_PASSWORD, organisation=organisation
    )
    user.groups.add(Group.objects.get(name=Role.EMPLOYER.value))
    return user


def test_staff_without_a_device_is_sent_to_set_one_up(client: Client, newcomer: StaffUser) -> None:
    response = submit_password(client, newcomer.username)
    assert response.status_code == 302

    response = client.get(response["Location"])

    assert response.status_code == 302
    assert response["Location"] == SETUP
    assert not is_verified_session(client)


def test_setup_asks_for_an_authenticator_app_and_verifies_the_session(
    client: Client, newcomer: StaffUser
) -> None:
    submit_password(client, newcomer.username)
    assert client.get(SETUP).status_code == 200

    response = client.post(SETUP, {"staff_setup_view-current_step": "welcome"})
    # Only the authenticator app is offered as the first factor, so the choice of method is skipped.
    assert response.context["wizard"]["steps"].current == "generator"
    assert response.context["QR_URL"] == reverse("two_factor:qr")
    assert client.get(reverse("two_factor:qr"))["Content-Type"].startswith("image/svg+xml")
    key = base64.b32decode(response.context["secret_key"])
    code = str(totp(key)).zfill(6)

    response = client.post(SETUP, {"staff_setup_view-current_step": "generator", "generator-token": code})

    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor:setup_complete")
    assert TOTPDevice.objects.filter(user=newcomer, confirmed=True).count() == 1
    assert is_verified_session(client)
    assert client.get(reverse("two_factor:setup_complete")).status_code == 200
    assert client.get(reverse("staff-home")).status_code == 200


def test_setup_refuses_a_wrong_code(client: Client, newcomer: StaffUser) -> None:
    submit_password(client, newcomer.username)
    client.get(SETUP)
    response = client.post(SETUP, {"staff_setup_view-current_step": "welcome"})
    key = base64.b32decode(response.context["secret_key"])
    wrong = str((totp(key) + 1) % 1_000_000).zfill(6)

    response = client.post(SETUP, {"staff_setup_view-current_step": "generator", "generator-token": wrong})

    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "generator"
    assert not TOTPDevice.objects.filter(user=newcomer).exists()
    assert not is_verified_session(client)


def test_there_is_no_page_to_switch_two_factor_off(client: Client, employer: StaffUser) -> None:
    login_verified(client, employer)

    assert client.get("/account/two_factor/disable/").status_code == 404
    assert b"/disable/" not in client.get(reverse("two_factor:profile")).content


# --- roles and scope ---------------------------------------------------------------------------


def test_staff_dashboard_names_the_roles(client: Client, casemanager: StaffUser) -> None:
    login_verified(client, casemanager)

    response = client.get(reverse("staff-home"))

    assert Role.CASEMANAGER.label in response.content.decode()


def test_user_without_a_role_gets_403_on_the_staff_dashboard(client: Client, db: Any) -> None:
    user = StaffUser.objects.create_user(username="nobody", password=STAFF_PASSWORD)
    TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    login_verified(client, user)

    assert client.get(reverse("staff-home")).status_code == 403


def test_employer_is_scoped_to_its_organisation(
    employer: StaffUser, organisation: Organisation, other_organisation: Organisation
) -> None:
    assert organisation_of(employer) == organisation
    check_organisation_access(employer, organisation)
    with pytest.raises(PermissionDenied):
        check_organisation_access(employer, other_organisation)


def test_employer_without_an_organisation_has_no_scope(db: Any) -> None:
    stray = make_staff("hr-stray", Role.EMPLOYER)

    with pytest.raises(PermissionDenied):
        organisation_of(stray)


def test_staff_other_than_employers_have_no_organisation_scope(
    casemanager: StaffUser, auditor: StaffUser, platform_admin: StaffUser, organisation: Organisation
) -> None:
    for user in (casemanager, auditor, platform_admin):
        with pytest.raises(PermissionDenied):
            organisation_of(user)
    for user in (casemanager, auditor):
        with pytest.raises(PermissionDenied):
            check_organisation_access(user, organisation)
    check_organisation_access(platform_admin, organisation)


# --- who may use the Django admin ---------------------------------------------------------------


def test_platform_admin_with_both_factors_opens_the_admin(client: Client, platform_admin: StaffUser) -> None:
    login_verified(client, platform_admin)

    assert client.get("/admin/").status_code == 200


def test_superuser_opens_the_admin(client: Client, db: Any) -> None:
    root = StaffUser.objects.create_superuser(username="root", password=STAFF_PASSWORD)
    TOTPDevice.objects.create(user=root, name="default", confirmed=True)
    login_verified(client, root)

    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("persona", ["employer", "casemanager", "auditor"])
def test_other_staff_get_403_from_the_admin(
    client: Client, db: Any, persona: str, request: pytest.FixtureRequest
) -> None:
    login_verified(client, request.getfixturevalue(persona))

    assert client.get("/admin/").status_code == 403
    assert client.get("/admin/login/").status_code == 403
    assert client.get("/admin/participants/participant/").status_code == 403


def test_the_is_staff_flag_alone_opens_nothing(client: Client, employer: StaffUser) -> None:
    employer.is_staff = True
    employer.save()
    login_verified(client, employer)

    assert client.get("/admin/").status_code == 403


# Every store: the access log's list (casefiles) is among them.
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_platform_admin_opens_every_admin_list(client: Client, platform_admin: StaffUser) -> None:
    login_verified(client, platform_admin)

    for model in admin.site._registry:
        path = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(path).status_code == 200, path


def test_roles_are_not_edited_in_the_admin(client: Client, platform_admin: StaffUser) -> None:
    login_verified(client, platform_admin)

    assert Group not in admin.site._registry
    assert client.get("/admin/auth/group/").status_code == 404


# --- what the admin shows ----------------------------------------------------------------------


@pytest.fixture
def admin_client_verified(platform_admin: StaffUser) -> Client:
    return login_verified(Client(), platform_admin)


@pytest.fixture
def listed_participant(organisation: Organisation) -> Participant:
    participant = Participant(
        organisation=organisation,
        department=organisation.departments.first(),
        status=Participant.Status.ACTIVE,
        name="Jantine Verhoeven",
        email="jantine.verhoeven@example.nl",
        mobile="+31612345678",
        email_index="e" * 64,
        mobile_index="f" * 64,
        pseudonym="pseudo-7f3a9c",
    )
    participant.save()
    return participant


def test_participant_admin_shows_no_personal_data(
    admin_client_verified: Client, listed_participant: Participant
) -> None:
    stored = (
        Participant.objects.filter(pk=listed_participant.pk)
        .values("name", "email", "mobile", "pseudonym")
        .get()
    )
    secrets = [
        "Jantine",
        "Verhoeven",
        "jantine.verhoeven@example.nl",
        "612345678",
        "pseudo-7f3a9c",
        "e" * 64,
        "f" * 64,
        *(str(value) for value in stored.values()),
    ]
    pages = [
        "/admin/participants/participant/",
        f"/admin/participants/participant/{listed_participant.pk}/change/",
        f"/admin/participants/participant/{listed_participant.pk}/history/",
    ]
    for page in pages:
        response = admin_client_verified.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert str(listed_participant.pk) in html
        for secret in secrets:
            assert secret not in html, (page, secret)


def test_participant_admin_is_read_only(
    admin_client_verified: Client, listed_participant: Participant
) -> None:
    base = f"/admin/participants/participant/{listed_participant.pk}"

    assert admin_client_verified.get("/admin/participants/participant/add/").status_code == 403
    assert admin_client_verified.get(f"{base}/delete/").status_code == 403
    response = admin_client_verified.post(f"{base}/change/", {"status": "stopped"})
    assert response.status_code == 403
    listed_participant.refresh_from_db()
    assert listed_participant.status == Participant.Status.ACTIVE


def test_participant_admin_refuses_a_filter_on_a_blind_index(
    admin_client_verified: Client, listed_participant: Participant
) -> None:
    response = admin_client_verified.get("/admin/participants/participant/?email_index__startswith=e")

    assert response.status_code == 400


def test_participant_admin_neither_filters_by_nor_shows_the_sealed_status(
    admin_client_verified: Client, listed_participant: Participant
) -> None:
    # Whether someone declined, paused or stopped is sealed and personal: the admin has no filter for it.
    response = admin_client_verified.get("/admin/participants/participant/?status__exact=active")
    assert response.status_code == 400

    listing = admin_client_verified.get("/admin/participants/participant/")
    assert listing.status_code == 200
    assert str(listed_participant.pk) in listing.content.decode()
    assert "column-status" not in listing.content.decode()


def test_admin_records_an_agreement_without_showing_the_signer(
    admin_client_verified: Client, db: Any
) -> None:
    organisation = Organisation.objects.create(name="Transport Oost", sector="transport")
    document = b"%PDF-1.7 signed processing agreement"

    response = admin_client_verified.post(
        "/admin/participants/processingagreement/add/",
        {
            "organisation": organisation.pk,
            "signed_on": "2026-02-01",
            "signed_by": "Wilhelmina Oosterhuis",
            "document": SimpleUploadedFile("agreement.pdf", document, content_type="application/pdf"),
        },
    )

    assert response.status_code == 302
    agreement = ProcessingAgreement.objects.get(organisation=organisation)
    assert agreement.party == ProcessingAgreement.Party.ORGANISATION
    assert agreement.signer == "Wilhelmina Oosterhuis"
    assert agreement.document_sha256 == hashlib.sha256(document).hexdigest()
    for page in (
        "/admin/participants/processingagreement/",
        f"/admin/participants/processingagreement/{agreement.pk}/change/",
    ):
        html = admin_client_verified.get(page).content.decode()
        assert "Oosterhuis" not in html
        assert agreement.document_sha256 in html or page.endswith("agreement/")


def test_admin_refuses_an_agreement_without_a_party_or_from_the_future(
    admin_client_verified: Client, db: Any
) -> None:
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    response = admin_client_verified.post(
        "/admin/participants/processingagreement/add/",
        {
            "signed_on": tomorrow.isoformat(),
            "signed_by": "Someone",
            "document": SimpleUploadedFile("agreement.pdf", b"signed", content_type="application/pdf"),
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "__all__" in errors and "signed_on" in errors
    assert not ProcessingAgreement.objects.exists()


def test_a_recorded_agreement_cannot_be_changed_or_deleted(
    admin_client_verified: Client, organisation: Organisation
) -> None:
    agreement = ProcessingAgreement.objects.get(organisation=organisation)
    base = f"/admin/participants/processingagreement/{agreement.pk}"

    response = admin_client_verified.post(f"{base}/change/", {"signed_on": "2020-01-01"})

    assert response.status_code == 403
    assert admin_client_verified.get(f"{base}/delete/").status_code == 403
    agreement.refresh_from_db()
    assert agreement.signed_on == dt.date(2026, 1, 5)


def staff_form(**fields: Any) -> dict[str, Any]:
    data = {
        "username": "new-staff",
        "usable_password": "true",
        "password1": "a long enough password 42",
        "password2": "a long enough password 42",
    }
    data.update(fields)
    return data


def group_id(role: Role) -> int:
    return Group.objects.get(name=role.value).pk


def test_admin_creates_employer_staff_of_an_organisation(
    admin_client_verified: Client, organisation: Organisation
) -> None:
    response = admin_client_verified.post(
        "/admin/participants/staffuser/add/",
        staff_form(groups=[group_id(Role.EMPLOYER)], organisation=organisation.pk),
    )

    assert response.status_code == 302
    user = StaffUser.objects.get(username="new-staff")
    assert organisation_of(user) == organisation
    assert not user.is_staff


@pytest.mark.parametrize(
    ("roles", "with_organisation"),
    [
        ([Role.EMPLOYER], False),
        ([Role.EMPLOYER, Role.CASEMANAGER], True),
        ([Role.CASEMANAGER], True),
    ],
)
def test_admin_refuses_staff_roles_that_do_not_fit(
    admin_client_verified: Client, organisation: Organisation, roles: list[Role], with_organisation: bool
) -> None:
    fields: dict[str, Any] = {"groups": [group_id(role) for role in roles]}
    if with_organisation:
        fields["organisation"] = organisation.pk

    response = admin_client_verified.post("/admin/participants/staffuser/add/", staff_form(**fields))

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors()
    assert not StaffUser.objects.filter(username="new-staff").exists()


def test_staff_form_shows_no_is_staff_or_permission_fields(
    admin_client_verified: Client, employer: StaffUser
) -> None:
    response = admin_client_verified.get(f"/admin/participants/staffuser/{employer.pk}/change/")

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "organisation" in form.fields and "groups" in form.fields
    assert "is_staff" not in form.fields and "user_permissions" not in form.fields


def test_admin_sees_devices_but_no_key_or_backup_code(
    admin_client_verified: Client, employer: StaffUser
) -> None:
    device = TOTPDevice.objects.get(user=employer)
    backup = StaticDevice.objects.create(user=employer, name="backup")
    token = backup.token_set.create(token="k3yc0d3x")

    pages = [
        f"/admin/otp_totp/totpdevice/{device.pk}/change/",
        f"/admin/otp_static/staticdevice/{backup.pk}/change/",
        f"/admin/otp_static/staticdevice/{backup.pk}/delete/",
    ]
    for page in pages:
        html = admin_client_verified.get(page).content.decode()
        assert device.key not in html
        assert token.token not in html
    assert admin_client_verified.get("/admin/otp_totp/totpdevice/add/").status_code == 403


def test_admin_deletes_a_lost_device_and_the_owner_sets_up_a_new_one(
    admin_client_verified: Client, employer: StaffUser
) -> None:
    device = TOTPDevice.objects.get(user=employer)

    response = admin_client_verified.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=employer).exists()
    owner = Client()
    submit_password(owner, employer.username)
    assert owner.get(reverse("staff-home"))["Location"] == SETUP


# --- a stranger's request for a later step gets the password form, never a 500 ---------------------


@pytest.mark.parametrize(
    "data",
    [
        {"challenge_device": "otp_totp.totpdevice/1"},
        {"login_view-current_step": "auth", "challenge_device": "phonenumber.phonedevice/1"},
        {"login_view-current_step": "token", "challenge_device": ""},
        {"login_view-current_step": "token", "token-otp_token": "123456"},
        {"login_view-current_step": "backup", "backup-otp_token": "k3yc0d3x"},
        {"login_view-current_step": "auth", "wizard_goto_step": "token"},
        {"login_view-current_step": "auth", "wizard_goto_step": "backup"},
    ],
)
def test_a_later_step_before_the_password_gets_the_password_form(
    client: Client, employer: StaffUser, data: dict[str, str]
) -> None:
    # two-factor itself raised KeyError: 'token' (a 500) for challenge_device before the password step.
    response = client.post(LOGIN, data)

    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "auth"
    assert "_auth_user_id" not in client.session


def test_a_post_without_the_wizard_fields_is_a_bad_request(client: Client, db: Any) -> None:
    assert client.post(LOGIN, {"auth-username": "x"}).status_code == 400
