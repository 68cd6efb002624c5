"""Adversary (operator: live database and dumps, no key file): attacks; strict xfail = a leak still open.

1. The weekly thanks page links to the account. Tapping and then asking for one's account link wrote an
   AccountLink row (participant_id in clear, expires_at to the microsecond) in the transaction right after
   the score row, and opening it a VerificationCode row naming the participant. Ordering scores and those
   rows by xmin paired each score with its participant: who answered this week, and which score row is
   theirs. Closed: both name the participant only sealed (participants/references.py), and writing them
   locks no participant row (a row lock stamps the transaction into the row's xmax).
2. participants_participant kept department_id, status ('declined', 'inactive', 'stopped') and
   messages_paused in clear. Department names are in clear too, so for a small department the operator read
   who declined, paused, went silent (inactive) or stopped; and an open week's score rows kept their
   department in clear, which told whether a department's one person answered. Closed: status and pause
   are sealed to the participant row, and a score's department is sealed until the week close drops it.
3. The open week's scores_weeklylink rows name their participant in clear, and the round made them only for
   those it messaged: a dump of the open week listed who is active and not paused. Closed: the round makes a
   link for everyone on the list who enrolled and whose row is not shredded, and sends only the participants'.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
import time_machine
from django.core import mail
from django.db import connections
from django.test import Client

from participants.models import Department, Organisation, Participant
from preventicons import messaging
from preventicons.gateways import MemorySmsGateway
from tests.conftest import ALL_DATABASES
from tests.scores.people import make_link, make_participant

pytestmark = [pytest.mark.usefixtures("english", "empty_cache")]

WEEK = dt.date(2026, 11, 16)
TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)


def _rows(sql: str) -> list[tuple]:
    with connections["default"].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _table(table: str) -> list[dict[str, object]]:
    """Every column of every live row, with the creating transaction (xmin) and the locking one (xmax)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT xmin::text::bigint AS xmin_, xmax::text::bigint AS xmax_, * FROM {table}")  # noqa: S608
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# What a participant's action writes after a tap, and what the operator orders by xmin.
WRITTEN_AFTER_A_TAP = (
    "participants_accountlink",
    "participants_verificationcode",
    "preventicons_outboundmessage",
    "django_session",
)


def _identifying(row: dict[str, object]) -> set[str]:
    # Values long enough to identify a row (ids, hashes, ciphertexts); short ones (a channel, a flag) are
    # shared by everyone and pair nothing.
    return {str(value) for value in row.values() if value is not None and len(str(value)) >= 16}


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@time_machine.travel(TUESDAY, tick=True)
def test_xmin_does_not_pair_a_score_with_the_account_link_asked_for_after_it(
    organisation: Organisation,
) -> None:
    people = [make_participant(organisation) for _ in range(4)]
    for person in people:
        _link, token = make_link(person, week=WEEK)
        client = Client()
        # Tap on the weekly link, then follow the thanks page's "account" link: ask for the e-mail link, open
        # it (an SMS code is written) and enter the code (the code row and a session are written).
        tapped = client.post(f"/w/{token}/", {"value": "3"})
        assert tapped.status_code == 303
        assert client.post("/me/link/", {"email": person.email}).status_code == 200
        messaging.send_due_messages()
        link = re.search(r"https?://\S+/me/link/(\S+)/", str(mail.outbox[-1].body))
        assert link
        assert client.get(f"/me/link/{link.group(1)}/").status_code == 302
        assert client.post("/me/link/open/").status_code == 302
        messaging.send_due_messages()
        code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"])
        assert code
        assert client.post("/me/link/code/", {"sms_code": code.group(1)}).status_code == 302
    # What the operator does with a live database: order every table by the creating transaction, and read
    # every column of the rows written after each score.
    scores = _rows("SELECT xmin::text::bigint, id::text FROM scores_score")
    assert len(scores) == 4
    after = [row for table in WRITTEN_AFTER_A_TAP for row in _table(table)]
    assert _table("participants_accountlink") and _table("participants_verificationcode")
    # Every clear value of every participant row, and the transactions that last wrote or locked it.
    known: dict[str, object] = {}
    stamped: dict[int, object] = {}
    for row_of_person in _table("participants_participant"):
        for value in _identifying(row_of_person):
            known[value] = row_of_person["id"]
        for stamp in (row_of_person["xmin_"], row_of_person["xmax_"]):
            if stamp:
                stamped[int(str(stamp))] = row_of_person["id"]
    # Each score is followed, until the next score, by what its author did after tapping.
    paired = {}
    starts = sorted(xmin for xmin, _id in scores)
    for score_xmin, score_id in scores:
        later = [xmin for xmin in starts if xmin > score_xmin]
        until = later[0] if later else float("inf")
        named = set()
        for row in after:
            if not score_xmin < int(str(row["xmin_"])) < until:
                continue
            named |= {known[value] for value in _identifying(row) if value in known}
            for stamp in (row["xmin_"], row["xmax_"]):
                if stamp and int(str(stamp)) in stamped:
                    named.add(stamped[int(str(stamp))])
        if len(named) == 1:
            paired[score_id] = named.pop()
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
    # Stronger: no row written after a tap holds anything of a participant row, nor shares a transaction
    # with a write or lock of one.
    for row in after:
        assert not _identifying(row) & set(known), row
        assert not {int(str(row["xmin_"])), int(str(row["xmax_"] or 0))} & set(stamped), row


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _looks(value: object) -> object:
    """What a value tells an operator who compares rows of different people: a ciphertext its format, key id
    and length; a keyed hash or a random id only that it is one (each person has their own)."""
    if isinstance(value, str) and value.startswith("v1."):
        return ("sealed", value.split(".", 2)[1], len(value))
    if isinstance(value, str) and _HEX64.fullmatch(value):
        return "keyed hash"
    if isinstance(value, uuid.UUID):
        return "random id"
    return value


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
            Participant.objects.filter(pk=boss.pk).set_state(status=Participant.Status.DECLINED)
        elif what == "paused":
            Participant.objects.filter(pk=boss.pk).set_state(
                status=Participant.Status.ACTIVE, messages_paused=True
            )
        elif what == "inactive":
            Participant.objects.filter(pk=boss.pk).set_state(status=Participant.Status.INACTIVE)
        # The operator: the department's name and every column of its participant rows.
        rows = _table("participants_participant")
        directie_rows = [row for row in rows if row["department_id"] == directie.pk]
        assert len(directie_rows) == 1
        dumps[what] = [
            {column: _looks(value) for column, value in row.items() if column not in ("xmin_", "xmax_")}
            for row in directie_rows
        ]
    assert all(rows == dumps["silent"] for rows in dumps.values()), dumps


def _shape(value: object) -> object:
    """What a column's value tells without the key: a ciphertext only its format, key id and length."""
    if isinstance(value, str) and value.startswith("v1."):
        return ("sealed", value.split(".", 2)[1], len(value))
    return value


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(TUESDAY, tick=False)
def test_an_open_week_dump_does_not_tell_whether_the_one_person_of_a_department_answered(
    organisation: Organisation,
) -> None:
    directie = Department.objects.create(organisation=organisation, name="Directie")
    boss = make_participant(organisation)
    Participant.objects.filter(pk=boss.pk).update(department=directie)
    colleague = make_participant(organisation)  # in the organisation's large department
    assert colleague.department_id != directie.pk
    _link, token = make_link(boss, week=WEEK)
    _link, colleague_token = make_link(colleague, week=WEEK)
    before = {row["id"]: row for row in _table("scores_score")}
    assert Client().post(f"/w/{token}/", {"value": "1"}).status_code == 303
    after = {row["id"]: row for row in _table("scores_score")}
    (boss_row,) = [row for pk, row in after.items() if pk not in before]
    assert Client().post(f"/w/{colleague_token}/", {"value": "1"}).status_code == 303
    (colleague_row,) = [row for pk, row in _table_by_id("scores_score").items() if pk not in after]
    # The operator looks for the director's department in every column of every score row: nothing.
    directie_values = {str(directie.pk), directie.name}
    for row in after.values():
        assert not {str(value) for value in row.values()} & directie_values, row
    # And the director's row reads like a colleague's of another department, column by column (apart from
    # its random id, its per-week pseudonym and the transaction that wrote it).
    unique = {"id", "pseudonym", "xmin_", "xmax_"}
    assert {k: _shape(v) for k, v in boss_row.items() if k not in unique} == {
        k: _shape(v) for k, v in colleague_row.items() if k not in unique
    }


def _table_by_id(table: str) -> dict[object, dict[str, object]]:
    return {row["id"]: row for row in _table(table)}


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_dump_of_the_consent_records_names_nobody_and_tells_no_kind(organisation: Organisation) -> None:
    """Consent records once held participant_id and kind in clear: a dump read who paused, withdrew or
    consented to be contacted (a help request). Every column of every row, as the operator reads them."""
    from participants import account, enrolment, participation

    people = [make_participant(organisation) for _ in range(4)]
    for person in people:
        enrolment.record_consent(participant=person)
    account.pause_messages(participant=people[0], paused=True)
    account.pause_messages(participant=people[0], paused=False)
    participation.record_contact_consent(participant=people[1], text_version="2026-12")
    account.stop_participation(participant=Participant.objects.get(pk=people[2].pk))
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM participants_consentrecord")
        columns = [column.name for column in cursor.description]
        rows = cursor.fetchall()
    assert len(rows) == 4 + 2 + 1 + 1
    cells = {str(value) for row in rows for value in row}
    ids = {str(person.pk) for person in people} | {str(person.pk.hex) for person in people}
    assert not cells & ids, "a consent row names its participant"
    kinds = {"given", "contact", "withdrawn", "paused", "resumed"}
    assert not cells & kinds, f"a consent row tells its kind in clear: {cells & kinds}"
    assert "participant_id" not in columns
    # The sealed kinds all look alike: one length for every kind.
    kind_at = columns.index("kind")
    assert len({len(str(row[kind_at])) for row in rows}) == 1


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_open_weeks_links_do_not_tell_who_takes_part(organisation: Organisation) -> None:
    from scores import rounds
    from scores.models import WeeklyLink

    people = {
        "active": make_participant(organisation),
        "paused": make_participant(organisation, messages_paused=True),
        "inactive": make_participant(organisation, status=Participant.Status.INACTIVE),
        "not enrolled": make_participant(organisation, status=Participant.Status.INVITED),
    }
    rounds.run_weekly_round(organisation=organisation, week=WEEK)

    linked = {row[0] for row in _rows("SELECT participant_id FROM scores_weeklylink")}
    # What the operator reads: one link row for every one of them, each like the others.
    assert linked == {person.pk for person in people.values()}
    assert WeeklyLink.objects.count() == len(people)
