"""Notary jobs. Thin: the operations do the work and make every run idempotent."""

from __future__ import annotations

from celery import shared_task

from notary import feed, ledger, signoffs
from preventicons.tasks import IDEMPOTENT_JOB


@shared_task(name="notary.tasks.record_ledger", **IDEMPOTENT_JOB)
def record_ledger() -> dict[str, int]:
    """Append to the ledger every fact it does not hold yet (notary.feed); a second run appends nothing."""
    return dict(feed.record_new_facts().counts)


@shared_task(name="notary.tasks.sign_tree_head", **IDEMPOTENT_JOB)
def sign_tree_head() -> int:
    """Sign a tree head over the ledger so far; the size signed. A second run adds no head."""
    return ledger.sign_head().tree_size


@shared_task(name="notary.tasks.take_up_sign_offs", **IDEMPOTENT_JOB)
def take_up_sign_offs() -> int:
    """Take up every queued sign-off, then (apart) write the pending feedback once enough is pending and
    release what comes from enough people; a retry does nothing twice."""
    return signoffs.take_up().signed_off
