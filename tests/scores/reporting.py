"""Frozen weeks for report tests: what the week close writes (a ClosedWeek and a sealed WeeklyAggregate per
department and for the organisation), made directly from lists of answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from participants.models import Department, Organisation
from scores.models import ClosedWeek, Figures, WeeklyAggregate
from tests.conftest import make_organisation

MONDAY = dt.date(2026, 1, 5)  # ISO week 2 of 2026, in Q1


def freeze_week(
    organisation: Organisation,
    week: dt.date,
    answers: Mapping[Department, list[int]],
    *,
    without_department: list[int] | None = None,
    invited_extra: int = 2,
) -> None:
    """Freeze ``week`` as the close would: every department of the organisation gets a row (empty if not
    in ``answers``), the organisation's row holds everyone, people in no department included."""
    everyone = list(without_department or [])
    for department in Department.objects.filter(organisation=organisation):
        values = list(answers.get(department, []))
        everyone.extend(values)
        WeeklyAggregate.objects.create(
            organisation=organisation,
            department=department,
            week=week,
            figures=Figures.of(values, invited=len(values) + invited_extra).sealed_text(),
        )
    invited = len(everyone) + invited_extra * (len(answers) + 1)
    WeeklyAggregate.objects.create(
        organisation=organisation,
        department=None,
        week=week,
        figures=Figures.of(everyone, invited=invited).sealed_text(),
    )
    # The division as the close records it (scores.weekclose.close_week).
    ClosedWeek.objects.create(
        organisation=organisation, week=week, division=(organisation.sbi_code or "")[:2]
    )


def weeks_from(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(weeks=n) for n in range(count)]


def departments_of(organisation: Organisation) -> dict[str, Department]:
    return {department.name: department for department in organisation.departments.all()}


def frozen_with_code(name: str, sbi_code: str, answers: list[int], weeks: list[dt.date]) -> Organisation:
    """An organisation with this SBI code whose "Care" gave ``answers`` in each of ``weeks``, frozen."""
    organisation = make_organisation(name, "zorg")
    organisation.sbi_code = sbi_code
    organisation.save(update_fields=["sbi_code"])
    care = departments_of(organisation)["Care"]
    for week in weeks:
        freeze_week(organisation, week, {care: answers})
    return organisation
