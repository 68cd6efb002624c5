"""Review 8: the request batch that writes every participant row once, alike (participants.rewrite).

Attacks on the every-row rewrite as the operator (live database, dumps, xmin; no key file) and as the
employer, and the races and batch contents it must survive without losing an act or a lookup (issue 14).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import time_machine
from django.db import connections, transaction

from participants import account, enrolment, requestqueue, rewrite
from participants.invitations import held_by_someone_else
from participants.models import Organisation, Participant, index_salt
from preventicons import messaging
from preventicons.crypto import blind_index_email
from preventicons.dbrouter import every_store
from preventicons.models import OutboundMessage
from scores import wellbeing
from tests.batchhold import waits_for_a_running_batch
from tests.conftest import ALL_DATABASES, make_organisation
from tests.participants.people import make_participant
from tests.participants.test_enrolment_views import invite
from tests.participants.test_stop import delivered_codes, make_active

pytestmark = [
    pytest.mark.usefixtures("english", "empty_cache"),
    pytest.mark.django_db(databases=ALL_DATABASES, transaction=True),
]

TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)
TABLE = "participants_participant"


def _xmins() -> dict[str, str]:
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT id::text, xmin::text FROM {TABLE}")  # noqa: S608  # nosec B608  # the test's name
        return dict(cursor.fetchall())


def _postgres_only() -> None:
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's row locks and system columns")


def _confirmed_change(participant: Participant, **change: str) -> None:
    account.request_change(participant=participant, **change)
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_change(participant=participant, email_code=email_code, sms_code=sms_code).done


def _confirmed_stop(participant: Participant) -> None:
    account.request_stop_codes(participant=participant)
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_stop(participant=participant, email_code=email_code, sms_code=sms_code).done


# --- batch contents ---------------------------------------------------------------------------------------


@time_machine.travel(TUESDAY, tick=True)
def test_a_batch_of_help_requests_only_writes_no_participant_row(organisation: Organisation) -> None:
    """No act, no rewrite: a help request must leave every row (and the salt) as it was, or the operator
    would learn from the xmins that some batch took up a help request."""
    _postgres_only()
    asker = make_active(organisation, name="A", email="a@example.nl", mobile="+31612345601")
    make_active(organisation, name="B", email="b@example.nl", mobile="+31612345602")
    requestqueue.queue_help_request(
        participant=asker, channel="phone", consent_version=wellbeing.CONTACT_CONSENT_VERSION
    )
    salt, before = index_salt(organisation.pk), _xmins()

    batch = wellbeing.take_up_help_requests()

    assert batch.taken_up == 1
    assert _xmins() == before
    assert index_salt(organisation.pk) == salt


@time_machine.travel(TUESDAY, tick=True)
def test_a_help_request_beside_a_pause_is_taken_up_and_every_row_written_once(
    organisation: Organisation,
) -> None:
    """A help request in a batch with acts still opens its dossier, and every row carries the batch's xmin."""
    _postgres_only()
    asker = make_active(organisation, name="A", email="a@example.nl", mobile="+31612345601")
    pauser = make_active(organisation, name="B", email="b@example.nl", mobile="+31612345602")
    make_active(organisation, name="C", email="c@example.nl", mobile="+31612345603")
    requestqueue.queue_help_request(
        participant=asker, channel="phone", consent_version=wellbeing.CONTACT_CONSENT_VERSION
    )
    requestqueue.queue_pause_change(participant=pauser, paused=True)
    before = _xmins()

    batch = wellbeing.take_up_help_requests()

    assert (batch.taken_up, batch.pauses_changed) == (1, 1)
    after = _xmins()
    assert set(after) == set(before)
    assert len(set(after.values())) == 1 and set(after.values()).isdisjoint(before.values())


@time_machine.travel(TUESDAY, tick=True)
def test_a_pause_and_a_correction_of_one_person_in_one_batch_both_apply(organisation: Organisation) -> None:
    """Two acts of one person share the batch's one copy of the row: neither may undo the other."""
    person = make_active(organisation, name="P", email="p@example.nl", mobile="+31612345601")
    _confirmed_change(person, email="new@example.nl")
    requestqueue.queue_pause_change(participant=person, paused=True)

    batch = wellbeing.take_up_help_requests()

    assert (batch.changes, batch.pauses_changed) == (1, 1)
    person = Participant.objects.get(pk=person.pk)
    assert person.messages_paused and person.email == "new@example.nl"
    salt = index_salt(organisation.pk)
    found = Participant.objects.get(
        organisation=organisation, email_index=blind_index_email("new@example.nl", salt)
    )
    assert found.pk == person.pk


@time_machine.travel(TUESDAY, tick=True)
def test_a_rejoin_and_a_pause_of_one_person_in_one_batch_both_apply(organisation: Organisation) -> None:
    person = make_active(organisation, name="P", email="p@example.nl", mobile="+31612345601")
    Participant.objects.filter(pk=person.pk).set_state(status=Participant.Status.INACTIVE)
    requestqueue.queue_rejoin(participant=person)
    requestqueue.queue_pause_change(participant=person, paused=True)

    batch = wellbeing.take_up_help_requests()

    assert (batch.rejoins, batch.pauses_changed) == (1, 1)
    person = Participant.objects.get(pk=person.pk)
    assert person.status == Participant.Status.ACTIVE and person.messages_paused


@time_machine.travel(TUESDAY, tick=True)
def test_a_correction_and_a_stop_of_one_person_leave_nothing_of_the_correction(
    organisation: Organisation,
) -> None:
    """The stop drops the correction whatever the order: no new address under the new salt, none sealed."""
    person = make_active(organisation, name="P", email="p@example.nl", mobile="+31612345601")
    _confirmed_change(person, email="new@example.nl")
    _confirmed_stop(person)

    batch = wellbeing.take_up_help_requests()

    assert (batch.stops, batch.changes) == (1, 0)
    person = Participant.objects.get(pk=person.pk)
    assert person.status == Participant.Status.STOPPED and not person.email
    salt = index_salt(organisation.pk)
    for address in ("p@example.nl", "new@example.nl"):
        assert not Participant.objects.filter(email_index=blind_index_email(address, salt)).exists()


@time_machine.travel(TUESDAY, tick=True)
def test_corrections_to_one_address_in_two_organisations_in_one_batch_both_apply(
    organisation: Organisation, other_organisation: Organisation
) -> None:
    """An address is unique within an organisation only. Two organisations that never had a batch share
    the empty salt, so the address has one index in both: the in-batch check of the second correction
    found the first one's copy (of the other organisation) and refused it, telling that person "someone
    else has it" when nobody of their employer has."""
    first = make_active(organisation, name="A", email="a@noord.nl", mobile="+31612345601")
    second = make_active(other_organisation, name="B", email="b@zuid.nl", mobile="+31612345602")
    _confirmed_change(first, email="shared@example.nl")
    _confirmed_change(second, email="shared@example.nl")

    batch = wellbeing.take_up_help_requests()

    assert batch.changes == 2
    assert Participant.objects.get(pk=first.pk).email == "shared@example.nl"
    assert Participant.objects.get(pk=second.pk).email == "shared@example.nl"


@time_machine.travel(TUESDAY, tick=True)
def test_a_correction_to_the_address_a_colleague_leaves_in_the_same_batch_applies(
    organisation: Organisation,
) -> None:
    """Inside the batch the database still holds the rows as they were before it: the in-batch check must
    read a row the batch already changed from its copy. Whoever stops in the batch gives up their address,
    and a correction the batch takes up after the stop (the queue's random order) may take it; it was
    refused because the stopper's old index still stood in the table. The batch's steps, in that order."""
    stopper = make_active(organisation, name="S", email="s@example.nl", mobile="+31612345701")
    corrector = make_active(organisation, name="C", email="c@example.nl", mobile="+31612345801")
    with every_store():
        list(Organisation.objects.select_for_update(no_key=True).values_list("pk", flat=True))
        with rewrite.every_row_once() as acted:
            account.stop_participation(participant=stopper)
            change = account.ProvenChange(name=None, email="s@example.nl", mobile=None)
            assert account.apply_change(participant=corrector, change=change)
            rewrite.rewrite_every_row(acted)
    assert Participant.objects.get(pk=corrector.pk).email == "s@example.nl"
    salt = index_salt(organisation.pk)
    found = Participant.objects.get(
        organisation=organisation, email_index=blind_index_email("s@example.nl", salt)
    )
    assert found.pk == corrector.pk


@time_machine.travel(TUESDAY, tick=True)
def test_a_refused_correction_after_a_pause_of_the_same_person_keeps_the_pause(
    organisation: Organisation,
) -> None:
    """Taken up after the same person's pause (the queue's random order), a correction refused because a
    colleague took the address meanwhile read the row back from the table to tell them so: that was the
    batch's copy, and the pause it carried (its consent record written, its count in the batch) was lost."""
    person = make_active(organisation, name="P", email="p@example.nl", mobile="+31612345601")
    make_active(organisation, name="T", email="taken@example.nl", mobile="+31612345602")
    with every_store():
        list(Organisation.objects.select_for_update(no_key=True).values_list("pk", flat=True))
        with rewrite.every_row_once() as acted:
            assert account.pause_messages(participant=person, paused=True)
            change = account.ProvenChange(name=None, email="taken@example.nl", mobile=None)
            # The batch hands the act the copy the acts before it changed (requestqueue.take_up_pending).
            assert not account.apply_change(participant=acted[str(person.pk)], change=change)
            rewrite.rewrite_every_row(acted)
    person = Participant.objects.get(pk=person.pk)
    assert person.messages_paused and person.email == "p@example.nl"


def _lengths() -> dict[str, tuple[int, ...]]:
    columns = [*Participant.sealed_columns(), "email_index", "mobile_index"]
    lengths = ", ".join(f"length({column})" for column in columns)
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT id, {lengths} FROM {TABLE}")  # noqa: S608  # nosec B608  # the model's names
        return {str(pk): tuple(values) for pk, *values in cursor.fetchall()}


@time_machine.travel(TUESDAY, tick=True)
def test_no_ciphertext_changes_length_whoever_acted(organisation: Organisation) -> None:
    """The operator compares each sealed column's length across the batch: an act's row is sealed by its
    fields (Participant.save), every other row at the length it had (participants.rewrite); a long name, a
    pause, a rejoin, a correction within the bucket and a stop must all leave every length as it was."""
    long_name = "Anna Maria Theodora Wilhelmina van der Heijden-Oppenheimer tot Rechteren"
    assert len(long_name.encode()) > 64
    pauser = make_active(organisation, name=long_name, email="p@example.nl", mobile="+31612345601")
    make_active(organisation, name=long_name, email="b@example.nl", mobile="+31612345602")
    rejoiner = make_active(organisation, name="R", email="r@example.nl", mobile="+31612345603")
    Participant.objects.filter(pk=rejoiner.pk).set_state(status=Participant.Status.INACTIVE)
    stopper = make_active(organisation, name=long_name, email="s@example.nl", mobile="+31612345604")
    corrector = make_active(organisation, name="C", email="c@example.nl", mobile="+31612345605")
    requestqueue.queue_pause_change(participant=pauser, paused=True)
    requestqueue.queue_rejoin(participant=rejoiner)
    _confirmed_stop(stopper)
    _confirmed_change(corrector, email="corrected@example.nl")
    before = _lengths()

    batch = wellbeing.take_up_help_requests()

    assert (batch.pauses_changed, batch.rejoins, batch.stops, batch.changes) == (1, 1, 1, 1)
    assert _lengths() == before


@time_machine.travel(TUESDAY, tick=True)
def test_two_outbox_dumps_around_a_batch_tell_whose_pending_messages_a_pause_ended(
    organisation: Organisation,
) -> None:
    """The operator dumps the outbox before and after a batch: every row the batch rewrote in the
    participant table looks alike, but the pauser's pending message became a tombstone in the batch's
    transaction, its cancel tag (shared by every message about that person) gone with it. A pause now ends
    nothing in the batch: the week's message ends at its claim, as a stand-in's does."""
    pauser = make_active(organisation, name="P", email="p@example.nl", mobile="+31612345601")
    bystander = make_active(organisation, name="B", email="b@example.nl", mobile="+31612345602")
    with transaction.atomic():
        for person in (pauser, bystander):
            messaging.queue_email(
                key=f"weekly:{person.pk}:2026-11-16", to="x@example.nl", subject="s", body="b"
            )
        # Still waiting when the batch runs (a provider's backoff, say): not sent before it.
        OutboundMessage.objects.filter(status=OutboundMessage.Status.PENDING).update(
            next_attempt_at=TUESDAY + dt.timedelta(days=1)
        )
    requestqueue.queue_pause_change(participant=pauser, paused=True)
    before = dict(OutboundMessage.objects.values_list("key_hash", "status"))

    assert wellbeing.take_up_help_requests().pauses_changed == 1

    after = dict(OutboundMessage.objects.values_list("key_hash", "status"))
    # Alike, whoever acted: the same statuses before and after, both messages still pending or both ended.
    mine = {messaging.outbox_key_hash(f"weekly:{person.pk}:2026-11-16") for person in (pauser, bystander)}
    assert len({after[key] for key in mine}) == 1 and {before[key] for key in mine} == {
        after[key] for key in mine
    }


def _physical_order() -> list[str]:
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT id::text FROM {TABLE} ORDER BY ctid")  # noqa: S608  # nosec B608  # the test's name
        return [pk for (pk,) in cursor.fetchall()]


@time_machine.travel(TUESDAY, tick=True)
def test_the_batch_writes_the_rows_in_no_order_they_lay_in(organisation: Organisation) -> None:
    """The operator reads the table's pages in their order (a plain dump does): an enrolment rewrote its row,
    which moved to the free space at the table's end, so the invited who enrolled lay after those who never
    did. The batch resets every xmin but wrote the rows in the table's own order (PostgreSQL joined the
    chunk's ids to the table by hashing them and scanning the table), so that order, and what it tells of
    who enrolled, outlived every batch. Driven by the chunk's random order, the batch scrubs it."""
    _postgres_only()
    people = [
        make_participant(organisation, email=f"p{n}@example.nl", mobile=f"+316123456{n:02d}")
        for n in range(40)
    ]
    enrolled = people[::3]
    for person in enrolled:
        # What an enrolment does to the row's place: a new version of it, after the others.
        Participant.objects.filter(pk=person.pk).set_state(status=Participant.Status.ACTIVE)
    before = _physical_order()
    requestqueue.queue_pause_change(participant=enrolled[0], paused=True)

    assert wellbeing.take_up_help_requests().pauses_changed == 1

    after = _physical_order()
    assert sorted(after) == sorted(before)
    assert after != before


# --- races ------------------------------------------------------------------------------------------------


def _wait_until_blocked(alias: str = "default", *, timeout: float = 30) -> bool:
    """Poll (from another connection) until some backend waits for a lock: the sync point, not a clock."""
    deadline = time.monotonic() + timeout
    with connections[alias].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


@time_machine.travel(TUESDAY, tick=True)
def test_rows_imported_into_an_organisation_made_during_the_batch_keep_a_current_index(
    organisation: Organisation,
) -> None:
    """The batch locks the organisations there are when it starts; an organisation made after that, whose
    first import runs while the batch rewrites, was not held: the batch read its (no) rows, then waited for
    the import only to write the new salt. The imported rows kept their indexes under the old salt, under
    which nobody looks any more, and the next batch made them look-alikes: those people were lost to every
    lookup (account link, "held by someone else", the next import's matching)."""
    _postgres_only()
    make_active(organisation, name="P", email="p@example.nl", mobile="+31612345601")
    newcomer = make_organisation("Nieuw BV", "bouw")
    importing, imported = threading.Event(), threading.Event()
    failed: list[BaseException] = []
    found: list[str] = []

    def an_import() -> None:
        try:
            importing.wait(30)
            with transaction.atomic():
                Organisation.objects.select_for_update(no_key=True).filter(pk=newcomer.pk).first()
                found.append(str(make_participant(newcomer, email="new@bouw.nl", mobile="+31612345699").pk))
                # Commits only once the batch waits for it (on the organisation), as an import would.
                imported.set()
                assert _wait_until_blocked()
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)
            imported.set()
        finally:
            for connection in connections.all():
                connection.close()

    runner = threading.Thread(target=an_import)
    # The batch has locked every organisation there was (newcomer's creation committed after it, we say:
    # rewrite_every_row meets it as one it does not hold).
    with every_store():
        list(
            Organisation.objects.select_for_update(no_key=True)
            .exclude(pk=newcomer.pk)
            .values_list("pk", flat=True)
        )
        runner.start()
        importing.set()
        assert imported.wait(30) and not failed, failed
        with rewrite.every_row_once() as acted:
            rewrite.rewrite_every_row(acted)
    runner.join(30)
    assert not failed, failed
    salt = index_salt(newcomer.pk)
    assert Participant.objects.filter(
        organisation=newcomer, email_index=blind_index_email("new@bouw.nl", salt)
    ).exists()


@time_machine.travel(TUESDAY, tick=True)
def test_the_held_by_someone_else_check_waits_for_a_batch_that_renews_the_salt(
    organisation: Organisation,
) -> None:
    """The enrolment form's and the correction's "held by someone else" check read the salt and then looked
    the index up, in two statements with nothing held: a batch committing between them left the lookup on
    the old salt's index, which no row has any more, so a colleague's address passed as free (the form
    then sent codes to it). It holds the salt (FOR SHARE) as the other lookups do: it waits for a batch."""
    _postgres_only()
    person = make_active(organisation, name="P", email="p@example.nl", mobile="+31612345601")
    waits_for_a_running_batch(
        lambda: held_by_someone_else(participant=person, email="x@example.nl", mobile=None)
    )


@time_machine.travel(TUESDAY, tick=True)
def test_the_enrolment_forms_name_is_not_written_beside_a_batch_that_rewrites_every_row(
    organisation: Organisation,
) -> None:
    """The enrolment form saved the corrected name at once, on a row it did not otherwise lock: a request
    batch reads every row and then writes every row back, so a name saved in between was overwritten with
    the old one. Since joining is queued (requestqueue.confirm_enrolment) the form writes no row at all: the
    name travels with the queued enrolment, and the batch writes it with everything else."""
    invited = make_participant(organisation, email="inv@example.nl", mobile="+31612345677")
    before = Participant.objects.filter(pk=invited.pk).values().get()

    enrolment.start_verification(participant=invited, name="Jan de Vries-Bakker")

    assert Participant.objects.filter(pk=invited.pk).values().get() == before


@time_machine.travel(TUESDAY, tick=True)
def test_the_enrolments_check_waits_for_a_batch_that_rewrites_every_row(
    organisation: Organisation,
) -> None:
    """The enrolment form saved the corrected name at once, on a row it did not otherwise lock; a request
    batch reads every row and then writes every row back, so a name saved in between was lost. Since main
    b65aa5f nothing is written then (the name waits in the session and the batch writes it), and this test,
    which still called the form, failed there. What reads the row now is the enrolment's check
    (requestqueue.confirm_enrolment), and it holds the organisation before it reads, as every writer does:
    it waits for a running batch, and an import waits for it (review 10, importing._update_fields)."""
    _postgres_only()
    invited = make_participant(organisation, email="inv@example.nl", mobile="+31612345677")
    invitation = enrolment.find_invitation(token=invite(invited))
    assert invitation is not None
    waits_for_a_running_batch(lambda: requestqueue.confirm_enrolment(invitation=invitation))
