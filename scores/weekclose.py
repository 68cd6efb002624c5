"""Closing a week: freeze its aggregates and derive who took part, once per organisation and week.

A closed week is closed for good: its WeeklyAggregate rows are never recomputed, so anonymising a participant
later (their scores lose their department) never changes a past figure, and ClosedWeek makes a second close
(a doubled beat, a retry after a crash) change nothing. Participation is derived here, in the batch, from the
scores as a whole, never at the moment a score is submitted (DESIGN.md, unlinkability rules).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import connections, router
from django.db.models import Count, Q, Sum
from django.utils import timezone

from participants.models import Organisation
from participants.participation import Participation, every_store, record_participation
from scores.models import ClosedWeek, Score, WeeklyAggregate

logger = logging.getLogger(__name__)

VALUES = range(1, 6)
ONE_WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class WeekClosed:
    """What closing one organisation's week did; ``closed`` is False when it was already closed."""

    organisation_id: int
    week: dt.date
    closed: bool
    aggregates: int = 0
    participation: Participation = field(default_factory=Participation)
    unlinked: int = 0  # scores of participants who stopped while submitting them (_strip_unheld)


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def previous_week(*, today: dt.date | None = None) -> dt.date:
    """The Monday of the last ISO week that has ended (in the project's time zone)."""
    return monday_of(today or timezone.localdate()) - ONE_WEEK


def is_week_closed(*, organisation_id: int, week: dt.date) -> bool:
    """Whether this organisation's week is closed: no score may be added to it any more."""
    return ClosedWeek.objects.filter(organisation_id=organisation_id, week=week).exists()


def _freeze(organisation_id: int, week: dt.date) -> list[WeeklyAggregate]:
    # One GROUP BY over the week's scores; scores stripped of their department (stopped participants) form
    # the NULL group, which counts towards the organisation and towards no department.
    rows = (
        Score.objects.filter(organisation_id=organisation_id, week=week)
        .values("department_id")
        .annotate(
            n=Count("pk"),
            total=Sum("value"),
            **{f"n_{value}": Count("pk", filter=Q(value=value)) for value in VALUES},
        )
        .order_by()
    )
    whole = WeeklyAggregate(organisation_id=organisation_id, department=None, week=week, count=0, total=0)
    aggregates = [whole]
    # The per-value counts have computed names, which the typed rows of values() cannot express.
    for row in cast("Iterable[dict[str, Any]]", rows):
        distribution = {f"count_{value}": row[f"n_{value}"] for value in VALUES}
        whole.count += row["n"]
        whole.total += row["total"]
        for name, number in distribution.items():
            setattr(whole, name, getattr(whole, name) + number)
        if row["department_id"] is not None:
            aggregates.append(
                WeeklyAggregate(
                    organisation_id=organisation_id,
                    department_id=row["department_id"],
                    week=week,
                    count=row["n"],
                    total=row["total"],
                    **distribution,
                )
            )
    return WeeklyAggregate.objects.bulk_create(aggregates)


def close_week(*, organisation_id: int, week: dt.date, today: dt.date | None = None) -> WeekClosed:
    """Freeze the organisation's aggregates for ``week`` and count who took part; a second call is a no-op.

    Every group is frozen, also those under 5 people: suppression is the reports' job when they read.
    Refuses (ValueError) a week that is not a Monday or has not ended yet.
    """
    if week.weekday() != 0:
        raise ValueError(f"{week} is not the Monday of an ISO week")
    if week > previous_week(today=today):
        raise ValueError(f"the week of {week} has not ended yet")
    # Every store joins: a dossier made unavailable (participant_inactive) commits with the close, or not
    with every_store():
        # Closes of one organisation queue up here, so two runs cannot both find the week open.
        Organisation.objects.select_for_update().only("pk").get(pk=organisation_id)
        if is_week_closed(organisation_id=organisation_id, week=week):
            return WeekClosed(organisation_id=organisation_id, week=week, closed=False)
        ClosedWeek.objects.create(organisation_id=organisation_id, week=week)
        responded = {
            pseudonym
            for pseudonym in Score.objects.filter(organisation_id=organisation_id, week=week)
            .values_list("pseudonym", flat=True)
            .iterator(chunk_size=10_000)
            if pseudonym
        }
        participation = record_participation(organisation_id=organisation_id, week=week, responded=responded)
        stripped = _strip_unheld(organisation_id, week, participation.unheld)
        _shuffle(organisation_id, week)
        # Frozen after the strip: a score whose author stopped counts towards the organisation only.
        aggregates = _freeze(organisation_id, week)
    if stripped:
        logger.info(
            "week close organisation %s week %s: %d stopped scores unlinked", organisation_id, week, stripped
        )
    return WeekClosed(
        organisation_id=organisation_id,
        week=week,
        closed=True,
        aggregates=len(aggregates),
        participation=participation,
        unlinked=stripped,
    )


def _shuffle(organisation_id: int, week: dt.date) -> None:
    """Rewrite the week's scores in a random order, so the table no longer lies in the order they came in.

    A score row has no time finer than its week, but a table is stored, and dumped, in about the order its
    rows were inserted: the order of the week's submissions, a clock in all but name. Lined up against
    anything else that kept the order in which people answered (a proxy's access log, a message provider's
    delivery reports), it would tie scores to people. Once the week is closed no score joins it, and its
    rows are written again from a shuffled list.
    """
    connection = connections[router.db_for_write(Score)]
    if connection.vendor == "postgresql":
        # One statement: the rows leave and come back, ordered by a strong random key (pg_strong_random).
        columns = "id, week, value, organisation_id, department_id, pseudonym"
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH moved AS (DELETE FROM {Score._meta.db_table} "  # noqa: S608 (names, no input)
                f"WHERE organisation_id = %s AND week = %s RETURNING {columns}) "
                f"INSERT INTO {Score._meta.db_table} ({columns}) "
                f"SELECT {columns} FROM moved ORDER BY gen_random_uuid()",
                [organisation_id, week],
            )
        return
    rows = list(
        Score.objects.filter(organisation_id=organisation_id, week=week).values_list(
            "pk", "value", "department_id", "pseudonym"
        )
    )
    if len(rows) < 2:
        return
    secrets.SystemRandom().shuffle(rows)
    Score.objects.filter(organisation_id=organisation_id, week=week).delete()
    Score.objects.bulk_create(
        [
            Score(
                pk=pk,
                organisation_id=organisation_id,
                week=week,
                value=value,
                department_id=department_id,
                pseudonym=pseudonym,
            )
            for pk, value, department_id, pseudonym in rows
        ],
        batch_size=5000,
    )


def _strip_unheld(organisation_id: int, week: dt.date, unheld: set[str]) -> int:
    """Unlink the week's scores that carry a pseudonym no participant holds; returns how many.

    A submission looks its link up and then inserts, in two statements that take no lock on the participant
    (a lock would mark their row in the same transaction as the score). A stop that commits in between
    strips the scores it can see, and the one being inserted keeps the destroyed pseudonym and the
    department. That pseudonym leads nowhere any more, but the promise is that a stopped participant's
    scores belong to nobody: here, after the week has closed and no score can be added to it, the remainder
    is stripped as the stop would have.
    """
    pseudonyms = sorted(unheld)
    stripped = 0
    for start in range(0, len(pseudonyms), 1000):
        stripped += Score.objects.filter(
            organisation_id=organisation_id, week=week, pseudonym__in=pseudonyms[start : start + 1000]
        ).update(pseudonym=None, department=None)
    return stripped


def weeks_to_close(*, organisation_id: int, today: dt.date | None = None) -> list[dt.date]:
    """Every ended week after the organisation's last closed one, oldest first (just last week at the start).

    Oldest first, without gaps: a beat that was down for a while catches up in order, so consecutive weeks
    without a response are counted in order.
    """
    last = previous_week(today=today)
    latest_closed = (
        ClosedWeek.objects.filter(organisation_id=organisation_id)
        .order_by("-week")
        .values_list("week", flat=True)
    ).first()
    first = latest_closed + ONE_WEEK if latest_closed else last
    weeks = []
    while first <= last:
        weeks.append(first)
        first += ONE_WEEK
    return weeks


def close_ended_weeks(*, today: dt.date | None = None) -> list[WeekClosed]:
    """Close every ended, still open week of every organisation, oldest first; idempotent."""
    closed = []
    for organisation_id in Organisation.objects.order_by("pk").values_list("pk", flat=True):
        for week in weeks_to_close(organisation_id=organisation_id, today=today):
            closed.append(close_week(organisation_id=organisation_id, week=week, today=today))
    return closed
