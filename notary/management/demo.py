"""Demo data of the notary: Anoniem Garant engaged by Zorggroep De Linde, the ledger fed with what the other
apps' demo data did, and one attestation for the last ended quarter, ready for the employer to download.

Called by ``manage.py seed_demo`` last, after the casefiles demo made its trajectories. The facts reach the
ledger as they do every night (notary.feed.record_new_facts), and the attestation is issued by the same
operation as the auditor's button. Safe to run again: the engagement and the facts are stored once, and a
quarter that has an attestation gets no second one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from importlib import import_module

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from notary import attestations, ledger
from notary.models import Attestation, Engagement
from notary.references import reference_for
from participants.models import Organisation, StaffUser

DEMO_AUDITOR = "demo-auditor"
DEMO_ORGANISATION = "Zorggroep De Linde"
ENGAGED_ON = dt.date(2026, 1, 5)


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _record_trajectories_directly(today: dt.date) -> int:
    """Until notary.feed exists: the demo trajectories' openings and held sessions, as the feed would
    append them. (Their completions wait for the feed: only it knows when an outcome is final.)"""
    from casefiles.models import Trajectory  # the demo only: the feed reads them through casefiles' own query

    facts = []
    for trajectory in (
        Trajectory.objects.select_related("dossier").prefetch_related("sessions").order_by("pk")
    ):
        organisation_id = trajectory.dossier.organisation_id
        if organisation_id is None:
            continue
        reference = reference_for(trajectory.pk)
        facts.append(
            ledger.Fact(
                ledger.Kind.TRAJECTORY_OPENED,
                f"trajectory_opened:{trajectory.pk}",
                _monday(trajectory.started_on),
                facts={"kind": trajectory.kind},
                reference=reference,
                organisation_id=organisation_id,
            )
        )
        for session in trajectory.sessions.all():
            if session.held_on is not None and session.held_on <= today:
                facts.append(
                    ledger.Fact(
                        ledger.Kind.SESSION_HELD,
                        f"session_held:{session.pk}",
                        _monday(session.held_on),
                        reference=reference,
                        organisation_id=organisation_id,
                    )
                )
    return len(ledger.append_many(facts))


def _feed(today: dt.date) -> str:
    try:
        feed = import_module("notary.feed")
    except ModuleNotFoundError:
        return f"{_record_trajectories_directly(today)} trajectory facts appended directly (no feed yet)"
    feed.record_new_facts(today=today)
    return "fed by notary.feed"


def seed(*, write: Callable[[str], None]) -> None:
    auditor = StaffUser.objects.filter(username=DEMO_AUDITOR).first()
    organisation = Organisation.objects.filter(name=DEMO_ORGANISATION).first()
    if auditor is None or organisation is None:
        write("notary: no demo auditor or no De Linde, no notary demo data")
        return
    Engagement.objects.get_or_create(
        auditor_id=auditor.pk, organisation_id=organisation.pk, defaults={"engaged_on": ENGAGED_ON}
    )
    today = timezone.localdate()
    fed = _feed(today)
    quarter = attestations.ended_periods(today)[0]
    if not Attestation.objects.filter(
        organisation_id=organisation.pk, period_start=quarter.start, period_end=quarter.end
    ).exists():
        attestations.issue(
            organisation_id=organisation.pk,
            period_start=quarter.start,
            period_end=quarter.end,
            auditor_id=auditor.pk,
            today=today,
        )
    entries = ledger.LedgerEntry.objects.count()
    write(
        f"notary: {DEMO_AUDITOR} engaged by {DEMO_ORGANISATION}; ledger of {entries} entries ({fed}); "
        f"attestation for {quarter.key}: {settings.SITE_URL}{reverse('notary:employer-attestations')}"
    )
    audited = reverse("notary:attestations", kwargs={"organisation_id": organisation.pk})
    write(f"notary: {DEMO_AUDITOR} issues De Linde's attestations at {settings.SITE_URL}{audited}")
    write(f"notary: anyone verifies attestations at {settings.SITE_URL}{reverse('notary:verify')}")
