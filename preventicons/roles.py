"""Staff roles as Django groups, and the guards every staff page (the Django admin included) uses.

A staff page needs a password and a second factor. Employer staff are scoped to their organisation;
casemanagers and auditors have none (they are scoped by assigned dossiers and attestations). Admin access
follows the ``admin`` role (or ``is_superuser``), never Django's ``is_staff`` flag.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from functools import update_wrapper, wraps
from typing import TYPE_CHECKING, Any

from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from two_factor.admin import AdminSiteOTPRequired
from two_factor.utils import default_device

if TYPE_CHECKING:
    # Only for the annotations: preventicons stands beneath the apps and imports none of them.
    from participants.models import Organisation


class Role(enum.StrEnum):
    CASEMANAGER = "casemanager"
    EMPLOYER = "employer"
    AUDITOR = "auditor"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return str(ROLE_LABELS[self])


ROLE_LABELS = {
    Role.CASEMANAGER: _("ARBO casemanager"),
    Role.EMPLOYER: _("employer (HR)"),
    Role.AUDITOR: _("auditor (Anoniem Garant)"),
    Role.ADMIN: _("platform administrator"),
}


def role_label(group_name: str) -> str:
    """A role group's name as people read it (translated); an unknown group keeps its own name."""
    role = Role._value2member_map_.get(group_name)
    return role.label if isinstance(role, Role) else group_name


def roles_of(user: Any) -> set[Role]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    names = set(user.groups.values_list("name", flat=True))
    found = {role for role in Role if role.value in names}
    if user.is_superuser:
        found.add(Role.ADMIN)
    return found


def has_role(user: Any, role: Role) -> bool:
    return role in roles_of(user)


def has_second_factor(user: Any) -> bool:
    """Logged in with a password and, in this session, a second factor (django-otp's verification)."""
    return bool(getattr(user, "is_authenticated", False) and user.is_verified())


def is_verified_staff(user: Any) -> bool:
    """Logged in with a password and a second factor, and holding a staff role."""
    return has_second_factor(user) and bool(roles_of(user))


def check_role_assignment(*, roles: Collection[Role], has_organisation: bool) -> None:
    """Raise ValidationError unless these roles and organisation fit one staff account.

    An employer belongs to exactly one organisation and holds no other role: HR staff that could also open
    dossiers or attestations would see per person what the employer must only see in aggregate.
    """
    errors: list[ValidationError] = []
    if Role.EMPLOYER in roles:
        if not has_organisation:
            errors.append(ValidationError(_("Employer staff must belong to an organisation.")))
        if len(set(roles)) > 1:
            errors.append(ValidationError(_("The employer role cannot be combined with another role.")))
    elif has_organisation:
        errors.append(ValidationError(_("Only employer staff belong to an organisation.")))
    if errors:
        raise ValidationError(errors)


def organisation_of(user: Any) -> Organisation:
    """The one organisation whose pages this employer may see; PermissionDenied for anyone else."""
    if not has_role(user, Role.EMPLOYER) or user.organisation_id is None:
        raise PermissionDenied
    organisation: Organisation = user.organisation
    return organisation


def check_organisation_access(user: Any, organisation: Organisation) -> None:
    """Return only for a platform admin or for employer staff of this very organisation."""
    if has_role(user, Role.ADMIN):
        return
    if organisation_of(user).pk != organisation.pk:
        raise PermissionDenied


def refuse_without_second_factor(request: HttpRequest) -> HttpResponse | None:
    """A redirect for a visitor who has not passed both factors, or None when they have.

    Without a login: to the login page. With a password only: to the set-up of a second factor when the
    account has none yet, otherwise back to the login to enter the code.
    """
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if has_second_factor(user):
        return None
    if default_device(user) is None:
        return redirect("two_factor:setup")
    return redirect_to_login(request.get_full_path())


def second_factor_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Let through only a session that passed the password and the second factor."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        refusal = refuse_without_second_factor(request)
        if refusal is not None:
            return refusal
        return view(request, *args, **kwargs)

    return wrapped


def reauthentication_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Both factors, and the password and a current code again within STAFF_REAUTH_SECONDS.

    For the pages that change how an account logs in (a phone added or removed, backup codes shown or
    renewed, a password changed): a session left open, or stolen, must not re-arm itself on its own.
    """
    from preventicons.staffauth import is_freshly_reauthenticated

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        refusal = refuse_without_second_factor(request)
        if refusal is not None:
            return refusal
        if not is_freshly_reauthenticated(request=request):
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('two_factor:reauth')}?{query}")
        return view(request, *args, **kwargs)

    return wrapped


def staff_required(*allowed: Role) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Require a two-factor login and one of the roles; with no roles given, any staff role."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refusal = refuse_without_second_factor(request)
            if refusal is not None:
                return refusal
            mine = roles_of(request.user)
            if not mine or (allowed and not mine.intersection(allowed)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class PlatformAdminSite(AdminSiteOTPRequired):
    """The Django admin, for platform admins with both factors only; other staff get 403, not a login form."""

    site_header = _("Preventicons administration")
    site_title = _("Preventicons administration")

    def has_permission(self, request: HttpRequest) -> bool:
        return has_second_factor(request.user) and has_role(request.user, Role.ADMIN)

    def admin_view(self, view: Callable[..., Any], cacheable: bool = False) -> Callable[..., Any]:
        inner = super().admin_view(view, cacheable)

        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refusal = refuse_without_second_factor(request)
            if refusal is not None:
                return refusal
            if not has_role(request.user, Role.ADMIN):
                raise PermissionDenied
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, inner)

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        super().register(model_or_iterable, admin_class, **options)
        self.make_registry_strict()

    def make_registry_strict(self) -> None:
        """Every registered ModelAdmin answers only its declared filters (preventicons/adminguard.py)."""
        from preventicons.adminguard import make_strict

        for model_admin in self._registry.values():
            make_strict(model_admin)

    def get_urls(self) -> Any:
        # The URLconf asks for these once, after every app registered its admins (django-otp's and
        # two-factor's too, on the plain site before this class was swapped in): harden them all here.
        self.make_registry_strict()
        return super().get_urls()

    def password_change(self, request: HttpRequest, extra_context: Any = None) -> HttpResponseBase:
        """The admin's own password: after a fresh password-and-code check, like every staff member's."""
        view = reauthentication_required(super().password_change)
        return view(request, extra_context)

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if has_second_factor(request.user):
            if not has_role(request.user, Role.ADMIN):
                raise PermissionDenied
            return redirect("admin:index")
        return super().login(request, extra_context)


class PlatformAdminPermissions(BaseBackend):
    """Platform admins hold every model permission, as a superuser does; nobody else gets any from here.

    What the admin shows is limited by the ModelAdmins, which never display decrypted personal data.
    """

    cache_attribute = "_preventicons_platform_admin"

    def is_platform_admin(self, user_obj: Any) -> bool:
        # The admin asks for each permission of each model on every page: one query per user object.
        if not hasattr(user_obj, self.cache_attribute):
            setattr(user_obj, self.cache_attribute, has_role(user_obj, Role.ADMIN))
        return bool(getattr(user_obj, self.cache_attribute))

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return self.is_platform_admin(user_obj)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return self.is_platform_admin(user_obj)
