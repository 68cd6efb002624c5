"""Notary jobs. Thin: the operations do the work and make every run idempotent."""

from __future__ import annotations

from celery import shared_task

from notary import signoffs
from preventicons.tasks import IDEMPOTENT_JOB


@shared_task(name="notary.tasks.take_up_sign_offs", **IDEMPOTENT_JOB)
def take_up_sign_offs() -> int:
    """Take up every queued sign-off, then release the feedback that is ready; a retry does nothing twice."""
    return signoffs.take_up().signed_off
