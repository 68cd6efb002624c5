"""Review 11: first-order leaks to the employer (its role's pages, its mailboxes, its imports).

The employer knows its staff list, reads every mailbox it supplied, re-imports at will and types any address
into the account-link form (/me/link/). None of that may tell who takes part. These tests FAIL while an
answer it can read depends on what one person did.
"""

from __future__ import annotations

import uuid

import pytest

from participants import account, retention
from participants.importing import import_address_list
from participants.invitations import held_by_someone_else, listed_hashes
from participants.models import Organisation, Participant, StaffUser
from preventicons.crypto import blind_index_email
from tests.conftest import ALL_DATABASES

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]

HEADER = "naam;e-mail;mobiel;afdeling"


def csv(*rows: str) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


def _anna() -> Participant:
    return Participant.objects.get(email_index=blind_index_email("anna@werk.example"))


def anna_does(what: str) -> None:
    anna = _anna()
    if what in ("active", "paused", "inactive"):
        # Joined and kept the work address the employer listed (the weekly message may go elsewhere).
        status = Participant.Status.INACTIVE if what == "inactive" else Participant.Status.ACTIVE
        Participant.objects.filter(pk=anna.pk).set_state(status=status, messages_paused=what == "paused")
    elif what == "stopped":
        account.stop_participation(participant=anna)
    elif what == "declined":
        Participant.objects.filter(pk=anna.pk).set_state(status=Participant.Status.DECLINED)
        retention.run_retention()  # the nightly run erases a decliner's contact data


WHATS = ("invited", "active", "paused", "inactive", "stopped", "declined")


def test_the_account_link_form_answers_an_old_work_address_alike_after_the_list_changed_it(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The employer lists Anna at anna@werk, then re-imports her (same mobile) at anna.nieuw@werk, and types
    her old work address into /me/link/. The old address was listed for everyone, so whether a link e-mail
    arrives in that mailbox (which the employer reads) must not depend on Anna having joined and kept it."""
    first = csv("Anna;anna@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT")
    moved = csv("Anna;anna.nieuw@werk.example;0611111111;Care", "Bert;bert@werk.example;0622222222;IT")
    arrived = {}
    for what in WHATS:
        Participant.objects.all().delete()
        import_address_list(organisation=organisation, data=first, full_list=True, by=employer)
        anna_does(what)
        import_address_list(organisation=organisation, data=moved, full_list=True, by=employer)
        arrived[what] = account.send_account_links(request_id=str(uuid.uuid4()), email="anna@werk.example")
    assert len(set(arrived.values())) == 1, arrived


@pytest.mark.parametrize(
    ("moved_row", "probe"),
    [
        ("Anna;anna.nieuw@werk.example;0611111111;Care", {"email": "anna@werk.example"}),
        ("Anna;anna@werk.example;0633333333;Care", {"mobile": "+31611111111"}),
    ],
)
def test_a_colleague_is_refused_an_old_work_contact_alike_after_the_list_changed_it(
    organisation: Organisation, employer: StaffUser, moved_row: str, probe: dict[str, str]
) -> None:
    """Eve (the employer's stooge, listed too) enrols and corrects her details to Anna's old work address or
    number, which a re-import replaced. The refusal must not depend on Anna having joined and kept it: an
    accepted one would also send its code to the mailbox or phone the employer reads."""
    eve = "Eve;eve@werk.example;0644444444;IT"
    first = csv("Anna;anna@werk.example;0611111111;Care", eve)
    moved = csv(moved_row, eve)
    refused = {}
    for what in WHATS:
        Participant.objects.all().delete()
        import_address_list(organisation=organisation, data=first, full_list=True, by=employer)
        anna_does(what)
        import_address_list(organisation=organisation, data=moved, full_list=True, by=employer)
        eve_hash, _mobile = listed_hashes(
            organisation_id=organisation.pk, email="eve@werk.example", mobile=None
        )
        stooge = Participant.objects.get(listed_email_hash=eve_hash)
        refused[what] = held_by_someone_else(participant=stooge, **probe)
    assert len(set(refused.values())) == 1, refused
