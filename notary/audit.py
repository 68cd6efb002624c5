"""What the auditor reads: an organisation's trajectories in a period, rebuilt from the ledger alone.

The auditor's view of a trajectory is the ledger's: its reference, the week it opened, the weeks its
sessions were held, the week it completed with its measured outcome, and whether the participant signed it
off. Nothing here reads a dossier: what Anoniem Garant attests is what the ledger, which it can verify
against its signed heads, says.

The facts each kind of entry carries (notary.feed and notary.signoffs write them):

- ``trajectory_opened``: reference, organisation, the week it started; ``{"kind": <trajectory kind code>}``
- ``session_held``: reference, organisation, the week it was held; ``{}``
- ``trajectory_completed``: reference, organisation, the week it ended;
  ``{"outcome": "improved" | "not_improved" | "not_measurable", "sessions_held": <n>}``
- ``signed_off``: reference, organisation, the week the sign-off was taken up; ``{"took_place": <bool>}``
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Q

from notary.models import LedgerEntry

Kind = LedgerEntry.Kind
TRAJECTORY_KINDS = (Kind.TRAJECTORY_OPENED, Kind.SESSION_HELD, Kind.TRAJECTORY_COMPLETED, Kind.SIGNED_OFF)


@dataclass
class TrajectoryRecord:
    """One trajectory as the ledger tells it."""

    reference: str
    organisation_id: int
    kind: str = ""
    opened_week: dt.date | None = None
    session_weeks: list[dt.date] = field(default_factory=list)
    completed_week: dt.date | None = None
    outcome: str = ""
    # None until signed off; then whether the participant confirmed that it took place.
    took_place: bool | None = None

    @property
    def sessions_held(self) -> int:
        return len(self.session_weeks)

    @property
    def signed_off(self) -> bool:
        return self.took_place is not None


def records_from(entries: Iterable[LedgerEntry]) -> dict[str, TrajectoryRecord]:
    """Fold trajectory entries into one record per reference, in ledger order."""
    records: dict[str, TrajectoryRecord] = {}
    for entry in entries:
        if entry.kind not in TRAJECTORY_KINDS or not entry.reference or entry.organisation_id is None:
            continue
        record = records.setdefault(
            entry.reference,
            TrajectoryRecord(reference=entry.reference, organisation_id=entry.organisation_id),
        )
        if entry.kind == Kind.TRAJECTORY_OPENED:
            record.opened_week = entry.week
            record.kind = str(entry.facts.get("kind", ""))
        elif entry.kind == Kind.SESSION_HELD:
            record.session_weeks.append(entry.week)
        elif entry.kind == Kind.TRAJECTORY_COMPLETED:
            record.completed_week = entry.week
            record.outcome = str(entry.facts.get("outcome", ""))
        elif entry.kind == Kind.SIGNED_OFF:
            record.took_place = bool(entry.facts.get("took_place"))
    for record in records.values():
        record.session_weeks.sort()
    return records


def trajectories(organisation_id: int, start: dt.date, end: dt.date) -> list[TrajectoryRecord]:
    """The organisation's trajectories that ran in [start, end]: opened on or before its last week, and not
    completed before its first week. Ordered by the week they opened, then by reference."""
    first_week = start - dt.timedelta(days=start.weekday())
    references = set(
        LedgerEntry.objects.filter(
            organisation_id=organisation_id, kind=Kind.TRAJECTORY_OPENED, week__lte=end
        ).values_list("reference", flat=True)
    )
    ended_before = set(
        LedgerEntry.objects.filter(
            organisation_id=organisation_id, kind=Kind.TRAJECTORY_COMPLETED, week__lt=first_week
        ).values_list("reference", flat=True)
    )
    wanted = references - ended_before
    entries = LedgerEntry.objects.filter(
        Q(reference__in=wanted), organisation_id=organisation_id, kind__in=TRAJECTORY_KINDS
    ).order_by("sequence")
    found = records_from(entries)
    return sorted(found.values(), key=lambda record: (record.opened_week or dt.date.min, record.reference))
