"""Reads of pseudonymous scores that other apps (participants' export, casefiles) ask for."""

from __future__ import annotations

from typing import TypedDict

from scores.models import Score


class WeeklyValue(TypedDict):
    week: str
    value: int


def weekly_values_for(pseudonym: str) -> list[WeeklyValue]:
    """The scores held under this pseudonym, oldest week first; nothing of anyone else."""
    if not pseudonym:
        # A stripped score has no pseudonym: an empty one must never match every stripped row.
        return []
    rows = Score.objects.filter(pseudonym=pseudonym).order_by("week").values_list("week", "value")
    return [{"week": week.isoformat(), "value": value} for week, value in rows]
