"""Retention of closed dossiers and their notes, carried out by the nightly run (casefiles.tasks).

The rules (settings, defaults in the README, "Retention"):

- A progress note is kept while its dossier is open, and after the close for
  ``NOTE_RETENTION_DAYS[kind]`` days (default 730 for every kind): the seed keeps casefile data "voor
  zover noodzakelijk", and two years covers a participant who comes back for help and a complaint about
  the help given. A deployment whose casemanagers keep a medical file under the WGBO sets its term (20
  years, 7300 days) for the kinds that form that file.
- A closed dossier is unlinked ``DOSSIER_UNLINK_AFTER_CLOSE_DAYS`` (default 730) days after its close:
  the sealed pseudonym, participant reference and contact channel are destroyed, so it leads to nobody's
  scores or contact details any more and no casemanager can open it. Its number and its own dates stay
  (what the access log points at). Its trajectories and their sessions go in the same transaction, after
  the notary was told (casefiles.signals.dossiers_unlinked) and forgot its way from their references back
  to them: the ledger holds their facts (weeks, sessions, outcome) by then, and a trajectory's exact days
  kept here could be matched against the ledger's weeks to find its reference again without any key.
  A dossier closed by the participant's stop is unlinked at the same term: the stop's close (in the request
  batch of a later day) left random look-alikes in its link (casefiles.operations.close_dossier), so until
  then its row reads like any other closed dossier's.

Both terms are kept at least, and carried out a month at a time (``first_night``): on the first night of
a month, every dossier closed in a month whose every day is past the term by then is unlinked, and its
notes of each kind likewise, together; on the other nights nothing comes due. Were each dossier unlinked on
the very night its term ends, the night its index turns NULL would tell its sealed closing day to the day
(tests/test_attacks_review3.py, item 2); now it tells the month at most, and all dossiers closed in one
month leave together. A term therefore runs up to a month (and a day) longer than it says: a deployment that
must keep to a maximum sets it a month shorter. A first night that failed is caught up by the next run,
which still counts from that month's first night.

Both run in one transaction and are idempotent: a second run the same night finds nothing more to do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from casefiles import notes
from casefiles.models import Dossier, Trajectory
from casefiles.signals import dossiers_unlinked
from preventicons.dbrouter import CASEFILES, NOTES


@dataclass(frozen=True)
class CasefilesRetention:
    notes_deleted: int
    dossiers_unlinked: int


def run_retention(*, today: dt.date | None = None) -> CasefilesRetention:
    today = today or timezone.localdate()
    # Every night of a month does what its first night does: only a dossier closed in a month past its
    # term by then comes due, so nothing leaves on the night of its own term (first_night).
    night = _month_start(today)
    with transaction.atomic(using=NOTES), transaction.atomic(using=CASEFILES):
        # Open or closed, and since when, are sealed: every dossier is read and opened here (they are few).
        closed = [state for state in Dossier.objects.states() if state.closed_by(night)]
        # Each note counted from the last day of its dossier's closing month: a month's notes of one kind
        # go on one first night.
        deleted = notes.delete_notes_past_retention(
            {state.number: _month_end(state.closed_on) for state in closed if state.closed_on is not None},
            today=night,
        )
        term_ended_by = unlink_term_ended_by(today)
        past_term = {state.pk for state in closed if state.closed_by(term_ended_by)}
        # Chosen in Python from what is still linked, so the statement names only the dossiers due tonight,
        # not every dossier ever unlinked.
        due = [
            pk
            for pk in Dossier.objects.filter(pseudonym_index__isnull=False).values_list("pk", flat=True)
            if pk in past_term
        ]
        unlinked = Dossier.objects.filter(pk__in=due).update(**Dossier.unlinked())
        # In this transaction: the notary's way from a reference back to these dossiers goes with their link.
        trajectory_ids = [
            pk
            for pk, dossier_id in Trajectory.objects.values_list("pk", "dossier_id").order_by()
            if dossier_id in past_term
        ]
        if trajectory_ids:
            dossiers_unlinked.send(sender=Dossier, trajectory_ids=trajectory_ids)
            Trajectory.objects.filter(pk__in=trajectory_ids).delete()  # their sessions with them
    return CasefilesRetention(notes_deleted=deleted, dossiers_unlinked=unlinked)


def unlink_term_ended_by(today: dt.date) -> dt.date:
    """The last closing day whose dossier is unlinked by ``today``: closed on or before it, past the term.

    The last day of the last closing month every day of which was past the term on this month's first
    night, so a whole month of closes comes due at once, on a first night (first_night).
    """
    limit = _month_start(today) - dt.timedelta(days=settings.DOSSIER_UNLINK_AFTER_CLOSE_DAYS)
    return limit if _month_end(limit) == limit else _month_start(limit) - dt.timedelta(days=1)


def first_night(closed_on: dt.date, *, days: int) -> dt.date:
    """The night retention carries out a term of ``days`` for what was closed on ``closed_on``: the first
    first-of-a-month on which every day of the closing month is ``days`` days past."""
    ended = _month_end(closed_on) + dt.timedelta(days=days)
    return ended if ended.day == 1 else _month_end(ended) + dt.timedelta(days=1)


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _month_end(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
