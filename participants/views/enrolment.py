"""Enrolment pages: the invitation link, consent, details, both codes, declining; and the staff send button.

The token is looked up once and then left behind: the invitation's id goes into the session and the browser
is redirected to a token-free address, so the token does not stay in the address bar, the history or a
screenshot. Every later page works from the session.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from phonenumber_field.formfields import PhoneNumberField

from participants import enrolment, verification
from participants.agreements import AgreementMissing
from participants.models import Invitation, Organisation, Participant
from participants.session import current_participant, start_participant_session
from preventicons.clients import client_address
from preventicons.crypto import keyed_hash
from preventicons.roles import Role, has_role, staff_required

if TYPE_CHECKING:  # types only: django-stubs is a development dependency
    from django_stubs_ext import StrOrPromise

SESSION_INVITATION = "enrol_invitation"
LOOKUP_WINDOW_SECONDS = 60
ENROL = enrolment.ENROL


# --- rate limit on token lookups ---------------------------------------------------------------


def _lookup_key(request: HttpRequest) -> str:
    # Keyed, so the cache holds no client address; the window is a fixed minute.
    client = keyed_hash("blind_index", "client-address", client_address(request))
    return f"enrol:lookup-misses:{client}"


def _lookups_blocked(request: HttpRequest) -> bool:
    misses = cache.get(_lookup_key(request), 0)
    return int(misses) >= settings.INVITATION_LOOKUP_MISSES_PER_MINUTE


def _count_miss(request: HttpRequest) -> None:
    key = _lookup_key(request)
    if cache.add(key, 1, timeout=LOOKUP_WINDOW_SECONDS):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=LOOKUP_WINDOW_SECONDS)


def _too_many(request: HttpRequest) -> HttpResponse:
    response = render(request, "participants/enrol/too_many.html", status=429)
    response["Retry-After"] = str(LOOKUP_WINDOW_SECONDS)
    return response


# --- which invitation this browser is working on -----------------------------------------------


def _unknown(request: HttpRequest) -> HttpResponse:
    return render(request, "participants/enrol/unknown.html", status=404)


def _state_page(request: HttpRequest, state: enrolment.LinkState) -> HttpResponse:
    if state is enrolment.LinkState.UNKNOWN:
        return _unknown(request)
    context: dict[str, Any] = {"account_url": _account_url()}
    return render(request, f"participants/enrol/{state.value}.html", context)


def _account_url() -> str | None:
    try:
        return reverse("participants:account")
    except NoReverseMatch:
        return None


def _session_invitation(request: HttpRequest) -> tuple[Invitation | None, enrolment.LinkState]:
    invitation_id = request.session.get(SESSION_INVITATION)
    if not invitation_id:
        return None, enrolment.LinkState.UNKNOWN
    invitation = Invitation.objects.select_related("participant").filter(pk=invitation_id).first()
    if invitation is None:
        return None, enrolment.LinkState.UNKNOWN
    return invitation, enrolment.link_state(invitation)


View = Callable[..., HttpResponse]


def enrolling(*, consented: bool) -> Callable[[View], View]:
    """The session's open invitation goes in as the second argument; without one, the page saying what
    still can be done. With ``consented``, someone who has not agreed yet is sent to the consent page."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            invitation, state = _session_invitation(request)
            if invitation is None or state is not enrolment.LinkState.OPEN:
                return _state_page(request, state)
            if consented and not enrolment.has_consented(invitation.participant):
                return redirect("participants:enrol")
            return view(request, invitation, *args, **kwargs)

        return never_cache(wrapped)

    return decorator


def _open_link(request: HttpRequest, token: str, then: str) -> HttpResponse:
    if _lookups_blocked(request):
        return _too_many(request)
    invitation = enrolment.find_invitation(token=token)
    if invitation is None:
        _count_miss(request)
        return _unknown(request)
    request.session[SESSION_INVITATION] = str(invitation.pk)
    return redirect(then)


@never_cache
@require_GET
def open_invitation(request: HttpRequest, token: str) -> HttpResponse:
    return _open_link(request, token, "participants:enrol")


@never_cache
@require_GET
def open_decline_link(request: HttpRequest, token: str) -> HttpResponse:
    return _open_link(request, token, "participants:enrol-decline")


# --- consent, details, codes -------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@enrolling(consented=False)
def consent(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    participant = invitation.participant
    if request.method == "POST":
        enrolment.record_consent(participant=participant)
        return redirect("participants:enrol-details")
    return render(
        request,
        "participants/enrol/consent.html",
        {"text_version": enrolment.CONSENT_TEXT_VERSION, "consented": enrolment.has_consented(participant)},
    )


class DetailsForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Your name"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    email = forms.EmailField(
        label=gettext_lazy("A different e-mail address"),
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    mobile = PhoneNumberField(
        label=gettext_lazy("A different mobile number"),
        region="NL",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
    )


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    minutes = -(-seconds // 60)
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


@require_http_methods(["GET", "POST"])
@enrolling(consented=True)
def details(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    participant = invitation.participant
    if request.method == "POST":
        form = DetailsForm(request.POST)
        if form.is_valid():
            mobile = form.cleaned_data["mobile"]
            try:
                enrolment.start_verification(
                    participant=participant,
                    name=form.cleaned_data["name"] or "",
                    email=form.cleaned_data["email"] or None,
                    mobile=mobile.as_e164 if mobile else None,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            except verification.TooManyCodes as exc:
                form.add_error(
                    None,
                    _("You asked for new codes a short while ago. You can ask again in %(wait)s.")
                    % {"wait": _wait_text(exc.wait_seconds)},
                )
            else:
                return redirect("participants:enrol-codes")
    else:
        form = DetailsForm(initial={"name": participant.name or ""})
    return render(
        request,
        "participants/enrol/details.html",
        {
            "form": form,
            "email_on_file": enrolment.mask_email(participant.email),
            "mobile_on_file": enrolment.mask_mobile(participant.mobile),
            "codes_live": any(
                state.status in (verification.VerifyStatus.WRONG, verification.VerifyStatus.OK)
                for state in verification.channel_states(participant=participant, purpose=ENROL).values()
            ),
        },
    )


def code_field(label: StrOrPromise) -> forms.RegexField:
    """A 6-digit code field that phones fill in from the message (one-time-code) with a number pad."""
    return forms.RegexField(
        label=label,
        regex=r"^\s*[0-9]{6}\s*$",
        required=False,
        error_messages={"invalid": gettext_lazy("A code has 6 digits.")},
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "maxlength": "6",
                "pattern": "[0-9]{6}",
            }
        ),
    )


class CodesForm(forms.Form):
    email_code = code_field(gettext_lazy("Code from the e-mail"))
    sms_code = code_field(gettext_lazy("Code from the text message"))


_FIELD_OF = {"email": "email_code", "sms": "sms_code"}


def _outcome_message(channel: str, outcome: verification.VerifyOutcome) -> str:
    which = _("The code from the e-mail") if channel == "email" else _("The code from the text message")
    if outcome.status is verification.VerifyStatus.WRONG:
        return ngettext(
            "%(which)s is not right. You can try %(n)d more time.",
            "%(which)s is not right. You can try %(n)d more times.",
            outcome.tries_left,
        ) % {"which": which, "n": outcome.tries_left}
    if outcome.status is verification.VerifyStatus.LOCKED:
        return _("%(which)s was entered wrongly too often. Ask for new codes below.") % {"which": which}
    if outcome.status is verification.VerifyStatus.EXPIRED:
        return _("%(which)s has expired. Ask for new codes below.") % {"which": which}
    return _("There is no code to check. Ask for new codes below.")


@require_http_methods(["GET", "POST"])
@enrolling(consented=True)
def codes(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    participant = invitation.participant
    states = verification.channel_states(participant=participant, purpose=ENROL)
    if all(state.status is verification.VerifyStatus.NONE for state in states.values()):
        return redirect("participants:enrol-details")
    form = CodesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for channel, field in _FIELD_OF.items():
            guess = form.cleaned_data[field]
            if states[channel].status is verification.VerifyStatus.OK or not guess:
                continue
            outcome = verification.verify_code(
                participant=participant, purpose=ENROL, channel=channel, code=guess
            )
            if not outcome.ok:
                form.add_error(field, _outcome_message(channel, outcome))
        if verification.proven_targets(participant=participant, purpose=ENROL) is not None:
            try:
                enrolled = enrolment.complete_enrolment(invitation=invitation)
            except enrolment.EnrolmentRefused as exc:
                form.add_error(None, str(exc))
            else:
                request.session.pop(SESSION_INVITATION, None)
                start_participant_session(request, enrolled)
                return redirect("participants:enrol-welcome")
        states = verification.channel_states(participant=participant, purpose=ENROL)
    wait = verification.resend_wait_seconds(participant=participant)
    destinations = enrolment.code_destinations(participant=participant)
    return render(
        request,
        "participants/enrol/codes.html",
        {
            "form": form,
            "email_state": states["email"],
            "sms_state": states["sms"],
            "destinations": destinations,
            "wait": _wait_text(wait) if wait else "",
            "minutes": settings.VERIFICATION_CODE_MINUTES,
        },
    )


@require_POST
@enrolling(consented=False)
def resend(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    wait = verification.request_resend(participant=invitation.participant, purpose=ENROL)
    if wait:
        messages.error(
            request,
            _("Please wait a little before asking again: new codes in %(wait)s.")
            % {"wait": _wait_text(wait)},
        )
    else:
        messages.success(request, _("New codes are on their way. The old codes no longer work."))
    return redirect("participants:enrol-codes")


@never_cache
@require_GET
def welcome(request: HttpRequest) -> HttpResponse:
    participant = current_participant(request)
    if participant is None or participant.status != Participant.Status.ACTIVE:
        return _unknown(request)
    return render(request, "participants/enrol/welcome.html", {"account_url": _account_url()})


# --- expired link, declining -------------------------------------------------------------------


@never_cache
@require_POST
def new_link(request: HttpRequest) -> HttpResponse:
    invitation, state = _session_invitation(request)
    if invitation is None or state is not enrolment.LinkState.EXPIRED:
        return _state_page(request, state)
    try:
        result = enrolment.send_new_link(invitation=invitation)
    except AgreementMissing:
        result = enrolment.NewLink.NOT_POSSIBLE
    return render(request, "participants/enrol/new_link.html", {"result": result.value})


@never_cache
@require_http_methods(["GET", "POST"])
def decline(request: HttpRequest) -> HttpResponse:
    invitation, state = _session_invitation(request)
    # Declining stays possible with an expired link: not wanting messages needs no fresh link.
    if invitation is None or state not in (enrolment.LinkState.OPEN, enrolment.LinkState.EXPIRED):
        return _state_page(request, state)
    if request.method == "POST":
        enrolment.decline_invitation(invitation=invitation)
        request.session.pop(SESSION_INVITATION, None)
        return render(request, "participants/enrol/declined.html", {"just_declined": True})
    return render(request, "participants/enrol/decline_confirm.html")


# --- staff: send invitations -------------------------------------------------------------------


@require_POST
@staff_required(Role.EMPLOYER, Role.ADMIN)
def send_invitations(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    is_admin = has_role(user, Role.ADMIN)
    requested = request.POST.get("organisation", "")
    organisation: Organisation | None
    if is_admin:
        if not requested.isdigit():
            return HttpResponseBadRequest(_("Choose an organisation."))
        organisation = Organisation.objects.filter(pk=int(requested)).first()
        if organisation is None:
            return HttpResponseBadRequest(_("Choose an organisation."))
    else:
        organisation = user.organisation
        if organisation is None or (requested and requested != str(organisation.pk)):
            raise PermissionDenied
    try:
        sent = enrolment.send_invitations(organisation=organisation, by=user)
    except AgreementMissing as exc:
        messages.error(request, str(exc))
    else:
        if is_admin:
            messages.success(
                request, ngettext("%(n)d invitation sent.", "%(n)d invitations sent.", sent) % {"n": sent}
            )
        else:
            # No count for the employer: how many are still invited would tell how many took part.
            messages.success(
                request,
                _("Invitations are being sent to everyone on the list who has not received a valid one yet."),
            )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("staff-home")
    return redirect(target)
