"""The participant's account pages: everything we hold, corrections, export, pause, stop, and the e-mail link.

Every page answers with Cache-Control: no-store (what it shows is personal), and every page but the link
pages needs the participant's short session (participants.session), which opens only after both factors:
the e-mailed link, then a fresh code by SMS. Without it a page redirects to the code step (when this session
used a link) or offers the e-mail link; it never shows data.

The link pages answer alike for every well-formed token (valid, used, expired, a decoy sent for someone who
stopped or declined, or unknown) and for everyone a real link can reach (invited, active, paused, inactive):
whoever opens a link found in a work mailbox reads "we sent a code to your mobile" and nothing about the
person; a wrong code reads alike too. Only the phone on file learns whether a code went out; status,
details and answers appear only after the right code.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from participants import account, enrolment, offers, requestqueue, verification
from participants.exporting import answer_face
from participants.models import ConsentRecord, Participant, VerificationCode
from participants.session import (
    count_wrong_code,
    current_participant,
    end_participant_session,
    holds_link_step,
    link_step,
    restart_link_code,
    start_link_step,
    start_participant_session,
)
from participants.views.enrolment import (
    CodesForm,
    _outcome_message,
    _wait_text,
    code_field,
    link_code_budget,
    link_code_refusal,
    too_many_unknown,
)
from preventicons import ratelimit
from preventicons.clients import client_address
from preventicons.crypto import hash_token, is_issued_token, keyed_hash

# The new name of a pending correction, sealed (account.PendingChange): never plaintext in the session store.
SESSION_PENDING_NAME = "account_pending_name"
# The account link this browser opened, by id: the token itself is left behind in the first redirect.
SESSION_ACCOUNT_LINK = "account_link"  # "" for a well-formed token that opens nothing
SESSION_ACCOUNT_LINK_KEY = "account_link_key"  # a keyed hash of the token: present once any link was opened
_ACCOUNT_TOKEN_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{account.ACCOUNT_TOKEN_LENGTH}}}", re.ASCII)
EXPORT_FILENAME = "preventicons-my-data.json"
LINK_MINUTES = int(account.ACCOUNT_LINK_LIFETIME.total_seconds() // 60)

ParticipantView = Callable[..., HttpResponse]


def participant_required(view: ParticipantView) -> Callable[..., HttpResponse]:
    """The participant whose session this is (both factors) goes in as the second argument.

    Without both factors: the code step when this session used a link, else the link page; never data.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        participant = current_participant(request)
        if participant is None:
            if holds_link_step(request):
                return redirect("participants:account-code")
            return redirect("participants:account-link")
        return view(request, participant, *args, **kwargs)

    return never_cache(wrapped)


# --- forms ------------------------------------------------------------------------------------


class ChangeForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=account.NAME_MAX_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    email = forms.CharField(
        label=gettext_lazy("E-mail address"),
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    mobile = forms.CharField(
        label=gettext_lazy("Mobile number"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
    )


class AccountCodeForm(forms.Form):
    sms_code = code_field(gettext_lazy("Code from the text message"))


class LinkForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("Your e-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


def _change_form(participant: Participant, data: Any = None) -> ChangeForm:
    return ChangeForm(
        data,
        initial={
            "name": participant.name or "",
            "email": participant.email or "",
            "mobile": participant.mobile or "",
        },
    )


# --- seeing everything ------------------------------------------------------------------------


def _answers(rows: Any) -> list[dict[str, Any]]:
    """The weekly answers as the page shows them: the week's first day as a date, the smiley tapped."""
    answers = []
    for row in rows:
        face = answer_face(int(row["value"]))
        answers.append(
            {
                "week": dt.date.fromisoformat(row["week"]),
                "value": row["value"],
                "label": face[0] if face else str(row["value"]),
                "image": face[1] if face else None,
            }
        )
    return answers


def _overview(
    request: HttpRequest, participant: Participant, *, form: ChangeForm | None = None, status: int = 200
) -> HttpResponse:
    data = account.export_data(participant=participant)
    records = ConsentRecord.objects.of(participant.pk).opened()
    consents = [{"label": ConsentRecord.Kind(record.kind).label, "record": record} for record in records]
    return render(
        request,
        "participants/account/account.html",
        {
            "participant": participant,
            "data": data,
            "consents": consents,
            # Whoever asked for contact may ask for another casemanager (their dossier is not looked up).
            "asked_for_contact": any(record.kind == ConsentRecord.Kind.CONTACT for record in records),
            "weekly_scores": _answers(data.get("weekly_scores", [])),
            "form": form or _change_form(participant),
            "session_minutes": settings.PARTICIPANT_SESSION_SECONDS // 60,
            "asks_email_code": account.asks_email_code(participant),
            # Offers from the participant's own signals (scores: a drop, three falling weeks), shown only
            # here, behind both factors, never on a page a weekly link opens.
            "offers": offers.account_offers(participant),
            "joining": requestqueue.enrolment_pending(participant),
            "batch_minutes": settings.HELP_REQUEST_BATCH_MINUTES,
        },
        status=status,
    )


@require_GET
@participant_required
def overview(request: HttpRequest, participant: Participant) -> HttpResponse:
    return _overview(request, participant)


@require_GET
@participant_required
def export(request: HttpRequest, participant: Participant) -> HttpResponse:
    data = account.export_data(participant=participant)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{EXPORT_FILENAME}"'
    return response


@require_POST
@participant_required
def pause(request: HttpRequest, participant: Participant) -> HttpResponse:
    choice = request.POST.get("paused")
    if choice not in ("0", "1"):
        # Not a press of either button: bad input changes nothing.
        return _overview(request, participant, status=400)
    paused = choice == "1"
    # Queued, applied by the next batch with everyone else's: not written in the second of their tap.
    requestqueue.queue_pause_change(participant=participant, paused=paused)
    minutes = {"minutes": settings.HELP_REQUEST_BATCH_MINUTES}
    if paused:
        messages.success(
            request,
            _(
                "Noted. Within %(minutes)d minutes we stop sending you messages, "
                "until you switch them on again."
            )
            % minutes,
        )
    else:
        messages.success(
            request, _("Noted. Within %(minutes)d minutes your messages are switched on again.") % minutes
        )
    return redirect("participants:account")


@require_POST
@participant_required
def another_casemanager(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Ask for another casemanager: queued, taken up by the next batch (participants.requestqueue)."""
    if request.POST.get("another") != "1":
        # Not a press of the button: bad input changes nothing.
        return _overview(request, participant, status=400)
    requestqueue.queue_casemanager_change(participant=participant)
    messages.success(
        request,
        _(
            "Noted. Within %(minutes)d minutes your dossier goes to another casemanager, if another one "
            "works for your organisation. They will contact you."
        )
        % {"minutes": settings.HELP_REQUEST_BATCH_MINUTES},
    )
    return redirect("participants:account")


@require_POST
@participant_required
def rejoin(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Take part again: queued, made so by the next batch (participants.requestqueue.queue_rejoin)."""
    if participant.status == Participant.Status.INACTIVE:
        requestqueue.queue_rejoin(participant=participant)
        messages.success(
            request,
            _(
                "Welcome back. Within %(minutes)d minutes you take part again, and you will get the weekly "
                "question from next week."
            )
            % {"minutes": settings.HELP_REQUEST_BATCH_MINUTES},
        )
    return redirect("participants:account")


@require_POST
@participant_required
def close(request: HttpRequest, participant: Participant) -> HttpResponse:
    end_participant_session(request)
    return redirect("home")


# --- corrections ------------------------------------------------------------------------------


def _too_soon(exc: verification.TooManyCodes) -> str:
    return _("You asked for codes a short while ago. You can ask again in %(wait)s.") % {
        "wait": _wait_text(exc.wait_seconds)
    }


def _still_joining(participant: Participant) -> HttpResponse | None:
    """Back to the account, sending nothing, while their joining waits for the batch (requestqueue.
    confirm_enrolment); the account page says why.

    Until the batch makes them a participant the row holds what the employer supplied, not the number or
    private address they proved when joining: a correction's or a stop's codes went to the phone the
    employer supplied, the one the person had just replaced, which the employer reads (review 10).
    """
    if requestqueue.enrolment_pending(participant):
        return redirect("participants:account")
    return None


@require_POST
@participant_required
def change(request: HttpRequest, participant: Participant) -> HttpResponse:
    if waiting := _still_joining(participant):
        return waiting
    form = _change_form(participant, request.POST)
    if not form.is_valid():
        return _overview(request, participant, form=form, status=400)
    try:
        pending = account.request_change(
            participant=participant,
            name=form.cleaned_data["name"],
            email=form.cleaned_data["email"],
            mobile=form.cleaned_data["mobile"],
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return _overview(request, participant, form=form, status=400)
    except verification.TooManyCodes as exc:
        form.add_error(None, _too_soon(exc))
        return _overview(request, participant, form=form, status=429)
    if pending.sealed_name:
        request.session[SESSION_PENDING_NAME] = pending.sealed_name
    else:
        request.session.pop(SESSION_PENDING_NAME, None)
    return redirect("participants:account-change-confirm")


def _codes_page(
    request: HttpRequest,
    participant: Participant,
    *,
    purpose: str,
    form: CodesForm,
    template: str,
    extra: dict[str, Any],
) -> HttpResponse:
    states = verification.channel_states(participant=participant, purpose=purpose)
    in_round = verification.round_channels(participant=participant, purpose=purpose)
    email_target, mobile_target = verification.pending_targets(participant=participant, purpose=purpose)
    wait = verification.resend_wait_seconds(participant=participant, purpose=purpose)
    email_to = email_target or verification.code_email_address(participant)
    context = {
        "form": form,
        # None when this round has no e-mail code (account._round_channels): only the SMS code is asked.
        "email_state": states[VerificationCode.Channel.EMAIL]
        if VerificationCode.Channel.EMAIL in in_round
        else None,
        "sms_state": states[VerificationCode.Channel.SMS],
        "email_to": enrolment.mask_email(email_to) if email_to else "",
        "sms_to": enrolment.mask_mobile(mobile_target or participant.mobile),
        "wait": _wait_text(wait) if wait else "",
        "minutes": settings.VERIFICATION_CODE_MINUTES,
        **extra,
    }
    return render(request, template, context, status=400 if form.errors else 200)


def _add_failures(form: CodesForm, confirmation: account.Confirmation) -> None:
    fields: dict[str, str] = {"email": "email_code", "sms": "sms_code"}
    for channel, outcome in confirmation.failed.items():
        form.add_error(fields[channel], _outcome_message(channel, outcome))
    if confirmation.refusal:
        form.add_error(None, confirmation.refusal)
    if not form.errors:
        form.add_error(None, _("Please enter the codes."))


def _has_round(participant: Participant, purpose: str) -> bool:
    states = verification.channel_states(participant=participant, purpose=purpose)
    return any(state.status is not verification.VerifyStatus.NONE for state in states.values())


@require_http_methods(["GET", "POST"])
@participant_required
def change_confirm(request: HttpRequest, participant: Participant) -> HttpResponse:
    purpose = VerificationCode.Purpose.CHANGE
    if not _has_round(participant, purpose):
        return redirect("participants:account")
    sealed_name = request.session.get(SESSION_PENDING_NAME)
    form = CodesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Queued: the next batch applies it with everyone else's requests (participants.requestqueue).
        confirmation = requestqueue.confirm_change(
            participant=participant,
            email_code=form.cleaned_data["email_code"] or "",
            sms_code=form.cleaned_data["sms_code"] or "",
            sealed_name=sealed_name,
        )
        if confirmation.done:
            request.session.pop(SESSION_PENDING_NAME, None)
            messages.success(
                request,
                _("Confirmed. Within %(minutes)d minutes your details are changed; we will let you know.")
                % {"minutes": settings.HELP_REQUEST_BATCH_MINUTES},
            )
            return redirect("participants:account")
        _add_failures(form, confirmation)
    pending = account.pending_change(participant=participant, sealed_name=sealed_name)
    return _codes_page(
        request,
        participant,
        purpose=purpose,
        form=form,
        template="participants/account/change_confirm.html",
        extra={"pending": pending},
    )


@require_POST
@participant_required
def change_resend(request: HttpRequest, participant: Participant) -> HttpResponse:
    return _resend(
        request, participant, VerificationCode.Purpose.CHANGE, "participants:account-change-confirm"
    )


def _resend(request: HttpRequest, participant: Participant, purpose: str, then: str) -> HttpResponse:
    if not _has_round(participant, purpose):
        return redirect("participants:account")
    wait = verification.request_resend(participant=participant, purpose=purpose)
    if wait:
        messages.error(
            request,
            _("Please wait a little before asking again: new codes in %(wait)s.")
            % {"wait": _wait_text(wait)},
        )
    else:
        messages.success(request, _("New codes are on their way. The old codes no longer work."))
    return redirect(then)


# --- stopping ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@participant_required
def stop(request: HttpRequest, participant: Participant) -> HttpResponse:
    if waiting := _still_joining(participant):
        return waiting
    error = ""
    status = 200
    if request.method == "POST":
        try:
            account.request_stop_codes(participant=participant)
        except verification.TooManyCodes as exc:
            error, status = _too_soon(exc), 429
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 400
        else:
            return redirect("participants:account-stop-confirm")
    return render(
        request,
        "participants/account/stop.html",
        {"error": error, "asks_email_code": account.asks_email_code(participant)},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@participant_required
def stop_confirm(request: HttpRequest, participant: Participant) -> HttpResponse:
    purpose = VerificationCode.Purpose.STOP
    if not _has_round(participant, purpose):
        return redirect("participants:account-stop")
    form = CodesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Queued: the next batch stops them with everyone else's requests (participants.requestqueue).
        confirmation = requestqueue.confirm_stop(
            participant=participant,
            email_code=form.cleaned_data["email_code"] or "",
            sms_code=form.cleaned_data["sms_code"] or "",
        )
        if confirmation.done:
            end_participant_session(request)
            return redirect("participants:account-stopped")
        _add_failures(form, confirmation)
    return _codes_page(
        request,
        participant,
        purpose=purpose,
        form=form,
        template="participants/account/stop_confirm.html",
        extra={},
    )


@require_POST
@participant_required
def stop_resend(request: HttpRequest, participant: Participant) -> HttpResponse:
    return _resend(request, participant, VerificationCode.Purpose.STOP, "participants:account-stop-confirm")


@never_cache
@require_GET
def stopped(request: HttpRequest) -> HttpResponse:
    return render(
        request, "participants/account/stopped.html", {"minutes": settings.HELP_REQUEST_BATCH_MINUTES}
    )


# --- the one-time account link ----------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def link_request(request: HttpRequest) -> HttpResponse:
    form = LinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            allowed = account.request_account_link(
                email=form.cleaned_data["email"], requester=client_address(request)
            )
        except account.AccountLinkUnavailable:
            form.add_error(None, _("We cannot send links at the moment. Please try again in a few minutes."))
            return render(
                request,
                "participants/account/link_request.html",
                {"form": form, "minutes": LINK_MINUTES},
                status=503,
            )
        if not allowed:
            response = render(request, "participants/account/too_many.html", status=429)
            response["Retry-After"] = str(account.RATE_WINDOW_SECONDS)
            return response
        # The same page whether or not the address is known: it must not tell who is on a list.
        return render(request, "participants/account/link_sent.html", {"minutes": LINK_MINUTES})
    return render(
        request,
        "participants/account/link_request.html",
        {"form": form, "minutes": LINK_MINUTES},
        status=400 if form.errors else 200,
    )


def _link_malformed(request: HttpRequest) -> HttpResponse:
    # Only for a token of the wrong shape: never a link we sent, so it says nothing about anyone. Every
    # well-formed token, valid or not, goes on to the same pages (link_open).
    return render(request, "participants/account/link_unusable.html", status=404)


@never_cache
@require_GET
def link_open(request: HttpRequest, token: str) -> HttpResponse:
    """Any well-formed token: the same session keys and the same redirect, whether it opens anything."""
    if not is_issued_token(token):
        # A token we never made, counted against this client as on every token page. Tokens we made, real
        # links and decoys alike, are never counted or refused: the limit cannot tell them apart.
        decision = ratelimit.count_unknown_link(request)
        if not decision:
            return too_many_unknown(request, decision, "participants/account/too_many_opened.html")
        if not _ACCOUNT_TOKEN_SHAPE.fullmatch(token):
            return _link_malformed(request)
    link = account.find_account_link(token=token)
    # Leave the token behind: the next page's address, history entry and screenshot do not carry it.
    request.session[SESSION_ACCOUNT_LINK] = str(link.pk) if link is not None else ""
    request.session[SESSION_ACCOUNT_LINK_KEY] = keyed_hash("blind_index", "account-link", hash_token(token))
    return redirect("participants:account-link-confirm")


@never_cache
@require_http_methods(["GET", "POST"])
def link_confirm(request: HttpRequest) -> HttpResponse:
    """The page after the link: the same for every link; its button uses the link and sends the SMS code."""
    link_key = request.session.get(SESSION_ACCOUNT_LINK_KEY)
    if not link_key:
        return redirect("participants:account-link")
    error, status = "", 200
    if request.method == "POST":
        # Paced per link, not per person, so the answer is the same for a link that opens nothing.
        decision = ratelimit.spend(link_code_budget(), link_key)
        if not decision:
            error = link_code_refusal(decision)
            status = 503 if decision.unavailable else 429
        else:
            # Used up only by this button, not by opening the link: mail scanners open links too.
            participant = account.open_account_link(link_id=request.session.get(SESSION_ACCOUNT_LINK, ""))
            start_link_step(request, participant, link=link_key)
            return redirect("participants:account-code")
    return render(request, "participants/account/link_confirm.html", {"error": error}, status=status)


def _code_step_page(request: HttpRequest, form: AccountCodeForm, *, status: int = 200) -> HttpResponse:
    # Nothing about the person: not even their number masked. What reads this page may be a mailbox reader,
    # and the link behind it may open nothing at all.
    return render(
        request,
        "participants/account/link_code.html",
        {
            "form": form,
            "minutes": settings.VERIFICATION_CODE_MINUTES,
            "link_minutes": LINK_MINUTES,
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def link_code(request: HttpRequest) -> HttpResponse:
    """The second factor: the SMS code; once right, the account opens in this session.

    A link that opens nothing gets the same page and, for every code, the same answer as a wrong code on a
    valid link (session.count_wrong_code): "This link no longer works" is never said, here or before.
    """
    if not holds_link_step(request):
        return redirect("participants:account-link")
    form = AccountCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        guess = form.cleaned_data["sms_code"] or ""
        if not guess:
            form.add_error("sms_code", _("Enter the code from the text message."))
        else:
            # The link's participant is read only here, under the link-step floor: a GET of this page is not,
            # and reading a real link's row there (none for a decoy) timed which link was real (review 12).
            step = link_step(request)
            if step is not None and step.participant is not None:
                outcome = account.confirm_account_code(participant=step.participant, code=guess)
                if outcome.ok:
                    start_participant_session(request, step.participant)
                    return redirect("participants:account")
            form.add_error("sms_code", _outcome_message("sms", count_wrong_code(request)))
    return _code_step_page(request, form, status=400 if form.errors else 200)


@never_cache
@require_POST
def link_code_resend(request: HttpRequest) -> HttpResponse:
    step = link_step(request)
    if step is None:
        return redirect("participants:account-link")
    decision = ratelimit.spend(link_code_budget(), step.link)
    if not decision:
        messages.error(request, link_code_refusal(decision))
    else:
        restart_link_code(request)
        if step.participant is not None:
            # Its own budget may refuse (the answer must not show it): the code then simply does not come.
            account.resend_account_code(participant=step.participant)
        messages.success(request, _("A new code is on its way. The old code no longer works."))
    return redirect("participants:account-code")
