"""Help requests taken up in batches: what an operator with live databases and dumps can no longer pair.

The attack (issue 14): a help request's consent row used to be written in the transaction right after the
score (adjacent ``xmin``), and dossiers lay in the order they were opened, which tied score, person and
dossier together. Now asking writes only a sealed queue row; the batch writes the consent and the dossier.
"What a help request writes" is therefore the consent and the dossier: both must come from the batch, one
transaction per store for every request of the window, in random order. The queue row itself is written at
request time (it has to be), holds nothing readable and is gone after the batch.

These tests read ``xmin`` and ``ctid`` with raw SQL on PostgreSQL. The three test databases share one
cluster and its transaction-id counter, and other test runs may use it at the same time, so no test counts
on ids being consecutive: the assertions are about which rows share a transaction and which come after.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connections
from django.utils import timezone

from casefiles.models import Dossier
from participants import account, requestqueue
from participants.models import ConsentRecord, Organisation, Participant, QueuedRequest
from scores import submission, wellbeing
from scores.signals import help_requested
from tests.conftest import ALL_DATABASES
from tests.scores.people import make_link, make_participant

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

WEEK = dt.date(2026, 11, 16)
TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)


def xmins(alias: str, table: str) -> list[int]:
    """The creating transaction id of every row of a table, as the operator's ``SELECT xmin`` shows it."""
    with connections[alias].cursor() as cursor:
        # Table names are constants of this module, not input.
        cursor.execute(f"SELECT xmin::text::bigint FROM {table}")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def stored_order(alias: str, table: str, column: str) -> list[str]:
    """A column of every row in the order the table stores them: the order a dump lists them in."""
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT {column}::text FROM {table} ORDER BY ctid")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def ask(participant: Participant) -> None:
    wellbeing.request_help(
        participant=participant, channel="phone", consent_text_version=wellbeing.CONTACT_CONSENT_VERSION
    )


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@time_machine.travel(TUESDAY, tick=False)
def test_no_row_a_help_request_writes_sits_next_to_the_score_tapped_before_it(
    organisation: Organisation,
) -> None:
    # Five people tap in turn, committing each write as the site does; three of them ask for help right
    # after their tap, as the thank-you page lets them.
    people = [make_participant(organisation) for _ in range(5)]
    askers = people[0::2]
    for person in people:
        _link, token = make_link(person, week=WEEK)
        assert submission.submit_score(token=token, value=2).recorded
        if person in askers:
            ask(person)
    score_xmins = xmins("default", "scores_score")
    assert len(score_xmins) == 5
    # Before the batch nothing but the sealed queue rows: no consent, no dossier next to any score.
    assert not ConsentRecord.objects.exists() and not Dossier.objects.exists()

    wellbeing.take_up_help_requests()

    consent_xmins = xmins("default", "participants_consentrecord")
    dossier_xmins = xmins("casefiles", "casefiles_dossier")
    assert len(consent_xmins) == len(dossier_xmins) == 3
    # One transaction per store for every request of the window: a consent's xmin says "this batch", the
    # same for all three askers, not "right after that score".
    assert len(set(consent_xmins)) == 1 and len(set(dossier_xmins)) == 1
    written = consent_xmins[0], dossier_xmins[0]
    # After every score of the window, so it orders no differently against an asker's score than against
    # anyone else's; and never the transaction following a score.
    assert min(written) > max(score_xmins)
    assert not {xmin + 1 for xmin in score_xmins} & set(written)
    # The queue rows written at request time are gone with the batch.
    assert not QueuedRequest.objects.exists()


def test_the_queue_row_names_nobody_and_has_no_time_of_day(organisation: Organisation) -> None:
    participant = make_participant(organisation)

    ask(participant)

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT t::text FROM participants_queuedrequest t")
        (row,) = (line for (line,) in cursor.fetchall())
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'participants_queuedrequest'"
        )
        types = dict(cursor.fetchall())
    for readable in (str(participant.pk), participant.pk.hex, participant.pseudonym or "-", "phone"):
        assert readable not in row
    assert wellbeing.CONTACT_CONSENT_VERSION not in row
    assert types == {"id": "uuid", "request": "text", "queued_on": "date"}


def test_dossiers_of_one_batch_do_not_lie_in_the_order_people_asked(organisation: Organisation) -> None:
    people = [make_participant(organisation) for _ in range(20)]
    for person in people:
        ask(person)

    wellbeing.take_up_help_requests()

    asked_order = {person.pseudonym: n for n, person in enumerate(people)}
    by_id = {str(dossier.pk): dossier.pseudonym for dossier in Dossier.objects.all()}
    dossiers = [asked_order[by_id[pk]] for pk in stored_order("casefiles", "casefiles_dossier", "id")]
    assert sorted(dossiers) == list(range(20))
    # In insertion order this would be 0, 1, 2, ...: a shuffle of 20 equals it once in 20! runs.
    assert dossiers != sorted(dossiers)
    by_random_id = [asked_order[pseudonym] for _pk, pseudonym in sorted(by_id.items())]
    assert by_random_id != sorted(by_random_id)
    # The consents of the batch likewise.
    owner = {ConsentRecord.index_for(person.pk, 0): n for n, person in enumerate(people)}
    consents = [
        owner[index] for index in stored_order("default", "participants_consentrecord", "participant_index")
    ]
    assert sorted(consents) == list(range(20)) and consents != sorted(consents)
    # And nothing in a dossier's day says when in the day it was asked for.
    assert set(Dossier.objects.values_list("opened_on", flat=True)) == {timezone.localdate()}


def test_a_second_batch_changes_nothing(organisation: Organisation) -> None:
    people = [make_participant(organisation) for _ in range(3)]
    for person in people:
        ask(person)
    assert wellbeing.take_up_help_requests() == wellbeing.HelpBatch(taken_up=3, dropped=0)
    before = (
        list(ConsentRecord.objects.order_by("pk").values_list("pk", "participant_index", "recorded_at")),
        list(Dossier.objects.order_by("pk").values_list("pk", "number", "is_open")),
    )

    assert wellbeing.take_up_help_requests() == wellbeing.HelpBatch(taken_up=0, dropped=0)

    after = (
        list(ConsentRecord.objects.order_by("pk").values_list("pk", "participant_index", "recorded_at")),
        list(Dossier.objects.order_by("pk").values_list("pk", "number", "is_open")),
    )
    assert after == before


def test_a_batch_retried_after_the_casefiles_store_committed_doubles_nothing(
    organisation: Organisation,
) -> None:
    # The state a crash leaves between the two commits of a batch (every_store commits the other stores
    # first, the identity store last): the dossier is open, but the consent and the queue's deletion are
    # not written. The retried batch must open no second dossier and record the consent once.
    participant = make_participant(organisation)
    ask(participant)
    help_requested.send(
        sender=Participant,
        pseudonym=participant.pseudonym,
        channel="phone",
        consent_version=wellbeing.CONTACT_CONSENT_VERSION,
        consented_on=timezone.localdate(),
    )
    assert Dossier.objects.count() == 1 and QueuedRequest.objects.count() == 1

    wellbeing.take_up_help_requests()

    assert Dossier.objects.count() == 1
    assert len(ConsentRecord.objects.of(participant.pk).opened(ConsentRecord.Kind.CONTACT)) == 1
    assert not QueuedRequest.objects.exists()


def test_the_batch_task_takes_up_the_queue(organisation: Organisation) -> None:
    from scores.tasks import take_up_help_requests

    ask(make_participant(organisation))

    assert take_up_help_requests.delay().get() == 1
    assert Dossier.objects.count() == 1


def test_every_consent_is_a_day_without_a_time(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    ask(participant)
    wellbeing.take_up_help_requests()
    account.pause_messages(participant=participant, paused=True)
    account.stop_participation(participant=participant)

    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'participants_consentrecord' AND column_name = 'recorded_at'"
        )
        assert cursor.fetchone()[0] == "date"
        cursor.execute("SELECT recorded_at::text FROM participants_consentrecord")
        stored = [row[0] for row in cursor.fetchall()]
    assert len(stored) == 3  # contact, paused, withdrawn
    for value in stored:
        assert dt.date.fromisoformat(value).isoformat() == value
    history = account.consent_history(participant)
    assert {entry["recorded_at"] for entry in history} == {timezone.localdate().isoformat()}


# --- pausing and resuming go the same way ------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@time_machine.travel(TUESDAY, tick=False)
def test_a_pause_right_after_a_tap_is_written_by_the_batch_not_next_to_the_score(
    organisation: Organisation,
) -> None:
    people = [make_participant(organisation) for _ in range(3)]
    for person in people:
        _link, token = make_link(person, week=WEEK)
        assert submission.submit_score(token=token, value=4).recorded
        requestqueue.queue_pause_change(participant=person, paused=True)
    score_xmins = xmins("default", "scores_score")
    # Nothing about the pause is readable yet: the flag is unchanged and no consent trace is written.
    assert not Participant.objects.with_status(paused=True).exists()
    assert not ConsentRecord.objects.exists()

    assert wellbeing.take_up_help_requests().pauses_changed == 3

    assert Participant.objects.with_status(paused=True).count() == 3
    # The pause is sealed now: which rows paused is read with the key, their xmin as the operator sees it.
    paused = list(Participant.objects.all().ids_with_status(paused=True))
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text::bigint FROM participants_participant WHERE id = ANY(%s) "
            "UNION ALL SELECT xmin::text::bigint FROM participants_consentrecord",
            [paused],
        )
        written = [row[0] for row in cursor.fetchall()]
    assert len(written) == 6
    # Written by the batch after every score of the window (each pause in its own savepoint of the batch's
    # transaction, hence ids of its own, allocated in the batch's random order), never next to a score.
    assert min(written) > max(score_xmins)
    assert not {xmin + 1 for xmin in score_xmins} & set(written)


def test_the_last_pause_choice_wins_within_one_batch(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    other = make_participant(organisation)

    for paused in (True, False, True, False):
        requestqueue.queue_pause_change(participant=participant, paused=paused)
    requestqueue.queue_pause_change(participant=other, paused=True)
    ask(participant)

    # One pending pause change per participant, next to the help request: earlier choices are replaced.
    assert QueuedRequest.objects.count() == 3
    assert wellbeing.take_up_help_requests() == wellbeing.HelpBatch(taken_up=1, dropped=0, pauses_changed=1)
    participant.refresh_from_db()
    other.refresh_from_db()
    assert not participant.messages_paused and other.messages_paused


def test_a_help_request_and_a_pause_look_alike_in_the_queue(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    ask(participant)
    requestqueue.queue_pause_change(participant=participant, paused=True)

    rows = list(QueuedRequest.objects.values_list("request", "queued_on"))

    # Same columns, same day, ciphertexts of one padded length: which is which opens only with the key.
    assert len(rows) == 2 and rows[0][1] == rows[1][1]
    assert len(rows[0][0]) == len(rows[1][0])
    for sealed, _day in rows:
        assert "pause" not in sealed and "help" not in sealed and str(participant.pk) not in sealed


def test_a_pause_change_of_someone_who_stopped_meanwhile_is_dropped(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    requestqueue.queue_pause_change(participant=participant, paused=True)
    account.stop_participation(participant=participant)

    assert wellbeing.take_up_help_requests() == wellbeing.HelpBatch(taken_up=0, dropped=1)
    assert not bool(ConsentRecord.objects.opened(ConsentRecord.Kind.PAUSED))
