"""Celery tasks of the platform: thin wrappers around preventicons.messaging, safe to run twice."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from preventicons import messaging

BATCH_SIZE = 100
# How the apps' jobs run: `@shared_task(**IDEMPOTENT_JOB)`. Acknowledged only when done, so a worker killed
# halfway leaves the job to be delivered again, and retried with backoff when the database is unreachable;
# both are safe only because every such job is idempotent (a second run sends and writes nothing twice).
IDEMPOTENT_JOB: dict[str, Any] = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),
    "max_retries": 3,
    "retry_backoff": True,
    "ignore_result": True,
}


@shared_task(name="preventicons.tasks.send_due_messages", ignore_result=True)
def send_due_messages() -> int:
    """Send what is due in the outbox. No task retry: a failed message waits in its row, with its backoff."""
    report = messaging.send_due_messages(limit=BATCH_SIZE)
    if report.claimed >= BATCH_SIZE:
        # A full batch (a weekly round): more may be due, so carry on now instead of at the next beat.
        send_due_messages.delay()
    return report.sent


@shared_task(name="preventicons.tasks.prune_sent_messages", ignore_result=True)
def prune_sent_messages() -> int:
    """Delete outbox tombstones older than MESSAGE_RETENTION_DAYS (at most twice that); pending rows stay."""
    return messaging.prune_finished_messages()


@shared_task(name="preventicons.tasks.clear_expired_sessions", ignore_result=True)
def clear_expired_sessions() -> None:
    """Delete expired sessions: a participant's pending change (sealed) must not outlive its session."""
    SessionStore = import_module(settings.SESSION_ENGINE).SessionStore
    SessionStore.clear_expired()
