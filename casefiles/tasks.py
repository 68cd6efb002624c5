"""Casefiles jobs. Thin: the operations do the work and make every run idempotent."""

from __future__ import annotations

from celery import shared_task

from casefiles import assignment, notes, retention
from preventicons.tasks import IDEMPOTENT_JOB


@shared_task(name="casefiles.tasks.assign_waiting_dossiers", **IDEMPOTENT_JOB)
def assign_waiting_dossiers() -> int:
    """Give waiting dossiers to a casemanager serving their organisation; a second run changes nothing."""
    return assignment.assign_waiting_dossiers()


@shared_task(name="casefiles.tasks.run_retention", **IDEMPOTENT_JOB)
def run_retention() -> int:
    """Delete notes and unlink closed dossiers past their retention; a second run changes nothing."""
    done = retention.run_retention()
    return done.notes_deleted + done.dossiers_unlinked


@shared_task(name="casefiles.tasks.take_up_queued_notes", **IDEMPOTENT_JOB)
def take_up_queued_notes() -> int:
    """Write queued notes to the notes store once a batch is due; a second run finds them written."""
    return notes.take_up_queued_notes()
