"""The working days of the promised first contact: weekends and the Dutch public holidays skipped."""

from __future__ import annotations

import datetime as dt

import pytest

from casefiles.workdays import add_working_days, dutch_public_holidays, easter_sunday, is_working_day


@pytest.mark.parametrize(
    ("year", "easter"),
    [(2024, dt.date(2024, 3, 31)), (2025, dt.date(2025, 4, 20)), (2026, dt.date(2026, 4, 5)),
     (2027, dt.date(2027, 3, 28)), (2038, dt.date(2038, 4, 25))],
)  # fmt: skip
def test_easter_falls_on_its_published_date(year: int, easter: dt.date) -> None:
    assert easter_sunday(year) == easter


def test_the_holidays_of_2027() -> None:
    assert dutch_public_holidays(2027) == {
        dt.date(2027, 1, 1),
        dt.date(2027, 3, 29),  # Easter Monday
        dt.date(2027, 4, 27),  # King's Day, a Tuesday
        dt.date(2027, 5, 6),  # Ascension Day
        dt.date(2027, 5, 17),  # Whit Monday
        dt.date(2027, 12, 25),
        dt.date(2027, 12, 26),
    }


def test_kings_day_moves_when_the_27th_is_a_sunday_and_liberation_day_counts_in_lustrum_years() -> None:
    assert dt.date(2025, 4, 26) in dutch_public_holidays(2025)  # 27 April 2025 is a Sunday
    assert dt.date(2025, 5, 5) in dutch_public_holidays(2025)
    assert dt.date(2026, 5, 5) not in dutch_public_holidays(2026)


@pytest.mark.parametrize(
    ("asked", "due"),
    [
        (dt.date(2026, 12, 2), dt.date(2026, 12, 4)),  # Wednesday: Friday
        (dt.date(2026, 12, 4), dt.date(2026, 12, 8)),  # Friday: Tuesday
        (dt.date(2026, 12, 5), dt.date(2026, 12, 8)),  # Saturday: Tuesday
        (dt.date(2026, 12, 24), dt.date(2026, 12, 29)),  # Christmas Eve: over Christmas and the weekend
        (dt.date(2027, 3, 26), dt.date(2027, 3, 31)),  # Friday before Easter: Easter Monday skipped
    ],
)
def test_the_first_contact_is_due_two_working_days_after_the_request(asked: dt.date, due: dt.date) -> None:
    assert add_working_days(asked, 2) == due


def test_a_holiday_is_no_working_day_and_an_ordinary_tuesday_is() -> None:
    assert not is_working_day(dt.date(2026, 12, 25))
    assert is_working_day(dt.date(2026, 12, 29))
