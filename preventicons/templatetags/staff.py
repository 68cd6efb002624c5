"""The staff navigation for the page's visitor (templates/staff_base.html)."""

from __future__ import annotations

from typing import Any

from django import template

from preventicons.roles import is_verified_staff, roles_of
from preventicons.staffnav import NavLink, navigation_for

register = template.Library()


@register.simple_tag(takes_context=True)
def staff_navigation(context: Any) -> list[NavLink]:
    """The links the logged-in staff member may open; none before both factors (the login pages)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not is_verified_staff(user):
        return []
    return navigation_for(roles_of(user))
