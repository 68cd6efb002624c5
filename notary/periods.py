"""The calendar periods the auditor reads and attests: a month, a quarter or a year, never finer.

A period is written as its key in URLs and attestations: ``2026`` (a year), ``2026-Q4`` (a quarter) or
``2026-12`` (a month). Nothing finer exists: an attestation per week or day would, beside the trajectories'
weeks, narrow down who was helped.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import re
from dataclasses import dataclass

from django.utils import formats
from django.utils.translation import gettext as _

_KEY = re.compile(r"^(?P<year>\d{4})(?:-Q(?P<quarter>[1-4])|-(?P<month>0[1-9]|1[0-2]))?$")
# Periods before this year are refused: the platform did not exist, and a key must stay a small thing.
FIRST_YEAR = 2020


class Length(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True)
class Period:
    """A calendar month, quarter or year: its first and last day, both included."""

    length: Length
    start: dt.date
    end: dt.date

    @property
    def key(self) -> str:
        if self.length == Length.YEAR:
            return f"{self.start.year}"
        if self.length == Length.QUARTER:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.year}-{self.start.month:02d}"

    @property
    def label(self) -> str:
        """The period in the reader's language: "2026", "Q4 2026", "December 2026"."""
        if self.length == Length.YEAR:
            return self.key
        if self.length == Length.QUARTER:
            return _("Q%(quarter)d %(year)d") % {
                "quarter": (self.start.month - 1) // 3 + 1,
                "year": self.start.year,
            }
        return formats.date_format(self.start, "YEAR_MONTH_FORMAT")

    def has_begun(self, today: dt.date) -> bool:
        return self.start <= today


def year(number: int) -> Period:
    return Period(Length.YEAR, dt.date(number, 1, 1), dt.date(number, 12, 31))


def quarter(number: int, which: int) -> Period:
    first_month = 3 * (which - 1) + 1
    last_month = first_month + 2
    last_day = calendar.monthrange(number, last_month)[1]
    return Period(Length.QUARTER, dt.date(number, first_month, 1), dt.date(number, last_month, last_day))


def month(number: int, which: int) -> Period:
    last_day = calendar.monthrange(number, which)[1]
    return Period(Length.MONTH, dt.date(number, which, 1), dt.date(number, which, last_day))


def quarter_of(day: dt.date) -> Period:
    return quarter(day.year, (day.month - 1) // 3 + 1)


def parse(key: str) -> Period:
    """The period a key names; ValueError for anything else (a week, a day, a malformed key)."""
    found = _KEY.match(key.strip())
    if found is None:
        raise ValueError(f"not a month, quarter or year: {key!r}")
    number = int(found["year"])
    if number < FIRST_YEAR:
        raise ValueError(f"a period before {FIRST_YEAR}: {key!r}")
    if found["quarter"]:
        return quarter(number, int(found["quarter"]))
    if found["month"]:
        return month(number, int(found["month"]))
    return year(number)


def recent(today: dt.date, *, years: int = 2) -> list[Period]:
    """The periods to choose from, newest first: this year and the ``years`` before it, their quarters and
    months, none that has not begun yet."""
    found: list[Period] = []
    for number in range(today.year, today.year - years - 1, -1):
        candidates = [
            year(number),
            *(quarter(number, which) for which in range(4, 0, -1)),
            *(month(number, which) for which in range(12, 0, -1)),
        ]
        found.extend(period for period in candidates if period.has_begun(today))
    return found
