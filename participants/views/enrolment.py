"""Enrolment pages: the invitation link, consent, details, both codes, declining; and the staff send button.

The token is looked up once and then left behind: the invitation's id goes into the session and the browser
is redirected to a token-free address, so the token does not stay in the address bar, the history or a
screenshot. Every later page works from the session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from participants import enrolment, invitations, requestqueue, verification
from participants.agreements import AgreementMissing
from participants.models import Invitation, Organisation, Participant
from participants.session import current_participant, start_participant_session
from preventicons import ratelimit
from preventicons.crypto import hash_token, is_issued_token, keyed_hash
from preventicons.roles import Role, has_role, staff_required

if TYPE_CHECKING:  # types only: django-stubs is a development dependency
    from django_stubs_ext import StrOrPromise

SESSION_INVITATION = "enrol_invitation"  # the invitation's id; "" for a link that opens nothing
SESSION_LINK = "enrol_link"  # a keyed hash of the link's token: present once any link was opened
SESSION_OPENED = "enrol_opened"  # the invitation whose SMS code this browser entered
SESSION_INTENT = "enrol_intent"  # "decline" when the link was the one to say no
SESSION_CHANNEL = "enrol_weekly_channel"  # where the weekly messages go, chosen on the details page
SESSION_GO_ON = "enrol_go_on_expired"  # the expired invitation this browser chose to go on with
# The name as corrected on the details page: kept in the (sealed) session until the enrolment is queued
# with it, not written on the row then (enrolment.start_verification).
SESSION_NAME = "enrol_name"
ENROL = enrolment.ENROL
_TOKEN_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{enrolment.TOKEN_LENGTH}}}", re.ASCII)


# --- rate limits (preventicons.ratelimit) -------------------------------------------------------


def too_many_unknown(request: HttpRequest, decision: ratelimit.Decision, template: str) -> HttpResponse:
    """The answer to a link we never made, from a client over the budget of such links."""
    response = render(request, template, status=429)
    response["Retry-After"] = str(decision.retry_after)
    return response


def link_code_budget() -> ratelimit.Budget:
    """SMS codes asked for through one link (an invitation's or an account link's), with the backoff and
    hourly cap of participants.verification. Kept per link, not per person, so the answer is the same for
    a link that opens nothing: whether a code really went out shows only on the phone."""
    return ratelimit.Budget(
        "link-code",
        settings.VERIFICATION_CODE_ROUNDS_PER_HOUR,
        3600,
        backoff_seconds=settings.VERIFICATION_RESEND_BASE_SECONDS,
    )


def link_code_refusal(decision: ratelimit.Decision) -> str:
    """What the page says when a link's code budget refused (or could not be asked)."""
    if decision.unavailable:
        return _("We cannot send a code at the moment. Please try again in a few minutes.")
    return _("Please wait a little before asking again: a new code in %(wait)s.") % {
        "wait": _wait_text(decision.retry_after)
    }


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
    """The session's invitation, and where it stands once its SMS code opened it in this browser (UNKNOWN
    before: every caller shows nothing of it then)."""
    invitation_id = request.session.get(SESSION_INVITATION)
    if not invitation_id:
        return None, enrolment.LinkState.UNKNOWN
    invitation = Invitation.objects.select_related("participant").filter(pk=invitation_id).first()
    if invitation is None:
        return None, enrolment.LinkState.UNKNOWN
    if not _is_opened(request, invitation):
        # Not read before the SMS code: the state opens the request queue (a joining waiting for the batch),
        # and how long that takes would tell whoever holds a link from a mailbox how many requests wait.
        return invitation, enrolment.LinkState.UNKNOWN
    state = enrolment.link_state(invitation)
    if state is enrolment.LinkState.EXPIRED and _goes_on_expired(request, invitation):
        # Chosen on the expired page after its SMS code (new_link): this browser goes on with it as open.
        return invitation, enrolment.LinkState.OPEN
    return invitation, state


def _goes_on_expired(request: HttpRequest, invitation: Invitation) -> bool:
    return request.session.get(SESSION_GO_ON) == str(invitation.pk)


def _end_enrolment_session(request: HttpRequest) -> None:
    """Forget the invitation and every step taken with it: after joining, and after saying no."""
    for key in (
        SESSION_INVITATION,
        SESSION_LINK,
        SESSION_OPENED,
        SESSION_INTENT,
        SESSION_CHANNEL,
        SESSION_GO_ON,
        SESSION_NAME,
    ):
        request.session.pop(key, None)


def _is_opened(request: HttpRequest, invitation: Invitation | None) -> bool:
    return invitation is not None and request.session.get(SESSION_OPENED) == str(invitation.pk)


def _not_opened(request: HttpRequest) -> HttpResponse:
    """Before the SMS code: back to the link's first page, the same for every link; 404 without one."""
    if request.session.get(SESSION_LINK):
        return redirect("participants:enrol")
    return _unknown(request)


View = Callable[..., HttpResponse]


def enrolling(*, consented: bool) -> Callable[[View], View]:
    """The session's open invitation goes in as the second argument, once its SMS code was entered; before
    that the neutral first page, after it (for a link not open any more) the page saying what can be done.
    With ``consented``, someone who has not agreed yet is sent to the consent page."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            invitation, state = _session_invitation(request)
            if invitation is None or not _is_opened(request, invitation):
                return _not_opened(request)
            if state is not enrolment.LinkState.OPEN:
                return _state_page(request, state)
            if consented and not enrolment.has_consented(invitation.invitee):
                return redirect("participants:enrol-consent")
            return view(request, invitation, *args, **kwargs)

        return never_cache(wrapped)

    return decorator


def _open_link(request: HttpRequest, token: str, intent: str) -> HttpResponse:
    if not is_issued_token(token):
        # Never a link we made (or one made before links carried their tag): counted against this client,
        # as on every token page. A link we made is never counted or refused, whether or not its row still
        # exists, so the limit cannot tell a stopped person's link from a live one.
        decision = ratelimit.count_unknown_link(request)
        if not decision:
            return too_many_unknown(request, decision, "participants/enrol/too_many.html")
        if not _TOKEN_SHAPE.fullmatch(token):
            return _unknown(request)  # never a link we sent: it cannot tell anything about anyone
    invitation = enrolment.find_invitation(token=token)
    # Known or not, expired or not, whoever it was for and whatever they did: the same session keys and
    # the same redirect. A link whose row is gone (the person stopped) must look like any other.
    _end_enrolment_session(request)
    request.session[SESSION_INVITATION] = str(invitation.pk) if invitation is not None else ""
    request.session[SESSION_LINK] = keyed_hash("blind_index", "invitation-link", hash_token(token))
    request.session[SESSION_INTENT] = intent
    return redirect("participants:enrol")


@never_cache
@require_GET
def open_invitation(request: HttpRequest, token: str) -> HttpResponse:
    return _open_link(request, token, "join")


@never_cache
@require_GET
def open_decline_link(request: HttpRequest, token: str) -> HttpResponse:
    return _open_link(request, token, "decline")


# --- the link's first page and its SMS code ----------------------------------------------------


def code_field(label: StrOrPromise, *, required: bool = False) -> forms.RegexField:
    """A 6-digit code field that phones fill in from the message (one-time-code) with a number pad."""
    return forms.RegexField(
        label=label,
        regex=r"^\s*[0-9]{6}\s*$",
        required=required,
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


class LinkCodeForm(forms.Form):
    code = code_field(gettext_lazy("Code from the text message"), required=True)


@never_cache
@require_http_methods(["GET", "POST"])
def landing(request: HttpRequest) -> HttpResponse:
    """The first page of every invitation link: the same for every person, status and expiry.

    POST asks for the SMS code. What happens is the same for the caller whether a code went out or not.
    """
    link = request.session.get(SESSION_LINK)
    if not link:
        return _unknown(request)
    if request.method == "POST":
        decision = ratelimit.spend(link_code_budget(), link)
        if not decision:
            messages.error(request, link_code_refusal(decision))
        else:
            invitation, _state = _session_invitation(request)
            enrolment.request_link_code(invitation=invitation)
        return redirect("participants:enrol-open")
    declining = request.session.get(SESSION_INTENT) == "decline"
    return render(request, "participants/enrol/landing.html", {"declining": declining})


@never_cache
@require_http_methods(["GET", "POST"])
def open_with_code(request: HttpRequest) -> HttpResponse:
    """Enter the SMS code; only a right code shows anything about the invitation (its state, consent)."""
    if not request.session.get(SESSION_LINK):
        return _unknown(request)
    form = LinkCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        invitation, _state = _session_invitation(request)
        if enrolment.verify_link_code(invitation=invitation, code=form.cleaned_data["code"]):
            assert invitation is not None
            request.session.cycle_key()  # against fixation: this session now sees the invitation
            request.session[SESSION_OPENED] = str(invitation.pk)
            return redirect("participants:enrol-next")
        # One answer for a wrong, expired, used or locked code and for a link that opens nothing.
        form.add_error(
            "code", _("This code is not right or no longer valid. Check it, or ask for a new code.")
        )
    return render(
        request,
        "participants/enrol/open.html",
        {"form": form, "minutes": settings.VERIFICATION_CODE_MINUTES},
    )


@never_cache
@require_GET
def next_step(request: HttpRequest) -> HttpResponse:
    """After the SMS code: where this invitation stands, or the next step of joining or declining."""
    invitation, state = _session_invitation(request)
    if invitation is None or not _is_opened(request, invitation):
        return _not_opened(request)
    declining = request.session.get(SESSION_INTENT) == "decline"
    if declining and state in (enrolment.LinkState.OPEN, enrolment.LinkState.EXPIRED):
        return redirect("participants:enrol-decline")
    if state is enrolment.LinkState.OPEN:
        return redirect("participants:enrol-consent")
    return _state_page(request, state)


# --- consent, details, codes -------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@enrolling(consented=False)
def consent(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    participant = invitation.invitee
    if request.method == "POST":
        enrolment.record_consent(participant=participant)
        return redirect("participants:enrol-details")
    # Here only after the link's SMS code (enrolling): consent is a step of joining, not a first page.
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
    # Read by participants.contact (in enrolment.start_verification), like the import and the account.
    mobile = forms.CharField(
        label=gettext_lazy("A different mobile number"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
    )
    weekly_channel = forms.ChoiceField(
        label=gettext_lazy("Where should the weekly message go?"),
        choices=[
            (
                Participant.WeeklyChannel.SMS,
                gettext_lazy("By text message to my mobile number (recommended)"),
            ),
            (
                Participant.WeeklyChannel.PRIVATE_EMAIL,
                gettext_lazy("To a private e-mail address (recommended)"),
            ),
            (
                Participant.WeeklyChannel.WORK_EMAIL,
                gettext_lazy("To my work e-mail address: my employer's IT department can read it"),
            ),
        ],
        initial=Participant.WeeklyChannel.SMS,
        widget=forms.RadioSelect,
    )
    private_email = forms.EmailField(
        label=gettext_lazy("Your private e-mail address"),
        required=False,
        help_text=gettext_lazy(
            "Only if you choose a private e-mail address. We send a code there to check it."
        ),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    minutes = -(-seconds // 60)
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


@require_http_methods(["GET", "POST"])
@enrolling(consented=True)
def details(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    participant = invitation.invitee
    if request.method == "POST":
        form = DetailsForm(request.POST)
        if form.is_valid():
            try:
                sent = enrolment.start_verification(
                    participant=participant,
                    name=form.cleaned_data["name"] or "",
                    email=form.cleaned_data["email"] or None,
                    mobile=form.cleaned_data["mobile"] or None,
                    weekly_channel=form.cleaned_data["weekly_channel"],
                    private_email=form.cleaned_data["private_email"] or None,
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
                # Only with the round it belongs to: the codes page completes with this choice and name.
                request.session[SESSION_CHANNEL] = form.cleaned_data["weekly_channel"]
                request.session[SESSION_NAME] = (form.cleaned_data["name"] or "").strip()
                if sent:
                    return redirect("participants:enrol-codes")
                # Nothing new to prove: the link and its SMS code are the two factors.
                finished = _finish(request, invitation, with_codes=False)
                if isinstance(finished, HttpResponse):
                    return finished
                form.add_error(None, finished)
    else:
        form = DetailsForm(initial={"name": request.session.get(SESSION_NAME) or participant.name or ""})
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
    if outcome.status is verification.VerifyStatus.LOCKED and outcome.wait_seconds:
        # The hourly budget of wrong codes is spent: no new code helps before it frees a try.
        return _("Too many wrong codes were entered in the last hour. You can try again in %(wait)s.") % {
            "wait": _wait_text(outcome.wait_seconds)
        }
    if outcome.status is verification.VerifyStatus.LOCKED:
        return _("%(which)s was entered wrongly too often. Ask for new codes below.") % {"which": which}
    if outcome.status is verification.VerifyStatus.EXPIRED:
        return _("%(which)s has expired. Ask for new codes below.") % {"which": which}
    return _("There is no code to check. Ask for new codes below.")


def _finish(request: HttpRequest, invitation: Invitation, *, with_codes: bool) -> HttpResponse | str:
    """Queue the enrolment and open the participant's session; the refusal's text when it cannot. The next
    request batch makes them a participant (participants.requestqueue.confirm_enrolment)."""
    try:
        enrolled = requestqueue.confirm_enrolment(
            invitation=invitation,
            weekly_channel=request.session.get(SESSION_CHANNEL, Participant.WeeklyChannel.SMS),
            with_codes=with_codes,
            expired_ok=_goes_on_expired(request, invitation),
            name=request.session.get(SESSION_NAME),
        )
    except enrolment.EnrolmentRefused as exc:
        return str(exc)
    _end_enrolment_session(request)
    start_participant_session(request, enrolled)
    return redirect("participants:enrol-welcome")


@require_http_methods(["GET", "POST"])
@enrolling(consented=True)
def codes(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    """The codes sent to a new address or number: only the channels of the latest round are asked for."""
    participant = invitation.invitee
    asked = verification.round_channels(participant=participant, purpose=ENROL)
    if not asked:
        return redirect("participants:enrol-details")
    states = verification.channel_states(participant=participant, purpose=ENROL)
    form = CodesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for channel, field in _FIELD_OF.items():
            guess = form.cleaned_data[field]
            if channel not in asked or states[channel].status is verification.VerifyStatus.OK or not guess:
                continue
            outcome = verification.verify_code(
                participant=participant, purpose=ENROL, channel=channel, code=guess
            )
            if not outcome.ok:
                form.add_error(field, _outcome_message(channel, outcome))
        if verification.proven_round(participant=participant, purpose=ENROL) is not None:
            finished = _finish(request, invitation, with_codes=True)
            if isinstance(finished, HttpResponse):
                return finished
            form.add_error(None, finished)
        states = verification.channel_states(participant=participant, purpose=ENROL)
    wait = verification.resend_wait_seconds(participant=participant)
    destinations = enrolment.code_destinations(participant=participant)
    return render(
        request,
        "participants/enrol/codes.html",
        {
            "form": form,
            "email_state": states["email"] if "email" in asked else None,
            "sms_state": states["sms"] if "sms" in asked else None,
            "destinations": destinations,
            "wait": _wait_text(wait) if wait else "",
            "minutes": settings.VERIFICATION_CODE_MINUTES,
        },
    )


@require_POST
@enrolling(consented=False)
def resend(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    wait = verification.request_resend(participant=invitation.invitee, purpose=ENROL)
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
    if participant is None or not (
        participant.status == Participant.Status.ACTIVE or requestqueue.enrolment_pending(participant)
    ):
        return _unknown(request)
    return render(
        request,
        "participants/enrol/welcome.html",
        {"account_url": _account_url(), "minutes": settings.HELP_REQUEST_BATCH_MINUTES},
    )


# --- expired link, declining -------------------------------------------------------------------


@never_cache
@require_POST
def new_link(request: HttpRequest) -> HttpResponse:
    """An expired link, opened with its SMS code: go on with it in this browser, nothing written or sent."""
    invitation, state = _session_invitation(request)
    if invitation is None or not _is_opened(request, invitation):
        return _not_opened(request)
    if state is not enrolment.LinkState.EXPIRED:
        return _state_page(request, state)
    try:
        may = enrolment.may_go_on_expired(invitation=invitation)
    except AgreementMissing:
        may = False
    if not may:
        return render(request, "participants/enrol/new_link.html", {"result": "not_possible"})
    request.session[SESSION_GO_ON] = str(invitation.pk)
    request.session[SESSION_INTENT] = "join"
    return redirect("participants:enrol-consent")


@never_cache
@require_http_methods(["GET", "POST"])
def decline(request: HttpRequest) -> HttpResponse:
    """Saying no: only after the link's SMS code, so whoever reads the mailbox cannot say it for someone."""
    invitation, state = _session_invitation(request)
    if invitation is None or not _is_opened(request, invitation):
        return _not_opened(request)
    # Declining stays possible with an expired link: not wanting to take part needs no fresh link.
    if state not in (enrolment.LinkState.OPEN, enrolment.LinkState.EXPIRED):
        return _state_page(request, state)
    if request.method == "POST":
        try:
            # Queued: the next batch makes it, with everyone else's requests (requestqueue.confirm_decline).
            requestqueue.confirm_decline(invitation=invitation)
        except enrolment.EnrolmentRefused:
            # The SMS code was entered too long ago: ask for a fresh one, as for any link.
            request.session.pop(SESSION_OPENED, None)
            return _not_opened(request)
        _end_enrolment_session(request)
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
        # ASCII digits of a size a primary key can have ("٣".isdigit() holds too, and a huge number
        # overflows the column).
        if not (requested.isascii() and requested.isdigit() and len(requested) <= 18):
            return HttpResponseBadRequest(_("Choose an organisation."))
        organisation = Organisation.objects.filter(pk=int(requested)).first()
        if organisation is None:
            return HttpResponseBadRequest(_("Choose an organisation."))
    else:
        organisation = user.organisation
        if organisation is None or (requested and requested != str(organisation.pk)):
            raise PermissionDenied
    try:
        sent = invitations.send_invitations(organisation=organisation, by=user)
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
                _(
                    "Invitations go out to everyone who is new on the list, followed by the same reminders "
                    "for everyone invited."
                ),
            )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("staff-home")
    return redirect(target)


@require_GET
@staff_required(Role.EMPLOYER, Role.ADMIN)
def invitations_page(request: HttpRequest) -> HttpResponse:
    """What "send invitations" does, and its button (an admin picks the organisation)."""
    user: Any = request.user
    is_admin = has_role(user, Role.ADMIN)
    context = {
        "is_admin": is_admin,
        "organisations": Organisation.objects.order_by("name") if is_admin else None,
        "own_organisation": None if is_admin else user.organisation,
    }
    return render(request, "participants/invitations.html", context)
