"""Casemanagers linked to organisations, and the live identity a dossier's casemanager may open."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from participants.agreements import AgreementMissing, record_agreement
from participants.casemanagers import (
    casemanagers_serving,
    is_serving,
    link_casemanager,
    staff_display_names,
    unlink_casemanager,
)
from participants.livecontact import live_identity, name_parts
from participants.models import CasemanagerLink, Organisation, Participant, StaffUser
from preventicons.crypto import new_pseudonym
from preventicons.roles import Role
from tests.conftest import login_verified, make_staff
from tests.factories import ParticipantFactory, persona

pytestmark = pytest.mark.usefixtures("english")


def sign(casemanager: StaffUser) -> StaffUser:
    record_agreement(
        casemanager=casemanager, signed_on=dt.date(2026, 2, 1), signer="A. Jansen", document=b"signed"
    )
    return casemanager


@pytest.fixture
def signed_casemanager(casemanager: StaffUser) -> StaffUser:
    return sign(casemanager)


# --- linking -------------------------------------------------------------------------------------------


def test_linking_a_user_without_the_casemanager_role_is_refused_and_writes_nothing(
    organisation: Organisation, auditor: StaffUser
) -> None:
    with pytest.raises(ValidationError):
        link_casemanager(organisation=organisation, casemanager=auditor)
    assert not CasemanagerLink.objects.exists()


def test_linking_a_casemanager_without_an_agreement_is_refused_and_writes_nothing(
    organisation: Organisation, casemanager: StaffUser
) -> None:
    with pytest.raises(AgreementMissing):
        link_casemanager(organisation=organisation, casemanager=casemanager)
    assert not CasemanagerLink.objects.exists()
    assert casemanagers_serving(organisation.pk) == []


def test_linking_twice_returns_the_existing_link(
    organisation: Organisation, signed_casemanager: StaffUser
) -> None:
    first = link_casemanager(
        organisation=organisation, casemanager=signed_casemanager, on=dt.date(2026, 3, 1)
    )
    second = link_casemanager(organisation=organisation, casemanager=signed_casemanager)

    assert second.pk == first.pk
    assert second.linked_on == dt.date(2026, 3, 1)
    assert CasemanagerLink.objects.count() == 1


def test_a_linked_casemanager_serves_the_organisation(
    organisation: Organisation, signed_casemanager: StaffUser
) -> None:
    link_casemanager(organisation=organisation, casemanager=signed_casemanager)

    assert casemanagers_serving(organisation.pk) == [signed_casemanager.pk]
    assert is_serving(casemanager_id=signed_casemanager.pk, organisation_id=organisation.pk)


def test_serving_lists_only_active_linked_casemanagers_with_role_and_agreement_of_that_organisation(
    organisation: Organisation, other_organisation: Organisation
) -> None:
    serving = [sign(make_staff(f"cm-{n}", Role.CASEMANAGER)) for n in range(2)]
    deactivated = sign(make_staff("cm-left", Role.CASEMANAGER))
    lost_role = sign(make_staff("cm-now-auditor", Role.CASEMANAGER))
    unlinked = sign(make_staff("cm-unlinked", Role.CASEMANAGER))
    elsewhere = sign(make_staff("cm-elsewhere", Role.CASEMANAGER))
    never_linked = sign(make_staff("cm-never", Role.CASEMANAGER))
    for user in [*serving, deactivated, lost_role, unlinked]:
        link_casemanager(organisation=organisation, casemanager=user)
    link_casemanager(organisation=other_organisation, casemanager=elsewhere)

    deactivated.is_active = False
    deactivated.save()
    lost_role.groups.clear()
    lost_role.groups.add(Group.objects.get(name=Role.AUDITOR.value))
    assert unlink_casemanager(organisation=organisation, casemanager=unlinked)

    assert casemanagers_serving(organisation.pk) == sorted(user.pk for user in serving)
    assert casemanagers_serving(other_organisation.pk) == [elsewhere.pk]
    for user in (deactivated, lost_role, unlinked, elsewhere, never_linked):
        assert not is_serving(casemanager_id=user.pk, organisation_id=organisation.pk), user.username


def test_unlinking_what_is_not_linked_is_harmless(organisation: Organisation, casemanager: StaffUser) -> None:
    assert not unlink_casemanager(organisation=organisation, casemanager=casemanager)


def test_display_names_are_the_full_name_or_else_the_username(db: object) -> None:
    named = make_staff("cm-named", Role.CASEMANAGER)
    named.first_name, named.last_name = "Anna", "de Boer"
    named.save()
    plain = make_staff("cm-plain", Role.CASEMANAGER)

    assert staff_display_names([named.pk, plain.pk, 999_999]) == {
        named.pk: "Anna de Boer",
        plain.pk: "cm-plain",
    }
    assert staff_display_names([]) == {}


# --- the admin --------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(platform_admin: StaffUser) -> Client:
    return login_verified(Client(), platform_admin)


def test_admin_add_form_refuses_a_casemanager_without_an_agreement(
    admin_client: Client, organisation: Organisation, casemanager: StaffUser
) -> None:
    response = admin_client.post(
        reverse("admin:participants_casemanagerlink_add"),
        {"organisation": organisation.pk, "casemanager": casemanager.pk},
    )

    assert response.status_code == 200
    assert "No signed processing agreement is recorded for this casemanager" in response.content.decode()
    assert not CasemanagerLink.objects.exists()


def test_admin_add_form_links_a_signed_casemanager(
    admin_client: Client, organisation: Organisation, signed_casemanager: StaffUser
) -> None:
    response = admin_client.post(
        reverse("admin:participants_casemanagerlink_add"),
        {"organisation": organisation.pk, "casemanager": signed_casemanager.pk},
    )

    assert response.status_code == 302
    assert casemanagers_serving(organisation.pk) == [signed_casemanager.pk]


def test_admin_add_form_offers_only_casemanagers(
    admin_client: Client, organisation: Organisation, casemanager: StaffUser, auditor: StaffUser
) -> None:
    response = admin_client.get(reverse("admin:participants_casemanagerlink_add"))

    choices = response.context["adminform"].form.fields["casemanager"].queryset
    assert list(choices) == [casemanager]


def test_admin_delete_unlinks(
    admin_client: Client, organisation: Organisation, signed_casemanager: StaffUser
) -> None:
    link = link_casemanager(organisation=organisation, casemanager=signed_casemanager)

    response = admin_client.post(
        reverse("admin:participants_casemanagerlink_delete", args=[link.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert casemanagers_serving(organisation.pk) == []


# --- the live identity ------------------------------------------------------------------------------------


def active(organisation: Organisation, **fields: object) -> Participant:
    return ParticipantFactory.create(
        organisation=organisation,
        status=Participant.Status.ACTIVE,
        name="Anne-Marie van der Berg",
        email_address="a.berg@werk.example.nl",
        mobile_number="+31612345678",
        **fields,
    )


def test_the_right_pairing_gives_the_chosen_channels_address(organisation: Organisation) -> None:
    participant = active(organisation)
    pseudonym = participant.pseudonym or ""

    by_phone = live_identity(participant_id=participant.pk, pseudonym=pseudonym, channel="phone")
    by_email = live_identity(participant_id=participant.pk, pseudonym=pseudonym, channel="email")

    assert by_phone is not None and by_email is not None
    assert (by_phone.name, by_phone.channel, by_phone.address) == (
        "Anne-Marie van der Berg",
        "phone",
        "+31612345678",
    )
    # Never the address the employer listed: the mobile number instead (the help page says so).
    assert (by_email.channel, by_email.address, by_email.phone_instead) == ("email", "", "+31612345678")


def test_a_wrong_pseudonym_or_an_unknown_participant_gives_nothing(organisation: Organisation) -> None:
    participant = active(organisation)
    someone_else = persona("active", organisation)

    assert live_identity(participant_id=participant.pk, pseudonym=new_pseudonym(), channel="email") is None
    assert live_identity(participant_id=participant.pk, pseudonym="", channel="email") is None
    assert (
        live_identity(participant_id=participant.pk, pseudonym=someone_else.pseudonym or "", channel="email")
        is None
    )
    assert (
        live_identity(participant_id=uuid.uuid4(), pseudonym=participant.pseudonym or "", channel="email")
        is None
    )


@pytest.mark.parametrize("status", [Participant.Status.INACTIVE, Participant.Status.STOPPED])
def test_a_participant_who_is_not_active_gives_nothing(organisation: Organisation, status: str) -> None:
    participant = active(organisation)
    pseudonym = participant.pseudonym or ""
    participant.status = status
    participant.save(update_fields=["status"])

    assert live_identity(participant_id=participant.pk, pseudonym=pseudonym, channel="phone") is None


def test_a_stopped_participant_gives_nothing(organisation: Organisation) -> None:
    participant = active(organisation)
    pseudonym = participant.pseudonym or ""
    Participant.objects.filter(pk=participant.pk).set_state(**Participant.shredded())

    assert live_identity(participant_id=participant.pk, pseudonym=pseudonym, channel="email") is None


def test_the_private_address_whatever_the_weekly_channel_and_never_the_employers(
    organisation: Organisation,
) -> None:
    chose_private = active(
        organisation,
        weekly_channel=Participant.WeeklyChannel.PRIVATE_EMAIL,
        private_email="anne@thuis.example.nl",
    )
    chose_sms = ParticipantFactory.create(
        organisation=organisation,
        status=Participant.Status.ACTIVE,
        weekly_channel=Participant.WeeklyChannel.SMS,
        private_email="kees@thuis.example.nl",
        email_address="kees@werk.example.nl",
    )

    private = live_identity(
        participant_id=chose_private.pk, pseudonym=chose_private.pseudonym or "", channel="email"
    )
    work = live_identity(participant_id=chose_sms.pk, pseudonym=chose_sms.pseudonym or "", channel="email")

    assert private is not None and private.address == "anne@thuis.example.nl"
    assert work is not None and (work.address, work.phone_instead) == ("kees@thuis.example.nl", "")


def test_an_address_the_participant_gave_in_place_of_the_listed_one_is_theirs(
    organisation: Organisation,
) -> None:
    participant = active(organisation)
    participant.set_email("anne.berg@thuis.example.nl")  # corrected from the account, both factors proven
    participant.save()

    found = live_identity(
        participant_id=participant.pk, pseudonym=participant.pseudonym or "", channel="email"
    )

    assert found is not None and found.address == "anne.berg@thuis.example.nl"


def test_a_channel_without_an_address_still_gives_the_name(organisation: Organisation) -> None:
    participant = ParticipantFactory.create(
        organisation=organisation, status=Participant.Status.ACTIVE, name="Kees Smit", mobile_number=None
    )

    found = live_identity(
        participant_id=participant.pk, pseudonym=participant.pseudonym or "", channel="phone"
    )

    assert found is not None
    assert (found.name, found.address) == ("Kees Smit", "")


def test_the_live_identity_names_nobody_in_its_repr_or_the_log(
    organisation: Organisation, caplog: pytest.LogCaptureFixture
) -> None:
    participant = active(organisation)
    with caplog.at_level(logging.DEBUG):
        found = live_identity(
            participant_id=participant.pk, pseudonym=participant.pseudonym or "", channel="email"
        )

    assert found is not None
    for secret in ("Berg", "a.berg@werk.example.nl", participant.pseudonym or "-"):
        assert secret not in repr(found)
        assert secret not in caplog.text


def test_an_unknown_channel_is_a_programming_error(organisation: Organisation) -> None:
    with pytest.raises(ValueError, match="channel"):
        live_identity(participant_id=uuid.uuid4(), pseudonym="x", channel="fax")


@pytest.mark.parametrize(
    ("name", "first_names", "last_names"),
    [
        ("Anne-Marie van der Berg", ("Anne", "Marie"), ("Berg",)),
        ("Jan de Vries", ("Jan",), ("Vries",)),
        ("Kees Smit", ("Kees",), ("Smit",)),
        ("Pieter Jansen-de Boer", ("Pieter",), ("Jansen", "Boer")),
        ("Fatima in 't Veld", ("Fatima",), ("Veld",)),
        ("Johannes Petrus ter Horst", ("Johannes", "Petrus"), ("Horst",)),
        ("J. van den Heuvel", (), ("Heuvel",)),
        ("van Dijk", (), ("Dijk",)),
        ("Madonna", ("Madonna",), ()),
        ("  ", (), ()),
    ],
)
def test_name_parts_leave_out_particles_and_initials(
    name: str, first_names: tuple[str, ...], last_names: tuple[str, ...]
) -> None:
    assert name_parts(name) == (first_names, last_names)
