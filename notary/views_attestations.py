"""Attestations on the web: the auditor issues them, the employer downloads them, anyone verifies them.

Thin: notary.attestations builds, signs, stores and verifies. An organisation that did not engage the auditor,
and another organisation's attestation for employer staff, answer 404, exactly like one that does not exist.
``/verify/`` needs no login: whoever holds an attestation (the employer, its accountant, a works council)
checks it there against our public key and our ledger (the signed head it rests on must still be held), or
offline, its signature only, with ``manage.py verify_attestation``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notary import attestations, engagements, signing
from notary.attestations import AttestationRefused, Verdict
from notary.engagements import EngagedOrganisation
from notary.models import Attestation
from participants.models import StaffUser
from preventicons import ratelimit
from preventicons.clients import client_address
from preventicons.roles import Role, has_role, organisation_of, staff_required


def _staff_id(request: HttpRequest) -> int:
    user = request.user
    assert isinstance(user, StaffUser)  # staff_required let only a verified staff login through
    return user.pk


def _engaged(request: HttpRequest, organisation_id: int) -> EngagedOrganisation:
    """The organisation when it engaged this auditor and exists, as the auditor's own pages find it."""
    found = engagements.engaged_organisation(auditor_id=_staff_id(request), organisation_id=organisation_id)
    if found is None:
        raise Http404
    return found


# --- what a statement says, for people ---

OUTCOME_LABELS = {
    "improved": gettext_lazy("improved"),
    "not improved": gettext_lazy("not improved"),
    "not measurable": gettext_lazy("not measurable"),
}
LENGTH_LABELS = {
    "month": gettext_lazy("month"),
    "quarter": gettext_lazy("quarter"),
    "year": gettext_lazy("year"),
}


def readable(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement's parts as the pages show them (labels in the reader's language, values as signed)."""
    trajectories = statement.get("trajectories", {})
    period = statement.get("period", {})
    return {
        "issuer": statement.get("issuer", ""),
        "organisation": statement.get("organisation", {}),
        "period_length": str(LENGTH_LABELS.get(period.get("length", ""), period.get("length", ""))),
        "first_day": period.get("first_day", ""),
        "last_day": period.get("last_day", ""),
        "trajectories": trajectories,
        "outcomes": [
            (reference, str(OUTCOME_LABELS.get(word, word)))
            for reference, word in sorted(trajectories.get("outcomes", {}).items())
        ],
        "checks": statement.get("privacy_checks", []),
        "checks_passed": statement.get("privacy_checks_passed", False),
        "ledger": statement.get("ledger", {}),
        "key_fingerprint": statement.get("key_fingerprint", ""),
    }


def _download(attestation: Attestation) -> HttpResponse:
    response = HttpResponse(attestations.file_of(attestation), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{attestations.file_name(attestation)}"'
    return response


# --- the auditor ---


class IssueForm(forms.Form):
    period_start = forms.DateField()
    period_end = forms.DateField()


@never_cache
@require_GET
@staff_required(Role.AUDITOR)
def auditor_attestations(request: HttpRequest, organisation_id: int) -> HttpResponse:
    organisation = _engaged(request, organisation_id)
    issued = attestations.issued_for(organisation_id)
    return render(
        request,
        "notary/attestations.html",
        {
            "organisation": organisation,
            "periods": attestations.ended_periods(timezone.localdate()),
            "issued": [
                (attestation, readable(attestations.statement_of(attestation))) for attestation in issued
            ],
        },
    )


def _back(request: HttpRequest, organisation: EngagedOrganisation) -> HttpResponse:
    """Back to the auditor's page the button was on (the organisation's period, or its attestations), where
    the message tells what happened; only to one of our own auditor pages."""
    wanted = request.POST.get("next", "")
    if wanted.startswith("/notary/") and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(wanted)
    return redirect("notary:attestations", organisation_id=organisation.organisation_id)


@never_cache
@require_POST
@staff_required(Role.AUDITOR)
def issue_attestation(request: HttpRequest, organisation_id: int) -> HttpResponse:
    organisation = _engaged(request, organisation_id)
    back = _back(request, organisation)
    form = IssueForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a calendar quarter or year to attest."))
        return back
    start: dt.date = form.cleaned_data["period_start"]
    end: dt.date = form.cleaned_data["period_end"]
    try:
        attestation, is_new = attestations.issue(
            organisation_id=organisation.organisation_id,
            period_start=start,
            period_end=end,
            auditor_id=_staff_id(request),
        )
    except AttestationRefused as refusal:
        messages.error(request, str(refusal))
        return back
    key = attestations.period_key(attestation.period_start, attestation.period_end)
    if is_new:
        messages.success(request, _("The attestation for %(period)s is signed and issued.") % {"period": key})
    else:
        messages.info(
            request,
            _("This attestation for %(period)s was issued already: nothing changed since, so it stands.")
            % {"period": key},
        )
    return back


# --- the employer (and the auditor who issued it) ---


@never_cache
@require_GET
@staff_required(Role.EMPLOYER)
def employer_attestations(request: HttpRequest) -> HttpResponse:
    organisation = organisation_of(request.user)
    return render(
        request,
        "notary/employer_attestations.html",
        {
            "organisation": organisation,
            "issued": [
                (attestation, attestations.period_key(attestation.period_start, attestation.period_end))
                for attestation in attestations.issued_for(organisation.pk)
            ],
        },
    )


@never_cache
@require_GET
@staff_required(Role.EMPLOYER, Role.AUDITOR)
def download(request: HttpRequest, attestation_id: uuid.UUID) -> HttpResponse:
    attestation = get_object_or_404(Attestation, pk=attestation_id)
    if has_role(request.user, Role.EMPLOYER):
        allowed = organisation_of(request.user).pk == attestation.organisation_id
    else:
        allowed = attestations.is_engaged(
            auditor_id=_staff_id(request), organisation_id=attestation.organisation_id
        )
    if not allowed:
        raise Http404
    return _download(attestation)


# --- public verification ---


class VerifyForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("The attestation file"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )
    text = forms.CharField(
        label=gettext_lazy("Or paste its text"),
        required=False,
        max_length=attestations.MAX_FILE_BYTES,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        upload = cleaned.get("file")
        text = cleaned.get("text") or ""
        if upload is not None:
            if upload.size is not None and upload.size > attestations.MAX_FILE_BYTES:
                raise forms.ValidationError(
                    _("The file is larger than %(size)d KB: no attestation is that large.")
                    % {"size": attestations.MAX_FILE_BYTES // 1024}
                )
            cleaned["data"] = upload.read(attestations.MAX_FILE_BYTES + 1)
        elif text:
            cleaned["data"] = text.encode("utf-8")
        else:
            raise forms.ValidationError(_("Choose the attestation file, or paste its text."))
        return cleaned


def _too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    # Room for the form's other fields and the multipart boundaries around the file.
    return length > attestations.MAX_FILE_BYTES + 16 * 1024


def verification_budget() -> ratelimit.Budget:
    return ratelimit.Budget("verify-attestation", settings.ATTESTATION_VERIFICATIONS_PER_HOUR, 3600)


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        "public_key": attestations.public_key_base64(),
        "fingerprint": signing.fingerprint(),
        "max_kb": attestations.MAX_FILE_BYTES // 1024,
    }
    if request.method == "GET":
        context["form"] = VerifyForm()
        return render(request, "notary/verify.html", context)
    decision = ratelimit.spend(verification_budget(), client_address(request))
    if not decision:
        context["form"] = VerifyForm()
        context["refused"] = (
            _("Verification is not available at the moment. Please try again in a few minutes.")
            if decision.unavailable
            else _("Too many verifications from this connection. Please try again in an hour.")
        )
        response = render(request, "notary/verify.html", context, status=429)
        response["Retry-After"] = str(decision.retry_after)
        return response
    if _too_large(request):
        # The upload handler dropped a file this large unread: say so, rather than "choose a file".
        context["form"] = VerifyForm()
        context["refused"] = _("The file is larger than %(size)d KB: no attestation is that large.") % {
            "size": context["max_kb"]
        }
        return render(request, "notary/verify.html", context, status=413)
    form = VerifyForm(request.POST, request.FILES)
    context["form"] = form
    if form.is_valid():
        # The signature, and that our ledger still holds the head the statement rests on.
        verdict: Verdict = attestations.verify_against_ledger(form.cleaned_data["data"])
        context["verdict"] = verdict
        if verdict.statement is not None:
            context["statement"] = readable(verdict.statement)
    return render(request, "notary/verify.html", context)
