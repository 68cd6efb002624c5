"""Adversary (employer, imports at will): the import's refusal messages tell who stopped or declined.

The import is all or nothing, so a probe list costs the employer nothing. A row with Anna's e-mail address and
Bert's mobile number is refused with "conflict_email_and_mobile" while Anna is on the list, and accepted (as a
departed contact, "unchanged") once she stopped or declined and the nightly run erased her. The same holds
for "conflict_same_person" (two rows, each carrying one of Anna's two contacts). These tests FAIL while the
refusal depends on what Anna did.
"""

from __future__ import annotations

import pytest

from participants import account, retention
from participants.importing import AddressListInvalid, import_address_list
from participants.models import Organisation, Participant, StaffUser
from preventicons.crypto import blind_index_email
from tests.conftest import ALL_DATABASES

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]

HEADER = "naam;e-mail;mobiel;afdeling"


def csv(*rows: str) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


def probe(organisation: Organisation, employer: StaffUser, data: bytes) -> list[str]:
    try:
        import_address_list(organisation=organisation, data=data, full_list=False, by=employer)
    except AddressListInvalid as invalid:
        return [error.code for error in invalid.errors]
    return []


def anna_does(organisation: Organisation, what: str) -> None:
    anna = Participant.objects.get(email_index=blind_index_email("anna@werk.example"))
    if what == "stopped":
        account.stop_participation(participant=anna)
    elif what == "declined":
        Participant.objects.filter(pk=anna.pk).set_state(status=Participant.Status.DECLINED)
        from tests.participants.people import remember_departed

        remember_departed(participant=anna)
        retention.run_retention()  # the nightly run erases a decliner's contact data at once


@pytest.mark.parametrize(
    "probe_rows",
    [
        ("Anna;anna@werk.example;0622222222;Care",),  # Anna's address, Bert's number
        ("Anna;anna@werk.example;0633333333;Care", "X;x@werk.example;0611111111;Care"),  # one contact per row
    ],
)
def test_the_import_answers_a_probe_alike_whatever_anna_did(
    organisation: Organisation, employer: StaffUser, probe_rows: tuple[str, ...]
) -> None:
    answers = {}
    for what in ("nothing", "stopped", "declined"):
        Participant.objects.all().delete()
        from participants.models import DepartedContact

        DepartedContact.objects.all().delete()
        import_address_list(
            organisation=organisation,
            data=csv("Anna;anna@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT"),
            full_list=False,
            by=employer,
        )
        anna_does(organisation, what)
        answers[what] = probe(organisation, employer, csv(*probe_rows))
    assert answers["nothing"] == answers["stopped"] == answers["declined"], answers


def test_reimporting_the_same_list_after_someone_moved_both_contacts_to_private_ones_invites_nobody(
    organisation: Organisation, employer: StaffUser
) -> None:
    """A careful participant replaces the employer-supplied address and number by private ones (one at a time,
    as account.confirm_change applies them). The employer re-imports its unchanged list and presses "send
    invitations": the work mailbox of exactly that person receives a fresh invitation."""
    from participants import invitations
    from preventicons.crypto import blind_index_phone

    staff = csv("Anna;anna@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT")
    import_address_list(organisation=organisation, data=staff, full_list=True, by=employer)
    invitations.send_invitations(organisation=organisation)
    anna = Participant.objects.get(email_index=blind_index_email("anna@werk.example"))
    anna.status = Participant.Status.ACTIVE
    anna.email, anna.email_index = "anna@thuis.example", blind_index_email("anna@thuis.example")
    anna.mobile, anna.mobile_index = "+31655555555", blind_index_phone("+31655555555")
    anna.save()

    import_address_list(organisation=organisation, data=staff, full_list=True, by=employer)
    started = invitations.send_invitations(organisation=organisation)
    assert started == 0, "a re-import of the unchanged list started a new invitation schedule for Anna"


def _anna_moves(contacts: str) -> None:
    """Anna, who took part, replaced the employer-supplied address and/or number by private ones."""
    from preventicons.crypto import blind_index_phone

    anna = Participant.objects.get(email_index=blind_index_email("anna@werk.example"))
    anna.status = Participant.Status.ACTIVE
    if "email" in contacts:
        anna.email, anna.email_index = "anna@thuis.example", blind_index_email("anna@thuis.example")
    if "mobile" in contacts:
        anna.mobile, anna.mobile_index = "+31655555555", blind_index_phone("+31655555555")
    anna.save()


@pytest.mark.parametrize(
    "probe_rows",
    [
        ("Anna;anna@werk.example;0622222222;Care",),  # Anna's work address, Bert's number
        ("Anna;anna@werk.example;0633333333;Care", "X;x@werk.example;0611111111;Care"),  # one contact per row
        ("X;x@werk.example;0655555555;Care",),  # the private number the employer suspects Anna moved to
        ("X;anna@thuis.example;0633333333;Care",),  # the private address it suspects
    ],
)
def test_the_import_answers_a_probe_alike_whether_anna_moved_her_contacts_or_not(
    organisation: Organisation, employer: StaffUser, probe_rows: tuple[str, ...]
) -> None:
    """Only participants correct their own contacts, so an answer that changed when Anna moved to a private
    address or number would tell the employer that she takes part."""
    answers = {}
    for moved in ("", "email", "mobile", "email+mobile"):
        Participant.objects.all().delete()
        import_address_list(
            organisation=organisation,
            data=csv("Anna;anna@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT"),
            full_list=False,
            by=employer,
        )
        if moved:
            _anna_moves(moved)
        answers[moved] = probe(organisation, employer, csv(*probe_rows))
    assert len({tuple(answer) for answer in answers.values()}) == 1, answers


def test_a_list_naming_a_private_number_a_participant_moved_to_creates_a_new_person_and_breaks_nothing(
    organisation: Organisation, employer: StaffUser
) -> None:
    import_address_list(
        organisation=organisation,
        data=csv("Anna;anna@werk.example;0611111111;Care"),
        full_list=False,
        by=employer,
    )
    from preventicons.crypto import blind_index_phone

    _anna_moves("email+mobile")
    result = import_address_list(
        organisation=organisation,
        data=csv("Anna;anna@werk.example;0611111111;Care", "X;anna@thuis.example;0655555555;IT"),
        full_list=True,
        by=employer,
    )
    assert (result.created, result.unlisted) == (1, 0)
    anna = Participant.objects.get(email_index=blind_index_email("anna@thuis.example"))
    # Anna keeps her own contacts, and with them the account link and codes.
    assert (anna.email, anna.mobile) == ("anna@thuis.example", "+31655555555")
    assert anna.mobile_index == blind_index_phone("+31655555555")


def test_a_departed_person_listed_under_a_new_number_is_still_one_person_to_the_next_list(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The list changes Anna's number after she left, as it would on her participant row: a later list
    carrying her old number next to someone else's address then answers as it would had she stayed."""
    answers = {}
    for what in ("nothing", "stopped"):
        Participant.objects.all().delete()
        from participants.models import DepartedContact

        DepartedContact.objects.all().delete()
        import_address_list(
            organisation=organisation,
            data=csv("Anna;anna@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT"),
            full_list=False,
            by=employer,
        )
        anna_does(organisation, what)
        import_address_list(
            organisation=organisation,
            data=csv("Anna;anna@werk.example;0644444444;Care"),
            full_list=False,
            by=employer,
        )
        answers[what] = (
            probe(organisation, employer, csv("Bert;bert@werk.example;0644444444;IT")),
            probe(organisation, employer, csv("Y;y@werk.example;0611111111;IT")),
        )
    assert answers["nothing"] == answers["stopped"], answers


def test_a_list_changing_a_decliners_number_before_the_night_erased_them_answers_as_for_anyone(
    organisation: Organisation, employer: StaffUser
) -> None:
    """Between a decline (remembered at once) and the nightly run that erases the decliner, the employer
    changes Anna's number on its list and then probes with her old one: the answer must be the one it would
    get had she done nothing, and the same after the night."""
    answers = {}
    for what in ("nothing", "declined", "declined, then the night"):
        Participant.objects.all().delete()
        from participants.models import DepartedContact

        DepartedContact.objects.all().delete()
        import_address_list(
            organisation=organisation,
            data=csv("Anna;anna@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT"),
            full_list=False,
            by=employer,
        )
        if what.startswith("declined"):
            from tests.participants.people import remember_departed

            anna = Participant.objects.get(email_index=blind_index_email("anna@werk.example"))
            Participant.objects.filter(pk=anna.pk).set_state(status=Participant.Status.DECLINED)
            remember_departed(participant=anna)
        import_address_list(
            organisation=organisation,
            data=csv("Anna;anna@werk.example;0644444444;Care"),
            full_list=False,
            by=employer,
        )
        if what.endswith("night"):
            retention.run_retention()
        answers[what] = [
            probe(organisation, employer, csv("Anna;anna@werk.example;0611111111;Care")),
            probe(organisation, employer, csv("Y;y@werk.example;0644444444;IT")),
        ]
    assert answers["nothing"] == answers["declined"] == answers["declined, then the night"], answers
