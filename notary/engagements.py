"""Which organisations engaged which auditor: what scopes every auditor page.

An auditor sees an organisation only while it has engaged them (notary.models.Engagement, set by the
platform admin). Any other organisation, also one that exists, answers as one that does not: the auditor
learns nothing of the organisations that did not engage them, not even which ids are taken.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from notary.models import Engagement
from participants import auditors


@dataclass(frozen=True)
class EngagedOrganisation:
    organisation_id: int
    name: str
    engaged_on: dt.date


def organisations_of(auditor_id: int) -> list[EngagedOrganisation]:
    """The organisations that engaged this auditor and still exist, by name."""
    engaged = dict(
        Engagement.objects.filter(auditor_id=auditor_id).values_list("organisation_id", "engaged_on")
    )
    names = auditors.organisation_names(engaged)
    found = [
        EngagedOrganisation(organisation_id, name, engaged[organisation_id])
        for organisation_id, name in names.items()
    ]
    return sorted(found, key=lambda organisation: (organisation.name, organisation.organisation_id))


def engaged_organisation(*, auditor_id: int, organisation_id: int) -> EngagedOrganisation | None:
    """The organisation, when it engaged this auditor and exists; None otherwise (whatever the reason)."""
    engaged_on = (
        Engagement.objects.filter(auditor_id=auditor_id, organisation_id=organisation_id)
        .values_list("engaged_on", flat=True)
        .first()
    )
    if engaged_on is None:
        return None
    name = auditors.organisation_names([organisation_id]).get(organisation_id)
    if name is None:
        return None
    return EngagedOrganisation(organisation_id, name, engaged_on)
