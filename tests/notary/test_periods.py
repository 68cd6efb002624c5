"""The calendar periods the auditor reads: a month, a quarter or a year by key, never finer."""

from __future__ import annotations

import datetime as dt

import pytest

from notary import periods


@pytest.mark.parametrize(
    ("key", "start", "end"),
    [
        ("2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        ("2026-Q1", dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
        ("2026-Q4", dt.date(2026, 10, 1), dt.date(2026, 12, 31)),
        ("2028-02", dt.date(2028, 2, 1), dt.date(2028, 2, 29)),
        ("2026-12", dt.date(2026, 12, 1), dt.date(2026, 12, 31)),
    ],
)
def test_a_key_names_its_first_and_last_day_and_round_trips(key: str, start: dt.date, end: dt.date) -> None:
    period = periods.parse(key)

    assert (period.start, period.end, period.key) == (start, end, key)


@pytest.mark.parametrize("key", ["2026-W05", "2026-12-01", "2026-Q0", "2026-13", "26", "1999", "", "2026-q1"])
def test_anything_finer_or_malformed_is_refused(key: str) -> None:
    with pytest.raises(ValueError):
        periods.parse(key)


def test_the_choices_are_newest_first_and_none_has_not_begun() -> None:
    today = dt.date(2026, 5, 14)

    choices = periods.recent(today, years=1)

    assert [period.key for period in choices[:4]] == ["2026", "2026-Q2", "2026-Q1", "2026-05"]
    assert all(period.start <= today for period in choices)
    assert choices[-1].key == "2025-01"
    assert periods.quarter_of(today).key == "2026-Q2"
