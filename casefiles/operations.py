"""Writes to dossiers: opening and closing.

Receivers, views and commands call these, so each rule about a dossier lives once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from casefiles import accesslog, assignment, notes, numbers
from casefiles.models import AccessLogEntry, Dossier, ProgressNote
from participants.models import StaffUser
from preventicons import crypto
from preventicons.dbrouter import CASEFILES

# The detail of the entry a stop's close writes (record_participant_request: staff member 0).
STOPPED = "the participant stopped"


def close_dossier(*, pseudonym: str) -> str | None:
    """The dossier of this pseudonym is closed, logged as the participant's act, and can no longer be found
    from, or lead to, the pseudonym or the participant; returns its number when this closed it. Called from
    the request batch for a stop of an earlier day (participants.requestqueue), never in the stop's own
    transaction: the batch closes every stop of a day at once, in random order, in one transaction with the
    day's other requests, so neither the row's rewrite nor the log entry sits next to one stop.

    What led to them is overwritten with random look-alikes (Dossier.forget_participant), not NULL: a
    dossier closed today whose link is already gone could only be a stop. Retention unlinks it at the term,
    as it does every closed dossier, and tells the notary then. A dossier its casemanager had closed keeps
    its closing day, so its term does not move, and gets no second CLOSE entry.

    The close is logged as the participant's request (staff member 0, ``STOPPED``): the log names every
    close, so a dossier without a CLOSE entry no longer marks a stop. The entry does tell a stop from a
    casemanager's close (it names nobody on the staff; an entry in a casemanager's name would be false),
    but no more than the dossier's rewrite in the batch already did, and it is dated by the batch.
    """
    if not pseudonym:
        return None
    # No savepoint inside the batch's transaction: on PostgreSQL it would give each dossier a transaction id
    # of its own, in the order they were closed.
    with transaction.atomic(using=CASEFILES, savepoint=False):
        dossier = (
            Dossier.objects.select_for_update()
            .filter(pseudonym_index=crypto.casefiles_index(pseudonym))
            .first()
        )
        # None, or a retried batch: the index no longer answers to P, so a second run changes nothing.
        if dossier is None:
            return None
        was_open = dossier.is_open
        dossier.forget_participant()
        if was_open:
            dossier.is_open, dossier.closed_on = False, timezone.localdate()
            dossier.awaiting_contact_since = None
        dossier.save(update_fields=[*Dossier.unlinked(), "is_open", "closed_on", "awaiting_contact_since"])
        if not was_open:
            return None
        accesslog.record_participant_request(
            AccessLogEntry.Action.CLOSE, dossier_number=dossier.number, detail=STOPPED
        )
    return dossier.number


DOSSIER_NUMBER_ATTEMPTS = 5


def open_dossier(
    *,
    pseudonym: str,
    channel: str = "",
    participant_id: uuid.UUID | None = None,
    organisation_id: int | None = None,
    consent_version: str = "",
) -> None:
    """One open dossier per pseudonym: the first request opens it, a later one (re)opens the same one.

    The dossier keeps the chosen contact channel and the participant reference, sealed; a later request's
    channel replaces it, and it waits for a first contact again. A dossier without a casemanager, or whose
    casemanager no longer serves the organisation, goes to the one serving it with the fewest open dossiers
    (casefiles.assignment). Called from the help-request batch (scores.wellbeing.take_up_help_requests), so
    a retried batch meets the dossier it opened before and changes nothing a second time.
    """
    if not pseudonym:
        return
    today = timezone.localdate()
    index = crypto.casefiles_index(pseudonym)
    dossier = Dossier.objects.select_for_update().filter(pseudonym_index=index).first()
    if dossier is None:
        dossier = Dossier(number=_free_number(), pseudonym_index=index, opened_on=today)
        dossier.pseudonym = pseudonym
        adding = True
    else:
        adding = False
    dossier.is_open = True
    dossier.closed_on = None
    if channel:
        dossier.contact_channel = channel
    elif adding:
        dossier.contact_channel = None
    if participant_id is not None:
        dossier.participant_ref = str(participant_id)
    if organisation_id is not None:
        dossier.organisation_id = organisation_id
    if consent_version:
        dossier.consent_version = consent_version
    dossier.awaiting_contact_since = today
    # A reopened dossier whose casemanager no longer serves the organisation (unlinked, role or account
    # gone) would be open to nobody: it goes to a serving one, or waits for one (assign_waiting_dossiers).
    previous = dossier.casemanager_id
    if dossier.organisation_id is not None and not assignment.serves(dossier):
        dossier.casemanager_id = assignment.least_busy_casemanager(dossier.organisation_id)
    # No savepoint per dossier: on PostgreSQL each would give its row a transaction id of its own, in the
    # order of opening. Without one, every dossier of a batch carries the batch's single xmin.
    dossier.save(force_insert=adding)
    if not adding and previous is not None and dossier.casemanager_id != previous:
        # Reopened and handed on (its casemanager left the organisation): the log says from whom to whom.
        accesslog.record_participant_request(
            AccessLogEntry.Action.REASSIGN,
            dossier_number=dossier.number,
            detail=f"reopened: from staff member {previous} to staff member {dossier.casemanager_id}",
        )
    # Inside the help-request batch (every store joins): the casemanager hears of it by e-mail, once.
    assignment.tell_casemanager(dossier)


def _free_number() -> str:
    # Only the batch opens dossiers, one batch at a time (its queue rows are locked), so a number drawn
    # free stays free; a clash all the same fails the batch, which the next run retries.
    for _attempt in range(DOSSIER_NUMBER_ATTEMPTS):
        number = numbers.new_number()
        if not Dossier.objects.filter(number=number).exists():
            return number
    raise RuntimeError(f"no free dossier number after {DOSSIER_NUMBER_ATTEMPTS} attempts")


def close_with_note(
    dossier: Dossier,
    *,
    text: str,
    user: StaffUser,
    names: Iterable[str] = (),
    request: HttpRequest | None = None,
) -> None:
    """The casemanager closes the dossier with a closing note; it becomes read only. Logged.

    The note is checked like any other (notes.NoteRefused, nothing written); the note, the close and both
    log entries commit together. A second close of a closed dossier changes nothing.
    """
    if not dossier.is_open:
        return
    # The note is queued in the casefiles store (casefiles.notes): the notes store is not touched here.
    with transaction.atomic(using=CASEFILES):
        locked = Dossier.objects.select_for_update().get(pk=dossier.pk)
        if not locked.is_open:
            return
        notes.add_note(
            dossier, kind=ProgressNote.Kind.CLOSING, text=text, user=user, names=names, request=request
        )
        today = timezone.localdate()
        # Saved, not update()d: the two are sealed to the row.
        locked.is_open, locked.closed_on, locked.awaiting_contact_since = False, today, None
        locked.save(update_fields=["is_open", "closed_on", "awaiting_contact_since"])
        accesslog.record(
            AccessLogEntry.Action.CLOSE, user=user, dossier_number=dossier.number, request=request
        )
    dossier.is_open, dossier.closed_on, dossier.awaiting_contact_since = False, today, None
