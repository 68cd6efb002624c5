"""The participant's sign-off page, /me/sign-off/: behind both factors, like every account page.

Per ended trajectory (shown by its kind and the week it ended, never by a reference or dossier number):
"it took place" or "it did not", an optional rating and an optional remark for the employer. Sending
queues the sign-off sealed (notary.signoffs); the page says it is noted, and nothing else is written.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from notary import signoffs
from participants.models import Participant
from participants.views.account import participant_required


@require_http_methods(["GET", "POST"])
@participant_required
def sign_off(request: HttpRequest, participant: Participant) -> HttpResponse:
    context: dict[str, object] = {
        "ratings": signoffs.RATINGS,
        "max_remark_length": signoffs.MAX_REMARK_LENGTH,
    }
    if request.method == "POST":
        sent = {name: request.POST.get(name, "") for name in ("choice", "took_place", "rating", "remark")}
        try:
            signoffs.queue_sign_off(participant=participant, **sent)
        except signoffs.SignOffRefused as refused:
            context.update(errors=refused.messages, sent=sent)
            context["open"] = signoffs.open_sign_offs(participant=participant)
            return render(request, "notary/sign_off.html", context, status=400)
        messages.success(
            request,
            _("Noted, thank you. Your sign-off is recorded anonymously within the hour."),
        )
        return redirect("notary:sign-off")
    context["open"] = signoffs.open_sign_offs(participant=participant)
    return render(request, "notary/sign_off.html", context)
