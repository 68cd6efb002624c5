"""The platform admin records which auditor each organisation engaged (Anoniem Garant's scope)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notary.models import Engagement
from participants import auditors
from preventicons.adminguard import StrictLookupsMixin


class EngagementForm(forms.ModelForm):
    """An auditor (active staff with the auditor role) for an organisation: two ids, chosen by name."""

    organisation_id = forms.TypedChoiceField(label=_("Organisation"), coerce=int, choices=[])
    auditor_id = forms.TypedChoiceField(label=_("Auditor"), coerce=int, choices=[])

    class Meta:
        model = Engagement
        fields = ["organisation_id", "auditor_id", "engaged_on"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, choices in (
            ("organisation_id", auditors.organisation_choices()),
            ("auditor_id", auditors.auditor_choices()),
        ):
            field = self.fields[name]
            assert isinstance(field, forms.TypedChoiceField)
            field.choices = [("", "---------"), *choices]
        self.fields["engaged_on"].initial = timezone.localdate

    def clean_auditor_id(self) -> int:
        # Asked again, not only read from the choices: the role may have been taken away since the form
        # was shown, and an engagement opens an organisation's trajectories to whoever it names.
        chosen: int = self.cleaned_data["auditor_id"]
        if not auditors.is_auditor(chosen):
            raise forms.ValidationError(_("Only an active staff user with the auditor role can be engaged."))
        return chosen

    def clean_organisation_id(self) -> int:
        chosen: int = self.cleaned_data["organisation_id"]
        if chosen not in auditors.organisation_names([chosen]):
            raise forms.ValidationError(_("This organisation does not exist."))
        return chosen


@admin.register(Engagement)
class EngagementAdmin(StrictLookupsMixin, admin.ModelAdmin):
    """Engagements are added and removed, never edited: a different auditor is a new engagement."""

    form = EngagementForm
    add_fields = ("organisation_id", "auditor_id", "engaged_on")
    view_fields = ("organisation", "auditor", "engaged_on")
    list_display = view_fields
    list_filter = ("engaged_on",)
    actions = None

    @admin.display(description=_("organisation"))
    def organisation(self, obj: Engagement) -> str:
        return auditors.organisation_names([obj.organisation_id]).get(obj.organisation_id, "-")

    @admin.display(description=_("auditor"))
    def auditor(self, obj: Engagement) -> str:
        return auditors.usernames([obj.auditor_id]).get(obj.auditor_id, "-")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.view_fields if obj is not None else self.add_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.view_fields if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
