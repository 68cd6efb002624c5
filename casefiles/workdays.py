"""Working days for the promised first contact: Monday to Friday, without the Dutch public holidays.

The holidays are those of the Algemene termijnenwet and most collective agreements: New Year's Day, Easter
Monday, King's Day (27 April, or the 26th when the 27th is a Sunday), Liberation Day in lustrum years (every
fifth year, when most agreements give it off), Ascension Day, Whit Monday and both days of Christmas.
Easter Sunday and Whit Sunday fall on a Sunday anyway. Computed, so no list needs updating each year.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from django.conf import settings

ONE_DAY = dt.timedelta(days=1)


def easter_sunday(year: int) -> dt.date:
    """Easter Sunday in the Gregorian calendar (the anonymous algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@lru_cache(maxsize=64)
def dutch_public_holidays(year: int) -> frozenset[dt.date]:
    easter = easter_sunday(year)
    kings_day = dt.date(year, 4, 27)
    if kings_day.weekday() == 6:
        kings_day = dt.date(year, 4, 26)
    days = {
        dt.date(year, 1, 1),
        easter + ONE_DAY,  # Easter Monday
        kings_day,
        easter + dt.timedelta(days=39),  # Ascension Day
        easter + dt.timedelta(days=50),  # Whit Monday
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),
    }
    if year % 5 == 0:
        days.add(dt.date(year, 5, 5))  # Liberation Day, a day off in lustrum years
    return frozenset(days)


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in dutch_public_holidays(day.year)


def add_working_days(day: dt.date, count: int) -> dt.date:
    """``count`` working days after ``day`` (the day itself not counted)."""
    while count > 0:
        day += ONE_DAY
        if is_working_day(day):
            count -= 1
    return day


def first_contact_due(asked_on: dt.date) -> dt.date:
    """The day a first contact is promised by: DOSSIER_FIRST_CONTACT_WORKING_DAYS after the request."""
    return add_working_days(asked_on, settings.DOSSIER_FIRST_CONTACT_WORKING_DAYS)
