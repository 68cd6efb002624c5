"""Notary jobs. Thin: the operations do the work and make every run idempotent."""

from __future__ import annotations

from celery import shared_task

from notary import feed
from preventicons.tasks import IDEMPOTENT_JOB


@shared_task(name="notary.tasks.record_ledger", **IDEMPOTENT_JOB)
def record_ledger() -> dict[str, int]:
    """Append to the ledger every fact it does not hold yet (notary.feed); a second run appends nothing."""
    return dict(feed.record_new_facts().counts)
