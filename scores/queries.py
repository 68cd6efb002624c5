"""Reads of pseudonymous scores and frozen figures that other apps (participants' export, casefiles, the
employer reports) ask for. Every value is opened here, in the application: the database holds ciphertext."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from django.db.models import F, Min
from django.utils import timezone

from scores.models import ClosedWeek, Figures, Score, WeeklyAggregate
from scores.sealing import week_pseudonyms

ONE_WEEK = dt.timedelta(days=7)
# How far back weekly_values_for looks at the least (see weeks_that_may_hold_scores).
HISTORY_HORIZON = dt.timedelta(weeks=157)  # three years
# The IN-list of per-week pseudonyms is sent in pieces PostgreSQL and SQLite both plan well.
LOOKUP_CHUNK = 500


class WeeklyValue(TypedDict):
    week: str
    value: int


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def weeks_that_may_hold_scores(*, today: dt.date | None = None) -> list[dt.date]:
    """Every week a score row can be in: from the earliest week any organisation closed, or three years
    back if that is earlier, up to next week (a round's week, computed in its own time zone).

    Scores exist only from the first weekly round on, and the first close of an organisation is the week of
    its first round, so the earliest closed week bounds the history; the three-year floor covers scores
    written before any week was closed (a fresh installation, hand-made rows). ClosedWeek is small: one row
    per organisation and week.
    """
    this_week = _monday(today or timezone.localdate())
    first = this_week - HISTORY_HORIZON
    earliest_closed = ClosedWeek.objects.aggregate(first=Min("week"))["first"]
    if earliest_closed is not None and earliest_closed < first:
        first = _monday(earliest_closed)
    weeks = []
    week = this_week + ONE_WEEK
    while week >= first:
        weeks.append(week)
        week -= ONE_WEEK
    return weeks


def weekly_values_for(pseudonym: str, *, weeks: Iterable[dt.date] | None = None) -> list[WeeklyValue]:
    """The scores held under this pseudonym P, oldest week first; nothing of anyone else.

    A score row carries P's per-week pseudonym, not P: they are derived for every week that can hold a
    score (weeks_that_may_hold_scores; or only ``weeks``, for a caller that needs a few recent weeks, such
    as a page answering a tap) and looked up through the unique (pseudonym, week) index.
    """
    if not pseudonym:
        # Without P there is nothing to derive: an empty one must never match anything.
        return []
    candidates = weeks_that_may_hold_scores() if weeks is None else list(weeks)
    return weekly_values_for_many([pseudonym], weeks=candidates)[pseudonym]


def weekly_values_for_many(
    pseudonyms: Iterable[str], *, weeks: Iterable[dt.date]
) -> dict[str, list[WeeklyValue]]:
    """For each pseudonym P, its scores in ``weeks``, oldest first: one lookup for them all.

    For a page listing many people's recent weeks (the casemanager's dashboard): len(P) x len(weeks)
    per-week pseudonyms derived here, looked up through the unique (pseudonym, week) index in chunks.
    """
    # Without P there is nothing to derive: an empty one must never match anything.
    holders = [pseudonym for pseudonym in pseudonyms if pseudonym]
    wanted: dict[str, tuple[str, dt.date]] = {}
    for week in weeks:
        of = week_pseudonyms(week)
        for pseudonym in holders:
            wanted[of(pseudonym)] = (pseudonym, week)
    keys = list(wanted)
    result: dict[str, list[WeeklyValue]] = {pseudonym: [] for pseudonym in holders}
    found: list[Score] = []
    for start in range(0, len(keys), LOOKUP_CHUNK):
        found.extend(
            Score.objects.filter(pseudonym__in=keys[start : start + LOOKUP_CHUNK]).only(
                "pseudonym", "week", "value"
            )
        )
    for score in sorted(found, key=lambda score: score.week):
        pseudonym, week = wanted[score.pseudonym]
        # The week must be the one the pseudonym was derived for (the value's binding would refuse it anyway).
        if week == score.week:
            result[pseudonym].append({"week": score.week.isoformat(), "value": score.value})
    return result


@dataclass(frozen=True)
class FrozenFigures:
    """The frozen figures of one department (None: the whole organisation) in one closed week, opened."""

    department_id: int | None
    week: dt.date
    count: int
    total: int
    distribution: dict[int, int]


def frozen_figures(*, organisation_id: int, weeks: Iterable[dt.date] | None = None) -> list[FrozenFigures]:
    """Every frozen figure of the organisation (of ``weeks`` only, if given), opened, by week and department.

    All groups, also those under 5 people: suppression and protection against differencing are the job of
    whoever shows them to an employer (the reports), not of this read.
    """
    rows = WeeklyAggregate.objects.filter(organisation_id=organisation_id)
    if weeks is not None:
        rows = rows.filter(week__in=list(weeks))
    opened = []
    for row in rows.order_by("week", F("department_id").asc(nulls_first=True)):
        figures: Figures = row.opened
        opened.append(
            FrozenFigures(
                department_id=row.department_id,
                week=row.week,
                count=figures.count,
                total=figures.total,
                distribution=figures.distribution,
            )
        )
    return opened


def first_week_invited(
    *, organisation_id: int, since: dt.date | None = None, until: dt.date | None = None
) -> dt.date | None:
    """The first closed week (a Monday, within [since, until] if given) in which the organisation sent anyone
    a weekly link, or None: when its processing of employees began, for the notary's agreement check.

    Read from the organisation's own frozen row of each closed week: people sent a link (figures frozen
    before that was counted tell only whether anyone answered). Only the week leaves this function, no
    figure.
    """
    closed = ClosedWeek.objects.filter(organisation_id=organisation_id)
    if since is not None:
        closed = closed.filter(week__gte=_monday(since))
    if until is not None:
        closed = closed.filter(week__lte=until)
    weeks = closed.values("week")
    rows = WeeklyAggregate.objects.filter(
        organisation_id=organisation_id, department__isnull=True, week__in=weeks
    ).order_by("week")
    for row in rows.iterator(chunk_size=100):
        figures: Figures = row.opened
        reached = figures.invited if figures.invited is not None else figures.count
        if reached > 0:
            return row.week
    return None
