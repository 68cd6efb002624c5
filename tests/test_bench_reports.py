"""The employer reports' benchmark (bench/reports.py) runs end to end at a tiny size: organisations of varied
departments and frozen weeks, the dashboard at every level and the CSV answering 200 cold and warm, and a
request's SQL queries the same with and without the raw score rows (never a time: the suite's machine is
no benchmark machine)."""

from __future__ import annotations

import random

import pytest

from bench.reports import SMALL_DEPARTMENTS, Sizes, department_sizes, run
from participants.models import Organisation, StaffUser
from scores.models import Score, WeeklyAggregate
from tests.conftest import ALL_DATABASES

TINY = Sizes(
    organisations=((40, 3), (90, 9)),
    departments=6,
    sector_others=3,
    elsewhere=1,
    other_departments=2,
    other_sizes=(20, 30),
    score_pool=25,
    warmups=1,
    requests=2,
)


def test_department_sizes_add_up_vary_and_include_small_ones() -> None:
    sizes = department_sizes(10_000, 40, random.Random(7))

    assert len(sizes) == 40 and sum(sizes) == 10_000
    assert sorted(sizes[: len(SMALL_DEPARTMENTS)]) == sorted(SMALL_DEPARTMENTS)
    assert all(size >= 5 for size in sizes[len(SMALL_DEPARTMENTS) :])
    assert max(sizes) > 3 * min(sizes[len(SMALL_DEPARTMENTS) :])


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_bench_measures_every_level_and_the_csv_and_removes_what_it_built(
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = run(TINY)

    levels = ("week", "quarter", "year", "year CSV")
    assert [figure.label for figure in results.pages] == [
        *[f"40 employees, 3 weeks, {level}" for level in levels],
        *[f"90 employees, 9 weeks, {level}" for level in levels],
    ]
    for figure in [*results.pages, *results.with_scores]:
        assert len(figure.timings_ms) == TINY.requests
        assert 0 < figure.median_ms <= figure.p90_ms
        assert figure.cold_ms > 0 and figure.after_close_ms > 0 and figure.queries["default"] > 0
    printed = capsys.readouterr().out
    assert "under 200 ms: " in printed and "cold " in printed and "warm median" in printed
    assert f"{results.score_rows:,} raw score rows" in printed
    assert "bench rows removed" in printed
    # Gone again: the organisations, their frozen weeks and scores, the employers.
    assert not Organisation.objects.filter(name__startswith="Bench reports").exists()
    assert not WeeklyAggregate.objects.exists() and not Score.objects.exists()
    assert not StaffUser.objects.filter(username__startswith="bench-hr-").exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_dashboard_request_makes_as_many_queries_with_the_raw_scores_as_without() -> None:
    results = run(TINY)

    largest = results.pages[len(results.pages) // 2 :]
    assert results.score_rows > 0
    assert [figure.queries for figure in results.with_scores] == [figure.queries for figure in largest]
    # Nor with more weeks or more employees: the same number at each level for both organisations.
    smaller = results.pages[: len(results.pages) // 2]
    assert [figure.queries for figure in smaller] == [figure.queries for figure in largest]
