"""A trajectory's measured outcome: four weeks before its start week against four after its end week."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from casefiles.outcome import Measured, Outcome, measure_outcome

pytestmark = pytest.mark.usefixtures("english")

START = dt.date(2026, 3, 2)  # a Monday
END = dt.date(2026, 4, 27)  # a Monday, eight weeks later


def before(weeks: int) -> dt.date:
    """The Monday ``weeks`` weeks before the start week."""
    return START - dt.timedelta(weeks=weeks)


def after(weeks: int) -> dt.date:
    """The Monday ``weeks`` weeks after the end week."""
    return END + dt.timedelta(weeks=weeks)


def measure(values: list[tuple[dt.date, int]], ended_on: dt.date | None = END) -> Measured:
    return measure_outcome(values, started_on=START, ended_on=ended_on)


def test_a_rise_of_a_point_is_improved() -> None:
    measured = measure([(before(1), 2), (before(2), 2), (after(1), 3), (after(2), 3)])

    assert measured == Measured(
        outcome=Outcome.IMPROVED, before=2.0, after=3.0, answers_before=2, answers_after=2
    )


def test_a_drop_is_not_improved() -> None:
    measured = measure([(before(1), 4), (before(2), 4), (after(1), 2), (after(2), 3)])

    assert measured.outcome == Outcome.NOT_IMPROVED
    assert (measured.before, measured.after) == (4.0, 2.5)


def test_no_change_is_not_improved() -> None:
    assert (
        measure([(before(1), 3), (before(2), 3), (after(1), 3), (after(2), 3)]).outcome
        == Outcome.NOT_IMPROVED
    )


def test_a_rise_of_exactly_half_a_point_is_improved() -> None:
    measured = measure([(before(1), 3), (before(2), 3), (after(1), 3), (after(2), 4)])

    assert measured.after is not None and measured.before is not None
    assert measured.after - measured.before == 0.5
    assert measured.outcome == Outcome.IMPROVED


def test_the_closest_rise_under_half_a_point_on_four_weeks_is_not_improved() -> None:
    # 10/3 -> 15/4, 5/12 of a point: with four-week windows averages differ by twelfths at the finest.
    values = [(before(1), 3), (before(2), 3), (before(3), 4)]
    values += [(after(1), 4), (after(2), 4), (after(3), 4), (after(4), 3)]

    measured = measure(values)

    assert measured.after is not None and measured.before is not None
    assert measured.after - measured.before == pytest.approx(5 / 12)
    assert measured.outcome == Outcome.NOT_IMPROVED


def test_a_rise_of_0_49_is_not_improved(settings: Settings) -> None:
    settings.TRAJECTORY_OUTCOME_WINDOW_WEEKS = 100
    values = [(before(n), 3) for n in range(1, 101)]
    values += [(after(n), 4 if n <= 49 else 3) for n in range(1, 101)]  # 3.49 after 3.00

    measured = measure(values)

    assert measured.before == 3.0 and measured.after == 3.49
    assert measured.outcome == Outcome.NOT_IMPROVED


def test_exactly_half_a_point_counts_even_where_floating_point_falls_short(settings: Settings) -> None:
    settings.TRAJECTORY_OUTCOME_WINDOW_WEEKS = 6
    # 5/3 before, 13/6 after: 13/6 - 5/3 is 0.49999999999999983 in floating point, exactly 1/2 in fact.
    values = [(before(1), 1), (before(2), 2), (before(3), 2)]
    values += [(after(1), 2), (after(2), 2), (after(3), 2), (after(4), 2), (after(5), 2), (after(6), 3)]

    measured = measure(values)

    assert measured.after is not None and measured.before is not None
    assert measured.after - measured.before < 0.5
    assert measured.outcome == Outcome.IMPROVED


def test_a_score_exactly_four_weeks_before_the_start_week_counts() -> None:
    measured = measure([(before(4), 2), (before(3), 2), (after(1), 4), (after(2), 4)])

    assert measured.answers_before == 2
    assert measured.outcome == Outcome.IMPROVED


def test_a_score_five_weeks_before_the_start_week_does_not_count() -> None:
    measured = measure([(before(5), 2), (before(3), 2), (after(1), 4), (after(2), 4)])

    assert measured.answers_before == 1
    assert measured.outcome == Outcome.NOT_MEASURABLE


def test_a_score_exactly_four_weeks_after_the_end_week_counts_and_five_does_not() -> None:
    measured = measure([(before(1), 2), (before(2), 2), (after(4), 4), (after(5), 5), (after(1), 4)])

    assert measured.answers_after == 2
    assert measured.after == 4.0


def test_the_start_week_and_the_end_week_do_not_count() -> None:
    measured = measure([(START, 1), (before(1), 3), (before(2), 3), (END, 5), (after(1), 3), (after(2), 3)])

    assert (measured.answers_before, measured.answers_after) == (2, 2)
    assert (measured.before, measured.after) == (3.0, 3.0)
    assert measured.outcome == Outcome.NOT_IMPROVED


def test_the_weeks_between_start_and_end_do_not_count() -> None:
    during = [(START + dt.timedelta(weeks=n), 1) for n in range(1, 8)]

    measured = measure([*during, (before(1), 3), (before(2), 3), (after(1), 3), (after(2), 3)])

    assert (measured.answers_before, measured.answers_after) == (2, 2)


def test_exactly_min_answers_in_each_window_is_measurable() -> None:
    assert measure([(before(1), 2), (before(4), 2), (after(1), 3), (after(4), 3)]).outcome == Outcome.IMPROVED


def test_one_answer_fewer_before_is_not_measurable() -> None:
    measured = measure([(before(1), 2), (after(1), 3), (after(2), 3)])

    assert measured == Measured(
        outcome=Outcome.NOT_MEASURABLE, before=2.0, after=3.0, answers_before=1, answers_after=2
    )


def test_one_answer_fewer_after_is_not_measurable() -> None:
    measured = measure([(before(1), 2), (before(2), 2), (after(3), 5)])

    assert measured.outcome == Outcome.NOT_MEASURABLE
    assert measured.answers_after == 1


def test_a_trajectory_that_has_not_ended_is_not_measurable() -> None:
    measured = measure([(before(1), 2), (before(2), 2), (after(1), 5), (after(2), 5)], ended_on=None)

    assert measured == Measured(
        outcome=Outcome.NOT_MEASURABLE, before=2.0, after=None, answers_before=2, answers_after=0
    )


def test_no_answers_at_all_is_not_measurable() -> None:
    assert measure([]) == Measured(
        outcome=Outcome.NOT_MEASURABLE, before=None, after=None, answers_before=0, answers_after=0
    )


def test_dates_in_mid_week_stand_for_their_monday() -> None:
    started_on = START + dt.timedelta(days=3)  # Thursday of the start week
    ended_on = END + dt.timedelta(days=6)  # Sunday of the end week
    values = [
        (START + dt.timedelta(days=1), 1),  # Tuesday of the start week: excluded
        (before(4) + dt.timedelta(days=6), 2),  # Sunday four weeks before: counts
        (before(5) + dt.timedelta(days=6), 1),  # Sunday five weeks before: does not
        (before(1) + dt.timedelta(days=2), 2),
        (END + dt.timedelta(days=2), 5),  # Wednesday of the end week: excluded
        (after(1) + dt.timedelta(days=4), 3),
        (after(4) + dt.timedelta(days=6), 3),  # Sunday four weeks after: counts
    ]

    measured = measure_outcome(values, started_on=started_on, ended_on=ended_on)

    assert measured == Measured(
        outcome=Outcome.IMPROVED, before=2.0, after=3.0, answers_before=2, answers_after=2
    )


def test_the_order_of_the_values_does_not_matter() -> None:
    values = [(after(2), 4), (before(1), 2), (after(1), 3), (before(3), 3)]

    assert measure(values) == measure(list(reversed(values)))


def test_a_trajectory_ending_in_its_start_week_is_measured_around_that_week() -> None:
    measured = measure_outcome(
        [
            (before(1), 2),
            (before(2), 2),
            (START, 1),
            (START + dt.timedelta(weeks=1), 4),
            (START + dt.timedelta(weeks=2), 4),
        ],
        started_on=START,
        ended_on=START + dt.timedelta(days=4),
    )

    assert measured.outcome == Outcome.IMPROVED


def test_the_rule_follows_the_settings(settings: Settings) -> None:
    values = [(before(1), 2), (after(1), 4)]
    assert measure(values).outcome == Outcome.NOT_MEASURABLE

    settings.TRAJECTORY_OUTCOME_MIN_ANSWERS = 1
    assert measure(values).outcome == Outcome.IMPROVED

    settings.TRAJECTORY_OUTCOME_IMPROVEMENT = 2.5
    assert measure(values).outcome == Outcome.NOT_IMPROVED

    settings.TRAJECTORY_OUTCOME_WINDOW_WEEKS = 1
    assert measure([(before(2), 2), (before(1), 2), (after(1), 5)]).answers_before == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRAJECTORY_OUTCOME_WINDOW_WEEKS", 0),
        ("TRAJECTORY_OUTCOME_WINDOW_WEEKS", "4"),
        ("TRAJECTORY_OUTCOME_MIN_ANSWERS", 0),
        ("TRAJECTORY_OUTCOME_IMPROVEMENT", "half"),
    ],
)
def test_a_setting_that_makes_no_sense_is_refused(settings: Settings, name: str, value: object) -> None:
    setattr(settings, name, value)

    with pytest.raises(ImproperlyConfigured, match=name):
        measure([])


def test_an_end_before_the_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        measure_outcome([], started_on=START, ended_on=START - dt.timedelta(days=1))


def test_a_score_off_the_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="scale"):
        measure([(before(1), 6)])


def test_two_scores_in_one_week_are_refused() -> None:
    with pytest.raises(ValueError, match="two scores"):
        measure([(before(1), 3), (before(1) + dt.timedelta(days=2), 4)])


def test_the_outcomes_have_stable_values_and_readable_labels() -> None:
    assert [(outcome.value, outcome.label) for outcome in Outcome] == [
        ("improved", "Improved"),
        ("not_improved", "Not improved"),
        ("not_measurable", "Not measurable"),
    ]
