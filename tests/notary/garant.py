"""A small world for the auditor: an organisation whose casemanager works on one dossier, the ledger facts
the feed would append for it (agreements, nightly runs, a trajectory), and an engaged auditor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from casefiles.models import Trajectory
from notary import ledger, references, signing
from notary.ledger import Fact
from notary.models import Engagement, LedgerEntry, TreeHead
from participants.models import Organisation, StaffUser
from tests.casefiles.world import World, build_world

Kind = LedgerEntry.Kind
SIGNED_ON = dt.date(2026, 1, 5)  # the agreements of tests.conftest and tests.casefiles.world


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def today() -> dt.date:
    return timezone.localdate()


def this_week_and_last() -> tuple[dt.date, dt.date]:
    """A period that holds today's looks and six nights that have passed."""
    return today() - dt.timedelta(days=6), today()


def append_night(night: dt.date) -> None:
    ledger.append(
        Fact(
            kind=Kind.ANONYMISATION_RUN,
            source=f"anonymisation_run:{night.isoformat()}",
            week=monday_of(night),
            facts={"night": night.isoformat(), "declined_erased": 0, "inactive_anonymised": 1},
        )
    )


def append_nights(start: dt.date, end: dt.date, *, but: tuple[dt.date, ...] = ()) -> None:
    night = start
    while night <= min(end, today() - dt.timedelta(days=1)):
        if night not in but:
            append_night(night)
        night += dt.timedelta(days=1)


def append_organisation_agreement(organisation: Organisation, signed_on: dt.date = SIGNED_ON) -> None:
    ledger.append(
        Fact(
            kind=Kind.AGREEMENT_RECORDED,
            source=f"agreement_recorded:organisation-{organisation.pk}-{signed_on}",
            week=monday_of(signed_on),
            organisation_id=organisation.pk,
            facts={"party": "organisation", "casemanager_id": None, "signed_on": signed_on.isoformat()},
        )
    )


def append_casemanager_agreement(casemanager: StaffUser, signed_on: dt.date = SIGNED_ON) -> None:
    ledger.append(
        Fact(
            kind=Kind.AGREEMENT_RECORDED,
            source=f"agreement_recorded:casemanager-{casemanager.pk}-{signed_on}",
            week=monday_of(signed_on),
            facts={
                "party": "casemanager",
                "casemanager_id": casemanager.pk,
                "signed_on": signed_on.isoformat(),
            },
        )
    )


def append_threshold_change(
    organisation: Organisation, old: int, new: int, *, on: dt.date, source: str
) -> None:
    ledger.append(
        Fact(
            kind=Kind.REPORT_SETTING_CHANGED,
            source=f"report_setting_changed:{source}",
            week=monday_of(on),
            organisation_id=organisation.pk,
            facts={"old": old, "new": new},
        )
    )


def append_trajectory(
    trajectory: Trajectory, *, sessions: int = 2, outcome: str = "", took_place: bool | None = None
) -> str:
    """The trajectory's entries as the feed (and the sign-off batch) append them; its reference."""
    reference = references.reference_for(trajectory.pk)
    organisation_id = trajectory.dossier.organisation_id
    week = monday_of(trajectory.started_on)
    facts = [
        Fact(
            kind=Kind.TRAJECTORY_OPENED,
            source=f"trajectory_opened:{trajectory.pk}",
            week=week,
            reference=reference,
            organisation_id=organisation_id,
            facts={"kind": trajectory.kind},
        )
    ]
    facts += [
        Fact(
            kind=Kind.SESSION_HELD,
            source=f"session_held:{trajectory.pk}-{n}",
            week=week,
            reference=reference,
            organisation_id=organisation_id,
        )
        for n in range(sessions)
    ]
    if outcome:
        facts.append(
            Fact(
                kind=Kind.TRAJECTORY_COMPLETED,
                source=f"trajectory_completed:{trajectory.pk}",
                week=week,
                reference=reference,
                organisation_id=organisation_id,
                facts={"outcome": outcome, "sessions_held": sessions},
            )
        )
    if took_place is not None:
        facts.append(
            Fact(
                kind=Kind.SIGNED_OFF,
                source=f"signed_off:{reference}",
                week=week,
                reference=reference,
                organisation_id=organisation_id,
                facts={"took_place": took_place},
            )
        )
    ledger.append_many(facts)
    return reference


def sign_head() -> TreeHead:
    """A signed head over the ledger as it stands: notary.ledger's own signing once it has one."""
    own = getattr(ledger, "sign_head", None)
    if callable(own):
        head: TreeHead = own()
        return head
    size = LedgerEntry.objects.count()
    root = "0" * 64
    return TreeHead.objects.create(
        tree_size=size,
        root_hash=root,
        signed_at=timezone.now(),
        key_fingerprint=signing.fingerprint(),
        signature=signing.sign(f"{size}:{root}".encode()),
    )


@dataclass
class Garant:
    world: World
    auditor: StaffUser
    start: dt.date
    end: dt.date

    @property
    def organisation(self) -> Organisation:
        return self.world.organisation


def clean_garant(
    organisation: Organisation,
    auditor: StaffUser,
    *,
    missing_nights: tuple[dt.date, ...] = (),
    anna_signed_on: dt.date = SIGNED_ON,
) -> Garant:
    """Everything in order for the last seven days: every night has its summary and every agreement is in
    the ledger before any processing (unless told otherwise); the auditor is engaged. No look yet, no head
    signed: each test adds what it needs."""
    world = build_world(organisation)
    start, end = this_week_and_last()
    append_organisation_agreement(organisation)
    append_casemanager_agreement(world.anna, anna_signed_on)
    append_casemanager_agreement(world.bert)
    append_nights(start, end, but=missing_nights)
    Engagement.objects.create(auditor_id=auditor.pk, organisation_id=organisation.pk, engaged_on=SIGNED_ON)
    return Garant(world, auditor, start, end)
