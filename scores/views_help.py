"""Asking for contact with a casemanager, from the thank-you page of a weekly link.

The weekly link's token says who is asking, as it does for the smiley itself; nothing opens a session. The
request becomes a contact consent on the participant's side and a dossier on the casefiles side
(scores.wellbeing.request_help); the employer is told nothing.

Like the smiley page, this page answers alike for everyone a link of the open week could belong to: a
stopped (or inactive, or unlisted) person's request is answered as accepted and recorded nowhere, so whoever
holds the link learns nothing about whether they still take part. The same form also opens from the
account (both factors proven), where the signals from earlier weeks are offered (scores.wellbeing).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from participants.models import Participant
from participants.views.account import participant_required
from preventicons.leanpages import lean_page
from scores import submission, wellbeing
from scores.views import answers_as_open, unknown_link


def _channels() -> list[tuple[str, str]]:
    labels = {"phone": _("By phone"), "email": _("By e-mail")}
    return [(channel, labels[channel]) for channel in wellbeing.CONTACT_CHANNELS]


def _help_page(
    request: HttpRequest, participant: Participant, *, refusal_reads_as_accepted: bool
) -> HttpResponse:
    context: dict[str, object] = {
        "channels": _channels(),
        "consent_version": wellbeing.CONTACT_CONSENT_VERSION,
        # A weekly link's form needs no CSRF cookie (its token is the authority); the account's does.
        "with_csrf": not refusal_reads_as_accepted,
    }
    if request.method != "POST":
        return render(request, "scores/help.html", context)
    channel = request.POST.get("channel", "")
    errors: list[str] = []
    if request.POST.get("consent") != "yes":
        errors.append(_("Tick the box to agree that a casemanager contacts you."))
    if channel not in wellbeing.CONTACT_CHANNELS:
        errors.append(_("Choose how you would like to be contacted."))
    if not errors:
        try:
            wellbeing.request_help(
                participant=participant,
                channel=channel,
                consent_text_version=wellbeing.CONTACT_CONSENT_VERSION,
            )
        except wellbeing.HelpRefused as refused:
            # The channel was checked above, so a refusal is about who they are: someone who no longer
            # takes part. On a weekly link they read what everyone reads, and nothing is recorded; behind
            # both factors they may read why.
            if not refusal_reads_as_accepted:
                errors.append(str(refused))
    if errors:
        context.update(errors=errors, chosen=channel)
        return render(request, "scores/help.html", context, status=400)
    return render(request, "scores/help_done.html", {"channel": channel})


# No CSRF check, as for the smileys (scores.views.week): the token in the URL is the authority. A lean page
# like them (preventicons.leanpages): no session, user or messages, and the language may come from the URL.
@lean_page
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def help_request(request: HttpRequest, token: str) -> HttpResponse:
    """GET explains what happens and asks for consent and a channel; POST records the request."""
    link = submission.find_weekly_link(token=token)
    if link is None or not answers_as_open(link):
        return unknown_link(request)
    return _help_page(request, link.participant, refusal_reads_as_accepted=True)


@require_http_methods(["GET", "POST"])
@participant_required
def account_help(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Asking for contact from the account (both factors proven), where the drop signals are offered."""
    return _help_page(request, participant, refusal_reads_as_accepted=False)
