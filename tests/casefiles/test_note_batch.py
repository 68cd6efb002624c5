"""The note batch (casefiles.notes.take_up_queued_notes): notes wait sealed in the casefiles store and reach
the notes store in random order, in one transaction. The casemanager and every reader see a queued note at
once; the batch waits for notes of two dossiers or the longest wait; a crash between the two stores' commits
or two batches at once leave every note stored once."""

from __future__ import annotations

import datetime as dt
import secrets
import time

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from casefiles import notes as casenotes
from casefiles.models import ProgressNote, QueuedNote, Trajectory
from participants.models import Organisation
from tests.casefiles.world import World, active_participant, ask_for_help, build_world
from tests.conftest import ALL_DATABASES, at_once, login_verified

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]


@pytest.fixture
def world(organisation: Organisation) -> World:
    return build_world(organisation)


def _page(client: Client, world: World) -> str:
    url = reverse("casefiles:dossier", kwargs={"number": world.dossier.number})
    return client.get(url).content.decode()


def test_the_dossier_page_shows_a_just_written_note_before_the_batch(world: World, client: Client) -> None:
    login_verified(client, world.anna)
    url = reverse("casefiles:add-note", kwargs={"number": world.dossier.number})
    client.post(url, {"note-kind": "intake", "note-text": "Eerste gesprek: werkdruk."})

    assert QueuedNote.objects.count() == 1 and not ProgressNote.objects.exists()
    assert "Eerste gesprek: werkdruk." in _page(client, world)

    # One dossier's note alone waits for the batch; written or queued, the page lists the notes in order.
    assert casenotes.take_up_queued_notes() == 0
    casenotes.take_up_queued_notes(force=True)
    client.post(url, {"note-kind": "session", "note-text": "Tweede gesprek: beter."})
    page = _page(client, world)
    assert page.count("Eerste gesprek: werkdruk.") == 1
    assert page.index("Eerste gesprek") < page.index("Tweede gesprek")
    assert [note.sequence for note in casenotes.notes_of(world.dossier)] == [1, 2]


def test_the_batch_waits_for_notes_of_two_dossiers_or_the_longest_wait(
    world: World, organisation: Organisation, settings: object
) -> None:
    settings.NOTE_BATCH_MINIMUM_DOSSIERS = 2  # type: ignore[attr-defined]
    settings.NOTE_BATCH_MAX_WAIT_MINUTES = 15  # type: ignore[attr-defined]
    for text in ("Intake.", "Sessie."):  # two notes, one dossier: a batch of them pairs it all the same
        casenotes.add_note(world.dossier, kind="session", text=text, user=world.anna)
    now = timezone.now()
    assert casenotes.take_up_queued_notes(now=now) == 0
    assert casenotes.take_up_queued_notes(now=now + dt.timedelta(minutes=16)) == 2
    assert not QueuedNote.objects.exists() and ProgressNote.objects.count() == 2

    other = ask_for_help(active_participant(organisation, name="Els Bakker"))
    casenotes.add_note(world.dossier, kind="session", text="Sessie.", user=world.anna)
    casenotes.add_note(other, kind="intake", text="Intake.", user=world.anna)
    assert casenotes.take_up_queued_notes() == 2
    assert casenotes.take_up_queued_notes() == 0


def test_the_dashboard_and_the_spot_check_count_queued_notes(world: World) -> None:
    casenotes.add_note(world.dossier, kind="intake", text="Intake.", user=world.anna)
    trajectory = Trajectory.objects.create(
        dossier=world.dossier, kind="coaching", started_on=timezone.localdate()
    )

    assert casenotes.last_note_days([world.dossier]) == {world.dossier.number: timezone.localdate()}
    counts = casenotes.note_counts_of_trajectory(trajectory.pk)
    assert counts is not None and counts["intake"] == 1


def test_a_crash_between_the_stores_commits_leaves_every_note_once(
    world: World, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    casenotes.add_note(world.dossier, kind="intake", text="Intake gedaan.", user=world.anna)
    trajectory = Trajectory.objects.create(
        dossier=world.dossier, kind="coaching", started_on=timezone.localdate()
    )

    def crash(rows: list[object]) -> None:
        raise RuntimeError("casefiles store gone")

    monkeypatch.setattr(casenotes, "_forget_queued", crash)
    with pytest.raises(RuntimeError):
        casenotes.take_up_queued_notes(force=True)
    monkeypatch.undo()
    # Stored and still queued: read once.
    assert ProgressNote.objects.count() == 1 and QueuedNote.objects.count() == 1
    assert len(casenotes.notes_of(world.dossier)) == 1
    assert casenotes.note_counts_of_trajectory(trajectory.pk) == {
        "intake": 1,
        "session": 0,
        "evaluation": 0,
        "closing": 0,
    }
    login_verified(client, world.anna)
    assert _page(client, world).count("Intake gedaan.") == 1

    # The next batch writes nothing again and empties the queue.
    assert casenotes.take_up_queued_notes(force=True) == 0
    assert ProgressNote.objects.count() == 1 and not QueuedNote.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_two_batches_at_once_write_every_note_once(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(organisation)
    other = ask_for_help(active_participant(organisation, name="Els Bakker"))
    for dossier in (world.dossier, other, world.dossier):
        casenotes.add_note(dossier, kind="session", text="Sessie.", user=world.anna)
    shuffle = secrets.SystemRandom().shuffle

    class SlowRandom:
        def shuffle(self, notes: list[object]) -> None:
            # Both batches would find no note stored before either writes, were they not taking turns.
            time.sleep(0.5)
            shuffle(notes)

    monkeypatch.setattr(casenotes.secrets, "SystemRandom", SlowRandom)

    outcome = at_once(
        lambda: casenotes.take_up_queued_notes(force=True), lambda: casenotes.take_up_queued_notes(force=True)
    )

    assert outcome == [None, None]
    assert ProgressNote.objects.count() == 3 and not QueuedNote.objects.exists()
    assert [note.sequence for note in casenotes.notes_of(world.dossier)] == [1, 2]
