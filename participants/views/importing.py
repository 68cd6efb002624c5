"""The address-list upload: an employer for their own organisation, a platform admin for any.

Two steps: the upload is checked and previewed (participants/listpreview.py), and only the employer's
confirmation imports it. The file is read in memory only (settings: FILE_UPLOAD_HANDLERS) and never stored
on the server: the preview page hands it back to the browser, compressed, in the confirmation form, and the
session keeps only its SHA-256, so the confirmation imports exactly the list that was previewed, once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import zlib
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from participants.agreements import AgreementMissing
from participants.importing import (
    AddressListInvalid,
    check_address_list,
    file_too_large_error,
    import_address_list,
    max_file_bytes,
)
from participants.listpreview import preview_import
from participants.models import Organisation
from preventicons import ratelimit
from preventicons.roles import Role, has_role, organisation_of, staff_required

SESSION_RESULT = "address_list_import_result"
# The previewed list awaiting confirmation: its SHA-256, organisation and completeness; never its rows.
SESSION_PENDING = "address_list_import_pending"
CONFIRM = "confirm"


class AddressListForm(forms.Form):
    organisation = forms.ModelChoiceField(
        queryset=Organisation.objects.all(),
        label=gettext_lazy("Organisation"),
        empty_label=gettext_lazy("Choose an organisation"),
    )
    address_list = forms.FileField(
        label=gettext_lazy("Address list (CSV file)"),
        help_text=gettext_lazy(
            "A CSV file saved from your spreadsheet, with a header line and the columns naam, e-mail, "
            "mobiel and afdeling (or name, email, mobile and department), in any order."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    full_list = forms.BooleanField(
        required=False,
        label=gettext_lazy("This is our complete list of employees"),
        help_text=gettext_lazy(
            "People who were on an earlier list but are not on this one will then receive no more messages."
        ),
    )

    def __init__(self, *args: Any, choose_organisation: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not choose_organisation:
            del self.fields["organisation"]


def _send_invitations_url() -> str | None:
    # The send action belongs to enrolment; this page only points at it when it exists.
    try:
        return reverse("participants:send-invitations")
    except NoReverseMatch:
        return None


def _too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > settings.FILE_UPLOAD_MAX_MEMORY_SIZE


@never_cache
@require_http_methods(["GET", "POST"])
@staff_required(Role.EMPLOYER, Role.ADMIN)
def import_addresses(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    is_admin = has_role(user, Role.ADMIN)
    own = None if is_admin else organisation_of(user)
    context: dict[str, Any] = {
        "is_admin": is_admin,
        "own_organisation": own,
        "send_invitations_url": _send_invitations_url(),
        "max_mb": max_file_bytes() // (1024 * 1024),
    }
    if request.method == "GET":
        context["form"] = AddressListForm(choose_organisation=is_admin)
        context["result"] = request.session.pop(SESSION_RESULT, None)
        return render(request, "participants/import.html", context)

    if _too_large(request):
        # The in-memory handler dropped the file while reading it (nothing was stored): say why.
        form = AddressListForm(choose_organisation=is_admin)
        context.update(form=form, errors=[file_too_large_error()])
        return render(request, "participants/import.html", context)

    if request.POST.get("step") == CONFIRM:
        return _confirm(request, context, own=own, is_admin=is_admin)

    form = AddressListForm(request.POST, request.FILES, choose_organisation=is_admin)
    if own is not None and request.POST.get("organisation", "") not in ("", str(own.pk)):
        # An employer naming another organisation is refused outright, not quietly sent to their own.
        raise PermissionDenied
    context["form"] = form
    if not form.is_valid():
        return render(request, "participants/import.html", context)
    organisation: Organisation = own if own is not None else form.cleaned_data["organisation"]
    upload = form.cleaned_data["address_list"]
    if not isinstance(upload, InMemoryUploadedFile):
        raise ImproperlyConfigured("address lists must be read in memory only: see FILE_UPLOAD_HANDLERS")
    data = upload.read()
    upload.close()
    full_list = bool(form.cleaned_data["full_list"])
    try:
        rows = check_address_list(organisation=organisation, data=data, full_list=full_list, by=user)
    except AgreementMissing as missing:
        context["agreement_missing"] = str(missing)
        return render(request, "participants/import.html", context)
    except AddressListInvalid as invalid:
        context["errors"] = invalid.errors
        return render(request, "participants/import.html", context)
    request.session[SESSION_PENDING] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "organisation": organisation.pk,
        "full_list": full_list,
        "claim": secrets.token_urlsafe(16),
    }
    context.update(
        preview=preview_import(organisation=organisation, rows=rows, full_list=full_list),
        preview_organisation=organisation,
        full_list=full_list,
        payload=base64.b64encode(zlib.compress(data, 9)).decode("ascii"),
        form=AddressListForm(choose_organisation=is_admin),
    )
    return render(request, "participants/import.html", context)


def _payload(request: HttpRequest) -> bytes | None:
    try:
        compressed = base64.b64decode(request.POST.get("payload", ""), validate=True)
        decompressor = zlib.decompressobj()
        # Never more than the upload limit, whatever a forged payload would inflate to.
        data = decompressor.decompress(compressed, max_file_bytes() + 1)
    except (binascii.Error, zlib.error):
        return None
    if len(data) > max_file_bytes() or decompressor.unconsumed_tail:
        return None
    return data


def _claim(pending: dict[str, Any]) -> bool:
    """Whether this confirmation is the one that uses the preview up.

    The session alone cannot say so: two confirmations fired at once both read it before either saves it. A
    budget of one event for the preview's random claim lets exactly one through (the limiter counts
    atomically); with the cache away, none (it fails closed).
    """
    claim = pending.get("claim")
    if not isinstance(claim, str) or not claim:
        return False
    once = ratelimit.Budget("import-confirm", 1, settings.SESSION_COOKIE_AGE, count_refused=True)
    return bool(ratelimit.spend(once, claim))


def _confirm(
    request: HttpRequest, context: dict[str, Any], *, own: Organisation | None, is_admin: bool
) -> HttpResponse:
    """Import the previewed list: only the very list the session previewed, for its organisation, once."""
    user: Any = request.user
    pending = request.session.get(SESSION_PENDING)
    data = _payload(request)
    context["form"] = AddressListForm(choose_organisation=is_admin)
    if (
        not isinstance(pending, dict)
        or data is None
        or hashlib.sha256(data).hexdigest() != pending.get("sha256")
        or (own is not None and pending.get("organisation") != own.pk)
        or not _claim(pending)
    ):
        # A second click on "Import", a preview from another tab, or a changed payload: nothing is imported.
        context["stale"] = gettext(
            "This preview has already been used or has expired. Nothing was imported by this click; "
            "upload the list again to see what it changes."
        )
        return render(request, "participants/import.html", context)
    organisation = Organisation.objects.filter(pk=pending["organisation"]).first()
    if organisation is None:
        raise PermissionDenied
    full_list = bool(pending["full_list"])
    del request.session[SESSION_PENDING]
    try:
        result = import_address_list(organisation=organisation, data=data, full_list=full_list, by=user)
    except AgreementMissing as missing:
        context["agreement_missing"] = str(missing)
        return render(request, "participants/import.html", context)
    except AddressListInvalid as invalid:
        # The people on the list changed between preview and confirmation (another import, an enrolment).
        context["errors"] = invalid.errors
        return render(request, "participants/import.html", context)
    rows = result.created + result.updated + result.unchanged
    summary: dict[str, Any] = {"rows": rows, "full_list": full_list}
    if is_admin:
        summary.update(
            organisation=organisation.pk,
            organisation_name=organisation.name,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            unlisted=result.unlisted,
            relisted=result.relisted,
        )
    # An employer sees only how many rows were read, which they know already. How many participants were
    # created, updated, unlisted or relisted would tell them who stopped or enrolled (an enrolled person's
    # name is no longer the list's to change); the preview's counts compared lists, not people.
    request.session[SESSION_RESULT] = summary
    return redirect("participants:import")
