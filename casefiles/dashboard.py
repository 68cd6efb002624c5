"""What the casemanager's dashboard shows: their own dossiers, what needs attention first.

Attention, in this order: new help requests (time since asked, and the first contact promised within
``DOSSIER_FIRST_CONTACT_WORKING_DAYS`` working days), sharp drops in the participant's recent weeks, and
dossiers without a note for ``DOSSIER_QUIET_DAYS``. Everything is read for the visible dossiers only
(casefiles.assignment.visible_dossiers), in a fixed number of queries whatever their count: the dossiers,
one batch of recent scores (scores.queries.weekly_values_for_many) and one of note days.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from casefiles import assignment, notes
from participants import casemanagers
from scores import queries as score_queries

ONE_WEEK = dt.timedelta(days=7)


def add_working_days(day: dt.date, count: int) -> dt.date:
    """``count`` working days (Monday to Friday) after ``day``; public holidays are not known here."""
    while count > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def has_sharp_drop(values: list[score_queries.WeeklyValue]) -> bool:
    """A fall of HELP_DROP_POINTS or more between two consecutive weeks (a gap breaks the comparison)."""
    for earlier, later in itertools.pairwise(values):
        consecutive = (
            dt.date.fromisoformat(later["week"]) - dt.date.fromisoformat(earlier["week"]) == ONE_WEEK
        )
        if consecutive and earlier["value"] - later["value"] >= settings.HELP_DROP_POINTS:
            return True
    return False


@dataclass(frozen=True)
class DossierRow:
    number: str
    opened_on: dt.date
    is_open: bool
    awaiting_contact_since: dt.date | None
    waiting_days: int | None
    contact_due_on: dt.date | None
    contact_overdue: bool
    sharp_drop: bool
    last_note_on: dt.date | None
    quiet: bool
    # Set when the row is a colleague's dossier this casemanager stands in for: whose it is.
    deputy_for: str

    @property
    def needs_attention(self) -> bool:
        return self.awaiting_contact_since is not None or self.sharp_drop or self.quiet


@dataclass(frozen=True)
class Dashboard:
    new_requests: list[DossierRow]
    sharp_drops: list[DossierRow]
    quiet: list[DossierRow]
    all_rows: list[DossierRow]


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def dashboard_for(reach: assignment.Reach, *, today: dt.date | None = None) -> Dashboard:
    """The dashboard of this casemanager: their dossiers and, during an absence they cover, a colleague's."""
    today = today or timezone.localdate()
    within_reach = list(assignment.visible_dossiers(reach).order_by("opened_on", "number"))
    # One check per casemanager and organisation, not per dossier: what serves() decides depends on those
    # two alone (and on the reach, the same for every row), and a casemanager has few organisations.
    serving: dict[tuple[int | None, int | None], bool] = {}
    for dossier in within_reach:
        key = (dossier.casemanager_id, dossier.organisation_id)
        if key not in serving:
            serving[key] = assignment.serves(dossier, reach=reach)
    dossiers = [d for d in within_reach if serving[(d.casemanager_id, d.organisation_id)]]
    weeks = [_monday(today) - ONE_WEEK * back for back in range(settings.DOSSIER_DROP_WEEKS)]
    pseudonyms = {dossier.pk: dossier.pseudonym or "" for dossier in dossiers if dossier.is_open}
    recent = score_queries.weekly_values_for_many([p for p in pseudonyms.values() if p], weeks=weeks)
    last_notes = notes.last_note_days(dossier.number for dossier in dossiers)
    colleagues = casemanagers.staff_display_names(set(reach.standing_in_for))
    quiet_before = today - dt.timedelta(days=settings.DOSSIER_QUIET_DAYS)
    rows = []
    for dossier in dossiers:
        waiting = dossier.awaiting_contact_since if dossier.is_open else None
        due = add_working_days(waiting, settings.DOSSIER_FIRST_CONTACT_WORKING_DAYS) if waiting else None
        last_note = last_notes.get(dossier.number)
        rows.append(
            DossierRow(
                number=dossier.number,
                opened_on=dossier.opened_on,
                is_open=dossier.is_open,
                awaiting_contact_since=waiting,
                waiting_days=(today - waiting).days if waiting else None,
                contact_due_on=due,
                contact_overdue=due is not None and due < today,
                sharp_drop=has_sharp_drop(recent.get(pseudonyms.get(dossier.pk, ""), [])),
                last_note_on=last_note,
                quiet=dossier.is_open and waiting is None and (last_note or dossier.opened_on) < quiet_before,
                deputy_for=colleagues.get(dossier.casemanager_id or 0, "")
                if reach.is_deputy_for(dossier)
                else "",
            )
        )
    return Dashboard(
        new_requests=sorted(
            (row for row in rows if row.awaiting_contact_since),
            key=lambda row: row.awaiting_contact_since or today,
        ),
        sharp_drops=[row for row in rows if row.sharp_drop],
        quiet=[row for row in rows if row.quiet],
        all_rows=sorted(rows, key=lambda row: (not row.is_open, not row.needs_attention, row.number)),
    )
