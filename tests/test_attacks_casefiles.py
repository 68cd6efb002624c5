"""Adversary review of the casemanager's dossier pages (issue 18, commits c0b4b70..bd64eba, d95362f).

Each test is an attack; a strict xfail is a weakness still open (its reason says what and the fix). Attackers:
a casemanager, deputy or colleague after a dossier not theirs; an operator with the three databases and no
key file; the employer; a participant (or whoever holds their session); and plain data-integrity races.

Found and closed here (the tests pass):
1. A note written from a page read before the close (or before the participant's stop) was stored on the
   closed dossier, after its closing note: notes.add_note trusted the in-memory dossier. It now locks and
   reads the row first (DossierClosed).
2. A stop left the dossier's sealed contact channel (the participant's own choice) behind, unlike P and the
   participant reference: operations.close_dossier now destroys it too (overwrites it, since 8).
3. After the participant asked for another casemanager the new one saw no pending first contact, though the
   account page promises "They will contact you": assignment.change_on_participants_request now sets the
   dossier waiting again.
4. A deputy chosen by the admin could open an absent colleague's dossiers of organisations the deputy does
   not serve (no link there, so no dossier of theirs could ever be given them): assignment.serves(reach=...).
5. A dossier reopened by a new help request stayed with a casemanager who no longer served the
   organisation: open to nobody, and never picked up by assign_waiting_dossiers. operations.open_dossier
   now gives it to a serving casemanager (or leaves it waiting for one).
6. A closed dossier still revealed the participant's name and address for up to two years:
   views.reveal_contact shows nothing for a closed dossier, and the page offers no button.
7. Django's admin log (identity store) kept the dossier's id and number of every reassignment:
   DossierAdmin.log_change writes nothing there; the access log records it.
8. The access log's note entry ('<kind> note <n>', at a moment) and the notes store's clear kind, sequence
   and day beside each subject paired every note subject with its dossier number without the notes key:
   the entry names neither kind nor sequence, and ProgressNote seals kind, written_on and sequence to the
   row like its text (casefiles migration 0010). The order the note rows were written in: 11.
9. A stop set the dossier's index (and P, participant reference, channel) to NULL on the day of the close,
   which a casemanager's close leaves for DOSSIER_UNLINK_AFTER_CLOSE_DAYS: a row closed today with no
   index was a stop, and the identity dump (participant rows shredded that day) named the stopper who had
   asked for help. operations.close_dossier now writes random look-alikes of the same length over those
   columns (Dossier.forget_participant) and keeps a casemanager's closing day: the row reads column by
   column as a casemanager's close, leads to nobody (no casemanager can find or open it, their P finds it
   no more), and retention unlinks it at the usual term and tells the notary then. It takes no savepoint,
   so the dossiers the nightly anonymisation closes share one xmin, as they did under the old UPDATE.

10. Beside the access log, where only a casemanager's close has a CLOSE entry (a stop is nobody's act on the
   staff), a closing day in clear told which of the day's closes were stops, and the identity dump of the
   day named the stopper who had asked for help. Open or closed, and the closing day, are sealed to the row
   like Participant.status (casefiles migration 0011), an open dossier's missing day sealed too, so every
   row's two ciphertexts are of one length; open or closed is decided in Python (DossierQuerySet.states).

11. The notes store listed its rows in the order they were written (ctid, and each row's own xmin), and
   the access log numbers its note entries in that order: the k-th row was the k-th entry, which paired
   every note subject with its dossier number. A note now waits sealed in the casefiles store (QueuedNote,
   one length whatever its text, in the transaction of its log entry), and the note batch
   (casefiles.notes.take_up_queued_notes) writes every queued note in random order in one transaction,
   once notes of two dossiers wait or the oldest has waited NOTE_BATCH_MAX_WAIT_MINUTES (casefiles
   migration 0013).

12. A batch still showed which subjects had a note in it against the numbers the log shows a note for since
   the batch before: a batch of one dossier paired them, a subject in several batches was pinned by the
   numbers they shared, and so was an unusual count of notes per subject against entries per number.
   Every note now has its own subject and the dossier keeps its count sealed (casefiles 0017, 0018;
   tests/test_attacks_notesubject.py). A batch of one dossier still tells that its rows are that
   number's, those rows only.

Not tested here: dumps of two days show which dossier rows a day rewrote, and a stop's look-alikes change
the pseudonym index (in clear) where a casemanager's close leaves it, so a row whose index changed on a day
without a CLOSE entry still tells a stop to whoever compares dumps.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from casefiles import assignment, numbers, operations, outcome
from casefiles import notes as casenotes
from casefiles.models import AccessLogEntry, Deputy, Dossier, ProgressNote, Trajectory, TrajectorySession
from casefiles.retention import first_night, run_retention
from casefiles.signals import dossiers_unlinked
from participants import requestqueue
from participants.account import stop_participation
from participants.models import Organisation, Participant, QueuedRequest
from participants.session import bind_participant_session
from preventicons import crypto
from preventicons.dbrouter import CASEFILES, NOTES
from preventicons.logfilters import redact
from scores import queries as score_queries
from scores import wellbeing
from tests.casefiles.world import (
    World,
    active_participant,
    ask_for_help,
    build_world,
    close_stopped_dossiers,
    signed_casemanager,
)
from tests.conftest import ALL_DATABASES, at_once, login_verified

# The "ask for another casemanager" button's one field.
ANOTHER = {"another": "1"}
pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]

ONE_WEEK = dt.timedelta(days=7)


@pytest.fixture
def world(organisation: Organisation) -> World:
    return build_world(organisation)


def _url(name: str, **kwargs: object) -> str:
    return reverse(f"casefiles:{name}", kwargs=kwargs)


def _raw(alias: str, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """What the operator reads: plain SQL on one store, no key file."""
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _move_closing_day(dossier: Dossier, day: dt.date) -> None:
    """Set a closed dossier's closing day back (sealed to its row: saved, never update()d)."""
    closed = Dossier.objects.get(pk=dossier.pk)
    closed.closed_on = day
    closed.save(update_fields=["closed_on"])


# --- 1. a casemanager, deputy or colleague after a dossier not theirs ------------------------------------


def test_a_trajectory_or_session_of_another_dossier_under_ones_own_number_answers_404(
    world: World, client: Client
) -> None:
    """Anna owns one dossier and learns (say, from a handover) the ids of another's trajectory and session:
    combined with her own number they must reach nothing."""
    foreign_participant = active_participant(world.organisation)
    foreign = ask_for_help(foreign_participant)
    Dossier.objects.filter(pk=foreign.pk).update(casemanager_id=world.bert.pk)
    trajectory = Trajectory.objects.create(dossier=foreign, kind="coaching", started_on=dt.date(2026, 1, 5))
    session = TrajectorySession.objects.create(trajectory=trajectory, planned_on=dt.date(2026, 1, 12))
    own = world.dossier.number
    login_verified(client, world.anna)

    posts = {
        _url("add-session", number=own, trajectory_id=trajectory.pk): {"session-planned_on": "2026-02-02"},
        _url("end-trajectory", number=own, trajectory_id=trajectory.pk): {"end-ended_on": "2026-02-02"},
        _url("session-held", number=own, session_id=session.pk): {"held-held_on": "2026-01-12"},
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 404, url

    trajectory.refresh_from_db()
    session.refresh_from_db()
    assert trajectory.ended_on is None and session.held_on is None
    assert trajectory.sessions.count() == 1
    assert not AccessLogEntry.objects.filter(action=AccessLogEntry.Action.CHANGE_TRAJECTORY).exists()


def test_every_post_on_a_dossier_and_the_casemanager_request_needs_the_csrf_token(world: World) -> None:
    """A page elsewhere that makes the casemanager's (or participant's) browser post changes nothing."""
    number = world.dossier.number
    trajectory = Trajectory.objects.create(
        dossier=world.dossier, kind="coaching", started_on=dt.date(2026, 1, 5)
    )
    session = TrajectorySession.objects.create(trajectory=trajectory, planned_on=dt.date(2026, 1, 12))
    client = login_verified(Client(enforce_csrf_checks=True), world.anna)
    posts = [
        _url("reveal-contact", number=number),
        _url("add-note", number=number),
        _url("close", number=number),
        _url("start-trajectory", number=number),
        _url("add-session", number=number, trajectory_id=trajectory.pk),
        _url("end-trajectory", number=number, trajectory_id=trajectory.pk),
        _url("session-held", number=number, session_id=session.pk),
    ]
    data = {
        "note-kind": "intake",
        "note-text": "x",
        "close-text": "x",
        "trajectory-kind": "coaching",
        "trajectory-started_on": "2026-01-05",
        "end-ended_on": "2026-01-06",
    }
    before = AccessLogEntry.objects.count()
    for url in posts:
        assert client.post(url, data).status_code == 403, url
    assert AccessLogEntry.objects.count() == before
    assert not ProgressNote.objects.exists() and Dossier.objects.get(pk=world.dossier.pk).is_open

    participant_client = Client(enforce_csrf_checks=True)
    session_store = participant_client.session
    bind_participant_session(session_store, world.participant)
    session_store.save()
    assert participant_client.post(reverse("participants:account-casemanager")).status_code == 403
    assert not QueuedRequest.objects.exists()


def test_other_methods_are_refused_on_every_dossier_url(world: World, client: Client) -> None:
    number = world.dossier.number
    login_verified(client, world.anna)
    assert client.post(_url("dossier", number=number)).status_code == 405
    assert client.put(_url("dossier", number=number)).status_code == 405
    assert client.delete(_url("dossier", number=number)).status_code == 405
    for name in ("reveal-contact", "add-note", "close", "start-trajectory"):
        # A GET of an act's URL (a prefetch, a link in a mail) shows and logs nothing.
        assert client.get(_url(name, number=number)).status_code == 405
    assert not AccessLogEntry.objects.filter(dossier_number=number).exists()


def test_a_deputy_who_does_not_serve_the_organisation_cannot_open_its_dossiers(
    world: World, client: Client, other_organisation: Organisation
) -> None:
    """The admin names as deputy a casemanager who serves another organisation only: standing in is no link
    to an organisation, so the absent colleague's dossiers there stay closed to them (closed here)."""
    carla = signed_casemanager("cm-carla", other_organisation)
    today = timezone.localdate()
    Deputy.objects.create(casemanager_id=world.anna.pk, deputy_id=carla.pk, starts_on=today, ends_on=today)
    login_verified(client, carla)

    assert world.dossier.number not in client.get(_url("dashboard")).content.decode()
    assert client.get(_url("dossier", number=world.dossier.number)).status_code == 404
    assert client.post(_url("reveal-contact", number=world.dossier.number)).status_code == 404
    search = client.get(_url("dashboard"), {"number": world.dossier.number})
    assert search.status_code == 200 and "None of your dossiers has this number" in search.content.decode()
    assert not AccessLogEntry.objects.filter(dossier_number=world.dossier.number).exists()


def test_the_previous_casemanager_loses_the_dossier_the_participant_moved_away(
    world: World, client: Client
) -> None:
    requestqueue.queue_casemanager_change(participant=world.participant)
    wellbeing.take_up_help_requests()
    login_verified(client, world.anna)
    assert client.get(_url("dossier", number=world.dossier.number)).status_code == 404
    assert world.dossier.number not in client.get(_url("dashboard")).content.decode()


def test_a_casemanager_has_no_way_into_the_admin_of_dossiers(world: World, client: Client) -> None:
    login_verified(client, world.anna)
    for name in ("admin:casefiles_dossier_changelist", "admin:casefiles_accesslogentry_changelist"):
        response = client.get(reverse(name))
        assert response.status_code in (302, 403), name
        assert world.dossier.number not in response.content.decode()
    change = reverse("admin:casefiles_dossier_change", args=[world.dossier.pk])
    assert client.post(change, {"casemanager": world.anna.pk}).status_code in (302, 403)


def test_the_admins_reassignment_leaves_no_dossier_number_in_the_identity_store(
    world: World, client: Client, platform_admin: object
) -> None:
    """Django's admin writes every change to django_admin_log, in the identity store (object id and its
    str(), here the number): the access log in the casefiles store is where a reassignment is recorded."""
    login_verified(client, platform_admin)  # type: ignore[arg-type]
    url = reverse("admin:casefiles_dossier_change", args=[world.dossier.pk])
    client.post(url, {"casemanager": str(world.bert.pk)})
    assert Dossier.objects.get(pk=world.dossier.pk).casemanager_id == world.bert.pk

    rows = _raw("default", "SELECT object_id, object_repr, change_message FROM django_admin_log")
    assert not [row for row in rows if world.dossier.number in str(row) or str(world.dossier.pk) in str(row)]


# --- races -------------------------------------------------------------------------------------------------


def test_a_note_from_a_page_read_before_the_close_is_refused(world: World) -> None:
    """The casemanager's second tab (or a deputy) still shows the dossier open; the close commits first."""
    stale = Dossier.objects.get(pk=world.dossier.pk)
    operations.close_with_note(world.dossier, text="Traject afgerond.", user=world.anna)

    with pytest.raises(casenotes.DossierClosed):
        casenotes.add_note(stale, kind="session", text="Nog een gesprek gehad.", user=world.anna)

    assert [note.kind for note in casenotes.notes_of(world.dossier)] == ["closing"]
    assert Dossier.objects.get(pk=world.dossier.pk).awaiting_contact_since is None


def test_a_note_from_a_page_read_before_the_participant_stopped_is_refused(
    world: World, client: Client
) -> None:
    stale = Dossier.objects.get(pk=world.dossier.pk)
    login_verified(client, world.anna)
    stop_participation(participant=world.participant)

    # Before the batch closes it: the page's form finds no dossier of an active participant.
    posted = client.post(
        _url("add-note", number=stale.number), {"note-kind": "session", "note-text": "Gesprek gehad."}
    )
    assert posted.status_code == 404
    close_stopped_dossiers()
    with pytest.raises(casenotes.DossierClosed):
        casenotes.add_note(stale, kind="session", text="Gesprek gehad.", user=world.anna)
    assert not casenotes.notes_of(world.dossier)


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_two_closes_and_two_notes_at_once_leave_one_close_and_numbered_notes(
    organisation: Organisation,
) -> None:
    world = build_world(organisation)
    first, second = (Dossier.objects.get(pk=world.dossier.pk) for _ in range(2))

    outcome = at_once(
        lambda: casenotes.add_note(first, kind="intake", text="Intake gedaan.", user=world.anna),
        lambda: casenotes.add_note(second, kind="session", text="Sessie gehad.", user=world.anna),
    )
    assert outcome == [None, None]
    assert [note.sequence for note in casenotes.notes_of(world.dossier)] == [1, 2]
    casenotes.take_up_queued_notes(force=True)
    assert sorted(note.sequence for note in ProgressNote.objects.all()) == [1, 2]

    first, second = (Dossier.objects.get(pk=world.dossier.pk) for _ in range(2))
    outcome = at_once(
        lambda: operations.close_with_note(first, text="Afgerond.", user=world.anna),
        lambda: operations.close_with_note(second, text="Ook afgerond.", user=world.anna),
    )
    assert outcome == [None, None]
    assert [note.kind for note in casenotes.notes_of(world.dossier)].count("closing") == 1
    closes = AccessLogEntry.objects.filter(action=AccessLogEntry.Action.CLOSE).count()
    assert closes == 1
    from casefiles.accesslog import verify_chain

    assert verify_chain() is None


# --- 2. the operator: three databases, no key file ---------------------------------------------------------


_LINK = (
    "SELECT pseudonym, pseudonym_index, participant_ref, contact_channel FROM casefiles_dossier WHERE id = %s"
)


def test_a_stop_leaves_nothing_of_the_person_in_the_dossiers_link(world: World) -> None:
    """P, the participant reference, the chosen channel and the index are overwritten at the stop, each with
    a random value of the same length (closed here: item 2, and 8 for the look-alikes): opened with the key,
    none is the person's, their P finds the dossier no more, and its scores are nobody's to gather."""
    pseudonym = world.participant.pseudonym or ""
    before = _raw(CASEFILES, _LINK, [world.dossier.pk])[0]
    assert score_queries.weekly_values_for(pseudonym)

    stop_participation(participant=world.participant)
    close_stopped_dossiers()

    after = _raw(CASEFILES, _LINK, [world.dossier.pk])[0]
    assert None not in before and [len(value) for value in after] == [len(value) for value in before]
    assert all(old != new for old, new in zip(before, after, strict=True))
    forgotten = Dossier.objects.get(pk=world.dossier.pk)
    assert forgotten.pseudonym != pseudonym and forgotten.participant_ref != str(world.participant.pk)
    assert forgotten.contact_channel not in wellbeing.CONTACT_CHANNELS
    assert not Dossier.objects.filter(pseudonym_index=crypto.casefiles_index(pseudonym)).exists()
    assert score_queries.weekly_values_for(forgotten.pseudonym or "") == []
    assert assignment.live([forgotten]) == set()


def test_the_operator_cannot_tell_from_the_dossier_table_that_todays_stopper_had_a_dossier(
    world: World,
) -> None:
    # Two people of the organisation stop today; one of them had asked for help.
    other = active_participant(world.organisation)
    stop_participation(participant=other)
    stop_participation(participant=world.participant)

    # The identity dump shows today's stops by the rows they rewrote today (README, known limits; no longer
    # by their shape: tests/test_attacks_rowshape.py), so the operator is taken to know these two.
    assert Participant.objects.filter(organisation=world.organisation).with_status("stopped").count() == 2
    # What the casefiles dump tells about the same organisation and the same day (a closing day, where it
    # can read one).
    stopped_with_dossier = [
        closed_on
        for closed_on, index in _raw(
            CASEFILES,
            "SELECT closed_on, pseudonym_index FROM casefiles_dossier WHERE organisation_id = %s",
            [world.organisation.pk],
        )
        if _readable(closed_on) == timezone.localdate() and index is None
    ]
    assert not stopped_with_dossier, "a dossier of this organisation was closed by a stop today"


def _shape(value: object) -> object:
    """What a dump tells of a value that names one row (an id, a number, a ciphertext, an index) without the
    key: whether it is there, its type, and a text's length."""
    if value is None:
        return None
    return (type(value).__name__, len(value)) if isinstance(value, str) else type(value).__name__


# The columns every dossier of an organisation closed on the same day shares, whoever closed it. Whether it
# is open, the day it closed and the day it began waiting are sealed: compared by their shape, as every other
# column.
_SHARED = ("organisation_id", "opened_on", "consent_version")


def test_a_dossier_closed_by_a_stop_reads_column_by_column_as_one_its_casemanager_closed(
    world: World, organisation: Organisation
) -> None:
    """Today Els's casemanager closes her dossier and Jan stops: the two rows differ in no column's kind, so
    the casefiles dump does not say which close was a stop (closed here: item 8)."""
    els = ask_for_help(active_participant(organisation, name="Els Bakker"))
    closer = world.anna if els.casemanager_id == world.anna.pk else world.bert
    operations.close_with_note(els, text="Traject afgerond.", user=closer)
    stop_participation(participant=world.participant)
    close_stopped_dossiers()

    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT * FROM casefiles_dossier WHERE id IN (%s, %s)", [els.pk, world.dossier.pk])
        names = [column.name for column in cursor.description or []]
        rows = {row[names.index("id")]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    by_casemanager, by_stop = rows[els.pk], rows[world.dossier.pk]
    stopped = Dossier.objects.get(pk=world.dossier.pk)
    assert stopped.closed_on == timezone.localdate() and stopped.is_open is False
    for name in names:
        if name in _SHARED:
            assert by_stop[name] == by_casemanager[name], name
        else:
            assert _shape(by_stop[name]) == _shape(by_casemanager[name]), name


def test_the_casemanager_can_neither_find_nor_open_a_stopped_participants_dossier(
    world: World, client: Client
) -> None:
    """The dossier keeps an index and reads as closed (which leaves closed dossiers within reach, read
    only), yet nothing of it opens: its random participant reference is nobody active (assignment.live)."""
    number = world.dossier.number
    stop_participation(participant=world.participant)
    login_verified(client, world.anna)

    assert number not in client.get(_url("dashboard")).content.decode()
    assert client.get(_url("dossier", number=number)).status_code == 404
    assert client.post(_url("reveal-contact", number=number)).status_code == 404
    assert (
        client.post(_url("add-note", number=number), {"note-kind": "session", "note-text": "x"}).status_code
        == 404
    )
    search = client.get(_url("dashboard"), {"number": number}).content.decode()
    assert "None of your dossiers has this number" in search
    assert not AccessLogEntry.objects.filter(dossier_number=number).exists()
    assert not ProgressNote.objects.exists()


def test_a_stop_keeps_the_closing_day_of_a_dossier_its_casemanager_had_closed(world: World) -> None:
    """Moved to the day of the stop, the closing day would show a close without its casemanager's entry in
    the access log, and would hold the notes and the link longer than their term."""
    operations.close_with_note(world.dossier, text="Traject afgerond.", user=world.anna)
    closed_on = timezone.localdate() - dt.timedelta(days=30)
    _move_closing_day(world.dossier, closed_on)

    pseudonym = world.participant.pseudonym
    stop_participation(participant=world.participant)
    close_stopped_dossiers()

    dossier = Dossier.objects.get(pk=world.dossier.pk)
    assert (dossier.is_open, dossier.closed_on) == (False, closed_on)
    assert dossier.pseudonym != pseudonym
    # Its close is its casemanager's: the stop adds no second CLOSE entry.
    assert list(AccessLogEntry.objects.filter(action="close").values_list("staff_user_id", flat=True)) == [
        world.anna.pk
    ]


def test_retention_unlinks_a_stopped_participants_dossier_at_the_usual_term_and_tells_the_notary(
    world: World, settings: Any
) -> None:
    settings.DOSSIER_UNLINK_AFTER_CLOSE_DAYS = 10
    settings.NOTE_RETENTION_DAYS = dict.fromkeys(ProgressNote.Kind.values, 10)
    today = timezone.localdate()
    casenotes.add_note(world.dossier, kind="intake", text="Intake gedaan.", user=world.anna)
    trajectory = Trajectory.objects.create(
        dossier=world.dossier, kind="coaching", started_on=today - dt.timedelta(days=7)
    )
    told: list[Any] = []

    def listen(sender: Any, *, trajectory_ids: list[Any], **kwargs: Any) -> None:
        told.extend(trajectory_ids)

    stop_participation(participant=world.participant)
    close_stopped_dossiers()
    dossiers_unlinked.connect(listen, weak=False)
    try:
        early = run_retention(today=first_night(today, days=10) - dt.timedelta(days=1))
        assert (early.notes_deleted, early.dossiers_unlinked, told) == (0, 0, [])
        assert Trajectory.objects.filter(pk=trajectory.pk).exists()

        due = run_retention(today=first_night(today, days=10))
    finally:
        dossiers_unlinked.disconnect(listen)

    assert (due.notes_deleted, due.dossiers_unlinked, told) == (1, 1, [trajectory.pk])
    assert not Trajectory.objects.filter(pk=trajectory.pk).exists()
    assert _raw(CASEFILES, _LINK, [world.dossier.pk]) == [(None, None, None, None)]


def test_the_nightly_anonymisation_writes_every_dossier_it_closes_under_one_transaction_id(
    world: World, organisation: Organisation
) -> None:
    """A savepoint per dossier would give each row a transaction id of its own, in the order the night
    stopped their participants: the dump's xmin would then pair each dossier with its shredded row. (They
    close in the next day's request batch, which takes no savepoint either.)"""
    from participants import retention as participants_retention

    els = active_participant(organisation, name="Els Bakker")
    second = ask_for_help(els)

    assert participants_retention.anonymise_participants(participant_ids=[world.participant.pk, els.pk]) == 2
    close_stopped_dossiers()

    xmins = _raw(
        CASEFILES,
        "SELECT xmin::text FROM casefiles_dossier WHERE id IN (%s, %s)",
        [world.dossier.pk, second.pk],
    )
    assert len(xmins) == 2 and len(set(xmins)) == 1, xmins


def test_the_operator_cannot_tell_from_the_access_log_that_todays_stopper_had_a_dossier(
    world: World, organisation: Organisation
) -> None:
    """The access log names who closed a dossier (NEN 7513: a CLOSE entry by its casemanager), and a stop is
    no staff member's act: a dossier the dump reads as closed (today) without a CLOSE entry (today) was
    closed by a stop, and the identity dump of the day names the stopper who had asked for help. Closed
    here: open or closed, and the closing day, are sealed to the row (casefiles migration 0011)."""
    els = ask_for_help(active_participant(organisation, name="Els Bakker"))
    closer = world.anna if els.casemanager_id == world.anna.pk else world.bert
    operations.close_with_note(els, text="Traject afgerond.", user=closer)
    stop_participation(participant=world.participant)
    close_stopped_dossiers()
    today = timezone.localdate()
    # With the key file: both closed today, one by its casemanager, one by the stop.
    closed = {d.number: d.closed_on for d in Dossier.objects.filter(organisation_id=organisation.pk)}
    assert closed == {els.number: today, world.dossier.number: today}

    # Without it: what the dump reads of each dossier's state and closing day, where it can read them.
    read = _raw(
        CASEFILES,
        "SELECT number, is_open, closed_on FROM casefiles_dossier WHERE organisation_id = %s",
        [organisation.pk],
    )
    closed_today = {number for number, _open, closed_on in read if _readable(closed_on) == today}
    closed_at_all = {number for number, is_open, _day in read if _readable(is_open) in (False, 0)}
    closes = _raw(CASEFILES, "SELECT dossier_number, at FROM casefiles_accesslogentry WHERE action = 'close'")
    closed_by_staff_today = {number for number, at in closes if timezone.localdate(at) == today}
    closed_by_staff = {number for number, _at in closes}
    assert closed_today <= closed_by_staff_today, "a dossier closed today without a CLOSE entry: a stop"
    assert closed_at_all <= closed_by_staff, "a dossier closed without any CLOSE entry: a stop"


def test_a_dump_cannot_tell_an_open_dossier_from_a_closed_one_by_its_sealed_columns(
    world: World, organisation: Organisation
) -> None:
    """Open or closed, closed by its casemanager or by a stop: the state and the closing day are ciphertext
    of one length in every row, never NULL (an open dossier's missing day is sealed too)."""
    closed_by_casemanager = ask_for_help(active_participant(organisation, name="Els Bakker"))
    closer = world.anna if closed_by_casemanager.casemanager_id == world.anna.pk else world.bert
    operations.close_with_note(closed_by_casemanager, text="Traject afgerond.", user=closer)
    still_open = ask_for_help(active_participant(organisation, name="Piet Jansen"))
    stop_participation(participant=world.participant)
    close_stopped_dossiers()
    states = {d.pk: (d.is_open, d.closed_on) for d in Dossier.objects.all()}
    today = timezone.localdate()
    assert states == {
        closed_by_casemanager.pk: (False, today),
        still_open.pk: (True, None),
        world.dossier.pk: (False, today),
    }

    rows = _raw(CASEFILES, "SELECT is_open, closed_on FROM casefiles_dossier")
    assert len(rows) == 3
    for column in range(2):
        values = [row[column] for row in rows]
        assert all(isinstance(value, str) and _readable(value) is None for value in values), values
        assert len({len(value) for value in values}) == 1, values


def test_coming_back_from_inactivity_writes_nothing_in_the_casefiles_store_at_that_moment(
    world: World,
) -> None:
    from participants.participation import reactivate_participant

    world.participant.status = Participant.Status.INACTIVE
    world.participant.save()
    sql = "SELECT xmin::text, * FROM casefiles_dossier WHERE id = %s"
    before = _raw(CASEFILES, sql, [world.dossier.pk])

    assert not assignment.live([world.dossier])

    assert reactivate_participant(participant=world.participant)

    # Nothing in the casefiles store moved in the second they came back (no xmin, no column to pair with
    # their participant row's rewrite): whether they are active is read live, and now reads "yes".
    assert _raw(CASEFILES, sql, [world.dossier.pk]) == before
    assert assignment.live([world.dossier]) == {world.dossier.pk}


def _readable(value: object) -> object:
    """What the operator reads of a column without the key file: its value, or None where it is sealed."""
    return None if isinstance(value, str) and value.startswith(f"{crypto.FORMAT}.") else value


def _named_in(detail: str) -> tuple[str | None, str | None]:
    """The kind and the sequence an access log detail names of a note, where it names them."""
    words = detail.split()
    kind = next((word for word in words if word in ProgressNote.Kind.values), None)
    return kind, next((word for word in words if word.isdigit()), None)


def test_the_access_log_does_not_pair_a_note_subject_with_its_dossier_number(
    world: World, organisation: Organisation
) -> None:
    """Of each note the access log keeps the dossier number, the moment and a detail; the notes store keeps
    the subject beside its other columns. Whatever day, kind and sequence both stores show of every note, the
    operator gathers per number and per subject: a number with the same trace as a subject is its number.
    (Closed here: the log names neither kind nor sequence and the notes store seals kind, day and order.)"""
    second = ask_for_help(active_participant(organisation, name="Els Bakker"))
    casenotes.add_note(world.dossier, kind="intake", text="Intake.", user=world.anna)
    casenotes.add_note(second, kind="intake", text="Intake.", user=world.anna)
    casenotes.add_note(world.dossier, kind="session", text="Sessie.", user=world.anna)

    logged_notes: list[tuple[str, tuple[object, ...]]] = []
    for number, at, detail in _raw(
        CASEFILES,
        "SELECT dossier_number, at, detail FROM casefiles_accesslogentry WHERE action = 'add_note'",
    ):
        logged_notes.append((number, (timezone.localdate(at).isoformat(), *_named_in(detail))))
    stored_notes: list[tuple[str, tuple[object, ...]]] = []
    for subject, written_on, kind, sequence in _raw(
        NOTES, "SELECT subject, written_on, kind, sequence FROM casefiles_progressnote"
    ):
        day = _readable(written_on)
        shown = (day.isoformat() if isinstance(day, dt.date) else None, _readable(kind), _readable(sequence))
        stored_notes.append((subject, tuple(None if part is None else str(part) for part in shown)))
    # Compared on what both stores show of every note: where that is nothing, this trace pairs nothing.
    # Counts alone, and the order the rows were written in, are the residual of the next test.
    both = [
        part
        for part in range(3)
        if all(trace[part] is not None for _key, trace in logged_notes + stored_notes)
    ]
    logged: dict[str, Counter[tuple[object, ...]]] = defaultdict(Counter)
    for number, trace in logged_notes:
        logged[number][tuple(trace[part] for part in both)] += 1
    stored: dict[str, Counter[tuple[object, ...]]] = defaultdict(Counter)
    for subject, trace in stored_notes:
        stored[subject][tuple(trace[part] for part in both)] += 1

    paired = {
        subject: [number for number, trace in logged.items() if trace == notes]
        for subject, notes in stored.items()
    }
    assert not both or all(len(numbers_) != 1 for numbers_ in paired.values()), paired


def test_the_order_of_note_rows_does_not_pair_a_note_subject_with_its_dossier_number(
    world: World, organisation: Organisation
) -> None:
    """The notes store lists its rows in the order they were written (ctid, and live each row's xmin), and
    the access log numbers its 'added a note' entries in write order: written at once, the k-th note row
    was the k-th entry. Notes are queued sealed, one length each, and the batch writes them in random order
    in one transaction (what a batch still tells: casefiles.notes)."""
    others = [
        ask_for_help(active_participant(organisation, name=name))
        for name in ("Els Bakker", "Piet de Boer", "Ans Smit")
    ]
    dossiers = [world.dossier, *others]
    for _round in range(4):
        for dossier in dossiers:
            casenotes.add_note(dossier, kind="session", text="Sessie.", user=world.anna)

    # Queued: nothing in the notes store yet, and every queued row is one length whatever its note.
    assert not _raw(NOTES, "SELECT 1 FROM casefiles_progressnote")
    lengths = _raw(CASEFILES, "SELECT DISTINCT length(note) FROM casefiles_queuednote")
    assert len(lengths) == 1, lengths

    assert casenotes.take_up_queued_notes() == 16  # notes of four dossiers: the batch is due
    assert not _raw(CASEFILES, "SELECT 1 FROM casefiles_queuednote")
    logged = _raw(
        CASEFILES,
        "SELECT dossier_number FROM casefiles_accesslogentry WHERE action = 'add_note' ORDER BY sequence",
    )
    # The rows as a dump lists them: in the order of the table's pages, the order they were written in.
    stored = _raw(NOTES, "SELECT subject FROM casefiles_progressnote ORDER BY ctid")
    assert len(_raw(NOTES, "SELECT DISTINCT xmin::text FROM casefiles_progressnote")) == 1
    # Every subject is a note's own, so the operator's pairing is the guess that the k-th row is a note of
    # the k-th entry's number; the test, with the key, knows each row's number and checks the guess.
    whose = {
        subject: dossier.number
        for dossier in Dossier.objects.filter(pk__in=[d.pk for d in dossiers])
        for subject in casenotes.note_subjects(dossier.number, dossier.notes_written)
    }
    right = [whose[subject] == number for (subject,), (number,) in zip(stored, logged, strict=True)]
    # A random order of 16 notes of four dossiers follows the log's in one of 63 million orders.
    assert not all(right), right


# --- 5. markup -------------------------------------------------------------------------------------------


def test_a_participants_name_and_address_with_markup_are_shown_inert(
    organisation: Organisation, client: Client
) -> None:
    anna = signed_casemanager("cm-anna", organisation)
    participant = active_participant(
        organisation, name="<script>alert(1)</script> Jansen", email_address="x@example.nl"
    )
    dossier = ask_for_help(participant)
    page = login_verified(client, anna).post(_url("reveal-contact", number=dossier.number)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Jansen" in page


def test_a_refused_notes_excerpt_is_shown_inert(world: World, client: Client) -> None:
    login_verified(client, world.anna)
    response = client.post(
        _url("add-note", number=world.dossier.number),
        {"note-kind": "intake", "note-text": "<img src=x onerror=alert(1)>jan.devries@example.nl"},
    )
    page = response.content.decode()
    assert "<img src=x onerror=alert(1)>" not in page
    assert not ProgressNote.objects.exists()


# --- log lines ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "Not Found: /dossiers/{number}/",
        "Bad Request: /dossiers/{number}/notes/",
        "Forbidden (CSRF token missing.): /dossiers/{number}/contact/",
        '127.0.0.1 - - "GET /dossiers/?number={number} HTTP/1.1" 200 5120',
        '127.0.0.1 - - "GET /dossiers/?number=d+{lower}%20 HTTP/1.1" 200 5120',
        "Method Not Allowed (GET): /dossiers/{number}/close/",
    ],
)
def test_log_lines_carry_no_dossier_number(line: str) -> None:
    number = numbers.new_number()
    text = redact(line.format(number=number, lower=number[2:].lower()))
    assert number not in text and number[2:].lower() not in text and number[2:] not in text


# --- 4. the participant's request for another casemanager --------------------------------------------------


def _participant_client(participant: Participant) -> Client:
    client = Client()
    session = client.session
    bind_participant_session(session, participant)
    session.save()
    return client


def test_a_queued_request_for_another_casemanager_looks_like_any_other_queued_request(world: World) -> None:
    """The operator reads participants_queuedrequest between batches: the kind must not show in the length."""
    requestqueue.queue_help_request(
        participant=world.participant, channel="phone", consent_version=wellbeing.CONTACT_CONSENT_VERSION
    )
    requestqueue.queue_pause_change(participant=world.participant, paused=True)
    requestqueue.queue_casemanager_change(participant=world.participant)

    lengths = _raw("default", "SELECT octet_length(request::text), queued_on FROM participants_queuedrequest")
    assert len(lengths) == 3 and len(set(lengths)) == 1, lengths


def test_the_new_casemanager_after_the_participants_request_owes_a_first_contact(
    world: World, client: Client
) -> None:
    casenotes.add_note(world.dossier, kind="intake", text="Intake gedaan.", user=world.anna)
    assert Dossier.objects.get(pk=world.dossier.pk).awaiting_contact_since is None
    _participant_client(world.participant).post(reverse("participants:account-casemanager"), ANOTHER)
    wellbeing.take_up_help_requests()

    moved = Dossier.objects.get(pk=world.dossier.pk)
    assert moved.casemanager_id == world.bert.pk
    assert moved.awaiting_contact_since == timezone.localdate()
    page = login_verified(client, world.bert).get(_url("dashboard")).content.decode()
    assert world.dossier.number in page and "new help request" in page


def test_asking_again_and_again_queues_one_request_and_moves_the_dossier_once_per_batch(
    world: World,
) -> None:
    client = _participant_client(world.participant)
    for _ in range(20):
        assert client.post(reverse("participants:account-casemanager"), ANOTHER).status_code == 302
    assert QueuedRequest.objects.count() == 1
    assert wellbeing.take_up_help_requests().casemanager_changes == 1
    assert AccessLogEntry.objects.filter(action=AccessLogEntry.Action.REASSIGN).count() == 1


def test_a_request_of_someone_without_a_dossier_or_not_active_answers_alike_and_moves_nothing(
    world: World,
) -> None:
    """What the participant (or someone in their session) sees does not say whether a dossier exists, and a
    request of someone who is not active (or has no dossier) moves nobody's dossier."""
    never_asked = active_participant(world.organisation)
    answers = []
    for participant in (world.participant, never_asked):
        response = _participant_client(participant).post(
            reverse("participants:account-casemanager"), ANOTHER, follow=True
        )
        answers.append([str(message) for message in response.context["messages"]])
    assert answers[0] == answers[1]
    QueuedRequest.objects.all().delete()

    world.participant.status = Participant.Status.INACTIVE
    world.participant.save()
    requestqueue.queue_casemanager_change(participant=world.participant)
    requestqueue.queue_casemanager_change(participant=never_asked)
    batch = wellbeing.take_up_help_requests()
    assert batch.casemanager_changes == 1 and batch.dropped == 1  # the one without a dossier: no change
    assert Dossier.objects.get(pk=world.dossier.pk).casemanager_id == world.anna.pk
    assert not AccessLogEntry.objects.filter(action=AccessLogEntry.Action.REASSIGN).exists()


# --- 6. data integrity ------------------------------------------------------------------------------------


def test_a_reopened_dossier_keeps_its_notes_through_retention(world: World, settings: object) -> None:
    settings.NOTE_RETENTION_DAYS = dict.fromkeys(ProgressNote.Kind.values, 1)  # type: ignore[attr-defined]
    settings.DOSSIER_UNLINK_AFTER_CLOSE_DAYS = 1  # type: ignore[attr-defined]
    casenotes.add_note(world.dossier, kind="intake", text="Intake gedaan.", user=world.anna)
    operations.close_with_note(world.dossier, text="Afgerond.", user=world.anna)

    # The participant asks again: the same dossier opens again, with its casemanager and its history.
    reopened = ask_for_help(world.participant)
    assert reopened.pk == world.dossier.pk and reopened.is_open and reopened.closed_on is None
    assert reopened.casemanager_id == world.anna.pk
    result = run_retention(today=timezone.localdate() + dt.timedelta(days=1000))

    assert (result.notes_deleted, result.dossiers_unlinked) == (0, 0)
    assert len(casenotes.notes_of(world.dossier)) == 2
    assert Dossier.objects.get(pk=world.dossier.pk).pseudonym_index == crypto.casefiles_index(
        world.participant.pseudonym or ""
    )


def test_retention_on_the_close_day_itself_keeps_everything(world: World) -> None:
    casenotes.add_note(world.dossier, kind="intake", text="Intake gedaan.", user=world.anna)
    operations.close_with_note(world.dossier, text="Afgerond.", user=world.anna)
    assert run_retention() == run_retention()
    assert len(casenotes.notes_of(world.dossier)) == 2
    assert Dossier.objects.get(pk=world.dossier.pk).pseudonym_index is not None


def test_a_closed_dossier_reveals_no_contact_details(world: World, client: Client) -> None:
    """Closed by its casemanager, the dossier stays readable until retention unlinks it (two years by
    default); the request for contact it answered is over, so the name and address are not shown (closed
    here: views.reveal_contact, and the page offers no button)."""
    operations.close_with_note(world.dossier, text="Afgerond.", user=world.anna)
    login_verified(client, world.anna)

    page = client.get(_url("dossier", number=world.dossier.number)).content.decode()
    assert "Show contact details" not in page
    revealed = client.post(_url("reveal-contact", number=world.dossier.number)).content.decode()
    assert "Jan de Vries" not in revealed and "jan.devries@example.nl" not in revealed
    entry = AccessLogEntry.objects.filter(action=AccessLogEntry.Action.REVEAL_CONTACT).get()
    assert entry.detail == "nothing to show"


def test_a_closed_dossier_shows_no_scores_answered_after_its_close(world: World, client: Client) -> None:
    today = timezone.localdate()
    operations.close_with_note(world.dossier, text="Afgerond.", user=world.anna)
    closed_on = today - dt.timedelta(days=42)
    _move_closing_day(world.dossier, closed_on)
    # The world's participant answered in each of the last five weeks; the close was six weeks ago.

    page = login_verified(client, world.anna).get(_url("dossier", number=world.dossier.number))
    assert page.status_code == 200
    answered = [point.week for point in page.context["answered"]]
    # Only the weeks that measure the outcome of a trajectory ending at the close, none after them.
    last = outcome.last_week_measured(closed_on)
    assert answered and all(week <= last for week in answered), answered
    assert len(answered) < 5


def _typos(body: str) -> list[str]:
    return [
        body[:index] + char + body[index + 1 :]
        for index, original in enumerate(body)
        for char in numbers.ALPHABET
        if char != original
    ]


def _swaps(body: str) -> list[str]:
    swapped = [body[:i] + body[i + 1] + body[i] + body[i + 2 :] for i in range(len(body) - 1)]
    return [candidate for candidate in swapped if candidate != body]


def test_the_check_character_turns_every_single_typo_into_no_number() -> None:
    bodies = [numbers.new_number()[len(numbers.PREFIX) :] for _ in range(300)]
    valid = [typo for body in bodies for typo in _typos(body) if numbers.parse(typo) is not None]
    assert valid == []


def test_the_check_character_turns_every_neighbour_swap_into_no_number() -> None:
    bodies = [numbers.new_number()[len(numbers.PREFIX) :] for _ in range(3000)]
    valid = [swap for body in bodies for swap in _swaps(body) if numbers.parse(swap) is not None]
    assert valid == []


def test_a_reopened_dossier_whose_casemanager_left_the_organisation_goes_to_one_serving_it(
    world: World, client: Client
) -> None:
    """Closed by Anna, who is then unlinked; the participant asks again. Were the dossier to stay with her,
    nobody could open it (she no longer serves) and the assignment job only looks at dossiers without one."""
    from participants import casemanagers

    operations.close_with_note(world.dossier, text="Afgerond.", user=world.anna)
    casemanagers.unlink_casemanager(organisation=world.organisation, casemanager=world.anna)

    reopened = ask_for_help(world.participant)

    assert reopened.pk == world.dossier.pk and reopened.is_open
    assert reopened.casemanager_id == world.bert.pk
    handed_on = AccessLogEntry.objects.get(action=AccessLogEntry.Action.REASSIGN)
    assert handed_on.dossier_number == world.dossier.number and str(world.bert.pk) in handed_on.detail
    page = login_verified(client, world.bert).get(_url("dashboard")).content.decode()
    assert world.dossier.number in page and "new help request" in page


# --- 3. the employer ---------------------------------------------------------------------------------------


def test_a_casemanager_is_never_handed_the_employers_work_address_to_write_to(
    organisation: Organisation, client: Client
) -> None:
    anna = signed_casemanager("cm-anna", organisation)
    participant = active_participant(
        organisation,
        email_address="k.visser@werkgever.example",
        weekly_channel=Participant.WeeklyChannel.SMS,
    )
    dossier = ask_for_help(participant, channel="email")
    page = login_verified(client, anna).post(_url("reveal-contact", number=dossier.number)).content.decode()
    assert "k.visser@werkgever.example" not in page
