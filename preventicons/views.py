"""Platform pages: the public home page, the staff landing page and the staff's second-factor pages."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import PasswordChangeView
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.generic import FormView
from two_factor.plugins.phonenumber.views import PhoneSetupView
from two_factor.plugins.registry import MethodBase, registry
from two_factor.utils import default_device
from two_factor.views import LoginView, SetupView

from preventicons import devmailbox
from preventicons.gateways import STAFF_SMS_RESULT_ATTRIBUTE, StaffSmsOutcome, StaffSmsResult
from preventicons.roles import has_second_factor, roles_of, staff_required
from preventicons.staffauth import Verdict, locked_until, reauthenticate
from preventicons.staffforms import (
    LOCKED_MESSAGE,
    ReauthenticationForm,
    StaffBackupTokenForm,
    StaffTokenForm,
)
from preventicons.staffnav import navigation_for, pages_to_come


def home(request: HttpRequest) -> HttpResponse:
    # The development mailbox is linked only where it answers: with DEBUG on.
    return render(request, "preventicons/home.html", {"development_mailbox": settings.DEBUG})


@never_cache
def development_mailbox(request: HttpRequest) -> HttpResponse:
    """Development only: the messages of the development mailbox, whole. 404 whenever DEBUG is off."""
    # Checked here, at every request, not only when the URLconf is loaded: the page shows links and codes.
    if not settings.DEBUG or settings.PRODUCTION:
        raise Http404
    return render(
        request,
        "preventicons/dev_mailbox.html",
        {"messages_shown": devmailbox.read_mailbox(), "folder": devmailbox.mailbox_dir()},
    )


@staff_required()
def staff_home(request: HttpRequest) -> HttpResponse:
    """Each role's start page: what it may open, and which of its pages are still to come."""
    roles = sorted(roles_of(request.user))
    coming = pages_to_come(roles)
    context = {
        "roles": [role.label for role in roles],
        "links": navigation_for(roles),
        "organisation": getattr(request.user, "organisation", None),
        "coming": (
            _("Not available yet: %(pages)s. These pages appear here as soon as they are ready.")
            % {"pages": ", ".join(coming)}
            if coming
            else ""
        ),
    }
    return render(request, "preventicons/staff_home.html", context)


def _wait_text(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


def sms_notice(device: Any) -> str | None:
    """What a code page says about the text message it just asked for: the truth, or None (no phone).

    two-factor says "we sent you a text message" whatever its gateway did; ours leaves the outcome on the
    device (gateways.STAFF_SMS_RESULT_ATTRIBUTE), and only a code that went out is called sent.
    """
    if device is None or getattr(device, "method", None) != "sms":
        return None
    result: StaffSmsResult | None = getattr(device, STAFF_SMS_RESULT_ATTRIBUTE, None)
    if result is None:
        # No message on this request (a wrong code shown again, or django-otp's own throttle).
        return _("Enter the code from the text message.")
    if result.outcome is StaffSmsOutcome.SENT:
        return _("We sent you a text message with a code. Enter it below.")
    if result.outcome is StaffSmsOutcome.OVER_BUDGET:
        return _(
            "We did not send a text message: you asked for too many codes. Use your authenticator app or "
            "a backup code, or try again in %(wait)s."
        ) % {"wait": _wait_text(result.retry_after)}
    return _(
        "We could not send a text message just now. Use your authenticator app or a backup code, or try "
        "again in a few minutes."
    )


class StaffLoginView(LoginView):
    """two-factor's login wizard with codes that count once (preventicons/staffauth.py).

    Also answers a request for a later step (``challenge_device``, a code) that arrives before the password
    with the password form: two-factor itself looks up a token step that does not exist yet (a 500).
    """

    def get_prefix(self, request: HttpRequest, *args: Any, **kwargs: Any) -> str:
        # two-factor's own name for the wizard's fields (login_view-current_step), as its templates expect.
        return "login_view"

    def get_form_list(self) -> Any:
        form_list = super().get_form_list()
        if self.TOKEN_STEP in form_list:
            form_list[self.TOKEN_STEP] = StaffTokenForm
        if self.BACKUP_STEP in form_list:
            form_list[self.BACKUP_STEP] = StaffBackupTokenForm
        return form_list

    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        if "challenge_device" in self.request.POST and not self.get_user():
            # Typically a token page left open until the session ended: start again at the password.
            self.storage.reset()
            self.show_timeout_error = True
            return self.render_goto_step(self.FIRST_STEP)
        return super().post(*args, **kwargs)

    def get_context_data(self, form: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(form, **kwargs)
        if self.steps.current == self.TOKEN_STEP:
            context["sms_notice"] = sms_notice(self.get_device())
        return context

    def render(self, form: Any = None, **kwargs: Any) -> HttpResponse:
        if self.steps.current == self.TOKEN_STEP and locked_until(user=self.get_user()) is not None:
            # No text message for a locked account: it could not be used, and each one costs.
            form = form or self.get_form()
            if not form.is_bound or not form.errors:
                form.cleaned_data = getattr(form, "cleaned_data", {})
                form.add_error(None, LOCKED_MESSAGE)
            return super(LoginView, self).render(form, **kwargs)
        return super().render(form, **kwargs)


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


class StaffPhoneSetupView(PhoneSetupView):
    """two-factor's backup phone registration, with the device owned by the user from the first text message.

    two-factor builds the device without a user until the last step, so every registration's code counted
    against one shared budget (``staff-sms:None``): one admin could block everybody's registration. Here the
    budget is the user's own, and the page says whether the code really went out.
    """

    def get_device(self, **kwargs: Any) -> Any:
        kwargs.setdefault("user", self.request.user)
        return super().get_device(**kwargs)

    def render_next_step(self, form: Any, **kwargs: Any) -> HttpResponse:
        if self.steps.next == "validation":
            device = self.get_device()
            device.generate_challenge()
            self.sms_device = device
        # Past PhoneSetupView's own render_next_step, which would send a second message.
        return super(PhoneSetupView, self).render_next_step(form, **kwargs)

    def get_context_data(self, form: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(form, **kwargs)
        if self.steps.current == "validation":
            context["sms_notice"] = sms_notice(getattr(self, "sms_device", None) or self.get_device())
        return context


class ReauthenticateView(FormView):  # type: ignore[type-arg]
    """The password and a current code again; opens the credential pages for STAFF_REAUTH_SECONDS.

    Guarded by ``second_factor_required`` in the URLconf: only a fully logged-in session re-authenticates.
    """

    template_name = "two_factor/core/reauthenticate.html"
    form_class = ReauthenticationForm

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        device = default_device(request.user)
        if device is not None and device.is_interactive() and locked_until(user=request.user) is None:
            device.generate_challenge()  # a phone as the primary factor: send its code now
            self.sms_device = device
        return super().get(request, *args, **kwargs)

    def form_valid(self, form: Form) -> HttpResponse:
        device = default_device(self.request.user)
        if device is None:
            return redirect("two_factor:setup")
        verdict = reauthenticate(
            request=self.request,
            password=form.cleaned_data["password"],
            device=device,
            token=form.cleaned_data["otp_token"],
        )
        if verdict is Verdict.VERIFIED:
            return HttpResponseRedirect(self.next_url())
        form.add_error(
            None, LOCKED_MESSAGE if verdict is Verdict.LOCKED else ReauthenticationForm.wrong_message
        )
        return self.form_invalid(form)

    def next_url(self) -> str:
        wanted = self.request.POST.get("next") or self.request.GET.get("next") or ""
        if url_has_allowed_host_and_scheme(
            wanted, allowed_hosts={self.request.get_host()}, require_https=self.request.is_secure()
        ):
            return wanted
        return reverse("two_factor:profile")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "next": self.next_url(),
            "sms_notice": sms_notice(getattr(self, "sms_device", None)),
        }


class StaffPasswordChangeView(PasswordChangeView):
    """A staff member changes their own password (after re-authentication, see the URLconf)."""

    template_name = "two_factor/core/password_change.html"
    success_url = reverse_lazy("two_factor:profile")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "cancel_url": resolve_url("two_factor:profile")}
