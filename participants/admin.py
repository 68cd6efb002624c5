"""The Django admin for platform admins: organisations, agreements, staff, and participants as bare rows.

No page here shows decrypted personal data: a participant is an id, an organisation, a department and a
status; the sealed fields and the blind indexes are left out of every list, form and filter. Admin access
itself is granted by the admin role (preventicons/roles.py: PlatformAdminSite).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.filters import BooleanFieldListFilter, RelatedFieldListFilter
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from two_factor.plugins.phonenumber.models import PhoneDevice

from participants.agreements import MAX_SIGNER_LENGTH, AgreementMissing, record_agreement
from participants.casemanagers import (
    active_casemanagers,
    check_linkable,
    link_casemanager,
    unlink_casemanager,
)
from participants.models import (
    CasemanagerLink,
    Department,
    Organisation,
    Participant,
    ProcessingAgreement,
    StaffUser,
)
from preventicons.adminguard import ReadOnlyMixin, StrictLookupsMixin
from preventicons.roles import Role, check_role_assignment, reauthentication_required, role_label
from preventicons.staffauth import release_lock

logger = logging.getLogger(__name__)

# Roles are the groups made by a migration; renaming one, or giving it permissions, would change what the
# role guards mean. Staff get their roles on their own account page.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


class DepartmentInline(admin.TabularInline):
    model = Department
    extra = 1
    fields = ("name",)


@admin.register(Organisation)
class OrganisationAdmin(StrictLookupsMixin, admin.ModelAdmin):
    list_display = ("name", "sector", "sbi_code", "arbo_provider", "contract_start", "contract_end")
    search_fields = ("name",)
    list_filter = ("sector",)
    inlines = (DepartmentInline,)


@admin.register(Department)
class DepartmentAdmin(StrictLookupsMixin, admin.ModelAdmin):
    list_display = ("name", "organisation")
    list_filter = ("organisation",)
    search_fields = ("name", "organisation__name")
    list_select_related = ("organisation",)


class AgreementForm(forms.ModelForm):
    """Records one signed agreement; the signer's name goes in sealed and the document only as its hash."""

    signed_by = forms.CharField(
        label=_("signed by"),
        max_length=MAX_SIGNER_LENGTH,
        help_text=_("Stored encrypted and not shown again."),
    )
    document = forms.FileField(
        label=_("signed document"),
        help_text=_("Only its SHA-256 is kept; the document itself is not stored."),
    )

    class Meta:
        model = ProcessingAgreement
        fields = ("organisation", "casemanager", "signed_on")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if (cleaned.get("organisation") is None) == (cleaned.get("casemanager") is None):
            self.add_error(None, _("Choose either an organisation or a casemanager."))
        signed_on = cleaned.get("signed_on")
        if isinstance(signed_on, dt.date) and signed_on > timezone.localdate():
            self.add_error("signed_on", _("An agreement cannot be signed on a date in the future."))
        return cleaned


@admin.register(ProcessingAgreement)
class ProcessingAgreementAdmin(StrictLookupsMixin, admin.ModelAdmin):
    """Agreements are recorded once and never edited or deleted; the sealed signer is never displayed."""

    form = AgreementForm
    add_fields = ("organisation", "casemanager", "signed_on", "signed_by", "document")
    view_fields = ("party", "organisation", "casemanager", "signed_on", "document_sha256", "recorded_at")
    list_display = ("party", "organisation", "casemanager", "signed_on", "recorded_at")
    list_filter = ("party",)
    list_select_related = ("organisation", "casemanager")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.view_fields if obj is not None else self.add_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.view_fields if obj is not None else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "casemanager":
            kwargs["queryset"] = StaffUser.objects.filter(groups__name=Role.CASEMANAGER.value)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        # Through the one operation that records agreements, so its rules hold here too.
        return record_agreement(
            organisation=form.cleaned_data["organisation"],
            casemanager=form.cleaned_data["casemanager"],
            signed_on=form.cleaned_data["signed_on"],
            signer=form.cleaned_data["signed_by"],
            document=_document_bytes(form.cleaned_data["document"]),
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Nothing left to save: save_form recorded the agreement."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """An agreement has no related rows to save."""


def _document_bytes(upload: Any) -> bytes:
    return b"".join(upload.chunks())


class CasemanagerLinkForm(forms.ModelForm):
    """Links a casemanager to an organisation; refuses one without the role or a recorded agreement."""

    class Meta:
        model = CasemanagerLink
        fields = ("organisation", "casemanager")

    def clean_casemanager(self) -> StaffUser | None:
        casemanager: StaffUser | None = self.cleaned_data.get("casemanager")
        if casemanager is None:
            return None
        try:
            check_linkable(casemanager)
        except AgreementMissing as missing:
            raise forms.ValidationError(
                _(
                    "No signed processing agreement is recorded for this casemanager. Record their agreement "
                    "under processing agreements first: a casemanager without one gets no dossiers."
                ),
                code="agreement_missing",
            ) from missing
        return casemanager


@admin.register(CasemanagerLink)
class CasemanagerLinkAdmin(StrictLookupsMixin, admin.ModelAdmin):
    """Which casemanagers serve which organisation: added and removed, never edited (a link is two ids)."""

    form = CasemanagerLinkForm
    add_fields = ("organisation", "casemanager")
    view_fields = ("organisation", "casemanager", "linked_on")
    list_display = view_fields
    list_filter = ("organisation",)
    search_fields = ("casemanager__username", "organisation__name")
    list_select_related = ("organisation", "casemanager")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.view_fields if obj is not None else self.add_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.view_fields if obj is not None else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "casemanager":
            kwargs["queryset"] = active_casemanagers()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        # Through the one operation that links casemanagers, so its rules hold here too.
        return link_casemanager(
            organisation=form.cleaned_data["organisation"], casemanager=form.cleaned_data["casemanager"]
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Nothing left to save: save_form made the link."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """A link has no related rows to save."""

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        unlink_casemanager(organisation=obj.organisation, casemanager=obj.casemanager)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for link in queryset.select_related("organisation", "casemanager"):
            unlink_casemanager(organisation=link.organisation, casemanager=link.casemanager)


class StaffRolesForm(forms.ModelForm):
    """Refuses a combination of roles and organisation that one staff account must not hold."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        groups = cleaned.get("groups")
        if groups is None:
            return cleaned
        roles = {Role(group.name) for group in groups if group.name in Role._value2member_map_}
        if cleaned.get("is_superuser", self.instance.is_superuser):
            roles.add(Role.ADMIN)
        organisation = cleaned.get("organisation", self.instance.organisation)
        check_role_assignment(roles=roles, has_organisation=organisation is not None)
        return cleaned


class StaffUserChangeForm(StaffRolesForm, UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = StaffUser


class StaffUserCreationForm(StaffRolesForm, AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = StaffUser


class RoleChoiceField(forms.ModelMultipleChoiceField):
    """The role groups by their Dutch names; the groups keep the names the code checks (roles.py)."""

    def label_from_instance(self, obj: Group) -> str:
        return role_label(obj.name)


class RoleListFilter(RelatedFieldListFilter):
    """The list filter on roles, named as the roles are read, not as their groups are stored."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = str(_("role"))

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        choices = super().field_choices(field, request, model_admin)
        return [(pk, role_label(str(name))) for pk, name in choices]


@admin.register(StaffUser)
class StaffUserAdmin(StrictLookupsMixin, UserAdmin):
    """Staff accounts. Roles are groups; ``is_staff`` and per-user permissions play no part and are hidden."""

    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Role and scope"), {"fields": ("is_active", "groups", "organisation", "is_superuser")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "usable_password", "password1", "password2", "groups", "organisation"),
            },
        ),
    )
    readonly_fields = ("last_login", "date_joined")
    list_display = ("username", "organisation", "role_names", "is_active", "last_login")
    list_filter = (("groups", RoleListFilter), "organisation", "is_active")
    list_select_related = ("organisation",)
    filter_horizontal = ("groups",)

    actions = ("release_second_factor_lock",)

    @admin.display(description=_("roles"))
    def role_names(self, obj: StaffUser) -> str:
        return ", ".join(sorted(role_label(group.name) for group in obj.groups.all()))

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "groups":
            kwargs.update(form_class=RoleChoiceField, label=_("roles"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.action(description=_("Release the lock after too many wrong codes"))
    def release_second_factor_lock(self, request: HttpRequest, queryset: QuerySet[StaffUser]) -> None:
        for user in queryset:
            release_lock(user=user, released_by=request.user)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        """Another staff member's password: after the admin's own fresh re-authentication, and logged.

        Setting a password does not make the admin that person: the target's second factor stays as it
        was, so the new password alone logs nobody in. Lost-device recovery (deleting a device) is the
        other half and is logged as well; both lines carry the admin's and the target's ids, no names.
        """
        view = reauthentication_required(super().user_change_password)
        response = cast(HttpResponse, view(request, id, form_url))
        if (
            request.method == "POST"
            and response.status_code == 302
            and "reauthenticate" not in response.get("Location", "")
        ):
            logger.warning("staff user %s set the password of staff user %s", request.user.pk, id)
        return response

    def get_queryset(self, request: HttpRequest) -> QuerySet[StaffUser]:
        return super().get_queryset(request).prefetch_related("groups")


# Never shown: what the participant is (name, contact data), and what would link them (pseudonym, indexes).
# Nor whether they declined, paused or stopped (status, messages_paused): sealed, and personal.
PARTICIPANT_SEALED_FIELDS = (
    "name",
    "email",
    "mobile",
    "pseudonym",
    "email_index",
    "mobile_index",
    "listed_email_hash",
    "listed_mobile_hash",
    "status",
    "messages_paused",
)
PARTICIPANT_SHOWN_FIELDS = ("id", "organisation", "department", "is_listed")


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyMixin, StrictLookupsMixin, admin.ModelAdmin):
    """Participants as bare rows, to look at only: changes go through the participant's own verified flows."""

    fields = PARTICIPANT_SHOWN_FIELDS
    readonly_fields = PARTICIPANT_SHOWN_FIELDS
    exclude = PARTICIPANT_SEALED_FIELDS
    list_display = PARTICIPANT_SHOWN_FIELDS
    list_filter = ("organisation", "is_listed")
    list_select_related = ("organisation", "department")
    ordering = ("organisation", "department")
    actions = None


class ConfirmedListFilter(BooleanFieldListFilter):
    """django-otp's ``confirmed`` filter under a Dutch title."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = str(_("confirmed"))


class SecondFactorDeviceAdmin(StrictLookupsMixin, admin.ModelAdmin):
    """Staff second-factor devices: to look at and to delete (a lost phone), never to make or to read.

    An admin who could add a device, or read a key or backup code, could log in as that staff member.
    """

    # Methods, not the field names: django-otp's fields carry no translatable verbose names, and the
    # admin's column headers and labels are Dutch like the rest.
    fields = ("staff_user", "device_name", "is_confirmed")
    readonly_fields = fields
    list_display = fields
    list_filter = (("confirmed", ConfirmedListFilter),)
    search_fields = ("user__username",)
    list_select_related = ("user",)

    @admin.display(description=_("staff user"), ordering="user__username")
    def staff_user(self, obj: Any) -> Any:
        return obj.user

    @admin.display(description=_("name"), ordering="name")
    def device_name(self, obj: Any) -> str:
        return str(obj.name)

    @admin.display(description=_("confirmed"), boolean=True, ordering="confirmed")
    def is_confirmed(self, obj: Any) -> bool:
        return bool(obj.confirmed)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        # Lost-device recovery: an admin act, on the record with both ids (no names, no number, no key).
        logger.warning(
            "staff user %s removed %s %s of staff user %s",
            request.user.pk,
            obj._meta.model_name,
            obj.pk,
            obj.user_id,
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for device in queryset:
            logger.warning(
                "staff user %s removed %s %s of staff user %s",
                request.user.pk,
                device._meta.model_name,
                device.pk,
                device.user_id,
            )
        super().delete_queryset(request, queryset)


DEVICE_MODELS: tuple[type[Model], ...] = (TOTPDevice, StaticDevice, PhoneDevice)
for _device_model in DEVICE_MODELS:
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)
    admin.site.register(_device_model, SecondFactorDeviceAdmin)
