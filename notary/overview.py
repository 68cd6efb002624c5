"""What the auditor's organisation page reads: the period's trajectories from the ledger with their totals,
and the spot check of one trajectory's notes (counts by kind, never a text).

Rows carry a trajectory's reference, its kind, weeks (the finest date the ledger holds), the number of
sessions held, the outcome and the sign-off: no dossier number, name, contact detail or score.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _

from casefiles import notes as casenotes
from casefiles import trajectories as casetrajectories
from notary import audit, references
from notary.audit import TrajectoryRecord
from notary.checks import monday_of, week_label
from notary.models import LedgerEntry

OUTCOMES = ("improved", "not_improved", "not_measurable")


def outcome_label(code: str) -> str:
    labels = {
        "improved": _("improved"),
        "not_improved": _("not improved"),
        "not_measurable": _("not measurable"),
    }
    return labels.get(code, code)


@dataclass(frozen=True)
class Row:
    """One trajectory as the auditor's table shows it."""

    reference: str
    kind: str
    opened: str
    sessions_held: int
    completed: str
    outcome: str
    # "" until signed off; then whether the participant confirmed that it took place.
    signed_off: bool
    took_place: bool | None


def row_of(record: TrajectoryRecord) -> Row:
    return Row(
        reference=record.reference,
        kind=casetrajectories.kind_label(record.kind) if record.kind else "",
        opened=week_label(record.opened_week) if record.opened_week else "",
        sessions_held=record.sessions_held,
        completed=week_label(record.completed_week) if record.completed_week else "",
        outcome=outcome_label(record.outcome) if record.outcome else "",
        signed_off=record.signed_off,
        took_place=record.took_place,
    )


@dataclass(frozen=True)
class Totals:
    """The period's figures over the trajectories that ran in it."""

    ran: int
    opened: int
    completed: int
    sessions_held: int
    outcomes: tuple[tuple[str, int], ...]
    signed_off: int
    took_place: int


def _within(week: dt.date | None, start: dt.date, end: dt.date) -> bool:
    return week is not None and monday_of(start) <= week <= end


def totals_of(records: Sequence[TrajectoryRecord], start: dt.date, end: dt.date) -> Totals:
    """Opened, completed (by outcome) and sessions held in the period's weeks; signed off among them all."""
    completed = [record for record in records if _within(record.completed_week, start, end)]
    return Totals(
        ran=len(records),
        opened=sum(1 for record in records if _within(record.opened_week, start, end)),
        completed=len(completed),
        sessions_held=sum(
            1 for record in records for week in record.session_weeks if _within(week, start, end)
        ),
        outcomes=tuple(
            (outcome_label(code), sum(1 for record in completed if record.outcome == code))
            for code in OUTCOMES
        ),
        signed_off=sum(1 for record in records if record.signed_off),
        took_place=sum(1 for record in records if record.took_place),
    )


@dataclass(frozen=True)
class Overview:
    rows: list[Row]
    totals: Totals


def overview(organisation_id: int, start: dt.date, end: dt.date) -> Overview:
    records = audit.trajectories(organisation_id, start, end)
    return Overview(rows=[row_of(record) for record in records], totals=totals_of(records, start, end))


# --- the spot check ---


@dataclass(frozen=True)
class SpotCheck:
    reference: str
    # (kind label, count) for every kind of note; None when the way back to the dossier is gone.
    counts: list[tuple[str, int]] | None

    @property
    def total(self) -> int:
        return sum(count for _label, count in self.counts or ())


def is_reference_of(organisation_id: int, reference: str) -> bool:
    """Whether the ledger names this reference for the organisation (a trajectory of another organisation,
    or no trajectory at all, is not the auditor's to check here)."""
    return LedgerEntry.objects.filter(
        organisation_id=organisation_id, reference=reference, kind__in=audit.TRAJECTORY_KINDS
    ).exists()


def spot_check(reference: str) -> SpotCheck:
    """How many notes of each kind the trajectory's dossier holds. Retention may have forgotten the way
    from the reference to the trajectory (or removed the trajectory): then counts is None, and says so."""
    trajectory_id = references.trajectory_id_for(reference)
    counts = None if trajectory_id is None else casenotes.note_counts_of_trajectory(trajectory_id)
    if counts is None:
        return SpotCheck(reference, None)
    labels = casenotes.kind_labels()
    return SpotCheck(reference, [(labels.get(kind, kind), count) for kind, count in counts.items()])
