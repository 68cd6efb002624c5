"""Asking for contact with a casemanager, from the thank-you page of a weekly link.

The weekly link's token says who is asking, as it does for the smiley itself; nothing opens a session. The
request becomes a contact consent on the participant's side and a dossier on the casefiles side
(scores.wellbeing.request_help); the employer is told nothing.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from scores import submission, wellbeing
from scores.submission import LinkState


def _channels() -> list[tuple[str, str]]:
    labels = {"phone": _("By phone"), "email": _("By e-mail")}
    return [(channel, labels[channel]) for channel in wellbeing.CONTACT_CHANNELS]


# No CSRF check, as for the smileys (scores.views.week): the token in the URL is the authority.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def help_request(request: HttpRequest, token: str) -> HttpResponse:
    """GET explains what happens and asks for consent and a channel; POST records the request."""
    link = submission.find_weekly_link(token=token)
    state = submission.link_state(link)
    if link is None or state != LinkState.OPEN:
        status = 404 if state == LinkState.UNKNOWN else 410
        links = {"account": reverse("participants:account-link"), "stop": reverse("scores:stop")}
        return render(request, "scores/link_problem.html", {"state": state.value, **links}, status=status)
    context: dict[str, object] = {
        "channels": _channels(),
        "consent_version": wellbeing.CONTACT_CONSENT_VERSION,
    }
    if request.method == "POST":
        channel = request.POST.get("channel", "")
        errors: list[str] = []
        if request.POST.get("consent") != "yes":
            errors.append(_("Tick the box to agree that a casemanager contacts you."))
        if channel not in wellbeing.CONTACT_CHANNELS:
            errors.append(_("Choose how you would like to be contacted."))
        if not errors:
            try:
                result = wellbeing.request_help(
                    participant=link.participant,
                    channel=channel,
                    consent_text_version=wellbeing.CONTACT_CONSENT_VERSION,
                )
            except wellbeing.HelpRefused as refused:
                errors.append(str(refused))
            else:
                return render(request, "scores/help_done.html", {"channel": result.channel})
        context.update(errors=errors, chosen=channel)
        return render(request, "scores/help.html", context, status=400)
    return render(request, "scores/help.html", context)
