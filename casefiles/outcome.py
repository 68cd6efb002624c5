"""The measured outcome of a trajectory: did the participant's weekly score go up by enough?

The rule, and the one place to change it (a validated scale could replace the weekly smileys here later):

- **Before**: the average of the weekly scores in the ``WINDOW`` weeks before the week the trajectory
  started: the weeks whose Monday lies in ``[monday(started_on) - WINDOW weeks, monday(started_on))``. The
  start week itself does not count: it is part before, part during the trajectory, and the score that led
  to the trajectory often lies in it.
- **After**: the average in the ``WINDOW`` weeks after the week it ended: Mondays in
  ``(monday(ended_on), monday(ended_on) + WINDOW weeks]``, the end week itself excluded.
- **Not measurable** while the trajectory has not ended, or when either window holds fewer than
  ``MIN_ANSWERS`` answers (also, then, in the weeks right after the end, before enough answers came in).
- **Improved** when ``after - before >= IMPROVEMENT`` points on the 5-point scale; otherwise **not
  improved** (a drop, no change, or a rise smaller than that).

A date anywhere in a week stands for that week's Monday (scores are per ISO week). The averages are
compared exactly (as fractions), so a difference of exactly ``IMPROVEMENT`` counts as improved even where
floating point falls short (13/6 - 5/3 comes out as 0.49999999999999983).

The three numbers come from the Django settings, read on every call, with these defaults:
``TRAJECTORY_OUTCOME_WINDOW_WEEKS`` (4), ``TRAJECTORY_OUTCOME_MIN_ANSWERS`` (2) and
``TRAJECTORY_OUTCOME_IMPROVEMENT`` (0.5; an int, float, Decimal or a string such as "1/2").

A pure function: the caller reads the weekly values (``scores.queries.weekly_values_for``) and the
trajectory's dates; nothing here touches a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.translation import gettext_lazy as _

from scores.weekclose import monday_of

ONE_WEEK = dt.timedelta(days=7)
SCALE = range(1, 6)

WINDOW = 4
MIN_ANSWERS = 2
IMPROVEMENT = 0.5


class Outcome(models.TextChoices):
    IMPROVED = "improved", _("Improved")
    NOT_IMPROVED = "not_improved", _("Not improved")
    NOT_MEASURABLE = "not_measurable", _("Not measurable")


@dataclass(frozen=True)
class Measured:
    """The outcome and what it rests on: each window's average (None without answers) and its count."""

    outcome: Outcome
    before: float | None
    after: float | None
    answers_before: int
    answers_after: int


def measure_outcome(
    values: Sequence[tuple[dt.date, int]], *, started_on: dt.date, ended_on: dt.date | None
) -> Measured:
    """The outcome of a trajectory from the participant's (week, score) pairs, by the module's rule.

    A score outside 1..5, two scores in one week, or an end before the start raise ValueError.
    """
    window, min_answers, improvement = _rule()
    if ended_on is not None and ended_on < started_on:
        raise ValueError(f"the trajectory ends ({ended_on}) before it starts ({started_on})")
    by_week = values_by_week(values)
    start = monday_of(started_on)
    before = [
        by_week[week] for week in (start - n * ONE_WEEK for n in range(1, window + 1)) if week in by_week
    ]
    after: list[int] = []
    if ended_on is not None:
        end = monday_of(ended_on)
        after = [
            by_week[week] for week in (end + n * ONE_WEEK for n in range(1, window + 1)) if week in by_week
        ]
    before_average, after_average = _average(before), _average(after)
    if (
        ended_on is None
        or len(before) < min_answers
        or len(after) < min_answers
        or before_average is None
        or after_average is None
    ):
        outcome = Outcome.NOT_MEASURABLE
    elif after_average - before_average >= improvement:
        outcome = Outcome.IMPROVED
    else:
        outcome = Outcome.NOT_IMPROVED
    return Measured(
        outcome=outcome,
        before=None if before_average is None else float(before_average),
        after=None if after_average is None else float(after_average),
        answers_before=len(before),
        answers_after=len(after),
    )


def last_week_measured(ended_on: dt.date) -> dt.date:
    """The Monday of the last week the outcome of a trajectory ending on ``ended_on`` reads."""
    window, _min_answers, _improvement = _rule()
    return monday_of(ended_on) + dt.timedelta(weeks=window)


def weeks_read(*, started_on: dt.date, ended_on: dt.date) -> list[dt.date]:
    """The Mondays whose scores the outcome of a trajectory from ``started_on`` to ``ended_on`` reads: a
    caller that fetches only these need not fetch the participant's whole history."""
    window, _min_answers, _improvement = _rule()
    start, end = monday_of(started_on), monday_of(ended_on)
    before = [start - n * ONE_WEEK for n in range(window, 0, -1)]
    after = [end + n * ONE_WEEK for n in range(1, window + 1)]
    return before + after


def _rule() -> tuple[int, int, Fraction]:
    window = getattr(settings, "TRAJECTORY_OUTCOME_WINDOW_WEEKS", WINDOW)
    min_answers = getattr(settings, "TRAJECTORY_OUTCOME_MIN_ANSWERS", MIN_ANSWERS)
    improvement = getattr(settings, "TRAJECTORY_OUTCOME_IMPROVEMENT", IMPROVEMENT)
    if not isinstance(window, int) or window < 1:
        raise ImproperlyConfigured(
            f"TRAJECTORY_OUTCOME_WINDOW_WEEKS must be a whole number >= 1, not {window!r}"
        )
    if not isinstance(min_answers, int) or min_answers < 1:
        raise ImproperlyConfigured(
            f"TRAJECTORY_OUTCOME_MIN_ANSWERS must be a whole number >= 1, not {min_answers!r}"
        )
    try:
        # Through str: Fraction(0.1) is the binary float's exact value, Fraction("0.1") is one tenth.
        threshold = Fraction(str(improvement)) if isinstance(improvement, float) else Fraction(improvement)
    except (TypeError, ValueError) as error:
        raise ImproperlyConfigured(
            f"TRAJECTORY_OUTCOME_IMPROVEMENT must be a number, not {improvement!r}"
        ) from error
    return window, min_answers, threshold


def values_by_week(values: Iterable[tuple[dt.date, int]]) -> dict[dt.date, int]:
    """Scores by the Monday of their week; ValueError for a value off the scale or two in one week."""
    by_week: dict[dt.date, int] = {}
    for day, value in values:
        week = monday_of(day)
        if value not in SCALE:
            raise ValueError(f"score {value!r} of week {week} is not on the scale 1..5")
        if week in by_week:
            raise ValueError(f"two scores for the week of {week}")
        by_week[week] = value
    return by_week


def _average(values: Sequence[int]) -> Fraction | None:
    return Fraction(sum(values), len(values)) if values else None
