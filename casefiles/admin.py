"""The platform admin reviews the access log (NEN 7513), reassigns dossiers and sets deputies here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from casefiles import assignment
from casefiles.models import AccessLogEntry, Deputy, Dossier
from participants import casemanagers
from participants.agreements import casemanager_has_signed_agreement
from participants.models import StaffUser
from preventicons.adminguard import ReadOnlyMixin, StrictLookupsMixin


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyMixin, StrictLookupsMixin, admin.ModelAdmin):
    """Nobody adds, changes or deletes an entry here: only casefiles.accesslog.record writes the log."""

    list_display = ("at", "action", "dossier_number", "staff_username", "client_address", "detail")
    # Exactly these: the strict lookups refuse every other URL parameter (preventicons/adminguard.py).
    list_filter = ("action", "at")
    # Exact matches only: every look at one dossier, or every act of one staff member (a complaint, an
    # audit). A prefix search would let the list answer "is there a dossier starting with ...".
    search_fields = ("=dossier_number", "=staff_username")
    fields = (
        "sequence",
        "at",
        "action",
        "dossier_number",
        "staff_user_id",
        "staff_username",
        "client_address",
        "detail",
        "chain",
    )
    readonly_fields = fields
    ordering = ("-sequence",)
    actions = None
    # The full count is one more query over a table that only grows.
    show_full_result_count = False


class ReassignForm(forms.ModelForm):
    """The one thing the admin changes on a dossier: who works on it (through assignment.reassign, logged)."""

    casemanager = forms.TypedChoiceField(label=_("Casemanager"), coerce=int, choices=[])

    class Meta:
        model = Dossier
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["casemanager"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = casemanagers.casemanager_choices()
        if self.instance.casemanager_id:
            field.initial = self.instance.casemanager_id

    def clean_casemanager(self) -> int:
        """Only a casemanager serving the dossier's organisation: refused on the form, nothing saved."""
        chosen: int = self.cleaned_data["casemanager"]
        organisation = self.instance.organisation_id
        if chosen != self.instance.casemanager_id and (
            organisation is None
            or not casemanagers.is_serving(casemanager_id=chosen, organisation_id=organisation)
        ):
            raise forms.ValidationError(_("This casemanager does not serve the dossier's organisation."))
        return chosen


class OpenFilter(admin.SimpleListFilter):
    """Open or closed dossiers. Both are sealed to the row, so the list is chosen in Python (one query over
    the dossiers, which are few), never by a filter in SQL."""

    title = _("status")
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("open")), ("0", _("closed"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() not in ("1", "0"):
            return queryset
        wanted = self.value() == "1"
        return queryset.filter(
            pk__in=[state.pk for state in Dossier.objects.states() if state.is_open == wanted]
        )


@admin.register(Dossier)
class DossierAdmin(StrictLookupsMixin, admin.ModelAdmin):
    """Dossiers by number, organisation and casemanager: nothing of the participant. The admin reassigns."""

    form = ReassignForm
    list_display = ("dossier_number", "organisation_id", "casemanager_name", "dossier_is_open", "opened_on")
    list_filter = (OpenFilter,)
    fields = ("casemanager",)
    actions = None
    show_full_result_count = False

    @admin.display(description=_("dossier number"))
    def dossier_number(self, obj: Dossier) -> str:
        return obj.number

    @admin.display(description=_("open"), boolean=True)
    def dossier_is_open(self, obj: Dossier) -> bool:
        return obj.is_open

    @admin.display(description=_("casemanager"))
    def casemanager_name(self, obj: Dossier) -> str:
        if obj.casemanager_id is None:
            return str(_("waiting for a casemanager"))
        return casemanagers.staff_display_names([obj.casemanager_id]).get(obj.casemanager_id, "-")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # only a help request opens a dossier

    def log_change(self, request: HttpRequest, obj: Dossier, message: Any) -> None:  # type: ignore[override]
        """Nothing in Django's admin log: it lives in the identity store, where a dossier's id and number do
        not belong (stores are not joined). The access log records the reassignment (assignment.reassign)."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # retention removes dossiers, by its rules

    def save_model(self, request: HttpRequest, obj: Dossier, form: Any, change: bool) -> None:
        chosen = form.cleaned_data["casemanager"]
        if chosen == obj.casemanager_id:
            return
        to = StaffUser.objects.get(pk=chosen)
        assert isinstance(request.user, StaffUser)
        # The form refused a casemanager who does not serve the organisation; reassign checks again.
        assignment.reassign(obj, to=to, by=request.user, request=request)


class DeputyForm(forms.ModelForm):
    casemanager_id = forms.TypedChoiceField(label=_("Casemanager who is away"), coerce=int, choices=[])
    deputy_id = forms.TypedChoiceField(label=_("Deputy"), coerce=int, choices=[])

    class Meta:
        model = Deputy
        fields = ["casemanager_id", "deputy_id", "starts_on", "ends_on"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = casemanagers.casemanager_choices()
        for name in ("casemanager_id", "deputy_id"):
            field = self.fields[name]
            assert isinstance(field, forms.TypedChoiceField)
            field.choices = choices

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("casemanager_id") is not None and cleaned.get("casemanager_id") == cleaned.get(
            "deputy_id"
        ):
            self.add_error("deputy_id", _("A deputy stands in for someone else."))
        if cleaned.get("starts_on") and cleaned.get("ends_on") and cleaned["ends_on"] < cleaned["starts_on"]:
            self.add_error("ends_on", _("The period ends before it starts."))
        deputy = cleaned.get("deputy_id")
        if deputy is not None and not casemanager_has_signed_agreement(StaffUser.objects.get(pk=deputy)):
            self.add_error("deputy_id", _("No signed processing agreement is recorded for this casemanager."))
        return cleaned


@admin.register(Deputy)
class DeputyAdmin(StrictLookupsMixin, admin.ModelAdmin):
    """Who stands in for whom, and when. Each deputy's look is logged as such (the access log)."""

    form = DeputyForm
    list_display = ("absent", "deputy", "starts_on", "ends_on")
    list_filter = ("starts_on",)
    actions = None

    @admin.display(description=_("Casemanager who is away"))
    def absent(self, obj: Deputy) -> str:
        return casemanagers.staff_display_names([obj.casemanager_id]).get(obj.casemanager_id, "-")

    @admin.display(description=_("Deputy"))
    def deputy(self, obj: Deputy) -> str:
        return casemanagers.staff_display_names([obj.deputy_id]).get(obj.deputy_id, "-")
