"""What feeds the ledger: every fact the ledger does not hold yet, taken from the apps below, each night.

The facts each kind carries are listed in notary.audit (trajectories) and here (privacy facts); the
sources (``"session_held:<uuid>"``, ...) make a second run append nothing (notary.ledger.append_many).

- Trajectories (casefiles.trajectories.for_ledger): opened, each session held, completed with its measured
  outcome once that outcome is final (casefiles.trajectories.final_outcomes). Named by their reference
  only (notary.references), with their organisation and week. A trajectory whose reference retention
  forgot is never given a new one: the ledger already holds its opening, and nothing more is recorded.
- ``anonymisation_run``: each night's summary of the anonymisation and retention run, once that night has
  passed (a later run the same day still adds to it); ``{"night": "YYYY-MM-DD", <count>: n, ...}``.
- ``report_setting_changed``: each raise of an organisation's report threshold; ``{"old": n, "new": n}``.
- ``agreement_recorded``: each recorded processing agreement; ``{"party": "organisation" | "casemanager",
  "casemanager_id": <id or null>, "signed_on": "YYYY-MM-DD"}`` (no signer's name).
- ``access_log_head``: once a night, the access log's latest link and its number of entries; ``{"night":
  "YYYY-MM-DD", "entries": n, "head": <hex>}``. Anchored outside the casefiles store's own rows, it shows
  a newest entry removed from the log, which the chain alone cannot.
- ``key_rotated`` comes from the key rotation itself (notary.receivers), not from here.

One run is one transaction: a run that fails halfway appends nothing and makes no reference. Within a run
the trajectory facts of each kind go in in a random order, so the order of the ledger says nothing about
the order in which things happened between two runs (who was helped first, whose session came before whose).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from django.db import transaction
from django.utils import timezone

from casefiles import accesslog
from casefiles import trajectories as casefile_trajectories
from casefiles.trajectories import LedgerTrajectory
from notary import ledger, references, signing
from notary.ledger import Fact
from notary.models import LedgerEntry
from participants.agreements import recorded_agreements
from participants.retention import nightly_summaries
from preventicons.dbrouter import CASEFILES
from scores.reports import threshold_changes
from scores.weekclose import monday_of

Kind = LedgerEntry.Kind
# Keyed sources looked up per query: a bounded IN-list on PostgreSQL and SQLite alike.
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class FeedResult:
    """How many entries one run appended, per kind (every kind the feed writes, zeros included)."""

    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


FED_KINDS = (
    Kind.TRAJECTORY_OPENED,
    Kind.SESSION_HELD,
    Kind.TRAJECTORY_COMPLETED,
    Kind.ANONYMISATION_RUN,
    Kind.REPORT_SETTING_CHANGED,
    Kind.AGREEMENT_RECORDED,
    Kind.ACCESS_LOG_HEAD,
)


def record_new_facts(*, today: dt.date | None = None) -> FeedResult:
    """Append every fact the ledger does not hold yet; a second run appends nothing. All or nothing."""
    today = today or timezone.localdate()
    with transaction.atomic(using=CASEFILES):
        appended = _append_trajectory_facts(today)
        appended += ledger.append_many(_privacy_facts(today))
    counted = Counter(entry.kind for entry in appended)
    return FeedResult(counts={str(kind): counted.get(kind, 0) for kind in FED_KINDS})


# --- trajectories ---------------------------------------------------------------------------------------


def _append_trajectory_facts(today: dt.date) -> list[LedgerEntry]:
    found = casefile_trajectories.for_ledger(today=today)
    referenced = references.references_for(trajectory.id for trajectory in found)
    # No reference, yet its opening in the ledger: retention forgot it. It stays forgotten.
    forgotten = _appended(
        f"trajectory_opened:{trajectory.id}" for trajectory in found if trajectory.id not in referenced
    )
    recorded = [trajectory for trajectory in found if f"trajectory_opened:{trajectory.id}" not in forgotten]
    for trajectory in recorded:
        if trajectory.id not in referenced:
            referenced[trajectory.id] = references.reference_for(trajectory.id)

    opened = [_opened(trajectory, referenced[trajectory.id]) for trajectory in recorded]
    held = [
        Fact(
            kind=Kind.SESSION_HELD,
            source=f"session_held:{session.id}",
            week=monday_of(session.held_on),
            reference=referenced[trajectory.id],
            organisation_id=trajectory.organisation_id,
        )
        for trajectory in recorded
        for session in trajectory.held
    ]
    completed = _completed(recorded, referenced, today)
    random = secrets.SystemRandom()
    for facts in (opened, held, completed):
        random.shuffle(facts)
    return ledger.append_many([*opened, *held, *completed])


def _opened(trajectory: LedgerTrajectory, reference: str) -> Fact:
    return Fact(
        kind=Kind.TRAJECTORY_OPENED,
        source=f"trajectory_opened:{trajectory.id}",
        week=monday_of(trajectory.started_on),
        reference=reference,
        organisation_id=trajectory.organisation_id,
        facts={"kind": trajectory.kind},
    )


def _completed(
    recorded: list[LedgerTrajectory], referenced: Mapping[uuid.UUID, str], today: dt.date
) -> list[Fact]:
    ended = {trajectory.id: trajectory for trajectory in recorded if trajectory.ended_on is not None}
    # Measured only while not yet recorded: reading the scores of every trajectory ever ended, each
    # night, would cost a lookup per week for an outcome the ledger already holds.
    done = _appended(f"trajectory_completed:{trajectory_id}" for trajectory_id in ended)
    waiting = [
        trajectory_id for trajectory_id in ended if f"trajectory_completed:{trajectory_id}" not in done
    ]
    facts = []
    for trajectory_id, outcome in casefile_trajectories.final_outcomes(waiting, today=today).items():
        trajectory = ended[trajectory_id]
        assert trajectory.ended_on is not None  # only ended ones above
        facts.append(
            Fact(
                kind=Kind.TRAJECTORY_COMPLETED,
                source=f"trajectory_completed:{trajectory_id}",
                week=monday_of(trajectory.ended_on),
                reference=referenced[trajectory_id],
                organisation_id=trajectory.organisation_id,
                facts={"outcome": outcome.value, "sessions_held": len(trajectory.held)},
            )
        )
    return facts


def _appended(sources: Iterable[str]) -> set[str]:
    """Which of these sources the ledger holds (notary.ledger.was_appended for many at once)."""
    keyed = {signing.source_of(source): source for source in sources}
    names = list(keyed)
    found: set[str] = set()
    for start in range(0, len(names), LOOKUP_CHUNK):
        found.update(
            LedgerEntry.objects.filter(source__in=names[start : start + LOOKUP_CHUNK]).values_list(
                "source", flat=True
            )
        )
    return {keyed[name] for name in found}


# --- privacy facts --------------------------------------------------------------------------------------


def _privacy_facts(today: dt.date) -> list[Fact]:
    facts = [
        Fact(
            kind=Kind.ANONYMISATION_RUN,
            source=f"anonymisation_run:{night.isoformat()}",
            week=monday_of(night),
            facts={"night": night.isoformat(), **asdict(counts)},
        )
        for night, counts in nightly_summaries(before=today).items()
    ]
    facts += [
        Fact(
            kind=Kind.REPORT_SETTING_CHANGED,
            source=f"report_setting_changed:{change.id}",
            week=monday_of(change.changed_on),
            organisation_id=change.organisation_id,
            facts={"old": change.old, "new": change.new},
        )
        for change in threshold_changes()
    ]
    facts += [
        Fact(
            kind=Kind.AGREEMENT_RECORDED,
            source=f"agreement_recorded:{agreement.id}",
            week=monday_of(agreement.signed_on),
            organisation_id=agreement.organisation_id,
            facts={
                "party": agreement.party,
                "casemanager_id": agreement.casemanager_id,
                "signed_on": agreement.signed_on.isoformat(),
            },
        )
        for agreement in recorded_agreements()
    ]
    head, entries = accesslog.head_and_length()
    facts.append(
        Fact(
            kind=Kind.ACCESS_LOG_HEAD,
            source=f"access_log_head:{today.isoformat()}",
            week=monday_of(today),
            facts={"night": today.isoformat(), "entries": entries, "head": head},
        )
    )
    return facts


def key_rotated(*, purpose: str, key_id: str, day: dt.date) -> LedgerEntry | None:
    """Append a key's activation (preventicons.signals.keys_rotated); None when it was appended before."""
    return ledger.append(
        Fact(
            kind=Kind.KEY_ROTATED,
            source=f"key_rotated:{purpose}:{key_id}",
            week=monday_of(day),
            facts={"purpose": purpose, "key_id": key_id, "on": day.isoformat()},
        )
    )
