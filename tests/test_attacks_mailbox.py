"""Adversary (employer reading the work mailboxes it supplied): attacks; strict xfail = a leak still open.

1. /me/link/ is a public page. The employer types a colleague's WORK address into it and watches that work
   mailbox: an account link arrives for someone invited, active or inactive, and nothing for someone who
   declined or stopped. So the employer learns who declined or stopped (and, for someone who moved their
   account to another address, that they took part).
2. Stopping (and correcting one's details) from the account sends its e-mail code to the address on file,
   which is the work address the employer supplied, even for a participant who chose SMS or a private address
   for everything else. The body says "to confirm that you want to stop".
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from participants import account
from participants.models import Organisation, Participant
from preventicons import messaging
from preventicons.gateways import MemorySmsGateway
from tests.conftest import ALL_DATABASES
from tests.participants.people import make_participant
from tests.participants.test_stop import make_active

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]


def _mails_to(address: str) -> list[str]:
    return [f"{m.subject}\n{m.body}" for m in mail.outbox if address in m.to]


def test_employer_requesting_account_links_for_work_addresses_sees_the_same_in_every_mailbox(
    organisation: Organisation,
) -> None:
    people = {
        "invited": make_participant(organisation, email="a@werk.example", mobile="+31611000001"),
        "active": make_participant(
            organisation, email="b@werk.example", mobile="+31611000002", status=Participant.Status.ACTIVE
        ),
        "declined": make_participant(
            organisation, email="c@werk.example", mobile="+31611000003", status=Participant.Status.DECLINED
        ),
        "stopped": make_participant(
            organisation, email="d@werk.example", mobile="+31611000004", status=Participant.Status.ACTIVE
        ),
    }
    account.stop_participation(participant=people["stopped"])
    addresses = {
        "invited": "a@werk.example",
        "active": "b@werk.example",
        "declined": "c@werk.example",
        "stopped": "d@werk.example",
    }
    # The employer, from the office network, asks for a link for each colleague's work address.
    for address in addresses.values():
        assert Client().post("/me/link/", {"email": address}).status_code == 200
    messaging.send_due_messages()
    seen = {status: len(_mails_to(address)) for status, address in addresses.items()}
    # What the employer's mailbox view must show: the same for everyone it listed.
    assert len(set(seen.values())) == 1, f"work mailboxes tell statuses apart: {seen}"


def test_stopping_from_the_account_sends_nothing_to_the_work_mailbox(
    client: Client, organisation: Organisation
) -> None:
    # A participant who chose SMS for the weekly messages: the employer-supplied work address is not theirs.
    jan = make_active(organisation, email="jan@werk.example")
    Participant.objects.filter(pk=jan.pk).set_state(weekly_channel=Participant.WeeklyChannel.SMS)
    # Jan opens the account (this alone already mails the work address, see the test above) and stops.
    client.post("/me/link/", {"email": "jan@werk.example"})
    messaging.send_due_messages()
    link = re.search(r"/me/link/(\S+)/", str(mail.outbox[-1].body))
    assert link
    client.get(f"/me/link/{link.group(1)}/")
    client.post("/me/link/open/")
    messaging.send_due_messages()
    code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"])
    assert code
    assert client.post("/me/link/code/", {"sms_code": code.group(1)}).status_code == 302
    mail.outbox.clear()

    assert client.post("/me/stop/")["Location"] == "/me/stop/confirm/"
    messaging.send_due_messages()
    leaked = [text for text in _mails_to("jan@werk.example") if "stop" in text]
    assert not leaked, f"the employer reads in the work mailbox: {leaked}"


def test_correcting_ones_mobile_from_the_account_sends_nothing_to_the_work_mailbox(
    client: Client, organisation: Organisation
) -> None:
    jan = make_active(organisation, email="jan@werk.example")
    Participant.objects.filter(pk=jan.pk).set_state(weekly_channel=Participant.WeeklyChannel.SMS)
    jan.refresh_from_db()
    account.request_change(participant=jan, mobile="+31687654399")
    messaging.send_due_messages()
    leaked = _mails_to("jan@werk.example")
    assert not leaked, f"the employer reads in the work mailbox: {leaked}"


def test_opening_the_invitation_links_found_in_work_mailboxes_texts_every_listed_phone_alike(
    organisation: Organisation, settings: object
) -> None:
    """The employer also supplied every mobile number (the import requires one): a company phone is a mailbox
    it supplied. It opens the invitation link from each work mailbox and presses "send me the code"."""
    import time_machine

    from participants import invitations

    traveller = time_machine.travel("2026-11-23 10:00 +01:00", tick=False)  # a Monday, invitation hours
    traveller.start()
    numbers = {"invited": "+31611000001", "declined": "+31611000003", "stopped": "+31611000004"}
    people = {
        status: make_participant(organisation, email=f"{status}@werk.example", mobile=number)
        for status, number in numbers.items()
    }
    invitations.send_invitations(organisation=organisation)
    invitations.send_due_invitations()
    messaging.send_due_messages()
    links = {}
    for status in numbers:
        (body,) = [m.body for m in mail.outbox if f"{status}@werk.example" in m.to]
        found = re.search(r"/i/[A-Za-z0-9_-]{43}/", str(body))
        assert found
        links[status] = found.group(0)
    Participant.objects.filter(pk=people["declined"].pk).set_state(status=Participant.Status.DECLINED)
    account.stop_participation(participant=people["stopped"])
    MemorySmsGateway.outbox.clear()
    for _status, link in links.items():
        employer = Client()
        employer.get(link)
        employer.post("/enrol/")  # the landing page's button: "send me the code"
    messaging.send_due_messages()
    texts = {
        status: sum(1 for sms in MemorySmsGateway.outbox if sms["to"] == number)
        for status, number in numbers.items()
    }
    traveller.stop()
    assert len(set(texts.values())) == 1, f"the employer-supplied phones tell statuses apart: {texts}"


def test_the_account_link_form_answers_the_listed_work_address_of_someone_who_moved_to_a_private_one(
    organisation: Organisation,
) -> None:
    """Only a participant moves their address to a private one: were the work address they were listed under
    to fall silent, the employer typing it into /me/link/ would learn that they take part."""
    from preventicons.crypto import blind_index_email

    stayed = make_participant(
        organisation, email="b@werk.example", mobile="+31611000002", status=Participant.Status.ACTIVE
    )
    moved = make_participant(
        organisation, email="a@werk.example", mobile="+31611000001", status=Participant.Status.ACTIVE
    )
    Participant.objects.filter(pk=moved.pk).update(email_index=blind_index_email("a@thuis.example"))
    moved.refresh_from_db()
    moved.email = "a@thuis.example"
    moved.save(update_fields=["email"])
    assert stayed.listed_email_hash and moved.listed_email_hash
    for address in ("a@werk.example", "b@werk.example"):
        assert Client().post("/me/link/", {"email": address}).status_code == 200
    messaging.send_due_messages()
    seen = {address: len(_mails_to(address)) for address in ("a@werk.example", "b@werk.example")}
    assert seen == {"a@werk.example": 1, "b@werk.example": 1}, seen


def test_invitation_link_codes_reach_the_supplied_phone_alike_for_a_joiner_who_moved_to_a_private_number(
    organisation: Organisation,
) -> None:
    """A participant who joined and moved to a private number: were a reminder's link to text that private
    number instead, the company phone would fall silent for exactly the people who take part. And once the
    links are past their purge date, no phone gets a text, whoever the person is."""
    import datetime as dt

    import time_machine

    from participants import invitations
    from preventicons.crypto import blind_index_phone

    numbers = {"invited": "+31611000001", "joined": "+31611000002", "stopped": "+31611000004"}
    with time_machine.travel("2026-11-23 10:00 +01:00", tick=False) as clock:
        people = {
            status: make_participant(organisation, email=f"{status}@werk.example", mobile=number)
            for status, number in numbers.items()
        }
        invitations.send_invitations(organisation=organisation)
        invitations.send_due_invitations()
        messaging.send_due_messages()
        links = {}
        for status in numbers:
            (body,) = [m.body for m in mail.outbox if f"{status}@werk.example" in m.to]
            found = re.search(r"/i/[A-Za-z0-9_-]{43}/", str(body))
            assert found
            links[status] = found.group(0)
        Participant.objects.filter(pk=people["joined"].pk).set_state(
            status=Participant.Status.ACTIVE, mobile_index=blind_index_phone("+31655555555")
        )
        joined = Participant.objects.get(pk=people["joined"].pk)
        joined.mobile = "+31655555555"
        joined.save(update_fields=["mobile"])
        account.stop_participation(participant=people["stopped"])

        def texts_after_pressing_send() -> dict[str, int]:
            MemorySmsGateway.outbox.clear()
            for link in links.values():
                employer = Client()
                employer.get(link)
                employer.post("/enrol/")
            messaging.send_due_messages()
            return {
                status: sum(1 for sms in MemorySmsGateway.outbox if sms["to"] == number)
                for status, number in numbers.items()
            }

        assert texts_after_pressing_send() == {"invited": 1, "joined": 1, "stopped": 1}
        assert not [sms for sms in MemorySmsGateway.outbox if sms["to"] == "+31655555555"]
        from django.conf import settings

        clock.shift(dt.timedelta(days=settings.INVITATION_DAYS + settings.EXPIRED_INVITATION_KEEP_DAYS + 1))
        assert texts_after_pressing_send() == {"invited": 0, "joined": 0, "stopped": 0}


def test_pressing_send_on_two_links_of_one_person_at_once_texts_alike_whatever_they_did(
    organisation: Organisation,
) -> None:
    """The invitation and the first reminder each carry a link. A budget per person would keep the second
    code back for someone still invited, while the links of someone who stopped (belonging to nobody) would
    both text: two presses would tell them apart."""
    import datetime as dt

    import time_machine

    from participants import invitations

    numbers = {"invited": "+31611000001", "stopped": "+31611000004"}
    with time_machine.travel("2026-11-23 10:00 +01:00", tick=False) as clock:
        people = {
            status: make_participant(organisation, email=f"{status}@werk.example", mobile=number)
            for status, number in numbers.items()
        }
        invitations.send_invitations(organisation=organisation)
        invitations.send_due_invitations()
        clock.shift(dt.timedelta(days=7))
        invitations.send_due_invitations()
        messaging.send_due_messages()
        account.stop_participation(participant=people["stopped"])
        MemorySmsGateway.outbox.clear()
        for status in numbers:
            bodies = [str(m.body) for m in mail.outbox if f"{status}@werk.example" in m.to]
            assert len(bodies) == 2
            for body in bodies:
                found = re.search(r"/i/[A-Za-z0-9_-]{43}/", body)
                assert found
                employer = Client()
                employer.get(found.group(0))
                employer.post("/enrol/")
        messaging.send_due_messages()
    texts = {
        status: sum(1 for sms in MemorySmsGateway.outbox if sms["to"] == number)
        for status, number in numbers.items()
    }
    assert texts == {"invited": 2, "stopped": 2}, texts


@pytest.mark.parametrize("contact", ["email", "mobile"])
def test_trying_a_colleagues_work_contact_in_ones_own_account_is_refused_alike_whatever_they_did(
    organisation: Organisation, contact: str
) -> None:
    """Employer staff take part too. One of them tries a colleague's work address (or number) as their own:
    had the colleague stopped or moved to a private address, the old check (the contacts held now) let it
    through and sent a code to that work mailbox, which the employer reads, telling it what they did."""
    from django.core.exceptions import ValidationError

    from preventicons.crypto import blind_index_email, blind_index_phone

    hr = make_active(organisation, email="hr@werk.example", mobile="+31611000009")
    answers = {}
    for what in ("invited", "active", "moved", "stopped"):
        Participant.objects.exclude(pk=hr.pk).delete()
        colleague = make_participant(organisation, email="anna@werk.example", mobile="+31611000001")
        if what in ("active", "moved"):
            Participant.objects.filter(pk=colleague.pk).set_state(status=Participant.Status.ACTIVE)
        if what == "moved":
            Participant.objects.filter(pk=colleague.pk).update(
                email_index=blind_index_email("anna@thuis.example"),
                mobile_index=blind_index_phone("+31655555555"),
            )
        if what == "stopped":
            account.stop_participation(participant=colleague)
        mail.outbox.clear()
        MemorySmsGateway.outbox.clear()
        try:
            if contact == "email":
                account.request_change(participant=hr, email="anna@werk.example")
            else:
                account.request_change(participant=hr, mobile="+31611000001")
        except ValidationError as refused:
            answers[what] = str(refused)
        else:
            answers[what] = "accepted"
        messaging.send_due_messages()
        assert not _mails_to("anna@werk.example")
        assert not [sms for sms in MemorySmsGateway.outbox if sms["to"] == "+31611000001"]
    assert len(set(answers.values())) == 1 and "accepted" not in answers.values(), answers
