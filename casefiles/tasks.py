"""Casefiles jobs. Thin: the operations do the work and make every run idempotent."""

from __future__ import annotations

from celery import shared_task

from casefiles import assignment
from preventicons.tasks import IDEMPOTENT_JOB


@shared_task(name="casefiles.tasks.assign_waiting_dossiers", **IDEMPOTENT_JOB)
def assign_waiting_dossiers() -> int:
    """Give waiting dossiers to a casemanager serving their organisation; a second run changes nothing."""
    return assignment.assign_waiting_dossiers()
