"""Progress notes: sealed text in the notes store, found only through HMAC(notes key, dossier number).

The notes store holds no dossier number, no name and no readable text: a dump shows subjects that match
nothing elsewhere without the notes key. A note that identifies someone (an e-mail address, a phone number,
a BSN, an IBAN, a postcode with house number, the participant's own name) is refused before anything is
written, with the part and the reason (casefiles.identitytext); the names are compared in memory with the
live identity record and never stored.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.http import HttpRequest
from django.utils import timezone

from casefiles import accesslog
from casefiles.identitytext import Finding, find_identifying
from casefiles.models import AccessLogEntry, Dossier, ProgressNote, Trajectory
from participants.models import StaffUser
from preventicons import crypto
from preventicons.dbrouter import CASEFILES, NOTES

# Long enough for a session report, short enough to stay a note (the form says so).
MAX_NOTE_LENGTH = 5000
_SEQUENCE_ATTEMPTS = 3


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
    for attempt in range(_SEQUENCE_ATTEMPTS):
        try:
            with transaction.atomic(using=NOTES), transaction.atomic(using=CASEFILES):
                # Locked and read again, before the notes store is touched (the order close_with_note
                # takes too): a close or a stop committed since the page was read wins.
                if not Dossier.objects.select_for_update().filter(pk=dossier.pk, is_open=True).exists():
                    raise DossierClosed(dossier.number)
                last = ProgressNote.objects.filter(subject=subject).aggregate(last=Max("sequence"))["last"]
                note = ProgressNote(
                    subject=subject, kind=kind, written_on=timezone.localdate(), sequence=(last or 0) + 1
                )
                note.text = text
                note.save(force_insert=True)
                Dossier.objects.filter(pk=dossier.pk).update(awaiting_contact_since=None)
                accesslog.record(
                    AccessLogEntry.Action.ADD_NOTE,
                    user=user,
                    dossier_number=dossier.number,
                    request=request,
                    # Neither kind nor sequence: beside the notes store's clear columns they would pair a note
                    # subject with this dossier number without the notes key.
                )
            dossier.awaiting_contact_since = None
            return note
        except IntegrityError:
            # Two notes written at once drew the same sequence number: the later one tries the next.
            if attempt == _SEQUENCE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def notes_of(dossier: Dossier) -> list[OpenedNote]:
    """The dossier's notes, opened, in the order they were written."""
    rows = ProgressNote.objects.filter(subject=crypto.notes_subject(dossier.number)).order_by("sequence")
    labels = dict(ProgressNote.Kind.choices)
    return [
        OpenedNote(
            sequence=row.sequence,
            kind=row.kind,
            kind_label=str(labels.get(row.kind, row.kind)),
            written_on=row.written_on,
            text=row.text or "",
        )
        for row in rows
    ]


def last_note_days(numbers: Iterable[str]) -> dict[str, dt.date]:
    """The day of the latest note of each dossier number that has one: one query, whatever the count."""
    subjects = {crypto.notes_subject(number): number for number in numbers}
    latest = (
        ProgressNote.objects.filter(subject__in=list(subjects))
        .values("subject")
        .annotate(latest=Max("written_on"))
        .values_list("subject", "latest")
    )
    return {subjects[subject]: day for subject, day in latest}


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
    counts = dict(
        ProgressNote.objects.filter(subject=crypto.notes_subject(number))
        .values("kind")
        .annotate(notes=Count("pk"))
        .values_list("kind", "notes")
    )
    return {kind: counts.get(kind, 0) for kind in ProgressNote.Kind.values}
