"""The auditor's pages under /notary/: the organisations that engaged them, one organisation per period
(its trajectories, the privacy checks and the ledger's integrity), and the spot check of one reference.

Thin: notary.engagements scopes, notary.overview and notary.checks read. An organisation that did not
engage this auditor answers 404, exactly like one that does not exist. Nothing on these pages names a
dossier, a person, a contact detail or a score: the ledger's references, weeks and counts only.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from casefiles import accesslog
from casefiles.accesslog import Action
from notary import checks, engagements, overview, periods
from notary.engagements import EngagedOrganisation
from participants.models import StaffUser
from preventicons.dbrouter import CASEFILES
from preventicons.roles import Role, staff_required


def _auditor_id(request: HttpRequest) -> int:
    user = request.user
    assert isinstance(user, StaffUser)  # staff_required let only a verified staff login through
    return user.pk


def _engaged(request: HttpRequest, organisation_id: int) -> EngagedOrganisation:
    found = engagements.engaged_organisation(auditor_id=_auditor_id(request), organisation_id=organisation_id)
    if found is None:
        raise Http404
    return found


def _period(request: HttpRequest) -> periods.Period:
    """The period asked for (``?period=2026-Q4``), the current quarter by default; 404 for a period that is
    not a month, quarter or year, or has not begun."""
    today = timezone.localdate()
    key = request.GET.get("period", "")
    if not key:
        return periods.quarter_of(today)
    try:
        period = periods.parse(key)
    except ValueError:
        raise Http404 from None
    if not period.has_begun(today):
        raise Http404
    return period


@never_cache
@require_GET
@staff_required(Role.AUDITOR)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "notary/dashboard.html",
        {
            "organisations": engagements.organisations_of(_auditor_id(request)),
            "current": periods.quarter_of(timezone.localdate()),
        },
    )


@never_cache
@require_GET
@staff_required(Role.AUDITOR)
def organisation_page(request: HttpRequest, organisation_id: int) -> HttpResponse:
    organisation = _engaged(request, organisation_id)
    period = _period(request)
    return render(
        request,
        "notary/organisation.html",
        {
            "organisation": organisation,
            "period": period,
            "choices": periods.recent(timezone.localdate()),
            "overview": overview.overview(organisation.organisation_id, period.start, period.end),
            "checks": checks.run_checks(organisation.organisation_id, period.start, period.end),
            "head": checks.latest_head(),
        },
    )


@never_cache
@require_GET
@staff_required(Role.AUDITOR)
def spot_check(request: HttpRequest, organisation_id: int, reference: str) -> HttpResponse:
    """The note counts of one reference's dossier, logged in the access log (NEN 7513) with the look.

    The entry names the auditor and the reference, as this page does, and no dossier number: a row that
    held both would keep, for good and append-only, the link from reference to dossier that retention
    deletes (notary.references), and would tell more than the auditor's page ever showed.
    """
    organisation = _engaged(request, organisation_id)
    if not overview.is_reference_of(organisation.organisation_id, reference):
        raise Http404
    # The look and its entry together: a look that fails leaves no entry, a logged look is not lost.
    with transaction.atomic(using=CASEFILES):
        check = overview.spot_check(reference)
        accesslog.record(
            Action.SPOT_CHECK,
            user=request.user,
            dossier_number="",
            request=request,
            detail=f"reference {reference}",
        )
    return render(
        request,
        "notary/spot_check.html",
        {"organisation": organisation, "check": check, "period_key": request.GET.get("period", "")},
    )
