"""The import page: who may use it, what it shows, and that an upload is never stored."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from participants import enrolment, invitations, retention
from participants.account import stop_participation
from participants.importing import import_address_list
from participants.models import (
    Department,
    Invitation,
    InvitationSchedule,
    Organisation,
    Participant,
    StaffUser,
)
from preventicons import messaging
from preventicons.gateways import MemorySmsGateway
from preventicons.models import OutboundMessage
from preventicons.roles import Role
from tests.conftest import ALL_DATABASES, login_verified, make_organisation, make_staff
from tests.participants.people import decline_through_the_batch

URL = "/staff/import/"
HEADER = "naam;e-mail;mobiel;afdeling"
GOOD_ROWS = ("Jan Jansen;jan@example.nl;06-12345678;Logistiek", "Kees de Boer;kees@example.nl;0611223344;IT")


def csv_upload(*rows: str, name: str = "adressen.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, "\r\n".join([HEADER, *rows]).encode(), content_type="text/csv")


def as_user(user: StaffUser) -> Client:
    return login_verified(Client(HTTP_ACCEPT_LANGUAGE="en"), user)


PAYLOAD = re.compile(r'name="payload" value="([^"]*)"')


def preview(client: Client, upload: Any, **fields: Any) -> Any:
    """Upload the list: the page checks it and shows what importing it would do."""
    return client.post(URL, {"address_list": upload, **fields})


def confirm(client: Client, previewed: Any) -> Any:
    """Press "Import this list" on a preview page."""
    payload = PAYLOAD.search(previewed.content.decode())
    assert payload is not None, "the page offers no confirmation"
    return client.post(URL, {"step": "confirm", "payload": payload[1]})


def post(client: Client, upload: Any, **fields: Any) -> Any:
    """What an employer does: upload, and confirm when the page shows a preview (else its answer)."""
    previewed = preview(client, upload, **fields)
    if previewed.status_code != 200 or PAYLOAD.search(previewed.content.decode()) is None:
        return previewed
    return confirm(client, previewed)


def test_the_url_name_is_participants_import() -> None:
    assert reverse("participants:import") == URL


def test_employer_sees_the_form_for_their_own_organisation(employer: StaffUser) -> None:
    response = as_user(employer).get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "You are importing the address list of Zorggroep Noord." in page
    assert 'name="organisation"' not in page
    assert 'type="file"' in page and 'enctype="multipart/form-data"' in page
    assert response["Cache-Control"].startswith("max-age=0")


def test_employer_imports_their_list_and_sees_no_counts_that_could_reveal_participation(
    employer: StaffUser, organisation: Organisation
) -> None:
    client = as_user(employer)
    response = post(client, csv_upload(*GOOD_ROWS), full_list="on")
    assert response.status_code == 302 and response["Location"] == URL
    assert Participant.objects.filter(organisation=organisation).count() == 2
    page = client.get(URL).content.decode()
    assert "The list with 2 employees has been read and saved encrypted." in page
    assert "will receive no more messages" in page
    assert "new employee" not in page and "updated" not in page
    assert "Importing sends nothing yet" in page
    assert f'action="{reverse("participants:send-invitations")}"' in page
    # The result is shown once, not again on the next visit.
    assert "has been read" not in client.get(URL).content.decode()


def test_bad_rows_are_listed_with_their_lines_and_nothing_is_written(
    employer: StaffUser, organisation: Organisation
) -> None:
    departments = Department.objects.count()
    response = post(
        as_user(employer),
        csv_upload(GOOD_ROWS[0], "Piet;piet@;0687654321;Care", "=SUM(A1);sum@example.nl;020-1234567;Care"),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "The list was not imported: 3 problems" in page
    assert "<strong>Line 3:</strong> The e-mail address is not valid." in page
    assert "<strong>Line 4:</strong> The name starts with “=”." in page
    assert "<strong>Line 4:</strong> This is a landline number" in page
    assert Participant.objects.count() == 0
    assert Department.objects.count() == departments


def test_a_file_level_problem_is_shown_without_a_line(employer: StaffUser) -> None:
    response = post(as_user(employer), SimpleUploadedFile("leeg.csv", b"", content_type="text/csv"))
    page = response.content.decode()
    # Django's own check comes first for a zero-byte upload.
    assert "The submitted file is empty." in page
    response = post(
        as_user(employer), SimpleUploadedFile("kop.csv", HEADER.encode(), content_type="text/csv")
    )
    assert "The file has a header line but no employees." in response.content.decode()
    assert "Line " not in response.content.decode()


@pytest.mark.parametrize("persona", ["casemanager", "auditor"])
def test_other_roles_are_refused(
    persona: str, request: pytest.FixtureRequest, organisation: Organisation
) -> None:
    user: StaffUser = request.getfixturevalue(persona)
    client = as_user(user)
    assert client.get(URL).status_code == 403
    assert post(client, csv_upload(*GOOD_ROWS), organisation=organisation.pk).status_code == 403
    assert Participant.objects.count() == 0


def test_anonymous_and_password_only_visitors_are_sent_to_the_login(employer: StaffUser) -> None:
    login = reverse("two_factor:login")
    assert Client().get(URL)["Location"].startswith(login)
    client = Client()
    client.force_login(employer)
    response = post(client, csv_upload(*GOOD_ROWS))
    assert response.status_code == 302 and response["Location"].startswith(login)
    assert Participant.objects.count() == 0


def test_employer_of_another_organisation_cannot_import_into_this_one(
    other_employer: StaffUser, organisation: Organisation, other_organisation: Organisation
) -> None:
    response = post(as_user(other_employer), csv_upload(*GOOD_ROWS), organisation=organisation.pk)
    assert response.status_code == 403
    assert Participant.objects.count() == 0
    # Without naming an organisation, their list goes to their own organisation only.
    post(as_user(other_employer), csv_upload(*GOOD_ROWS))
    assert Participant.objects.filter(organisation=organisation).count() == 0
    assert Participant.objects.filter(organisation=other_organisation).count() == 2


def test_admin_chooses_the_organisation_and_sees_the_counts(
    platform_admin: StaffUser, organisation: Organisation, other_organisation: Organisation
) -> None:
    client = as_user(platform_admin)
    page = client.get(URL).content.decode()
    assert '<select name="organisation"' in page
    assert "Zorggroep Noord" in page and "Bouwbedrijf Zuid" in page

    missing = post(client, csv_upload(*GOOD_ROWS))
    assert missing.status_code == 200 and "This field is required." in missing.content.decode()
    assert Participant.objects.count() == 0

    assert post(client, csv_upload(*GOOD_ROWS), organisation=organisation.pk).status_code == 302
    assert Participant.objects.filter(organisation=organisation).count() == 2
    page = client.get(URL).content.decode()
    assert "Organisation: Zorggroep Noord" in page
    assert "2 new employees" in page and "0 employees updated" in page
    assert f'name="organisation" value="{organisation.pk}"' in page

    post(
        client,
        csv_upload(GOOD_ROWS[0].replace("Jan Jansen", "Jan Jansen-Smit")),
        organisation=organisation.pk,
        full_list="on",
    )
    page = client.get(URL).content.decode()
    assert "1 employee updated" in page and "1 employee no longer on the list" in page


def test_without_an_agreement_the_page_says_so_and_nothing_is_written(db: Any) -> None:
    unsigned = make_organisation("Transport Oost", "logistiek", signed=False)
    hr = make_staff("hr-oost", Role.EMPLOYER, unsigned)
    response = post(as_user(hr), csv_upload(*GOOD_ROWS))
    assert response.status_code == 200
    assert "No signed processing agreement is recorded for this organisation." in response.content.decode()
    assert Participant.objects.count() == 0
    assert not Department.objects.filter(organisation=unsigned, name="Logistiek").exists()


def test_a_six_megabyte_upload_is_refused_with_a_clear_message(employer: StaffUser) -> None:
    big = SimpleUploadedFile(
        "groot.csv", HEADER.encode() + b"\r\n" + b"x" * (6 * 1024 * 1024), content_type="text/csv"
    )
    response = post(as_user(employer), big)
    assert response.status_code == 200
    assert (
        "The file is larger than 5 MB. Split the list or remove unused columns." in response.content.decode()
    )
    assert Participant.objects.count() == 0


def test_a_file_just_over_the_cap_but_within_the_request_limit_is_refused_too(employer: StaffUser) -> None:
    data = HEADER.encode() + b"\r\n" + b"x" * (5 * 1024 * 1024)
    response = post(as_user(employer), SimpleUploadedFile("groot.csv", data, content_type="text/csv"))
    assert "The file is larger than 5 MB." in response.content.decode()


def test_uploads_are_handled_in_memory_only() -> None:
    from django.conf import settings

    assert settings.FILE_UPLOAD_HANDLERS == ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE >= settings.ADDRESS_LIST_MAX_BYTES


def three_megabyte_list() -> SimpleUploadedFile:
    # Over Django's default 2.5 MB in-memory threshold, above which its default handlers spool to disk.
    rows = [
        f"Medewerker {i};m{i}@example.nl;06{20000000 + i:08d};" + "Afdeling" + " " * 180
        for i in range(15_000)
    ]
    upload = csv_upload(*rows)
    assert upload.size is not None and upload.size > 3 * 1024 * 1024
    return upload


def test_a_large_upload_is_read_in_memory_and_imported(
    employer: StaffUser, organisation: Organisation
) -> None:
    response = post(as_user(employer), three_megabyte_list())
    assert response.status_code == 302
    assert Participant.objects.filter(organisation=organisation).count() == 15_000


def test_the_page_refuses_an_upload_that_was_spooled_to_disk(employer: StaffUser, settings: Any) -> None:
    # Should someone bring back Django's default handlers, the page fails loudly instead of importing.
    settings.FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.TemporaryFileUploadHandler"]
    with pytest.raises(ImproperlyConfigured):
        post(as_user(employer), csv_upload(*GOOD_ROWS))
    assert Participant.objects.count() == 0


def test_without_the_send_invitations_url_the_page_explains_in_text(
    employer: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from participants.views import importing as views

    monkeypatch.setattr(views, "_send_invitations_url", lambda: None)
    client = as_user(employer)
    post(client, csv_upload(*GOOD_ROWS))
    page = client.get(URL).content.decode()
    assert "Invitations go out only when you use “Send invitations”." in page
    assert "send/" not in page


# --- re-importing after someone stopped or declined (an attack by the employer) ---------------------------


LIST = (
    "Anna Smit;anna@example.nl;0611000001;Zorg",
    "Bram Vos;bram@example.nl;0611000002;Zorg",
    "Cees Bos;cees@example.nl;0611000003;IT",
    "Dirk Mol;dirk@example.nl;0611000004;IT",
)
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def _what_the_employer_sees(client: Client, organisation: Organisation) -> list[str]:
    """Preview and import the unchanged list, read the result, press "send invitations": every page."""
    previewed = preview(client, csv_upload(*LIST), full_list="on")
    imported = confirm(client, previewed)
    result = client.get(URL)
    sent = client.post(reverse("participants:send-invitations"), {"next": URL}, follow=True)
    return [
        CSRF.sub("", response.content.decode()).replace(organisation.name, "ORGANISATION")
        for response in (previewed, imported, result, sent)
    ] + [imported["Location"]]


def _decline_with_the_sms_code(participant: Participant) -> None:
    invitation = Invitation.objects.filter(participant=participant).latest("expires_at")
    assert enrolment.request_link_code(invitation=invitation)
    messaging.send_due_messages()
    code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"])
    assert code and enrolment.verify_link_code(invitation=invitation, code=code.group(1))
    assert decline_through_the_batch(invitation)


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("anonymised", [False, True], ids=["decliner kept", "decliner anonymised"])
def test_a_reimport_and_send_after_a_stop_and_a_decline_looks_like_one_where_nobody_left(
    organisation: Organisation, employer: StaffUser, platform_admin: StaffUser, anonymised: bool
) -> None:
    control = make_organisation("Controle BV")
    control_employer = make_staff("hr-controle", Role.EMPLOYER, control)
    with time_machine.travel(dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        for user in (employer, control_employer):
            client = as_user(user)
            post(client, csv_upload(*LIST), full_list="on")
            client.post(reverse("participants:send-invitations"), {"next": URL})
        invitations.send_due_invitations()
        messaging.send_due_messages()
        clock.shift(dt.timedelta(days=1))

        people = {p.email: p for p in Participant.objects.filter(organisation=organisation)}
        stopper = people["cees@example.nl"]
        Participant.objects.filter(pk=stopper.pk).set_state(status="active")
        stop_participation(participant=Participant.objects.get(pk=stopper.pk))
        _decline_with_the_sms_code(people["bram@example.nl"])
        if anonymised:
            # What the nightly anonymisation does to a decliner: nothing of the contact data stays.
            retention.anonymise_participants(participant_ids=[people["bram@example.nl"].pk])
            assert Participant.objects.get(pk=people["bram@example.nl"].pk).email is None
        schedules, links = InvitationSchedule.objects.count(), Invitation.objects.count()
        queued = set(OutboundMessage.objects.values_list("key_hash", flat=True))

        seen = _what_the_employer_sees(as_user(employer), organisation)
        seen_in_control = _what_the_employer_sees(as_user(control_employer), control)
        invitations.send_due_invitations()

        assert seen == seen_in_control
        # Nobody new: no schedule, no link, no message, and nobody added for the one who stopped.
        assert (InvitationSchedule.objects.count(), Invitation.objects.count()) == (schedules, links)
        assert set(OutboundMessage.objects.values_list("key_hash", flat=True)) == queued
        assert Participant.objects.filter(organisation=organisation).count() == 4

        # The platform admin's counts do not tell either.
        admin_counts = [
            import_address_list(
                organisation=org,
                data="\r\n".join([HEADER, *LIST]).encode(),
                full_list=True,
                by=platform_admin,
            )
            for org in (organisation, control)
        ]
        assert admin_counts[0] == admin_counts[1]
        assert invitations.send_invitations(organisation=organisation) == 0
