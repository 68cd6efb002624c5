"""Progress notes: sealed in the notes store, found only through HMAC(notes key, dossier number).

The notes store holds no dossier number, no name and nothing readable but the subject: kind, day, order
and text are sealed to the row, so the access log's entry for each note (a dossier number and a moment)
finds no day or kind there to match its subject with. (The order the rows were written in still matches the
log's order: tests/test_attacks_casefiles.py keeps that open.) What is asked of notes by kind or day (the
dashboard's latest note, the auditor's counts, retention) is opened and decided in Python.

A note that identifies someone (an e-mail address, a phone number, a BSN, an IBAN, a postcode with house
number, the participant's own name) is refused before anything is written, with the part and the reason
(casefiles.identitytext); the names are compared in memory with the live identity record and never stored.
"""

from __future__ import annotations

import datetime as dt
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
from casefiles.models import AccessLogEntry, Dossier, ProgressNote, Trajectory
from participants.models import StaffUser
from preventicons import crypto
from preventicons.dbrouter import CASEFILES, NOTES
from preventicons.fields import column_cipher

# Long enough for a session report, short enough to stay a note (the form says so).
MAX_NOTE_LENGTH = 5000
# Retention deletes by id, this many at a time: one statement per chunk, whatever the backlog.
_DELETE_CHUNK = 1000


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


def add_note(
    dossier: Dossier,
    *,
    kind: str,
    text: str,
    user: StaffUser,
    names: Iterable[str] = (),
    request: HttpRequest | None = None,
) -> ProgressNote:
    """Write a note to the dossier, logged; NoteRefused (nothing written) when the text identifies someone,
    DossierClosed (nothing written) when the dossier is no longer open.

    The access log entry commits before the note (the casefiles transaction sits inside the notes one): a
    crash between the two commits leaves a logged act without its note, never a note nobody logged. The
    first note after a help request is the first contact: the dossier stops waiting for one.
    """
    kind = ProgressNote.Kind(kind).value
    findings = find_identifying(text, names=names)
    if findings:
        raise NoteRefused(findings)
    subject = crypto.notes_subject(dossier.number)
    with transaction.atomic(using=NOTES), transaction.atomic(using=CASEFILES):
        # Locked and read again, before the notes store is touched (the order close_with_note takes too):
        # a close or a stop committed since the page was read wins.
        locked = Dossier.objects.select_for_update().filter(pk=dossier.pk).only("pk", "is_open").first()
        if locked is None or not locked.is_open:
            raise DossierClosed(dossier.number)
        _lock_subject(subject)
        note = ProgressNote(
            subject=subject, kind=kind, written_on=timezone.localdate(), sequence=_last_sequence(subject) + 1
        )
        note.text = text
        note.save(force_insert=True)
        Dossier.objects.filter(pk=dossier.pk).update(awaiting_contact_since=None)
        accesslog.record(
            AccessLogEntry.Action.ADD_NOTE,
            user=user,
            dossier_number=dossier.number,
            request=request,
            # Neither kind nor sequence: with the day, a trace of this number that would pair it with its
            # note subject wherever the notes store showed them.
        )
    dossier.awaiting_contact_since = None
    return note


def _lock_subject(subject: str) -> None:
    """One note of a subject drawn at a time, until its notes transaction ends: the sequence is sealed, so no
    constraint can refuse a second note under the same number.

    The dossier's row lock is not enough: it goes with the casefiles transaction, which commits before the
    notes one, and a note drawn in between would not see the note before it. On PostgreSQL a
    transaction-level advisory lock keyed by the subject (which the table shows anyway); SQLite's embedded
    default begins every transaction IMMEDIATE (preventicons/settings.py), which already takes the notes
    store's one write lock.
    """
    connection = connections[NOTES]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # 60 bits of the subject's hex digest: a signed bigint, as the function takes.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(subject[:15], 16)])


def _last_sequence(subject: str) -> int:
    sequences = column_cipher(ProgressNote, "sequence")
    rows = ProgressNote.objects.filter(subject=subject).values_list("pk", "sequence")
    return max((int(sequences.open(str(sealed), str(pk))) for pk, sealed in rows), default=0)


def notes_of(dossier: Dossier) -> list[OpenedNote]:
    """The dossier's notes, opened, in the order they were written."""
    rows = ProgressNote.objects.filter(subject=crypto.notes_subject(dossier.number))
    labels = dict(ProgressNote.Kind.choices)
    return [
        OpenedNote(
            sequence=row.sequence,
            kind=row.kind,
            kind_label=str(labels.get(row.kind, row.kind)),
            written_on=row.written_on,
            text=row.text or "",
        )
        for row in sorted(rows, key=lambda row: row.sequence)
    ]


def last_note_days(numbers: Iterable[str]) -> dict[str, dt.date]:
    """The day of the latest note of each dossier number that has one: one query, whatever the count."""
    subjects = {crypto.notes_subject(number): number for number in numbers}
    days = column_cipher(ProgressNote, "written_on")
    latest: dict[str, dt.date] = {}
    rows = ProgressNote.objects.filter(subject__in=list(subjects)).values_list("pk", "subject", "written_on")
    for pk, subject, sealed in rows.iterator():
        day = dt.date.fromisoformat(days.open(str(sealed), str(pk)))
        number = subjects[subject]
        if number not in latest or day > latest[number]:
            latest[number] = day
    return latest


def kind_labels() -> dict[str, str]:
    """Each kind of note and its label in the reader's language, in the order the kinds are declared."""
    return {kind: str(label) for kind, label in ProgressNote.Kind.choices}


def note_counts_of_trajectory(trajectory_id: uuid.UUID) -> dict[str, int] | None:
    """How many notes of each kind the trajectory's dossier holds (every kind, 0 included), or None when
    the trajectory no longer exists. Counts only: for the auditor's spot check, which never reads a text
    and never learns the dossier's number."""
    number = Trajectory.objects.filter(pk=trajectory_id).values_list("dossier__number", flat=True).first()
    if number is None:
        return None
    kinds = _kinds_of(ProgressNote.objects.filter(subject=crypto.notes_subject(number)))
    counts = Counter(kind for _pk, _subject, kind in kinds)
    return {kind: counts.get(kind, 0) for kind in ProgressNote.Kind.values}


def delete_notes_past_retention(closed: dict[str, dt.date], *, today: dt.date) -> int:
    """Delete the notes of closed dossiers (number: day of the close) kept past their kind's term
    (settings.NOTE_RETENTION_DAYS); how many went. The kind is sealed, so it is opened here, and only the
    notes of dossiers past the shortest term are read."""
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
    due = [
        pk
        for pk, subject, kind in _kinds_of(ProgressNote.objects.filter(subject__in=list(subjects)))
        if kind in terms and subjects[subject] <= today - terms[kind]
    ]
    deleted = 0
    for at in range(0, len(due), _DELETE_CHUNK):
        deleted += ProgressNote.objects.filter(pk__in=due[at : at + _DELETE_CHUNK]).delete()[0]
    return deleted


def _kinds_of(notes: QuerySet[ProgressNote]) -> list[tuple[uuid.UUID, str, str]]:
    """Each note's id, subject and kind, opened."""
    kinds = column_cipher(ProgressNote, "kind")
    rows = notes.values_list("pk", "subject", "kind")
    return [(pk, subject, kinds.open(str(sealed), str(pk))) for pk, subject, sealed in rows.iterator()]
