"""The address-list upload: an employer for their own organisation, a platform admin for any.

The file is read in memory only (settings: FILE_UPLOAD_HANDLERS) and never stored; the page shows what
was wrong with it line by line, or what the import did.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from participants.agreements import AgreementMissing
from participants.importing import (
    AddressListInvalid,
    file_too_large_error,
    import_address_list,
    max_file_bytes,
)
from participants.models import Organisation
from preventicons.roles import Role, has_role, organisation_of, staff_required

SESSION_RESULT = "address_list_import_result"


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
    try:
        result = import_address_list(
            organisation=organisation, data=data, full_list=form.cleaned_data["full_list"], by=user
        )
    except AgreementMissing as missing:
        context["agreement_missing"] = str(missing)
        return render(request, "participants/import.html", context)
    except AddressListInvalid as invalid:
        context["errors"] = invalid.errors
        return render(request, "participants/import.html", context)
    rows = result.created + result.updated + result.unchanged
    summary: dict[str, Any] = {"rows": rows, "full_list": form.cleaned_data["full_list"]}
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
    # An employer sees only how many rows were read, which they know already. How many were new, unlisted
    # or relisted would tell them who stopped taking part: a stopped participant is never matched again, so
    # an unchanged list re-imported would show one "new" person and one fewer "no longer listed".
    request.session[SESSION_RESULT] = summary
    return redirect("participants:import")
