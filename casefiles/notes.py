"""Progress notes: sealed in the notes store, each found only through its own subject, HMAC(notes key,
dossier number and the note's place in the dossier's order).

The notes store holds no dossier number, no name and nothing readable but the subject: kind, day, order
and text are sealed to the row, so the access log's entry for each note (a dossier number and a moment)
finds no day or kind there to match its subject with. What is asked of notes by kind or day (the
dashboard's latest note, the auditor's counts, retention) is opened and decided in Python.

No two notes share a subject (crypto.note_subject). Under one subject per dossier, a reader of both dumps
paired it with its number three ways: a note batch of one dossier (its subject against the one number the
log shows a note for since the batch before), a subject seen in several batches (pinned by the numbers
those batches share), and a subject's count of notes against a number's count of "added a note" entries;
once paired, every note of the dossier, in every batch and every later dump, was known to be its. Now each
subject is seen once, in one batch, and counts one note. The dossier keeps how many notes it has had
(Dossier.notes_written, sealed to its row), and readers derive the subjects of places 1 to that count and
find them in one IN query; a note retention deleted leaves a gap that is simply not found, which is why
readers do not walk the places until one is missing (and why walking, a query a note, was not chosen).

Nor does the order of the rows follow the log's. Written at once, the k-th note row was the k-th "added a
note" entry (ctid, and each row's own xmin). So ``add_note`` queues the note sealed in the casefiles store
(QueuedNote, padded to one length, in the transaction of its log entry), and the note batch
(``take_up_queued_notes``, every NOTE_BATCH_MINUTES) writes every queued note to the notes store in random
order in one transaction. It waits until the queue holds notes of NOTE_BATCH_MINIMUM_DOSSIERS dossiers, or
its oldest note has waited NOTE_BATCH_MAX_WAIT_MINUTES. What a batch still tells a reader of both dumps:
which rows it wrote, against which numbers the log shows a note for since the batch before. A batch of one
dossier says that its rows are that number's notes: those rows and no others (their text's length bucket,
and later the night retention deletes them). The rule costs the casemanager nothing (readers open the
queue), so it stays, to keep that to the batches the longest wait forces out.

Readers see queued notes as if stored: the dossier page, the dashboard's latest note and the auditor's
counts open the queue (it holds at most a batch interval of notes) and merge it with the stored notes, and
retention deletes queued notes past term with the stored ones. No reader forces a batch: a forced batch
would often be a batch of one.

A note that identifies someone (an e-mail address, a phone number, a BSN, an IBAN, a postcode with house
number, the participant's own name) is refused before anything is written, with the part and the reason
(casefiles.identitytext); the names are compared in memory with the live identity record and never stored.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.http import HttpRequest
from django.utils import timezone

from casefiles import accesslog
from casefiles.identitytext import Finding, find_identifying
from casefiles.models import AccessLogEntry, Dossier, ProgressNote, QueuedNote
from participants.models import StaffUser
from preventicons import crypto
from preventicons.dbrouter import CASEFILES, NOTES
from preventicons.fields import column_cipher

# Long enough for a session report, short enough to stay a note (the form says so).
MAX_NOTE_LENGTH = 5000
# Retention deletes by id, this many at a time: one statement per chunk, whatever the backlog.
_DELETE_CHUNK = 1000
# Notes are found by their subjects, this many to a query: a dossier page's or a dashboard's fit in one, and
# retention's backlog (every note of every dossier past its term) stays under SQLite's limit of parameters.
_IN_CHUNK = 5000
# A queued note (its sealed header and text) is padded to this many bytes before sealing: the longest note,
# four bytes a character, and its header, rounded to the sealing's own bucket. Every queued note is one
# ciphertext length, so no queued row's length finds its note's length bucket in the notes store.
QUEUED_NOTE_BYTES = crypto.padded_length(4 * MAX_NOTE_LENGTH + 512)
# Taken by each note batch on PostgreSQL for its notes transaction: two batches at once run one after the
# other (SQLite's IMMEDIATE transactions do the same).
_BATCH_LOCK = 0x6E6F746562617463  # "notebatc"


class DossierClosed(Exception):
    """The dossier was closed (by its casemanager, or by the participant's stop) before the note was
    written: a page opened before the close cannot add to it. Nothing was written."""


class NoteRefused(Exception):
    """The note identifies someone; ``findings`` says which parts, and nothing was written."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__(f"{len(findings)} identifying part(s)")


@dataclass(frozen=True)
class OpenedNote:
    sequence: int
    kind: str
    kind_label: str
    written_on: dt.date
    text: str
    # The note's id in the notes store (where a queued note will have it once the batch writes it).
    id: uuid.UUID


@dataclass(frozen=True)
class _Queued:
    """A queued note, opened."""

    row: uuid.UUID
    id: uuid.UUID
    # The note's own subject (crypto.note_subject), and its dossier's (crypto.notes_subject), which only the
    # sealed queue holds: the batch counts dossiers by it.
    subject: str
    dossier: str
    kind: str
    written_on: dt.date
    sequence: int
    queued_at: dt.datetime
    text: str


def add_note(
    dossier: Dossier,
    *,
    kind: str,
    text: str,
    user: StaffUser,
    names: Iterable[str] = (),
    request: HttpRequest | None = None,
) -> OpenedNote:
    """Queue a note to the dossier, logged; NoteRefused (nothing written) when the text identifies someone,
    DossierClosed (nothing written) when the dossier is no longer open.

    The note and its access log entry commit together in the casefiles store; the note batch writes it to
    the notes store later (module docstring), and until then every reader finds it in the queue. Its place
    in the dossier's order is drawn under the dossier's row lock, which the queue row shares a transaction
    with. The first note after a help request is the first contact: the dossier stops waiting for one.
    """
    kind = ProgressNote.Kind(kind).value
    findings = find_identifying(text, names=names)
    if findings:
        raise NoteRefused(findings)
    with transaction.atomic(using=CASEFILES):
        # Locked and read again (the order close_with_note takes too): a close or a stop committed since
        # the page was read wins, and a second note of the dossier waits for this one's sequence.
        locked = (
            Dossier.objects.select_for_update()
            .filter(pk=dossier.pk)
            .only("pk", "is_open", "notes_written")
            .first()
        )
        if locked is None or not locked.is_open:
            raise DossierClosed(dossier.number)
        sequence = locked.notes_written + 1
        note = _Queued(
            row=uuid.uuid4(),
            id=uuid.uuid4(),
            subject=crypto.note_subject(dossier.number, sequence),
            dossier=crypto.notes_subject(dossier.number),
            kind=kind,
            written_on=timezone.localdate(),
            sequence=sequence,
            queued_at=timezone.now(),
            text=text,
        )
        _queue(note)
        # Both sealed to the row: saved, not update()d. The count is what readers find the notes by.
        locked.awaiting_contact_since, locked.notes_written = None, sequence
        locked.save(update_fields=["awaiting_contact_since", "notes_written"])
        accesslog.record(
            AccessLogEntry.Action.ADD_NOTE,
            user=user,
            dossier_number=dossier.number,
            request=request,
            # Neither kind nor sequence: with the day, a trace of this number that would pair it with its
            # note subject wherever the notes store showed them.
        )
    dossier.awaiting_contact_since, dossier.notes_written = None, sequence
    return _opened(note)


def _queue(note: _Queued) -> None:
    header = json.dumps(
        {
            "id": str(note.id),
            "subject": note.subject,
            "dossier": note.dossier,
            "kind": note.kind,
            "written_on": note.written_on.isoformat(),
            "sequence": note.sequence,
            "queued_at": note.queued_at.isoformat(),
            "chars": len(note.text),
        }
    )
    plaintext = f"{header}\n{note.text}"
    size = len(plaintext.encode("utf-8"))
    if size > QUEUED_NOTE_BYTES:
        raise ValueError(f"a note is longer than {MAX_NOTE_LENGTH} characters")
    queued = QueuedNote(id=note.row)
    queued.note = plaintext + " " * (QUEUED_NOTE_BYTES - size)
    queued.save(force_insert=True)


def _open_queued(row: QueuedNote) -> _Queued:
    header, _newline, rest = (row.note or "").partition("\n")
    fields = json.loads(header)
    return _Queued(
        row=row.pk,
        id=uuid.UUID(fields["id"]),
        subject=fields["subject"],
        dossier=fields["dossier"],
        kind=fields["kind"],
        written_on=dt.date.fromisoformat(fields["written_on"]),
        sequence=int(fields["sequence"]),
        queued_at=dt.datetime.fromisoformat(fields["queued_at"]),
        text=rest[: int(fields["chars"])],
    )


def _queued_notes(subjects: Iterable[str] | None = None) -> list[_Queued]:
    """The queued notes (of these subjects), opened: the queue holds at most a batch interval of notes."""
    opened = [_open_queued(row) for row in QueuedNote.objects.all()]
    if subjects is None:
        return opened
    wanted = set(subjects)
    return [note for note in opened if note.subject in wanted]


def _opened(note: _Queued) -> OpenedNote:
    labels = dict(ProgressNote.Kind.choices)
    return OpenedNote(
        sequence=note.sequence,
        kind=note.kind,
        kind_label=str(labels.get(note.kind, note.kind)),
        written_on=note.written_on,
        text=note.text,
        id=note.id,
    )


def note_subjects(number: str, written: int) -> list[str]:
    """The subjects of every note the dossier ever had (its sequences 1 to ``written``), oldest first: what
    finds them in the notes store, one IN query for them all. A note retention deleted is simply not found."""
    hashed = crypto.keyed_hasher("notes_subject", "note")
    return [hashed(f"{number}\x00{sequence}") for sequence in range(1, written + 1)]


def _stored_notes(subjects: Iterable[str], *fields: str) -> Iterator[tuple[Any, ...]]:
    """These fields of the stored notes of these subjects: one query per _IN_CHUNK subjects (a page's
    dossiers fit in one; retention's backlog stays under the databases' limit on parameters)."""
    wanted = list(subjects)
    for at in range(0, len(wanted), _IN_CHUNK):
        rows = ProgressNote.objects.filter(subject__in=wanted[at : at + _IN_CHUNK]).values_list(*fields)
        yield from rows.iterator()


def _notes_written(dossier_pk: uuid.UUID) -> int | None:
    """How many notes the dossier has had, read now (a page's instance may predate a note); None if gone."""
    dossier = Dossier.objects.filter(pk=dossier_pk).only("pk", "notes_written").first()
    return None if dossier is None else dossier.notes_written


def _notes_written_by_number(numbers: Iterable[str]) -> dict[str, int]:
    """How many notes each of these dossiers has had, opened from the sealed count (_IN_CHUNK a query)."""
    wanted = list(numbers)
    written = column_cipher(Dossier, "notes_written")
    found: dict[str, int] = {}
    for at in range(0, len(wanted), _IN_CHUNK):
        rows = Dossier.objects.filter(number__in=wanted[at : at + _IN_CHUNK])
        for pk, number, sealed in rows.values_list("pk", "number", "notes_written").order_by():
            found[number] = int(written.open(str(sealed), str(pk)))
    return found


def take_up_queued_notes(*, now: dt.datetime | None = None, force: bool = False) -> int:
    """Write the queued notes to the notes store, in random order in one transaction; how many were written.

    Nothing is written until the queue holds notes of NOTE_BATCH_MINIMUM_DOSSIERS dossiers (told apart by
    the dossier's reference each sealed queue row holds: no two notes share a subject), or its oldest note
    has waited NOTE_BATCH_MAX_WAIT_MINUTES (``force`` writes whatever is queued). The notes commit
    first, and their queue rows are deleted after: a crash between the two leaves notes both stored and
    queued, which readers count once (by the note's id) and the next batch deletes from the queue without
    writing them again. Two batches at once take turns (a lock on the notes store) and the second finds
    the notes stored. The note keeps the id, day and sequence it was queued with.
    """
    now = now or timezone.now()
    with transaction.atomic(using=NOTES):
        _lock_batch()
        queued = _queued_notes()
        if not queued:
            return 0
        stored = set(
            ProgressNote.objects.filter(pk__in=[note.id for note in queued]).values_list("pk", flat=True)
        )
        due = [note for note in queued if note.id not in stored]
        if due and not force and not _batch_is_due(due, now):
            return 0
        # secrets.SystemRandom: the order the rows are written in follows nothing the log shows.
        secrets.SystemRandom().shuffle(due)
        for queued_note in due:
            note = ProgressNote(
                id=queued_note.id,
                subject=queued_note.subject,
                kind=queued_note.kind,
                written_on=queued_note.written_on,
                sequence=queued_note.sequence,
            )
            note.text = queued_note.text
            note.save(force_insert=True)
    _forget_queued([note.row for note in queued])
    return len(due)


def _forget_queued(rows: list[uuid.UUID]) -> None:
    """Delete the queue rows of notes now in the notes store (committed there first)."""
    with transaction.atomic(using=CASEFILES):
        QueuedNote.objects.filter(pk__in=rows).delete()


def _batch_is_due(queued: list[_Queued], now: dt.datetime) -> bool:
    dossiers = {note.dossier for note in queued}
    oldest = min(note.queued_at for note in queued)
    waited = now - oldest >= dt.timedelta(minutes=settings.NOTE_BATCH_MAX_WAIT_MINUTES)
    return len(dossiers) >= settings.NOTE_BATCH_MINIMUM_DOSSIERS or waited


def _lock_batch() -> None:
    """One note batch at a time, until its notes transaction ends. On PostgreSQL a transaction-level
    advisory lock; SQLite's embedded default begins every transaction IMMEDIATE (preventicons/settings.py),
    which already takes the notes store's one write lock."""
    connection = connections[NOTES]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_BATCH_LOCK])


def notes_of(dossier: Dossier) -> list[OpenedNote]:
    """The dossier's notes, queued or stored, opened, in the order they were written: one query of each
    store for them all, over the subjects of its count of notes."""
    written = _notes_written(dossier.pk)
    if not written:
        return []
    subjects = note_subjects(dossier.number, written)
    queued = _queued_notes(subjects)
    rows = ProgressNote.objects.filter(subject__in=subjects)
    labels = dict(ProgressNote.Kind.choices)
    stored = [
        OpenedNote(
            sequence=row.sequence,
            kind=row.kind,
            kind_label=str(labels.get(row.kind, row.kind)),
            written_on=row.written_on,
            text=row.text or "",
            id=row.pk,
        )
        for row in rows
    ]
    ids = {note.id for note in stored}
    opened = stored + [_opened(note) for note in queued if note.id not in ids]
    return sorted(opened, key=lambda note: note.sequence)


def last_note_days(dossiers: Iterable[Dossier]) -> dict[str, dt.date]:
    """The day of the latest note (queued or stored) of each dossier that has one, by number: one query of
    each store, whatever the count (the subjects of every note of every dossier, from each one's count)."""
    subjects = {
        subject: dossier.number
        for dossier in dossiers
        for subject in note_subjects(dossier.number, dossier.notes_written)
    }
    days = column_cipher(ProgressNote, "written_on")
    latest: dict[str, dt.date] = {}

    def saw(subject: str, day: dt.date) -> None:
        number = subjects[subject]
        if number not in latest or day > latest[number]:
            latest[number] = day

    for note in _queued_notes(subjects):
        saw(note.subject, note.written_on)
    for pk, subject, sealed in _stored_notes(subjects, "pk", "subject", "written_on"):
        saw(subject, dt.date.fromisoformat(days.open(str(sealed), str(pk))))
    return latest


def kind_labels() -> dict[str, str]:
    """Each kind of note and its label in the reader's language, in the order the kinds are declared."""
    return {kind: str(label) for kind, label in ProgressNote.Kind.choices}


def note_counts_of_trajectory(trajectory_id: uuid.UUID) -> dict[str, int] | None:
    """How many notes of each kind the trajectory's dossier holds, queued or stored (every kind, 0
    included), or None when the trajectory no longer exists. Counts only: for the auditor's spot check,
    which never reads a text and never learns the dossier's number."""
    dossier = Dossier.objects.filter(trajectories=trajectory_id).only("pk", "number", "notes_written").first()
    if dossier is None:
        return None
    subjects = note_subjects(dossier.number, dossier.notes_written)
    queued = _queued_notes(subjects)
    kinds = {pk: kind for pk, _subject, kind in _kinds_of(subjects)}
    kinds.update((note.id, note.kind) for note in queued if note.id not in kinds)
    counts = Counter(kinds.values())
    return {kind: counts.get(kind, 0) for kind in ProgressNote.Kind.values}


def delete_notes_past_retention(closed: dict[str, dt.date], *, today: dt.date) -> int:
    """Delete the notes, queued or stored, of closed dossiers (number: day of the close) kept past their
    kind's term (settings.NOTE_RETENTION_DAYS); how many went. The kind is sealed, so it is opened here, and
    only the notes of dossiers past the shortest term are read."""
    terms = {kind: dt.timedelta(days=days) for kind, days in settings.NOTE_RETENTION_DAYS.items()}
    if not terms:
        return 0
    shortest = min(terms.values())
    past = {number: closed_on for number, closed_on in closed.items() if closed_on <= today - shortest}
    if not past:
        return 0
    subjects = {
        subject: past[number]
        for number, written in _notes_written_by_number(past).items()
        for subject in note_subjects(number, written)
    }
    if not subjects:
        return 0

    def is_due(subject: str, kind: str) -> bool:
        return kind in terms and subjects[subject] <= today - terms[kind]

    due = [pk for pk, subject, kind in _kinds_of(subjects) if is_due(subject, kind)]
    deleted = 0
    for at in range(0, len(due), _DELETE_CHUNK):
        deleted += ProgressNote.objects.filter(pk__in=due[at : at + _DELETE_CHUNK]).delete()[0]
    # A note the batch has not written yet (a term of 0 days, a closing note queued today) goes as well;
    # one the batch wrote but has not yet deleted from the queue was counted above.
    stored = set(due)
    queued = [note for note in _queued_notes(subjects) if is_due(note.subject, note.kind)]
    deleted += sum(1 for note in queued if note.id not in stored)
    QueuedNote.objects.filter(pk__in=[note.row for note in queued]).delete()
    return deleted


def _kinds_of(subjects: Iterable[str]) -> list[tuple[uuid.UUID, str, str]]:
    """Each stored note of these subjects: its id, subject and kind, opened."""
    kinds = column_cipher(ProgressNote, "kind")
    rows = _stored_notes(subjects, "pk", "subject", "kind")
    return [(pk, subject, kinds.open(str(sealed), str(pk))) for pk, subject, sealed in rows]
