"""Progress notes: sealed in the notes store, found only through HMAC(notes key, dossier number).

The notes store holds no dossier number, no name and nothing readable but the subject: kind, day, order
and text are sealed to the row, so the access log's entry for each note (a dossier number and a moment)
finds no day or kind there to match its subject with. What is asked of notes by kind or day (the
dashboard's latest note, the auditor's counts, retention) is opened and decided in Python.

Nor does the order of the rows follow the log's. Written at once, the k-th note row was the k-th "added a
note" entry (ctid, and each row's own xmin), which paired every subject with its number. So ``add_note``
queues the note sealed in the casefiles store (QueuedNote, padded to one length, in the transaction of its
log entry), and the note batch (``take_up_queued_notes``, every NOTE_BATCH_MINUTES) writes every queued
note to the notes store in random order in one transaction. It waits until the queue holds notes of
NOTE_BATCH_MINIMUM_DOSSIERS dossiers, or its oldest note has waited NOTE_BATCH_MAX_WAIT_MINUTES. What a
batch still tells a reader of both dumps: which subjects had a note in it, against which numbers the log
shows a note for since the batch before. A batch of one dossier pairs its subject with its number
outright, and a subject seen in several batches is pinned by the numbers those batches have in common.

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
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from casefiles import accesslog
from casefiles.identitytext import Finding, find_identifying
from casefiles.models import AccessLogEntry, Dossier, ProgressNote, QueuedNote, Trajectory
from participants.models import StaffUser
from preventicons import crypto
from preventicons.dbrouter import CASEFILES, NOTES
from preventicons.fields import column_cipher

# Long enough for a session report, short enough to stay a note (the form says so).
MAX_NOTE_LENGTH = 5000
# Retention deletes by id, this many at a time: one statement per chunk, whatever the backlog.
_DELETE_CHUNK = 1000
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
    subject: str
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
    subject = crypto.notes_subject(dossier.number)
    with transaction.atomic(using=CASEFILES):
        # Locked and read again (the order close_with_note takes too): a close or a stop committed since
        # the page was read wins, and a second note of the dossier waits for this one's sequence.
        locked = Dossier.objects.select_for_update().filter(pk=dossier.pk).only("pk", "is_open").first()
        if locked is None or not locked.is_open:
            raise DossierClosed(dossier.number)
        note = _Queued(
            row=uuid.uuid4(),
            id=uuid.uuid4(),
            subject=subject,
            kind=kind,
            written_on=timezone.localdate(),
            sequence=_last_sequence(subject) + 1,
            queued_at=timezone.now(),
            text=text,
        )
        _queue(note)
        locked.awaiting_contact_since = None  # sealed to the row: saved, not update()d
        locked.save(update_fields=["awaiting_contact_since"])
        accesslog.record(
            AccessLogEntry.Action.ADD_NOTE,
            user=user,
            dossier_number=dossier.number,
            request=request,
            # Neither kind nor sequence: with the day, a trace of this number that would pair it with its
            # note subject wherever the notes store showed them.
        )
    dossier.awaiting_contact_since = None
    return _opened(note)


def _queue(note: _Queued) -> None:
    header = json.dumps(
        {
            "id": str(note.id),
            "subject": note.subject,
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


def _last_sequence(subject: str) -> int:
    """The highest sequence of the subject's notes, queued or stored.

    The queue is read before the notes store: a batch commits its notes before it deletes their queue rows,
    so a note leaving the queue between the two reads is found in the store (read the other way round, it
    could be in neither).
    """
    queued = [note.sequence for note in _queued_notes([subject])]
    sequences = column_cipher(ProgressNote, "sequence")
    rows = ProgressNote.objects.filter(subject=subject).values_list("pk", "sequence")
    stored = [int(sequences.open(str(sealed), str(pk))) for pk, sealed in rows]
    return max([*queued, *stored], default=0)


def take_up_queued_notes(*, now: dt.datetime | None = None, force: bool = False) -> int:
    """Write the queued notes to the notes store, in random order in one transaction; how many were written.

    Nothing is written until the queue holds notes of NOTE_BATCH_MINIMUM_DOSSIERS dossiers, or its oldest
    note has waited NOTE_BATCH_MAX_WAIT_MINUTES (``force`` writes whatever is queued). The notes commit
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
    dossiers = {note.subject for note in queued}
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
    """The dossier's notes, queued or stored, opened, in the order they were written."""
    subject = crypto.notes_subject(dossier.number)
    queued = _queued_notes([subject])
    rows = ProgressNote.objects.filter(subject=subject)
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


def last_note_days(numbers: Iterable[str]) -> dict[str, dt.date]:
    """The day of the latest note (queued or stored) of each dossier number that has one: one query of
    each store, whatever the count."""
    subjects = {crypto.notes_subject(number): number for number in numbers}
    days = column_cipher(ProgressNote, "written_on")
    latest: dict[str, dt.date] = {}

    def saw(subject: str, day: dt.date) -> None:
        number = subjects[subject]
        if number not in latest or day > latest[number]:
            latest[number] = day

    for note in _queued_notes(subjects):
        saw(note.subject, note.written_on)
    rows = ProgressNote.objects.filter(subject__in=list(subjects)).values_list("pk", "subject", "written_on")
    for pk, subject, sealed in rows.iterator():
        saw(subject, dt.date.fromisoformat(days.open(str(sealed), str(pk))))
    return latest


def kind_labels() -> dict[str, str]:
    """Each kind of note and its label in the reader's language, in the order the kinds are declared."""
    return {kind: str(label) for kind, label in ProgressNote.Kind.choices}


def note_counts_of_trajectory(trajectory_id: uuid.UUID) -> dict[str, int] | None:
    """How many notes of each kind the trajectory's dossier holds, queued or stored (every kind, 0
    included), or None when the trajectory no longer exists. Counts only: for the auditor's spot check,
    which never reads a text and never learns the dossier's number."""
    number = Trajectory.objects.filter(pk=trajectory_id).values_list("dossier__number", flat=True).first()
    if number is None:
        return None
    subject = crypto.notes_subject(number)
    queued = _queued_notes([subject])
    kinds = {pk: kind for pk, _subject, kind in _kinds_of(ProgressNote.objects.filter(subject=subject))}
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
    subjects = {
        crypto.notes_subject(number): closed_on
        for number, closed_on in closed.items()
        if closed_on <= today - shortest
    }
    if not subjects:
        return 0

    def is_due(subject: str, kind: str) -> bool:
        return kind in terms and subjects[subject] <= today - terms[kind]

    due = [
        pk
        for pk, subject, kind in _kinds_of(ProgressNote.objects.filter(subject__in=list(subjects)))
        if is_due(subject, kind)
    ]
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


def _kinds_of(notes: QuerySet[ProgressNote]) -> list[tuple[uuid.UUID, str, str]]:
    """Each note's id, subject and kind, opened."""
    kinds = column_cipher(ProgressNote, "kind")
    rows = notes.values_list("pk", "subject", "kind")
    return [(pk, subject, kinds.open(str(sealed), str(pk))) for pk, subject, sealed in rows.iterator()]
