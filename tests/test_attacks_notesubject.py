"""Adversary: the database operator, who reads the notes and casefiles stores and their dumps, without keys
(issue 14, "Notes name nobody").

The notes store keyed every note of a dossier by one subject, HMAC(notes key, number). Beside the access
log's "added a note" entries, a note batch of one dossier paired that subject with its number, a subject
seen in several batches was pinned by the numbers those batches had in common, and a subject's count of
notes against a number's count of entries did the same for an unusual count: from then on every note of
that dossier, in every batch and dump, was known to be its (which sealed notes are whose, their text's
length bucket, when retention deletes them). Closed: every note has its own subject, HMAC(notes key, number
and place in the dossier's order), and the dossier keeps its count sealed (casefiles 0017; 0018 writes the
notes table anew, so the shared subjects do not stay in its file).

Still open, by design of the batch: a batch of one dossier tells that its rows are that number's notes,
those rows and no others (hence NOTE_BATCH_MINIMUM_DOSSIERS, casefiles.notes).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from casefiles import notes as casenotes
from casefiles.models import Dossier, QueuedNote
from participants.models import Organisation
from preventicons import crypto
from preventicons.dbrouter import CASEFILES, NOTES
from tests.casefiles.world import World, active_participant, ask_for_help, build_world
from tests.conftest import ALL_DATABASES

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]


@pytest.fixture
def world(organisation: Organisation) -> World:
    return build_world(organisation)


def _raw(alias: str, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """What the operator reads: plain SQL on one store, no key file."""
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _last_log_entry() -> int:
    return _raw(CASEFILES, "SELECT coalesce(max(sequence), 0) FROM casefiles_accesslogentry")[0][0]


def test_no_batch_and_no_count_pairs_a_note_subject_with_its_dossier_number(
    world: World, organisation: Organisation, settings: Any
) -> None:
    """Notes of three dossiers over three batches, the first of one dossier only. The operator groups the
    note rows by the batch that wrote them (each row's xmin live, or a dump after each batch: here the rows
    new after each) and the log's note entries by the batch that followed them (the moment of every batch
    known), pairs a subject with a number
    where a batch, or the batches a subject was seen in, leave one number, or where a subject's count of
    rows is one number's count of entries alone; then attributes every row under a paired subject."""
    settings.NOTE_BATCH_MINIMUM_DOSSIERS = 2
    a = world.dossier
    b, c = (ask_for_help(active_participant(organisation, name=name)) for name in ("Els Bakker", "Ans Smit"))
    rounds = [[a, a], [a, b, c, c, c], [b, b, c]]

    batch_of_entry: dict[int, int] = {}
    batch_of_row: dict[Any, int] = {}
    for batch, writers in enumerate(rounds):
        since = _last_log_entry()
        for dossier in writers:
            casenotes.add_note(dossier, kind="session", text="Gesprek gehad.", user=world.anna)
        # The first batch is one dossier's (the longest wait, forced here); the others are due by the rule.
        assert casenotes.take_up_queued_notes(force=batch == 0) == len(writers)
        for (entry,) in _raw(
            CASEFILES,
            "SELECT sequence FROM casefiles_accesslogentry WHERE action = 'add_note' AND sequence > %s",
            [since],
        ):
            batch_of_entry[entry] = batch
        for (pk,) in _raw(NOTES, "SELECT id FROM casefiles_progressnote"):
            batch_of_row.setdefault(pk, batch)

    numbers_in: dict[int, set[str]] = defaultdict(set)
    entries: Counter[str] = Counter()
    for entry, number in _raw(
        CASEFILES, "SELECT sequence, dossier_number FROM casefiles_accesslogentry WHERE action = 'add_note'"
    ):
        numbers_in[batch_of_entry[entry]].add(number)
        entries[number] += 1
    rows = _raw(NOTES, "SELECT id, subject FROM casefiles_progressnote")

    # Which numbers each subject can be: those of every batch it was seen in.
    candidates: dict[str, set[str]] = {}
    for pk, subject in rows:
        seen = numbers_in[batch_of_row[pk]]
        candidates[subject] = candidates.get(subject, seen) & seen
    paired = {subject: next(iter(numbers)) for subject, numbers in candidates.items() if len(numbers) == 1}
    # And by count: a subject holding as many rows as one number has entries, that count unique to both.
    held = Counter(subject for _pk, subject in rows)
    for subject, count in held.items():
        numbers = [number for number, logged in entries.items() if logged == count]
        if len(numbers) == 1 and list(held.values()).count(count) == 1:
            paired.setdefault(subject, numbers[0])

    attributed = {pk: paired[subject] for pk, subject in rows if subject in paired}
    alone = {pk for pk in batch_of_row if len(numbers_in[batch_of_row[pk]]) == 1}

    # What a batch of one dossier tells stays in it: no row of a batch of several dossiers is attributed.
    assert set(attributed) <= alone, {pk: number for pk, number in attributed.items() if pk not in alone}
    # For no subject is repeated, so it is seen in one batch and counts one row: neither pairs anything more.
    assert (
        _raw(NOTES, "SELECT subject FROM casefiles_progressnote GROUP BY subject HAVING count(*) > 1") == []
    )
    # Every reader still finds every note, in order.
    for dossier, count in ((a, 3), (b, 3), (c, 4)):
        assert [note.sequence for note in casenotes.notes_of(dossier)] == list(range(1, count + 1))
    assert casenotes.last_note_days([a, b, c]) == dict.fromkeys(
        (a.number, b.number, c.number), timezone.localdate()
    )


def test_the_dossier_count_is_one_ciphertext_length_and_names_no_note(
    world: World, organisation: Organisation
) -> None:
    """The count the readers find the notes by is sealed to the dossier's row, every count one length: the
    casefiles dump alone tells no dossier's count (the access log tells it, by entries, anyway)."""
    other = ask_for_help(active_participant(organisation, name="Els Bakker"))
    for _n in range(12):
        casenotes.add_note(world.dossier, kind="session", text="Gesprek.", user=world.anna)
    values = [value for (value,) in _raw(CASEFILES, "SELECT notes_written FROM casefiles_dossier")]
    assert all(str(value).startswith(f"{crypto.FORMAT}.") for value in values), values
    assert len({len(value) for value in values}) == 1, values
    assert Dossier.objects.get(pk=world.dossier.pk).notes_written == 12
    assert Dossier.objects.get(pk=other.pk).notes_written == 0


# --- the migration ----------------------------------------------------------------------------------------


def _migrate(alias: str, targets: list[tuple[str, str]] | None = None) -> MigrationExecutor:
    executor = MigrationExecutor(connections[alias])
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


def tuples_in_table_file(table: str, alias: str) -> list[bytes]:
    """Every row version PostgreSQL keeps in the table's pages, live or dead, as an operator with the data
    directory (or pageinspect) reads them."""
    with connections[alias].cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        cursor.execute("SELECT pg_relation_size(%s) / current_setting('block_size')::int", [table])
        pages = cursor.fetchone()[0]
        found: list[bytes] = []
        for page in range(pages):
            cursor.execute(
                "SELECT t_data FROM heap_page_items(get_raw_page(%s, %s)) WHERE t_data IS NOT NULL",
                [table, page],
            )
            found.extend(bytes(data) for (data,) in cursor.fetchall())
    return found


BEFORE = [("casefiles", "0016_vacuum_full_dossiers_after_awaiting_sealed")]
VACUUM_ATTEMPTS = 30


# As `make migrate` and the compose file take the stores (notes, then casefiles), and the other way round.
@pytest.mark.parametrize("order", [(NOTES, CASEFILES), (CASEFILES, NOTES)])
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_the_migration_gives_every_stored_and_queued_note_its_own_subject_and_leaves_no_shared_one(
    order: tuple[str, str],
) -> None:
    """Notes written under the shared subject (and one still queued with it) get their own, each dossier
    its count, whichever store is migrated first; no row version in the notes table's file keeps a shared
    subject (0018). Reversed, the shared subjects come back."""
    if connections[NOTES].vendor != "postgresql":
        pytest.skip("PostgreSQL's table files")
    _migrate(NOTES, BEFORE)
    executor = _migrate(CASEFILES, BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        day = dt.date(2026, 10, 1)
        places = {"D-AAAA": [1, 2, 3], "D-BBBB": [2], "D-CCCC": []}  # D-BBBB's first note went (retention)
        for number, sequences in places.items():
            old.get_model("casefiles", "Dossier").objects.using(CASEFILES).create(
                number=number, opened_on=day, is_open=True, closed_on=None, awaiting_contact_since=None
            )
            for sequence in sequences:
                note = old.get_model("casefiles", "ProgressNote")(
                    subject=crypto.notes_subject(number), kind="session", written_on=day, sequence=sequence
                )
                note.text = f"Gesprek {sequence}."
                note.save(using=NOTES)
        # D-BBBB's third note still waits in the queue, its header as the batch before 0017 read it.
        header = {
            "id": "00000000-0000-4000-8000-000000000003",
            "subject": crypto.notes_subject("D-BBBB"),
            "kind": "intake",
            "written_on": day.isoformat(),
            "sequence": 3,
            "queued_at": "2026-10-01T10:00:00+00:00",
            "chars": 10,
        }
        plaintext = f"{json.dumps(header)}\nGesprek 3."
        queued = old.get_model("casefiles", "QueuedNote")()
        queued.note = plaintext + " " * (casenotes.QUEUED_NOTE_BYTES - len(plaintext))
        queued.save(using=CASEFILES)
        shared = {crypto.notes_subject(number).encode() for number in places}

        for alias in order:
            _migrate(alias)

        subjects = [subject for (subject,) in _raw(NOTES, "SELECT subject FROM casefiles_progressnote")]
        assert len(subjects) == len(set(subjects)) == 4
        assert set(subjects) == {
            crypto.note_subject(number, sequence)
            for number, sequences in places.items()
            for sequence in sequences
        }
        counts = {d.number: d.notes_written for d in Dossier.objects.all()}
        assert counts == {"D-AAAA": 3, "D-BBBB": 3, "D-CCCC": 0}
        opened = {
            d.number: [(note.sequence, note.text) for note in casenotes.notes_of(d)]
            for d in Dossier.objects.all()
        }
        assert opened == {
            "D-AAAA": [(1, "Gesprek 1."), (2, "Gesprek 2."), (3, "Gesprek 3.")],
            "D-BBBB": [(2, "Gesprek 2."), (3, "Gesprek 3.")],
            "D-CCCC": [],
        }
        lengths = _raw(CASEFILES, "SELECT DISTINCT length(note) FROM casefiles_queuednote")
        assert len(lengths) == 1 and QueuedNote.objects.count() == 1
        assert casenotes.take_up_queued_notes(force=True) == 1
        assert [note.sequence for note in casenotes.notes_of(Dossier.objects.get(number="D-BBBB"))] == [2, 3]
        # The file: no row version, live or dead, holds a dossier's shared subject. VACUUM FULL keeps a dead
        # version while any transaction on the server began before it died (a snapshot's horizon spans every
        # database), which other test runs on a shared server may hold open: 0018 runs again until none does.
        for _attempt in range(VACUUM_ATTEMPTS):
            kept = [
                data
                for data in tuples_in_table_file("casefiles_progressnote", NOTES)
                if any(s in data for s in shared)
            ]
            if not kept:
                break
            time.sleep(1)
            _migrate(NOTES, [("casefiles", "0017_note_subject_per_note")])
            _migrate(NOTES)
        assert kept == []

        # Reversed (the casefiles store, then the notes store): the shared subjects as they were.
        _migrate(CASEFILES, BEFORE)
        _migrate(NOTES, BEFORE)
        subjects = [subject for (subject,) in _raw(NOTES, "SELECT subject FROM casefiles_progressnote")]
        assert Counter(subjects) == {
            crypto.notes_subject("D-AAAA"): 3,
            crypto.notes_subject("D-BBBB"): 2,
        }
    finally:
        _migrate(NOTES)
        _migrate(CASEFILES)
        Dossier.objects.all().delete()
