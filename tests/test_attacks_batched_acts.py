"""Adversary (operator: live database, no key file): a stop or a correction right after a tap.

Issue 14, "no write that sits next to a score": a person taps their smiley and, a minute later, corrects
their details or stops. Written at once, their participant row got the transaction id right after their
score's, so ordering by ``xmin`` paired the score with the person (who answered this week, and which score
row is theirs), and a stop's rewrite told whose row was shredded that minute. Now both are queued sealed
(participants.requestqueue) and applied by the batch with everyone else's requests, in random order.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connections
from django.test import Client

from participants import account, queued, requestqueue
from participants.models import Organisation, Participant, QueuedRequest
from scores import wellbeing
from tests.conftest import ALL_DATABASES
from tests.participants.test_stop import delivered_codes, make_active
from tests.scores.people import make_link

pytestmark = [pytest.mark.usefixtures("english", "empty_cache")]

WEEK = dt.date(2026, 11, 16)
TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)


def _xmins(sql: str) -> list[int]:
    with connections["default"].cursor() as cursor:
        cursor.execute(sql)
        return sorted(int(row[0]) for row in cursor.fetchall())


def _rewritten_right_after_a_score() -> int:
    """How many participant rows were written after some score and before the next one (or the present)."""
    scores = _xmins("SELECT xmin::text::bigint FROM scores_score")
    people = _xmins("SELECT xmin::text::bigint FROM participants_participant")
    bounds = [*scores[1:], None]
    return sum(
        1
        for start, until in zip(scores, bounds, strict=True)
        for row in people
        if row > start and (until is None or row < until)
    )


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@time_machine.travel(TUESDAY, tick=True)
def test_a_stop_a_correction_or_a_pause_right_after_a_tap_is_written_only_by_the_batch(
    organisation: Organisation,
) -> None:
    people = [
        make_active(organisation, name=f"Persoon {n}", email=f"p{n}@example.nl", mobile=f"+3161234560{n}")
        for n in range(4)
    ]
    for n, person in enumerate(people):
        _link, token = make_link(person, week=WEEK)
        assert Client().post(f"/w/{token}/", {"value": "3"}).status_code == 303
        if n == 1:
            account.request_stop_codes(participant=person)
            email_code, sms_code = delivered_codes()
            stopped = requestqueue.confirm_stop(participant=person, email_code=email_code, sms_code=sms_code)
            assert stopped.done
        elif n == 3:
            # What the account page's pause button calls (participants/views/account.py).
            requestqueue.queue_pause_change(participant=person, paused=True)
        else:
            account.request_change(participant=person, mobile=f"+3161234569{n}")
            email_code, sms_code = delivered_codes()
            assert requestqueue.confirm_change(
                participant=person, email_code=email_code, sms_code=sms_code
            ).done
    # What the operator does with a live database: order the participant rows and the scores by xmin.
    assert _rewritten_right_after_a_score() == 0
    assert QueuedRequest.objects.count() == 4

    batch = wellbeing.take_up_help_requests()

    assert (batch.stops, batch.changes, batch.pauses_changed) == (1, 2, 1)
    # What is left: the stop's dossier close, held for the first batch of the next day.
    assert [queued.is_stop_close(row) for row in QueuedRequest.objects.all()] == [True]
    statuses = {person.pk: Participant.objects.get(pk=person.pk).status for person in people}
    assert statuses[people[1].pk] == Participant.Status.STOPPED
    assert Participant.objects.get(pk=people[2].pk).mobile == "+31612345692"
    assert Participant.objects.get(pk=people[3].pk).messages_paused
    # The batch came after every tap: all four rows follow the last score together, none sits between two
    # scores, so the order pairs nobody.
    scores = _xmins("SELECT xmin::text::bigint FROM scores_score")
    people_xmins = _xmins("SELECT xmin::text::bigint FROM participants_participant")
    written = [xmin for xmin in people_xmins if xmin > scores[-1]]
    assert len(written) == 4
