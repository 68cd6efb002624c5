"""Review 10: the pending window of a queued enrolment (requestqueue.confirm_enrolment).

Joining no longer writes its participant row; the request batch makes it (account.apply_enrolment). Between
the two the row still reads "invited", and the pages that read it must not take that for the truth: the
link opened again, a no said through it, and the queue row's one padded length.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django import forms
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from participants import queued
from participants.importing import import_address_list
from participants.models import Organisation, Participant, QueuedRequest, StaffUser
from preventicons import crypto, messaging
from preventicons.gateways import MemorySmsGateway
from scores import wellbeing
from tests.conftest import ALL_DATABASES
from tests.participants.people import make_participant
from tests.participants.test_enrolment_views import invite, latest_sms_code, open_with_sms_code
from tests.test_attacks_enrolment import join_through_the_pages as _join

pytestmark = [
    pytest.mark.usefixtures("english", "empty_cache"),
    pytest.mark.django_db(databases=ALL_DATABASES, transaction=True),
]

TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)
CODE = re.compile(r"\b(\d{6})\b")


@time_machine.travel(TUESDAY, tick=True)
def test_a_no_said_after_joining_and_before_the_batch_is_not_confirmed_as_a_no(
    organisation: Organisation,
) -> None:
    """Someone joins, then (before the batch) opens their link again to say no after all. The decline is
    refused (queued.is_pending), yet the page said "Done: you do not take part" while the batch made them a
    participant who gets the weekly messages. The link now reads as joined the moment the enrolment is
    queued: the same page as for anyone who takes part, and the join pages are not offered a second time."""
    joiner = make_participant(organisation, email="j@example.nl", mobile="+31612345602")
    token = invite(joiner)
    assert _join(Client(), token)["Location"] == reverse("participants:enrol-welcome")

    with time_machine.travel(TUESDAY + dt.timedelta(minutes=5), tick=True):
        saying_no = Client()
        open_with_sms_code(saying_no, token, decline=True)
        page = saying_no.post(reverse("participants:enrol-decline"), follow=True).content.decode()
    # Minutes later again (a new SMS code for the link waits a little), the link opened to join.
    with time_machine.travel(TUESDAY + dt.timedelta(minutes=10), tick=True):
        again = Client()
        opened = open_with_sms_code(again, token)
        after_code = again.get(opened["Location"], follow=True)

    assert "you do not take part" not in page
    assert "You already take part" in page
    # The second join is not walked through consent and details again, to be refused at its last step.
    assert after_code.redirect_chain == []
    assert "You already take part" in after_code.content.decode()
    batch = wellbeing.take_up_help_requests()
    assert (batch.enrolments, batch.declines) == (1, 0)
    assert Participant.objects.get(pk=joiner.pk).status == Participant.Status.ACTIVE


@time_machine.travel(TUESDAY, tick=True)
def test_the_longest_name_and_address_the_pages_take_fit_the_queue_padding(
    organisation: Organisation,
) -> None:
    """A name of 200 characters the details page takes (emoji: 12 JSON characters each) and a private
    address Django's EmailField takes (up to 320 characters, an international domain): the enrolment's
    JSON outgrew queued.PLAINTEXT_LENGTH and the last step of joining failed with a server error after
    every code was right. Every queued row still seals to one length."""
    joiner = make_participant(organisation, email="j@example.nl", mobile="+31612345602")
    client = Client()
    client.raise_request_exception = True
    name = "\U0001f600" * 200
    private = "p" * 60 + "@" + ".".join(["\u00fc" * 57] * 4) + ".nl"
    sent = _join(client, invite(joiner), name=name, weekly_channel="private_email", private_email=private)
    assert sent["Location"] == reverse("participants:enrol-codes")
    messaging.send_due_messages()
    match = CODE.search(str(mail.outbox[-1].body))
    assert match

    done = client.post(reverse("participants:enrol-codes"), {"email_code": match.group(1)})

    assert done["Location"] == reverse("participants:enrol-welcome")
    row = QueuedRequest.objects.get()
    help_row = queued.sealed({"kind": queued.HELP, "participant": str(joiner.pk), "channel": "phone"})
    help_row.save()
    lengths = {crypto.sealed_length(raw) for raw in QueuedRequest.objects.values_list("request", flat=True)}
    assert len(lengths) == 1
    assert queued.opened(row)["name"] == name
    help_row.delete()
    assert wellbeing.take_up_help_requests().enrolments == 1
    joined = Participant.objects.get(pk=joiner.pk)
    assert (joined.status, joined.name, joined.private_email) == ("active", name, private.lower())


def test_the_worst_name_and_address_the_forms_take_seal_to_the_one_length(
    organisation: Organisation,
) -> None:
    """The bound itself, beyond what a mailbox would deliver: 200 emoji (4 bytes each) and the longest
    address Django's EmailField takes, a quoted local part of control characters (\\u0001: 6 bytes each in
    JSON), in an enrolment and in a correction, seal to the length of a help request."""
    name = "\U0001f600" * 200
    address = forms.EmailField().clean('"' + "\x01" * 312 + '"@ab.nl')
    assert len(address) == 320
    with pytest.raises(ValidationError):  # the longest it takes
        forms.EmailField().clean('"' + "\x01" * 313 + '"@ab.nl')
    pk = str(make_participant(organisation).pk)
    requests = [
        {"kind": queued.HELP, "participant": pk, "channel": "phone", "consent_version": "v1"},
        {
            "kind": queued.ENROLMENT,
            "participant": pk,
            "weekly_channel": Participant.WeeklyChannel.PRIVATE_EMAIL.value,
            "name": name,
            "mobile": "+31612345602",
            "private_email": address,
        },
        {"kind": queued.CHANGE, "participant": pk, "name": name, "email": address, "mobile": "+31612345602"},
    ]

    rows = [queued.sealed(request) for request in requests]

    for row in rows:
        row.save()
    stored = QueuedRequest.objects.values_list("request", flat=True)
    assert {crypto.sealed_length(raw) for raw in stored} == {queued.PLAINTEXT_LENGTH}
    assert [queued.opened(row) for row in rows] == requests


@time_machine.travel(TUESDAY, tick=True)
def test_the_account_opened_right_after_joining_sends_no_code_to_the_number_the_person_replaced(
    organisation: Organisation,
) -> None:
    """The details page corrects one of address and number and says the other can be corrected "later in
    your account"; the welcome page links there. Opened before the batch, the row still held the employer's
    number, so a correction's or a stop's SMS code went to the phone the employer supplied (which the
    employer reads, threat 1), the one the person had just replaced, and they could not confirm. Until the
    batch makes them a participant, the account asks them to wait and sends nothing."""
    joiner = make_participant(organisation, email="j@example.nl", mobile="+31612345602")
    client = Client()
    _join(client, invite(joiner), mobile="06 87654321")
    done = client.post(reverse("participants:enrol-codes"), {"sms_code": latest_sms_code()})
    assert done["Location"] == reverse("participants:enrol-welcome")
    messaging.send_due_messages()
    texted = len(MemorySmsGateway.outbox)

    overview = client.get(reverse("participants:account"))
    stopping = client.post(reverse("participants:account-stop"), follow=True)
    correcting = client.post(
        reverse("participants:account-change"),
        {"name": "Jan de Vries", "email": "jan@privé.example", "mobile": ""},
        follow=True,
    )
    messaging.send_due_messages()

    assert [sms["to"] for sms in MemorySmsGateway.outbox[texted:]] == []
    assert overview.status_code == 200
    for page in (overview, stopping, correcting):
        assert "Within 15 minutes you are signed up" in page.content.decode()
    batch = wellbeing.take_up_help_requests()
    assert (batch.enrolments, batch.stops, batch.changes) == (1, 0, 0)
    assert client.post(reverse("participants:account-stop"))["Location"] == reverse(
        "participants:account-stop-confirm"
    )
    messaging.send_due_messages()
    assert [sms["to"] for sms in MemorySmsGateway.outbox[texted:]] == ["+31687654321"]


@time_machine.travel(TUESDAY, tick=True)
def test_no_page_before_the_sms_code_opens_the_request_queue(organisation: Organisation) -> None:
    """The link's state now opens the queue (a joining waiting for the batch reads as joined), which takes
    longer the more requests wait. Before its SMS code no page of a link reads that state, so whoever holds
    a link from a mailbox cannot time how many requests (help, stops) wait."""
    person = make_participant(organisation, email="j@example.nl", mobile="+31612345602")
    token = invite(person)
    queued.sealed({"kind": queued.PAUSE, "participant": str(person.pk), "paused": True}).save()
    client = Client()
    client.get(f"/i/{token}/")

    with CaptureQueriesContext(connections["default"]) as queries:
        for name in ("enrol-consent", "enrol-details", "enrol-codes", "enrol-next", "enrol-decline"):
            client.get(reverse(f"participants:{name}"))
        client.post(reverse("participants:enrol"))
        client.post(reverse("participants:enrol-open"), {"code": "000000"})

    assert not [query for query in queries if QueuedRequest._meta.db_table in query["sql"]]


@time_machine.travel(TUESDAY, tick=True)
def test_a_list_imported_while_a_joining_waits_changes_none_of_the_contact_data_they_joined_with(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The list owns an invited person's name, address and number, never a participant's (importing.
    _LIST_OWNS_CONTACT_DATA): a code to each proved them. Queued, a joining left the row invited until the
    batch, so a list imported in those minutes wrote its own number on it, and the batch made the person a
    participant under a number they never saw: the employer's (threat 1 reads its texts), where their
    weekly messages and account codes then went. An employer who imports such a list every quarter of an
    hour (and the real one back after each batch) caught everyone who joined. Now a waiting joining is the
    person's, as an enrolment is."""
    csv = "naam;e-mail;mobiel;afdeling\r\nAnna;anna@werk.example;{mobile};Care\r\n"
    import_address_list(
        organisation=organisation, data=csv.format(mobile="0611111111").encode(), full_list=True, by=employer
    )
    anna = Participant.objects.get(organisation=organisation)
    client = Client()
    assert _join(client, invite(anna))["Location"] == reverse("participants:enrol-welcome")

    import_address_list(
        organisation=organisation, data=csv.format(mobile="0687654321").encode(), full_list=True, by=employer
    )
    assert wellbeing.take_up_help_requests().enrolments == 1

    joined = Participant.objects.get(pk=anna.pk)
    assert (joined.status, joined.name, joined.mobile) == ("active", "Anna", "+31611111111")
