"""Staff roles as Django groups, and the guards every staff view uses."""

from __future__ import annotations

import enum
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class Role(enum.StrEnum):
    CASEMANAGER = "casemanager"
    EMPLOYER = "employer"
    AUDITOR = "auditor"
    ADMIN = "admin"


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


def is_verified_staff(user: Any) -> bool:
    """Logged in with a password and a second factor (django-otp's verification)."""
    return bool(getattr(user, "is_authenticated", False) and user.is_verified() and roles_of(user))


def staff_required(*allowed: Role) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Require a two-factor login and one of the roles; with no roles given, any staff role."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user.is_verified():  # type: ignore[union-attr]
                # Password alone is never enough for a staff page: finish (or set up) two-factor first.
                return redirect_to_login(request.get_full_path())
            mine = roles_of(user)
            if not mine or (allowed and not mine.intersection(allowed)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
