"""Participant jobs. Thin: the operations do the work and make every run idempotent."""

from __future__ import annotations

from celery import shared_task
from django.utils import translation

from participants import account, invitations, retention, verification
from preventicons.tasks import IDEMPOTENT_JOB


@shared_task(**IDEMPOTENT_JOB)
def resend_codes(participant_id: str, purpose: str, after_code_id: str) -> bool:
    """New codes for the round after ``after_code_id``; a redelivered or repeated task sends nothing."""
    return verification.resend_after(
        participant_id=participant_id, purpose=purpose, after_code_id=after_code_id
    )


@shared_task(**IDEMPOTENT_JOB)
def send_account_links_task(request_id: str, sealed: str, language: str) -> int:
    """The work behind an account-link request: the address travels sealed, the outbox key makes it once."""
    email = account.open_link_request(request_id=request_id, sealed=sealed)
    with translation.override(language):
        return account.send_account_links(request_id=request_id, email=email)


@shared_task(name="participants.tasks.run_retention", **IDEMPOTENT_JOB)
def run_retention() -> None:
    """The nightly anonymisation and retention run; a second run the same night changes nothing."""
    retention.run_retention()


@shared_task(name="participants.tasks.send_due_invitations", **IDEMPOTENT_JOB)
def send_due_invitations() -> int:
    """Queue the invitation-schedule steps that are due; a doubled or retried run sends nothing twice."""
    return invitations.send_due_invitations().sent
