"""The employer's reports read from real frozen weeks (scores.reports.build_report on PostgreSQL): the periods
and their labels, folded departments, a department of four that shows no number, the threshold that only goes
up, comparisons with the sector and with all organisations, and the links a week close counts."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connections
from django.utils import timezone

from participants.models import Department, Organisation, Participant
from preventicons.roles import Role
from scores import reports, weekclose
from scores.disclosure import OTHER, Shown, Why
from scores.models import ReportSettingChange, WeeklyAggregate, WeeklyLink
from scores.reports import Level
from tests.conftest import ALL_DATABASES, make_organisation, make_staff
from tests.scores.people import add_score, make_link, make_participant
from tests.scores.reporting import departments_of, freeze_week, frozen_with_code, weeks_from

pytestmark = pytest.mark.usefixtures("english", "empty_cache")

# ISO week 52 of 2025, then weeks 1 to 15 of 2026: the end of Q4 2025 (its earlier weeks before the first
# close: complete, only shorter), all of Q1 2026 (weeks 1-13), Q2 so far.
FIRST_WEEK = dt.date(2025, 12, 22)
SMALL = [1, 1, 2, 5]  # a department of four
CARE = [3, 4, 4, 5, 2, 3, 4, 3, 4, 5, 3]
IT = [2, 3, 4, 4, 5, 3, 4]
MIXED = [1, 2, 3, 4, 5, 3, 4]  # seven answers that any report may show


def frozen_organisation(weeks: int = 16) -> tuple[Organisation, dict[str, Department]]:
    organisation = make_organisation("Zorggroep Noord", "zorg")
    departments = departments_of(organisation)
    for week in weeks_from(FIRST_WEEK, weeks):
        freeze_week(
            organisation,
            week,
            {departments["Finance"]: SMALL, departments["Care"]: CARE, departments["IT"]: IT},
        )
    return organisation, departments


@pytest.mark.django_db
def test_each_level_shows_its_most_recent_calendar_periods_with_their_labels() -> None:
    organisation, _departments = frozen_organisation()

    by_level = {level: reports.build_report(organisation, level) for level in Level}

    weekly = by_level[Level.WEEK].periods
    assert [period.key for period in weekly] == [f"2026-W{number:02d}" for number in range(3, 16)]
    assert [period.label for period in weekly][:2] == ["week 3, 2026", "week 4, 2026"]
    assert all(period.complete for period in weekly)
    quarters = by_level[Level.QUARTER].periods
    assert [(period.key, period.label, len(period.weeks)) for period in quarters] == [
        ("2025-Q4", "Q4 2025", 1),
        ("2026-Q1", "Q1 2026", 13),
        ("2026-Q2", "Q2 2026 (so far)", 2),
    ]
    years = by_level[Level.YEAR].periods
    assert [(period.key, period.label) for period in years] == [
        ("2025", "2025"),
        ("2026", "2026 (so far)"),
    ]
    for report in by_level.values():
        assert len(report.everyone) == len(report.periods) and report.threshold == 5


@pytest.mark.django_db
def test_a_department_of_four_is_folded_and_shows_no_number_in_any_period_of_any_level() -> None:
    organisation, departments = frozen_organisation()

    for level in Level:
        report = reports.build_report(organisation, level)
        rows = {row.label: row for row in report.rows}
        assert list(rows) == ["Whole organisation", "Care", "Finance", "IT", "Other departments"]
        finance = rows["Finance"]
        for cell in finance.cells:
            assert cell is not None and cell.shown is Shown.NOTHING and cell.why is Why.FOLDED
            assert (cell.answers, cell.average, cell.hard_percent, cell.participation) == (None,) * 4
        # "Other departments" (Finance and the two people the links went to in no department) has four
        # answers: withheld, and IT, the next-smallest, with it, so the organisation minus Care gives neither.
        for key in (OTHER, departments["IT"].pk):
            row = next(row for row in report.rows if row.key == key)
            assert all(cell is not None and cell.answers is None for cell in row.cells)
        organisation_row, care = rows["Whole organisation"], rows["Care"]
        for whole, cell in zip(organisation_row.cells, care.cells, strict=True):
            assert whole is not None and cell is not None and whole.shown is Shown.FIGURES
            weeks = len(whole.weeks)
            assert (whole.answers, cell.answers) == (22 * weeks, 11 * weeks)


@pytest.mark.django_db
def test_raising_the_threshold_refuses_a_lower_the_same_or_a_too_high_one_and_logs_who_when_old_and_new() -> (
    None
):
    organisation, _departments = frozen_organisation(weeks=2)
    hr = make_staff("hr", Role.EMPLOYER, organisation)

    for refused in (4, 5, reports.MAXIMUM_REPORT_THRESHOLD + 1):
        with pytest.raises(ValueError):
            reports.raise_threshold(organisation, refused, by=hr)
    assert not ReportSettingChange.objects.exists() and reports.threshold_of(organisation.pk) == 5
    before = timezone.now()
    change = reports.raise_threshold(organisation, 12, by=hr)
    after = timezone.now()

    assert reports.threshold_of(organisation.pk) == 12
    assert (
        change.changed_by,
        change.changed_by_name,
        change.setting,
        change.old_value,
        change.new_value,
    ) == (
        hr,
        "hr",
        "threshold",
        "5",
        "12",
    )
    assert before <= change.changed_at <= after
    with pytest.raises(ValueError):
        reports.raise_threshold(organisation, 11, by=hr)
    # Care's eleven answers are under 12 now: folded, and the report says 12.
    report = reports.build_report(organisation, Level.WEEK)
    care = next(row for row in report.rows if row.label == "Care")
    assert report.threshold == 12 and all(cell is not None and cell.why is Why.FOLDED for cell in care.cells)
    assert [(c.old_value, c.new_value) for c in reports.setting_changes(organisation.pk)] == [("5", "12")]


@pytest.mark.django_db(transaction=True)
def test_a_raise_that_waits_for_a_parallel_one_sees_it_so_both_are_logged_in_order_and_none_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first raise holds the setting's row (real PostgreSQL, two connections) while the second starts:
    the second waits, then raises from the first's value. Without the row lock it would read 5 and log
    5 -> 9 over 5 -> 8."""
    organisation = make_organisation("Zorggroep Noord", "zorg")
    user = make_staff("hr", Role.EMPLOYER, organisation)
    reports.raise_threshold(organisation, 6, by=user)  # the setting's row exists: both lock the same row
    first_holds_the_row = threading.Event()
    original_now = timezone.now

    def now() -> dt.datetime:
        # Called by raise_threshold after it has locked the row: the first raise lingers there.
        if threading.current_thread().name == "first":
            first_holds_the_row.set()
            time.sleep(0.5)
        return original_now()

    monkeypatch.setattr(reports.timezone, "now", now)
    errors: list[BaseException] = []

    def raise_to(value: int) -> None:
        try:
            reports.raise_threshold(organisation, value, by=user)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(target=raise_to, args=(8,), name="first")
    second = threading.Thread(target=raise_to, args=(9,), name="second")
    first.start()
    assert first_holds_the_row.wait(timeout=10)
    second.start()
    first.join()
    second.join()

    assert errors == []
    changes = ReportSettingChange.objects.order_by("changed_at", "pk").values_list("old_value", "new_value")
    assert list(changes) == [("5", "6"), ("6", "8"), ("8", "9")]
    assert reports.threshold_of(organisation.pk) == 9


@pytest.mark.django_db
def test_the_sector_figure_sums_three_other_organisations_of_the_division_shown_to_their_own_employers() -> (
    None
):
    weeks = weeks_from(FIRST_WEEK, 2)
    own = frozen_with_code("Own", "8610", [5, 5, 5, 4, 4, 4, 1, 2, 3], weeks)
    hospital = frozen_with_code("Hospital", "8620", MIXED, weeks)
    clinic = frozen_with_code("Clinic", "8690", [*MIXED, 5], weeks)
    nursing = frozen_with_code("Nursing", "86", [*MIXED, 5, 5], weeks)
    # In the division, but withheld from their own employers: three answers; eight under a threshold of 10.
    frozen_with_code("Tiny", "8622", [2, 3, 4], weeks)
    strict = frozen_with_code("Strict", "8630", [1, 2, 3, 4, 5, 3, 4, 2], weeks)
    raise_before(strict, 10, weeks[0])
    # Another division: all organisations, not the sector.
    frozen_with_code("Builder", "4120", MIXED, weeks)

    report = reports.build_report(own, Level.WEEK)

    assert report.sector is not None
    assert [cell.answers for cell in report.sector] == [7 + 8 + 9] * 2
    # (22 + 27 + 32) / 24 = 3.375
    assert report.sector[0].average == Decimal("3.4")
    assert report.sector[0].participation is None  # bands are each employer's own matter
    # All organisations minus the sector would be the builder alone: withheld.
    assert [(cell.shown, cell.why) for cell in report.everyone] == [(Shown.NOTHING, Why.COMPARISON)] * 2

    # A raise after the weeks ended changes nobody's past comparisons: Nursing's nine stay in the sum
    # (they were shown to their employer then), or the sums before and after would give Nursing's figure.
    reports.raise_threshold(nursing, 10, by=make_staff("hr-nursing", Role.EMPLOYER, nursing))
    assert [cell.answers for cell in reports.build_report(own, Level.WEEK).sector or []] == [24] * 2

    # Had Nursing raised it before the weeks ended, two would be left in the sector: no sector figure, and
    # all organisations has three: Hospital, Clinic and Builder.
    ReportSettingChange.objects.filter(organisation=nursing).update(
        changed_at=timezone.make_aware(dt.datetime.combine(weeks[0], dt.time(9)))
    )
    cache.clear()  # the log is append-only: nothing but this test rewrites a change, so no key follows it
    report = reports.build_report(own, Level.WEEK)
    assert report.sector is not None
    assert [(cell.shown, cell.why, cell.answers) for cell in report.sector] == [
        (Shown.NOTHING, Why.COMPARISON, None)
    ] * 2
    assert [cell.answers for cell in report.everyone] == [7 + 8 + 7] * 2
    # Each of the others sees a comparison without itself.
    assert [cell.answers for cell in reports.build_report(hospital, Level.WEEK).everyone] == [9 + 8 + 7] * 2
    assert clinic.pk != own.pk


def raise_before(organisation: Organisation, threshold: int, week: dt.date) -> None:
    """Raise the threshold as if it had been done on the Monday of ``week``, before the week ended."""
    reports.raise_threshold(
        organisation, threshold, by=make_staff(f"hr-{organisation.pk}", Role.EMPLOYER, organisation)
    )
    ReportSettingChange.objects.filter(organisation=organisation).update(
        changed_at=timezone.make_aware(dt.datetime.combine(week, dt.time(9)))
    )
    cache.clear()


@pytest.mark.django_db
def test_an_organisation_without_an_sbi_code_has_no_sector_to_compare_with() -> None:
    organisation, _departments = frozen_organisation(weeks=2)
    assert reports.build_report(organisation, Level.WEEK).sector is None


WEEK = dt.date(2026, 11, 9)
TODAY = dt.date(2026, 11, 23)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_week_close_counts_the_links_sent_per_department_before_it_forgets_them() -> None:
    organisation = make_organisation("Zorggroep Noord", "zorg")
    departments = departments_of(organisation)
    sent = {"Care": 3, "IT": 2, "Finance": 0}
    people: list[Participant] = []
    for name, number in sent.items():
        for _person in range(number):
            person = make_participant(organisation)
            person.department = departments[name]
            person.save(update_fields=["department"])
            people.append(person)
    nobody = make_participant(organisation)
    nobody.department = None
    nobody.save(update_fields=["department"])
    for person in [*people, nobody]:
        make_link(person, week=WEEK)
    add_score(people[0], week=WEEK, value=4)
    add_score(people[1], week=WEEK, value=2)
    add_score(nobody, week=WEEK, value=3)

    weekclose.close_week(organisation_id=organisation.pk, week=WEEK, today=TODAY)

    invited = {
        row.department_id: (row.opened.invited, row.opened.count)
        for row in WeeklyAggregate.objects.filter(organisation=organisation, week=WEEK)
    }
    assert invited == {
        departments["Care"].pk: (3, 2),
        departments["IT"].pk: (2, 0),
        departments["Finance"].pk: (0, 0),
        None: (6, 3),
    }
    assert not WeeklyLink.objects.filter(week=WEEK).exists()


@pytest.mark.django_db
def test_after_a_raise_a_week_that_ended_before_it_shows_nothing_it_did_not_show_then() -> None:
    """Under 5, the five in "Support" who all answered 4 show their count only, and "Sales" (eight, the
    smallest group shown) is withheld with them. Under 8 Support is folded, and Sales alone would pass: shown,
    the report from before the raise minus it would give Support's answers. A week that ends after the raise
    is decided under 8 alone."""
    organisation = make_organisation("Zorggroep Noord", "zorg")
    hr = make_staff("hr", Role.EMPLOYER, organisation)
    named = {
        name: Department.objects.create(organisation=organisation, name=name)
        for name in ("Sales", "Support", "Legal", "Works", "Press", "Stock")
    }
    answers = {
        named["Sales"]: [2, 2, 1, 1, 3, 3, 3, 3],
        named["Support"]: [4, 4, 4, 4, 4],
        named["Legal"]: [1, 2, 3],
        named["Works"]: [3, 4, 5, 5, 1, 2, 3, 4, 2, 3, 4, 5],
        named["Press"]: [5, 3, 2, 4],
        named["Stock"]: [1, 3, 5],
    }
    ended_before, ends_after = FIRST_WEEK, monday_after(timezone.localdate())
    for week in (ended_before, ends_after):
        freeze_week(organisation, week, answers, invited_extra=0)

    def sales(week: dt.date) -> Shown:
        report = reports.build_report(organisation, Level.WEEK)
        index = [period.weeks for period in report.periods].index((week,))
        cell = next(row for row in report.rows if row.label == "Sales").cells[index]
        assert cell is not None
        return cell.shown

    assert sales(ended_before) is Shown.COUNT
    reports.raise_threshold(organisation, 8, by=hr)
    assert sales(ended_before) is Shown.COUNT
    assert sales(ends_after) is Shown.FIGURES


def monday_after(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=7 - day.weekday())
