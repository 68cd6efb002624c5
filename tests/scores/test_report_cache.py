"""The employer report's decided cells are cached (scores.reports._cells_key): a second request opens no
frozen figure, and everything that changes what may be shown makes a new key, with nothing to clear: a week
closed, the threshold raised, someone in no department, a week frozen anew under the same ids. The week
close's task decides them ahead of the first look. The comparisons' cache follows every organisation's
weeks and SBI code, also when the ids stay as they were."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from participants.models import Department, Organisation, Participant, StaffUser
from preventicons.roles import Role
from scores import reports, tasks, weekclose
from scores.disclosure import ORGANISATION, OTHER, Shown
from scores.models import ClosedWeek, Figures, WeeklyAggregate
from scores.reports import Level
from tests.conftest import make_organisation, make_staff

MONDAY = dt.date(2026, 1, 5)
FIVE = [3, 4, 4, 5, 2]
EIGHT = [1, 2, 3, 3, 4, 4, 5, 5]


def freeze(organisation: Organisation, week: dt.date, answers: Mapping[str, list[int]]) -> None:
    """A closed week as the close writes it: a row per department (empty where not answered), the
    organisation's row, the ClosedWeek."""
    everyone: list[int] = []
    for department in Department.objects.filter(organisation=organisation):
        values = answers.get(department.name, [])
        everyone.extend(values)
        WeeklyAggregate.objects.create(
            organisation=organisation,
            department=department,
            week=week,
            figures=Figures.of(values, invited=len(values)).sealed_text(),
        )
    WeeklyAggregate.objects.create(
        organisation=organisation,
        department=None,
        week=week,
        figures=Figures.of(everyone, invited=len(everyone)).sealed_text(),
    )
    ClosedWeek.objects.create(organisation=organisation, week=week)


def cells(report: reports.Report) -> dict[Any, list[Any]]:
    return {row.key: row.cells for row in report.rows}


@pytest.fixture
def organisation(db: Any, empty_cache: None) -> Organisation:
    organisation = make_organisation("Zorggroep Noord")
    freeze(organisation, MONDAY, {"Finance": EIGHT, "Care": FIVE, "IT": EIGHT})
    return organisation


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many times the frozen figures were opened and decided."""
    calls: list[int] = []
    decide = reports._decided_cells

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return decide(*args, **kwargs)

    monkeypatch.setattr(reports, "_decided_cells", counted)
    yield calls


def test_a_second_report_opens_no_frozen_figure_and_shows_the_same(
    organisation: Organisation, opened: list[int]
) -> None:
    first = reports.build_report(organisation, Level.WEEK)
    second = reports.build_report(organisation, Level.WEEK)

    assert len(opened) == 1
    assert cells(second) == cells(first) and second.periods == first.periods
    # Each level is decided on its own.
    reports.build_report(organisation, Level.YEAR)
    assert len(opened) == 2


def test_a_newly_closed_week_is_in_the_next_report(organisation: Organisation, opened: list[int]) -> None:
    before = reports.build_report(organisation, Level.WEEK)
    freeze(organisation, MONDAY + dt.timedelta(weeks=1), {"Finance": EIGHT, "Care": EIGHT, "IT": EIGHT})

    after = reports.build_report(organisation, Level.WEEK)

    assert len(opened) == 2
    assert len(after.periods) == len(before.periods) + 1
    assert after.rows[0].cells[-1] is not None and after.rows[0].cells[-1].answers == 24


def test_a_raised_threshold_withholds_at_once_what_the_cache_held(
    organisation: Organisation, opened: list[int]
) -> None:
    care = Department.objects.get(organisation=organisation, name="Care").pk
    before = cells(reports.build_report(organisation, Level.WEEK))
    assert before[care][0] is not None and before[care][0].answers == 5
    employer: StaffUser = make_staff("hr-noord", Role.EMPLOYER, organisation)

    reports.raise_threshold(organisation, 6, by=employer)
    after = cells(reports.build_report(organisation, Level.WEEK))

    assert len(opened) == 2
    assert after[care][0] is not None and after[care][0].shown is Shown.NOTHING
    assert after[care][0].answers is None


def test_a_participant_row_without_a_department_changes_no_cell_and_needs_no_new_decision(
    organisation: Organisation, opened: list[int]
) -> None:
    """A stop shreds a row's department: a report that followed the participants table would show the
    employer that someone stopped, so neither the cells nor their cache key depend on it."""
    before = cells(reports.build_report(organisation, Level.WEEK))
    assert OTHER not in before

    Participant.objects.create(organisation=organisation, department=None)
    after = cells(reports.build_report(organisation, Level.WEEK))

    assert len(opened) == 1
    assert after == before


def test_a_week_frozen_anew_under_the_same_ids_is_decided_anew(
    organisation: Organisation, opened: list[int]
) -> None:
    """As after a database restored or made anew while the cache lived on: same organisation, same week,
    other figures. The key follows the sealed figures, not the ids."""
    reports.build_report(organisation, Level.WEEK)
    WeeklyAggregate.objects.filter(organisation=organisation).delete()
    ClosedWeek.objects.filter(organisation=organisation).delete()
    freeze(organisation, MONDAY, {"Finance": EIGHT, "Care": EIGHT, "IT": EIGHT})

    after = cells(reports.build_report(organisation, Level.WEEK))

    assert len(opened) == 2
    assert after[ORGANISATION][0] is not None and after[ORGANISATION][0].answers == 24


def test_a_renamed_department_shows_its_new_name_from_the_cached_cells(
    organisation: Organisation, opened: list[int]
) -> None:
    reports.build_report(organisation, Level.WEEK)
    Department.objects.filter(organisation=organisation, name="Care").update(name="Zorg")

    labels = [row.label for row in reports.build_report(organisation, Level.WEEK).rows]

    assert len(opened) == 1
    assert "Zorg" in labels and "Care" not in labels


def test_cells_prepared_after_a_close_serve_the_first_report_of_every_level(
    organisation: Organisation, opened: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_organisation("Bouwbedrijf Zuid")
    monkeypatch.setattr(
        weekclose,
        "close_ended_weeks",
        lambda: [
            weekclose.WeekClosed(organisation_id=organisation.pk, week=MONDAY, closed=True),
            weekclose.WeekClosed(organisation_id=other.pk, week=MONDAY, closed=False),
        ],
    )

    assert tasks.close_ended_weeks() == 1
    assert len(opened) == len(Level)  # the one organisation that closed a week, every level

    for level in Level:
        reports.build_report(organisation, level)
    assert len(opened) == len(Level)


def test_the_sector_comparison_follows_an_organisation_that_leaves_the_sector(
    organisation: Organisation,
) -> None:
    others = [make_organisation(f"Zorg {n}") for n in range(3)]
    for other in [organisation, *others]:
        other.sbi_code = "8610"
        other.save(update_fields=["sbi_code"])
    for other in others:
        freeze(other, MONDAY, {"Finance": EIGHT, "Care": EIGHT, "IT": EIGHT})
    before = reports.build_report(organisation, Level.WEEK).sector
    assert before is not None and before[0].shown is Shown.FIGURES

    others[0].sbi_code = "4120"
    others[0].save(update_fields=["sbi_code"])
    after = reports.build_report(organisation, Level.WEEK).sector

    assert after is not None and after[0].shown is Shown.NOTHING  # two others left: too few


def test_the_comparisons_forget_an_organisation_whose_weeks_were_removed(organisation: Organisation) -> None:
    others = [make_organisation(f"Zorg {n}") for n in range(3)]
    for other in others:
        freeze(other, MONDAY, {"Finance": EIGHT, "Care": EIGHT, "IT": EIGHT})
    before = reports.build_report(organisation, Level.WEEK).everyone
    assert before[0].shown is Shown.FIGURES and before[0].answers == 72

    # Not the latest close: the highest ids stay as they were.
    WeeklyAggregate.objects.filter(organisation=others[0]).delete()
    ClosedWeek.objects.filter(organisation=others[0]).delete()
    after = reports.build_report(organisation, Level.WEEK).everyone

    assert after[0].shown is Shown.NOTHING
