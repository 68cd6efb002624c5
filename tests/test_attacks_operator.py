"""Adversary (operator: live database and dumps, no key file): attacks; strict xfail = a leak still open.

1. The weekly thanks page links to the account. Tapping and then asking for one's account link writes an
   AccountLink row (participant_id in clear, expires_at to the microsecond) in the transaction right after
   the score row. Ordering scores and account links by xmin pairs each score with its participant: who
   answered this week, and which score row (department, per-week pseudonym) is theirs.
2. participants_participant keeps department_id, status ('declined', 'inactive', 'stopped') and
   messages_paused in clear. Department names are in clear too, so for a small department the operator reads
   who declined, paused, went silent (inactive) or stopped.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connections
from django.test import Client

from participants.models import Department, Organisation, Participant
from tests.conftest import ALL_DATABASES
from tests.scores.people import make_link, make_participant

pytestmark = [pytest.mark.usefixtures("english", "empty_cache")]

WEEK = dt.date(2026, 11, 16)
TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)


def _rows(sql: str) -> list[tuple]:
    with connections["default"].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.xfail(
    strict=True,
    reason="open leak F7: account links and codes name the participant, written at once",
)
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@time_machine.travel(TUESDAY, tick=True)
def test_xmin_does_not_pair_a_score_with_the_account_link_asked_for_after_it(
    organisation: Organisation,
) -> None:
    people = [make_participant(organisation) for _ in range(4)]
    truth: dict[object, object] = {}
    for person in people:
        _link, token = make_link(person, week=WEEK)
        client = Client()
        # Tap on the weekly link, then follow the thanks page's "account" link and ask for the e-mail link.
        tapped = client.post(f"/w/{token}/", {"value": "3"})
        assert tapped.status_code == 303
        assert client.post("/me/link/", {"email": person.email}).status_code == 200
        truth[person.pk] = None
    # What the operator does with a live database: order both tables by the creating transaction.
    scores = _rows("SELECT xmin::text::bigint, id::text FROM scores_score")
    links = _rows("SELECT xmin::text::bigint, participant_id FROM participants_accountlink")
    assert len(scores) == len(links) == 4
    paired = {}
    for score_xmin, score_id in scores:
        following = min((x, pid) for x, pid in links if x > score_xmin)
        paired[score_id] = following[1]
    # Ground truth: which score row is whose (read with the key, as the application can).
    from scores.models import Score
    from scores.sealing import week_pseudonym

    owner = {
        str(s.pk): p.pk
        for p in Participant.objects.all()
        for s in Score.objects.filter(pseudonym=week_pseudonym(p.pseudonym or "", WEEK))
    }
    right = sum(1 for score_id, pid in paired.items() if owner[score_id] == pid)
    assert right < len(scores), f"xmin order named the author of {right} of {len(scores)} scores"


@pytest.mark.xfail(
    strict=True,
    reason="open leak F9: department, status and messages_paused are in clear",
)
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_dump_does_not_tell_what_the_one_person_of_a_small_department_did(
    organisation: Organisation,
) -> None:
    directie = Department.objects.create(organisation=organisation, name="Directie")
    dumps = {}
    for what in ("silent", "declined", "paused", "inactive"):
        Participant.objects.filter(department=directie).delete()
        boss = make_participant(organisation, status=Participant.Status.INVITED)
        Participant.objects.filter(pk=boss.pk).update(department=directie)
        if what == "declined":
            Participant.objects.filter(pk=boss.pk).update(status=Participant.Status.DECLINED)
        elif what == "paused":
            Participant.objects.filter(pk=boss.pk).update(
                status=Participant.Status.ACTIVE, messages_paused=True
            )
        elif what == "inactive":
            Participant.objects.filter(pk=boss.pk).update(status=Participant.Status.INACTIVE)
        # The operator: department names and every clear column of the participant rows.
        dumps[what] = _rows(
            "SELECT d.name, p.status, p.messages_paused, p.is_listed FROM participants_participant p "
            "JOIN participants_department d ON d.id = p.department_id WHERE d.name = 'Directie'"
        )
    assert len({tuple(rows) for rows in dumps.values()}) == 1, dumps


@pytest.mark.xfail(strict=True, reason="open leak F9: scores keep their department until the week closes")
@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(TUESDAY, tick=False)
def test_an_open_week_dump_does_not_tell_whether_the_one_person_of_a_department_answered(
    organisation: Organisation,
) -> None:
    directie = Department.objects.create(organisation=organisation, name="Directie")
    boss = make_participant(organisation)
    Participant.objects.filter(pk=boss.pk).update(department=directie)
    _link, token = make_link(boss, week=WEEK)
    before = _rows(
        "SELECT count(*) FROM scores_score s JOIN participants_department d ON d.id = s.department_id "
        "WHERE d.name = 'Directie'"
    )
    assert Client().post(f"/w/{token}/", {"value": "1"}).status_code == 303
    after = _rows(
        "SELECT count(*) FROM scores_score s JOIN participants_department d ON d.id = s.department_id "
        "WHERE d.name = 'Directie'"
    )
    assert before == after, "the dump of the open week shows that the director answered this week"
