"""Operator (live database, its files, dumps; no key file): the moment someone joins is in no row.

Enrolling wrote its participant row at once (status, channel, pseudonym, corrected addresses; a corrected
name even earlier, on the details page), so whoever reads the live database, its files or two dumps saw
which row joined, and when, in its department. Now the pages check and queue the enrolment
(requestqueue.confirm_enrolment) and the request batch makes it, writing every row alike
(account.apply_enrolment, participants.rewrite). Each test below is an attack that worked before, or a
way the queueing could lose or misapply what the person chose.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.db import connections
from django.test import Client
from django.urls import reverse

from participants import enrolment, requestqueue
from participants.models import Organisation, Participant, QueuedRequest
from scores import wellbeing
from tests.conftest import ALL_DATABASES
from tests.participants.people import make_participant
from tests.participants.test_enrolment_views import invite, latest_sms_code, open_with_sms_code

pytestmark = [
    pytest.mark.usefixtures("english", "empty_cache"),
    pytest.mark.django_db(databases=ALL_DATABASES, transaction=True),
]

TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)
TABLE = "participants_participant"


def _dump() -> dict[str, tuple[object, ...]]:
    """The participant table as the operator reads it live: every column, and each row's xmin and xmax (a
    row lock shows there too)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT id::text, xmin::text, xmax::text, * FROM {TABLE}")  # noqa: S608  # nosec B608  # the test's name
        return {row[0]: tuple(row) for row in cursor.fetchall()}


def join_through_the_pages(client: Client, token: str, **details: str) -> Any:
    """Open the invitation with its SMS code, consent and send the details page, as the person does."""
    open_with_sms_code(client, token)
    client.post(reverse("participants:enrol-consent"))
    choices = {"name": "", "weekly_channel": "sms", **details}
    return client.post(reverse("participants:enrol-details"), choices)


@time_machine.travel(TUESDAY, tick=True)
def test_joining_through_the_pages_writes_no_participant_row_until_the_batch(
    organisation: Organisation,
) -> None:
    """The operator reads the table live while someone joins, with a corrected name and a new number proven
    by its code: not one row changes (nor its xmin, nor a lock in its xmax) until the request batch."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's xmin and xmax")
    joiner = make_participant(organisation, email="j@example.nl", mobile="+31612345602")
    client = Client()
    open_with_sms_code(client, invite(joiner))  # invited alone: the last invitation sent is theirs
    bystander = make_participant(organisation, email="b@example.nl", mobile="+31612345601")
    client.post(reverse("participants:enrol-consent"))
    before = _dump()

    sent = client.post(
        reverse("participants:enrol-details"),
        {"name": "Jo Nieuw", "mobile": "06 87654321", "weekly_channel": "sms"},
    )
    assert sent["Location"] == reverse("participants:enrol-codes")
    done = client.post(reverse("participants:enrol-codes"), {"sms_code": latest_sms_code()})
    assert done["Location"] == reverse("participants:enrol-welcome")
    assert client.get(done["Location"]).status_code == 200

    assert _dump() == before
    assert wellbeing.take_up_help_requests().enrolments == 1
    joined = Participant.objects.get(pk=joiner.pk)
    assert (joined.status, joined.name, joined.mobile) == ("active", "Jo Nieuw", "+31687654321")
    assert joined.pseudonym and joined.weekly_channel == "sms"
    assert Participant.objects.get(pk=bystander.pk).status == Participant.Status.INVITED


@time_machine.travel(TUESDAY, tick=True)
def test_a_second_press_before_the_batch_is_refused_and_a_decline_after_joining_is_not_taken(
    organisation: Organisation,
) -> None:
    """A double click, or the link opened again before the batch: one enrolment waits, the second press is
    refused as for someone who joined; so is a decline from the same link. The batch makes one participant."""
    joiner = make_participant(organisation, email="j@example.nl", mobile="+31612345602")
    token = invite(joiner)
    assert join_through_the_pages(Client(), token)["Location"] == reverse("participants:enrol-welcome")
    invitation = enrolment.find_invitation(token=token)
    assert invitation is not None

    with pytest.raises(enrolment.EnrolmentRefused, match="already been used"):
        requestqueue.confirm_enrolment(invitation=invitation)
    assert not requestqueue.confirm_decline(invitation=invitation)
    assert QueuedRequest.objects.count() == 1

    batch = wellbeing.take_up_help_requests()
    assert (batch.enrolments, batch.declines, batch.dropped) == (1, 0, 0)
    assert Participant.objects.get(pk=joiner.pk).status == Participant.Status.ACTIVE
    assert wellbeing.take_up_help_requests().enrolments == 0


@time_machine.travel(TUESDAY, tick=True)
def test_who_said_no_and_then_joined_before_the_batch_takes_part(organisation: Organisation) -> None:
    """The batch takes its requests in random order; an enrolment goes first, so the later choice to join
    wins over an earlier no in the same batch, for every one of eight people (by chance: 1 in 256)."""
    people, tokens = [], []
    for n in range(8):
        # Each invited alone: the last invitation sent is theirs.
        person = make_participant(organisation, email=f"p{n}@example.nl", mobile=f"+3161234561{n}")
        people.append(person)
        tokens.append(invite(person))
        saying_no = Client()
        open_with_sms_code(saying_no, tokens[-1], decline=True)
        assert saying_no.post(reverse("participants:enrol-decline")).status_code == 200
    # Minutes later (a new SMS code for the link waits a little), each opens the link again and joins.
    with time_machine.travel(TUESDAY + dt.timedelta(minutes=5), tick=True):
        for token in tokens:
            joined = join_through_the_pages(Client(), token)
            assert joined["Location"] == reverse("participants:enrol-welcome")

    batch = wellbeing.take_up_help_requests()

    assert (batch.enrolments, batch.declines, batch.dropped) == (8, 0, 8)
    assert {Participant.objects.get(pk=person.pk).status for person in people} == {"active"}


@time_machine.travel(TUESDAY, tick=True)
def test_a_new_number_someone_else_took_before_the_batch_leaves_them_invited_to_join_again(
    organisation: Organisation,
) -> None:
    """Nothing is written until the batch, so the unique index no longer refuses a number a colleague took
    between the codes and the batch: the batch checks, leaves the person invited, and they can join again."""
    joiner = make_participant(organisation, email="j@example.nl", mobile="+31612345602")
    client = Client()
    token = invite(joiner)
    join_through_the_pages(client, token, mobile="06 87654321")
    assert client.post(reverse("participants:enrol-codes"), {"sms_code": latest_sms_code()})[
        "Location"
    ] == reverse("participants:enrol-welcome")
    colleague = make_participant(organisation, email="c@example.nl", mobile="+31612345603")
    colleague.save(update_fields=colleague.set_mobile("+31687654321"))

    batch = wellbeing.take_up_help_requests()

    assert (batch.enrolments, batch.dropped) == (0, 1)
    assert Participant.objects.get(pk=joiner.pk).status == Participant.Status.INVITED
    with time_machine.travel(TUESDAY + dt.timedelta(minutes=10), tick=True):
        assert join_through_the_pages(Client(), token)["Location"] == reverse("participants:enrol-welcome")
        assert wellbeing.take_up_help_requests().enrolments == 1
    joined = Participant.objects.get(pk=joiner.pk)
    assert (joined.status, joined.mobile) == ("active", "+31612345602")
