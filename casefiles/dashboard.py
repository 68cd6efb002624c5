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
from dataclasses import dataclass, replace

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from casefiles import assignment, notes
from casefiles.workdays import first_contact_due
from participants import casemanagers
from scores import queries as score_queries
from scores.weekclose import monday_of

ONE_WEEK = dt.timedelta(days=7)


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
    # What the page shows, worded and formatted here once per row (a template would do it per cell, and
    # this page lists hundreds of rows).
    url: str = ""
    opened_text: str = ""
    contact_text: str = ""
    last_note_text: str = ""
    markers: tuple[str, ...] = ()

    @property
    def needs_attention(self) -> bool:
        return self.awaiting_contact_since is not None or self.sharp_drop or self.quiet


@dataclass(frozen=True)
class Dashboard:
    # Every list holds the rows of its kind; each row is *shown* once, under its most urgent reason
    # (new request, then sharp drop, then no recent note, then the others), its other reasons as markers.
    new_requests: list[DossierRow]
    sharp_drops: list[DossierRow]
    quiet: list[DossierRow]
    all_rows: list[DossierRow]

    @property
    def shown_drops(self) -> list[DossierRow]:
        return [row for row in self.sharp_drops if row.awaiting_contact_since is None]

    @property
    def shown_quiet(self) -> list[DossierRow]:
        return [row for row in self.quiet if not row.sharp_drop]

    @property
    def others(self) -> list[DossierRow]:
        return [row for row in self.all_rows if not row.needs_attention]


def _worded(row: DossierRow, *, dossier_prefix: str) -> DossierRow:
    """The row with its texts: the page renders strings, not dates and plural forms per cell."""
    if row.awaiting_contact_since is not None and row.contact_due_on is not None:
        days = row.waiting_days or 0
        asked = ngettext("asked %(days)s day ago", "asked %(days)s days ago", days) % {"days": days}
        day = date_format(row.contact_due_on, "j M")
        due = (_("overdue since %(day)s") if row.contact_overdue else _("due by %(day)s")) % {"day": day}
        contact = f"{asked}, {due}"
    elif not row.is_open:
        contact = _("closed")
    else:
        contact = _("made")
    markers = []
    if row.awaiting_contact_since is not None:
        markers.append(_("new help request"))
    if row.sharp_drop:
        markers.append(_("sharp drop"))
    if row.quiet:
        markers.append(_("no recent note"))
    return replace(
        row,
        url=f"{dossier_prefix}{row.number}/",
        opened_text=date_format(row.opened_on, "j M Y"),
        contact_text=contact,
        last_note_text=date_format(row.last_note_on, "j M Y") if row.last_note_on else _("none yet"),
        markers=tuple(markers),
    )


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
    serving_dossiers = [d for d in within_reach if serving[(d.casemanager_id, d.organisation_id)]]
    # Of active participants only (read live, one query): an inactive participant's dossier is not listed.
    alive = assignment.live(serving_dossiers)
    dossiers = [d for d in serving_dossiers if d.pk in alive]
    weeks = [monday_of(today) - ONE_WEEK * back for back in range(settings.DOSSIER_DROP_WEEKS)]
    pseudonyms = {dossier.pk: dossier.pseudonym or "" for dossier in dossiers if dossier.is_open}
    recent = score_queries.weekly_values_for_many([p for p in pseudonyms.values() if p], weeks=weeks)
    last_notes = notes.last_note_days(dossiers)
    colleagues = casemanagers.staff_display_names(set(reach.standing_in_for))
    quiet_before = today - dt.timedelta(days=settings.DOSSIER_QUIET_DAYS)
    rows = []
    for dossier in dossiers:
        waiting = dossier.awaiting_contact_since if dossier.is_open else None
        due = first_contact_due(waiting) if waiting else None
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
    prefix = reverse("casefiles:dashboard")
    rows = [_worded(row, dossier_prefix=prefix) for row in rows]
    return Dashboard(
        new_requests=sorted(
            (row for row in rows if row.awaiting_contact_since),
            key=lambda row: row.awaiting_contact_since or today,
        ),
        sharp_drops=[row for row in rows if row.sharp_drop],
        quiet=[row for row in rows if row.quiet],
        all_rows=sorted(rows, key=lambda row: (not row.is_open, not row.needs_attention, row.number)),
    )
