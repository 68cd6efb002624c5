"""The employer's feedback page, /notary/feedback/: what participants said about the help, in releases of
at least five (notary.feedback). Employer staff with both factors, their own organisation only."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from notary import feedback
from preventicons.roles import Role, organisation_of, staff_required


@never_cache
@require_GET
@staff_required(Role.EMPLOYER)
def releases(request: HttpRequest) -> HttpResponse:
    organisation = organisation_of(request.user)
    return render(
        request,
        "notary/feedback.html",
        {
            "organisation": organisation,
            "releases": feedback.releases_for(organisation.pk),
            "minimum": feedback.release_minimum(),
        },
    )


@never_cache
@require_GET
@staff_required(Role.EMPLOYER)
def release(request: HttpRequest, release_id: uuid.UUID) -> HttpResponse:
    """One release; another organisation's answers as one that does not exist."""
    organisation = organisation_of(request.user)
    shown = feedback.release_of(organisation.pk, release_id)
    if shown is None:
        raise Http404
    return render(
        request,
        "notary/feedback_release.html",
        {"organisation": organisation, "release": shown, "minimum": feedback.release_minimum()},
    )
