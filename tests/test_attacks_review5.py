"""Review 5 (adversary): the invitation links' table, and today's rejoin queue and organisation lock.

Attackers: the operator (a ``pg_dump`` of the identity store, or the live database, no key file) and the
employer (its mailboxes, the account pages a forwarded link opens). Each test is an attack; a strict xfail
is a leak still open, its reason says what and a direction for the fix.

1. Operator, one dump: ``participants_invitation`` names its participant in clear and kept ``used_at`` in
   clear, written when the person enrolled. Every link a person enrolled through said "this participant row
   takes part", to the microsecond, until the link was purged (``INVITATION_DAYS`` +
   ``EXPIRED_INVITATION_KEEP_DAYS``, some two months). The participant row, its sealed status and its shape
   were made alike for exactly this (tests/test_attacks_rowshape.py). Closed: enrolment writes nothing on
   the link (the sealed status refuses a second enrolment), and participants 0029 clears what was stored
   and writes the table anew.
2. Operator, one dump: a stop and the nightly anonymisation set ``participant_id`` NULL on every link of
   the person, and the invitation schedule's later reminders make links with no participant for them. So
   in a cohort sent the same step (one ``expires_at``), the participant rows with no link of that step were
   the ones who stopped or declined (and were erased), for two months. Closed: the links keep naming the
   (stopped) row, and open nothing because its sealed status says stopped.
3. Operator, one dump, for good: the invitation purge keeps the newest link only of someone still invited
   (never enrolled, never declined). After it, the participant rows that still had a link were exactly
   those who never took part, so every other row of the list took part (or declined): who takes part, in
   every later dump. Closed: every link past its keep period goes (it texts no code by then, so it could
   not ask for a new one anyway).
4. Operator, two dumps around a request batch (or the live rows before and after it): README says the batch
   tells who acted, not what. But each act rewrites only its own sealed columns with fresh nonces: a pause
   or resume changes ``messages_paused`` alone, a rejoin ``status`` and ``participation`` alone (no week
   closed in between). So the columns that changed say what each row's person asked: who paused, who had
   gone silent for weeks (inactive) and came back. Review 4's xfail is the same for a stop (its hashes).
   Closed the same day: every act seals every sealed column of its row afresh (Participant.reseal).
5. Whoever holds a weekly link (the employer, when the weekly message goes to the work address, or a
   forwarded one), timing one tap: since today the request batch takes every organisation row FOR UPDATE,
   and the stop, the import, the nightly anonymisation and the week close take theirs so too. A score row's
   foreign key to its organisation makes PostgreSQL check it at commit with FOR KEY SHARE on that row,
   which FOR UPDATE blocks: a first tap (which inserts) waits until the batch or import commits, a repeated
   tap (which inserts nothing) answers at once. README's known limit of 0.1-0.2 ms between the two becomes
   the whole batch (at fixed clock times) or the whole import (which the employer starts itself, as long
   as its list makes it): whether the person already answered this week, from one tap. Closed: every
   organisation lock is FOR NO KEY UPDATE, which still excludes the others but not a foreign-key check.
6. Operator, one dump of any open week: the round makes a weekly link (participant_id in clear) only for
   rows with a weekly channel, that is rows that enrolled and were not shredded. Brought there by the real
   operations (not a factory that gives an invited row a channel, as tests/test_attacks_operator.py does),
   the silent, the declined, the stopped and the anonymised have no link and everyone who takes part has
   one: who takes part, every week, undoing the rows of one shape. Closed the same day: every listed row
   gets a link and one queued message, on a stand-in channel where it has none
   (participants.queries.weekly_recipients).
7. Operator, one dump for two months: someone still invited who opens an expired link with its SMS code
   gets a new link row (enrolment.renew_invitation) naming their row in clear, expiring to the microsecond
   INVITATION_DAYS after that moment, off every step of the schedule: the row that took up its invitation
   late (to join or decline), and when. Closed the same day: that browser goes on with the expired link
   (enrolment.may_go_on_expired); no link row is written.
8. Anyone (robustness, today's batch): a correction confirmed while the request batch stops that same
   person. confirm_change deletes the round's codes, then takes the queue's rows; the batch holds the
   queue's rows and, stopping the person, deletes their codes. Each waits for the other: PostgreSQL aborts
   one, the batch (every request of the quarter hour waits for the next) or the person's confirmation.
   Closed: confirm_stop and confirm_change take the queue's rows first, in the batch's order.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client
from django.urls import reverse

from participants import account, enrolment, requestqueue, retention
from participants.importing import import_address_list
from participants.models import Invitation, Organisation, Participant, QueuedRequest, StaffUser
from preventicons.crypto import hash_token, new_token
from preventicons.dbrouter import every_store
from scores import weekclose, wellbeing
from scores.submission import submit_score
from tests.batchhold import held_in_a_thread
from tests.conftest import ALL_DATABASES
from tests.participants.test_stop import delivered_codes, make_active
from tests.scores.people import make_link, make_participant
from tests.test_attacks_review3 import dropped_values_in_table_file
from tests.test_attacks_rowshape import (
    START,
    _deliver,
    _migrate,
    _people,
    _row_versions_in_table_file,
)

pytestmark = [pytest.mark.usefixtures("english", "empty_cache")]


def _invitation_rows() -> list[tuple[uuid.UUID | None, tuple[str, ...], dt.datetime]]:
    """The invitation table as the operator reads it, per row: its participant_id, which of its other
    columns hold a value (a mark such as a used_at would show here), and its expiry."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM participants_invitation")
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return [
        (
            uuid.UUID(str(row["participant_id"])) if row["participant_id"] is not None else None,
            tuple(sorted(name for name, value in row.items() if value is not None)),
            row["expires_at"],
        )
        for row in rows
    ]


def _per_person(ids: dict[str, uuid.UUID]) -> dict[str, tuple[int, tuple[tuple[str, ...], ...]]]:
    """Per state: (links naming the row, the columns holding a value in each of them)."""
    rows = _invitation_rows()
    return {
        state: (
            sum(1 for pid, _filled, _expires in rows if pid == pk),
            tuple(sorted(filled for pid, filled, _expires in rows if pid == pk)),
        )
        for state, pk in ids.items()
    }


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_a_dump_of_the_invitation_links_does_not_tell_who_enrolled(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    filled = {state: filled for state, (_links, filled) in _per_person(ids).items()}
    # What the operator reads per participant row: which columns of their links hold a value (a used_at).
    assert len(set(filled.values())) == 1, filled
    # And a second enrolment through the link is still refused: by the sealed status, not by a mark on it.
    active = Participant.objects.get(pk=ids["active"])
    link = Invitation.objects.filter(participant=active).get()
    with pytest.raises(enrolment.EnrolmentRefused):
        requestqueue.confirm_enrolment(invitation=link)
    assert enrolment.link_state(link) is enrolment.LinkState.ENROLLED


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_after_participants_0029_no_invitation_keeps_when_it_was_used_in_the_table_file(
    organisation: Organisation,
) -> None:
    """Links used before the fix lose their used_at, and no row version in the table file keeps it: 0029
    drops the column and writes the table anew, which nulls a dropped column in every version it keeps."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's table files")
    before = [("participants", "0028_vacuum_full_participants_of_one_shape")]
    used_at = dt.datetime(2026, 11, 23, 9, 12, 34, 567891, tzinfo=dt.UTC)
    # How PostgreSQL stores a timestamptz: microseconds since 2000-01-01 UTC, 8 bytes, little-endian here.
    stored = int((used_at - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))
    mark = stored.to_bytes(8, "little")
    # Made under the current schema (participants 0030 reads the organisation's index salt to index it).
    person = make_participant(organisation, status=Participant.Status.ACTIVE)
    executor = _migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("participants", "Invitation")
        old.objects.using("default").create(
            participant_id=person.pk,
            token_hash=hash_token(new_token()),
            expires_at=used_at + dt.timedelta(days=14),
            used_at=used_at,
            mobile="",
        )
        assert any(mark in version for version in _row_versions_in_table_file("participants_invitation"))
        _migrate()

        assert mark not in dropped_values_in_table_file("participants_invitation", alias="default")
        assert not any(mark in version for version in _row_versions_in_table_file("participants_invitation"))
    finally:
        _migrate()


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_a_dump_of_the_invitation_links_does_not_tell_who_stopped_or_was_erased(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    # The first reminder a week later, for everyone on the list alike (whatever they did).
    with time_machine.travel(START + dt.timedelta(days=7, minutes=1), tick=False):
        _deliver()
    rows = _invitation_rows()
    # One cohort, two steps: each step's links share one expires_at.
    steps = Counter(expires for _pid, _filled, expires in rows)
    assert len(steps) == 2 and set(steps.values()) == {len(ids)}
    links = {state: links for state, (links, _filled) in _per_person(ids).items()}
    assert len(set(links.values())) == 1, links
    # Still naming the stopped rows, the links open nothing: no state to act on, and no code that opens them.
    for state in ("stopped", "anonymised"):
        for link in Invitation.objects.filter(participant_id=ids[state]):
            assert enrolment.link_state(link) is enrolment.LinkState.STOPPED
            assert not enrolment.verify_link_code(invitation=link, code="000000")


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_after_the_invitation_purge_the_links_left_do_not_tell_who_never_took_part(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    later = START + dt.timedelta(
        days=django_settings.INVITATION_DAYS + django_settings.EXPIRED_INVITATION_KEEP_DAYS + 1
    )
    with time_machine.travel(later, tick=False):
        retention.run_retention()
    links = {state: links for state, (links, _filled) in _per_person(ids).items()}
    assert len(set(links.values())) == 1, links


def _participant_rows() -> dict[str, dict[str, object]]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM participants_participant")
        names = [column.name for column in cursor.description]
        return {str(row[0]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@time_machine.travel(dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC), tick=True)
def test_two_dumps_around_a_batch_do_not_tell_a_pause_from_a_rejoin(organisation: Organisation) -> None:
    pauser = make_active(organisation, name="P 1", email="p1@example.nl", mobile="+31612345601")
    rejoiner = make_active(organisation, name="P 2", email="p2@example.nl", mobile="+31612345602")
    rejoiner.status = Participant.Status.INACTIVE
    rejoiner.save()
    before = _participant_rows()
    requestqueue.queue_pause_change(participant=pauser, paused=True)
    requestqueue.queue_rejoin(participant=rejoiner)
    batch = wellbeing.take_up_help_requests()
    assert (batch.pauses_changed, batch.rejoins) == (1, 1)
    after = _participant_rows()

    # The operator, no key: which columns of each row the batch changed.
    changed = {
        pk: sorted(column for column, value in row.items() if after[pk][column] != value)
        for pk, row in before.items()
    }
    assert changed[str(pauser.pk)] == changed[str(rejoiner.pk)], changed


def _hold_the_organisation(holder: str, organisation: Organisation, employer: StaffUser) -> None:
    """What ``holder`` does while it holds the organisation row, by the real operation; inside an outer
    transaction, so the lock is held until the test lets it commit."""
    other = make_participant(organisation)
    if holder == "request batch":
        requestqueue.queue_pause_change(participant=other, paused=True)
        assert requestqueue.take_up_pending().pauses_changed == 1
    elif holder == "import":
        import_address_list(
            organisation=organisation,
            data=b"naam;e-mail;mobiel;afdeling\r\nNieuw;nieuw@example.nl;0612399999;Zorg\r\n",
            full_list=False,
            by=employer,
        )
    elif holder == "stop":
        account.stop_participation(participant=other)
    elif holder == "nightly anonymisation":
        assert retention.anonymise_participants(participant_ids=[other.pk]) == 1
    else:
        weekclose.close_week(organisation_id=organisation.pk, week=dt.date(2026, 11, 9), vacuum=False)


@pytest.mark.parametrize("holder", ["request batch", "import", "stop", "nightly anonymisation", "week close"])
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@time_machine.travel(dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC), tick=True)
def test_a_first_tap_does_not_wait_for_whatever_holds_the_organisation(
    organisation: Organisation, employer: StaffUser, holder: str
) -> None:
    """The batch, an import (which the employer starts at will), a stop, the anonymisation and the week close
    each hold the organisation row until they commit. A first tap in that time must answer as a repeated one
    does, not once they are over."""
    week = dt.date(2026, 11, 16)
    _link, token = make_link(make_participant(organisation), week=week)
    with held_in_a_thread(lambda: _hold_the_organisation(holder, organisation, employer)):
        with connections["default"].cursor() as cursor:
            # Not a clock: a tap that has to wait for a lock fails at once instead of after the batch.
            cursor.execute("SET lock_timeout = '1s'")
        try:
            assert submit_score(token=token, value=4).recorded
        finally:
            with connections["default"].cursor() as cursor:
                cursor.execute("RESET lock_timeout")


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_an_open_week_dump_of_the_weekly_links_does_not_tell_who_takes_part(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    from scores import rounds

    """Closed: every listed row gets the week's link and one queued message (a stand-in channel for a row
    with none), and only the renderer, at send time, finds whom it may reach."""
    ids = _people(organisation, employer, settings)
    rounds.run_weekly_round(organisation=organisation, week=dt.date(2026, 11, 23))
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT id::text, participant_id FROM scores_weeklylink")
        link_of = {link: uuid.UUID(str(pid)) for link, pid in cursor.fetchall()}
        # The outbox rows, as queued: each names its link (until it is final).
        cursor.execute("SELECT reference, channel, status FROM preventicons_outboundmessage")
        queued = [(reference, channel, status) for reference, channel, status in cursor.fetchall()]
    linked = Counter(link_of.values())
    messaged = Counter(link_of[reference] for reference, _channel, _status in queued if reference in link_of)
    per_state = {state: (linked[pk], messaged[pk]) for state, pk in ids.items()}
    assert set(per_state.values()) == {(1, 1)}, per_state
    assert {(channel, status) for _reference, channel, status in queued if _reference in link_of} <= {
        ("email", "pending"),
        ("sms", "pending"),
    }


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_a_dump_of_the_invitation_links_does_not_tell_who_took_up_an_expired_one(
    client: Client, organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    """Closed: the expired link, its SMS code entered, goes on in that browser (enrolment.may_go_on_expired);
    no new link row is made."""
    from preventicons import messaging
    from preventicons.gateways import MemorySmsGateway
    from tests.test_attacks_rowshape import CODE, _token_of

    ids = _people(organisation, employer, settings)
    with time_machine.travel(START + dt.timedelta(days=django_settings.INVITATION_DAYS, hours=1), tick=False):
        client.get(f"/i/{_token_of('silent')}/")
        client.post(reverse("participants:enrol"))
        messaging.send_due_messages()
        code = CODE.search(MemorySmsGateway.outbox[-1]["body"])
        assert code
        client.post(reverse("participants:enrol-open"), {"code": code.group(1)})
        assert (
            "This link has expired"
            in client.get(reverse("participants:enrol-next"), follow=True).content.decode()
        )
        going_on = client.post(reverse("participants:enrol-new-link"))
        assert going_on["Location"] == reverse("participants:enrol-consent")
    links = {state: links for state, (links, _filled) in _per_person(ids).items()}
    assert len(set(links.values())) == 1, links


def _waiting_on_a_lock(query_part: str) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE %s",
            [f"%{query_part}%"],
        )
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@time_machine.travel(dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC), tick=True)
def test_a_correction_confirmed_while_the_batch_stops_its_person_deadlocks_nothing(
    organisation: Organisation,
) -> None:
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's row locks")
    person = make_active(organisation, name="P 1", email="p1@example.nl", mobile="+31612345601")
    account.request_stop_codes(participant=person)
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_stop(participant=person, email_code=email_code, sms_code=sms_code).done
    account.request_change(participant=person, mobile="+31612345699")
    email_code, sms_code = delivered_codes()
    queue_held, go_on = threading.Event(), threading.Event()
    failed: list[BaseException] = []
    taken: list[int] = []
    confirmed: list[bool] = []

    def batch() -> None:
        try:
            with every_store():
                # take_up_pending's first statement, taken here so the test can hold the batch right after
                # it; take_up_pending takes the same rows again, already its own.
                list(QueuedRequest.objects.select_for_update())
                queue_held.set()
                go_on.wait(30)
                taken.append(requestqueue.take_up_pending().stops)
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)
        finally:
            queue_held.set()
            for connection in connections.all():
                connection.close()

    def correction() -> None:
        try:
            confirmed.append(
                requestqueue.confirm_change(participant=person, email_code=email_code, sms_code=sms_code).done
            )
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)
        finally:
            for connection in connections.all():
                connection.close()

    batch_thread, correction_thread = threading.Thread(target=batch), threading.Thread(target=correction)
    batch_thread.start()
    try:
        assert queue_held.wait(30) and not failed, failed
        correction_thread.start()
        # The correction is waiting for the queue's rows: only then does the batch go on.
        for _ in range(300):
            if _waiting_on_a_lock("queuedrequest"):
                break
            threading.Event().wait(0.1)
        else:
            pytest.fail("the correction never waited for the batch")
    finally:
        go_on.set()
        batch_thread.join(60)
        correction_thread.join(60)
    assert not failed, failed
    # The batch stopped them; the correction, which waited for it, then found nothing left to prove.
    assert (taken, confirmed) == ([1], [False])
    person.refresh_from_db()
    assert person.status == Participant.Status.STOPPED
