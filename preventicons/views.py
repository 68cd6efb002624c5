"""Platform pages: the public home page, the staff landing page and the staff's two-factor set-up."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from two_factor.plugins.registry import MethodBase, registry
from two_factor.utils import default_device
from two_factor.views import SetupView

from preventicons.roles import has_second_factor, roles_of, staff_required


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "preventicons/home.html")


@staff_required()
def staff_home(request: HttpRequest) -> HttpResponse:
    roles = sorted(roles_of(request.user))
    return render(request, "preventicons/staff_home.html", {"roles": [role.label for role in roles]})


class StaffSetupView(SetupView):
    """two-factor's set-up wizard, for an account without a second factor only, and with a TOTP app.

    two-factor's own view checks for an existing device on GET only: a password-only session could POST
    its way through the wizard, add a device of its own and come out verified. Here an account that has a
    second factor never enters the wizard; losing it means a platform admin deletes the device.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and default_device(request.user) is not None:
            if has_second_factor(request.user):
                return redirect("two_factor:profile")
            return redirect("two_factor:login")
        return super().dispatch(request, *args, **kwargs)

    def get_available_methods(self) -> list[MethodBase]:
        # An authenticator app first; text messages are a fall-back (a backup phone), never the only factor.
        return [method for method in registry.get_methods() if method.code == "generator"]
