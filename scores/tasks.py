"""Scores jobs. Thin: the operations do the work and make every run idempotent."""

from __future__ import annotations

from celery import shared_task

from participants.models import Organisation
from preventicons.tasks import IDEMPOTENT_JOB
from scores import reports, rounds, weekclose, wellbeing


@shared_task(name="scores.tasks.run_due_rounds", **IDEMPOTENT_JOB)
def run_due_rounds() -> int:
    """Start or resume every weekly round whose moment has come; a doubled or retried run sends no double."""
    return sum(report.links for report in rounds.run_due_rounds())


@shared_task(name="scores.tasks.close_ended_weeks", **IDEMPOTENT_JOB)
def close_ended_weeks() -> int:
    """Close every ended week not yet closed (scores.weekclose); a doubled or retried run changes nothing.

    Then the report cells of every organisation that closed a week are decided ahead of its employer's
    first look (scores.reports.prepare_cells).
    """
    closed = [result for result in weekclose.close_ended_weeks() if result.closed]
    for organisation in Organisation.objects.filter(pk__in={result.organisation_id for result in closed}):
        reports.prepare_cells(organisation)
    return len(closed)


@shared_task(name="scores.tasks.take_up_help_requests", **IDEMPOTENT_JOB)
def take_up_help_requests() -> int:
    """Take up every queued request (help, pause) in one transaction; a retried run does nothing twice."""
    return wellbeing.take_up_help_requests().taken_up
