"""Notary jobs. Thin: the operations do the work and make every run idempotent."""

from __future__ import annotations

from celery import shared_task

from notary import ledger
from preventicons.tasks import IDEMPOTENT_JOB


@shared_task(name="notary.tasks.sign_tree_head", **IDEMPOTENT_JOB)
def sign_tree_head() -> int:
    """Sign a tree head over the ledger so far; the size signed. A second run adds no head."""
    return ledger.sign_head().tree_size
