"""The weekly smiley page: five buttons in one form, the thanks, and the explanations for a dead link.

Nothing here opens a session or writes anything but the score row (scores.submission): the account is
reached through its own e-mailed link, in a separate request.

Every page here answers alike for everyone the link could belong to. The weekly link sits in a mailbox or on
a phone that others may open (the employer's IT, a mail scanner that fetches and keeps the page, whoever the
message was forwarded to): opening it or tapping on it must not tell whether this person still takes part
(active, paused, inactive or stopped), whether this week was answered, or how any week went. So:

- the smiley page (GET) is the same for everyone whose link is of the open week, with the same quiet offer
  to talk to someone; a link of an earlier week answers exactly like a link we never made (404);
- the tap (POST) records (for an active participant) or records nowhere (for anyone else: they are thanked
  all the same) and answers 303 to the thanks page (Post/Redirect/Get), carrying a short-lived sealed mark
  with the value just tapped, the same for a first, a repeated and a refused tap;
- the thanks page offers contact after a hard week only from the value in that mark, never from a score
  read back from the database (which would tell a later visitor how an earlier week went).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote_plus, urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from preventicons import crypto, ratelimit
from preventicons.leanpages import (
    chosen_language,
    keep_language,
    language_links,
    lean_page,
    slotted_page,
)
from scores import submission
from scores.models import WeeklyLink
from scores.submission import LinkState, TapLink

logger = logging.getLogger(__name__)

# How long the thanks page's mark (the value just tapped) holds: long enough to read the page and come back
# to it, short enough that a copied thanks URL soon tells no more than the link itself.
TAPPED_MARK_MAX_AGE = 60 * 60
# The query parameter of the thanks URL that carries the mark.
TAPPED_MARK = "tapped"

# Which emotion a number means lives here, not in the database. Dutch: Heel slecht ... Heel goed.
SMILEYS = [
    (value, label, f"scores/smiley-{value}.svg")
    for value, label in [
        (1, _("Very bad")),
        (2, _("Bad")),
        (3, _("So-so")),
        (4, _("Good")),
        (5, _("Very good")),
    ]
]


def _account_links(request: HttpRequest, token: str | None = None) -> dict[str, str]:
    return _links(chosen_language(request), token)


def _links(language: str | None, token: str | None) -> dict[str, str]:
    # The help and stop pages are lean pages too: they keep a language chosen in the URL (?lang=).
    links = {
        "account": reverse("participants:account-link"),
        "stop": keep_language(reverse("scores:stop"), language),
    }
    if token is not None:
        links["help"] = keep_language(reverse("scores:help", kwargs={"token": token}), language)
    return links


# Placeholders of the pages drawn once per language (leanpages.slotted_page): letters only, so that URL
# quoting and HTML escaping leave them as they are, and the token or mark replaces them afterwards.
_LINK_SLOT = "linkSLOTqzxv"
_MARK_SLOT = "markSLOTqzxv"


def _slotted(
    request: HttpRequest, template: str, token: str, *, mark: str | None = None, offer_help: bool = False
) -> HttpResponse:
    """The smiley page or the thanks, drawn once per language and filled with this link's token and mark.

    Only the token (ours: URL-safe base64, checked by the lookup) and the mark differ between two people's
    pages, so they are the same page apart from those: rendering the template anew for every tap was most
    of a page's cost (issue #17).
    """
    language, chosen = translation.get_language(), chosen_language(request)

    def render() -> str:
        kept = {TAPPED_MARK: _MARK_SLOT} if mark is not None else {}
        context = {
            "smileys": SMILEYS,
            "offer_help": offer_help,
            "language_links": language_links(kept),
            **_links(chosen, _LINK_SLOT),
        }
        return render_to_string(template, context)

    slots = {_LINK_SLOT: token}
    if mark is not None:
        slots[_MARK_SLOT] = escape(quote_plus(mark))
    key = (template, language, chosen, mark is not None, offer_help)
    return HttpResponse(slotted_page(key, render, slots))


def answers_as_open(link: WeeklyLink | TapLink | None) -> bool:
    """Whether this link's pages answer as the open week's, for everyone it could belong to, alike.

    Only the week decides, never the participant: a link of the open week shows its pages to an active,
    paused, inactive or stopped participant alike (what they can do there is decided out of sight), and a
    link of an earlier week answers like a link we never made, so an old message tells nothing either.
    """
    return link is not None and link.expires_at > timezone.now()


def unknown_link(request: HttpRequest) -> HttpResponse:
    """The one answer for a link we do not know or whose week is over: 404, or 429 for a scanner.

    Counted against the client in the budget every token page shares (preventicons.ratelimit); a link of
    the open week never comes here, so it opens whatever else this client opened.
    """
    decision = ratelimit.count_unknown_link(request)
    if not decision:
        response = render(request, "scores/too_many.html", status=429)
        response["Retry-After"] = str(decision.retry_after)
        return response
    return render(request, "scores/link_problem.html", _account_links(request), status=404)


def _mark_binding(token: str) -> crypto.Binding:
    # Bound to the token (hashed, as everywhere else): a mark made for one link opens on no other.
    return crypto.Binding("field", "scores_thanks", "tapped", crypto.hash_token(token))


def tapped_mark(*, token: str, value: int) -> str:
    """The thanks URL's mark: the value just tapped and when, sealed, so the URL itself does not show it."""
    return crypto.seal(f"{value}:{int(time.time())}", _mark_binding(token))


def tapped_value(*, token: str, mark: str) -> int | None:
    """The value in a mark made for this token within TAPPED_MARK_MAX_AGE, or None."""
    if not mark:
        return None
    try:
        value, stamp = crypto.open_sealed(mark, _mark_binding(token)).split(":")
        if not 0 <= time.time() - int(stamp) <= TAPPED_MARK_MAX_AGE:
            return None
        return int(value)
    except (crypto.DecryptionError, ValueError):
        return None


def _thanks_url(request: HttpRequest, token: str, value: int) -> str:
    mark = tapped_mark(token=token, value=value)
    url = reverse("scores:thanks", kwargs={"token": token}) + "?" + urlencode({TAPPED_MARK: mark})
    return keep_language(url, chosen_language(request))


# No CSRF check: the form's authority is the unguessable token in its URL, not a cookie that a forged
# cross-site request could ride on; and one tap must work in a browser or in-app view that refuses cookies.
# Lean: no session, user, messages or CSRF middleware (preventicons.leanpages); one lookup per request.
@lean_page
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def week(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the five smileys; POST records the chosen one and redirects to the thanks."""
    link = submission.find_tap_link(token=token)
    if not answers_as_open(link):
        return unknown_link(request)
    if request.method == "POST":
        return _submit(request, token, link)
    return _slotted(request, "scores/week.html", token)


def _submit(request: HttpRequest, token: str, link: TapLink | None) -> HttpResponse:
    try:
        value = int(request.POST.get("value", ""))
        submission.submit_to(link, value=value)
    except ValueError:
        return render(
            request,
            "scores/week.html",
            {"smileys": SMILEYS, "invalid": True, **_account_links(request, token)},
            status=400,
        )
    except submission.SubmissionRefused as refused:
        # A participant who no longer takes part (stopped, inactive, unlisted) is thanked exactly like one
        # who does, and nothing is recorded: whoever holds their link must not learn that they stopped.
        # (Unknown and expired links never get here: the week answered 404 before.)
        if refused.state != LinkState.STOPPED:
            return unknown_link(request)
    # The same redirect for a first, a repeated and a refused tap: whether the week was already answered,
    # or whether the person still takes part, never shows in the answer.
    return HttpResponseRedirect(_thanks_url(request, token, value), status=303)


@lean_page
@never_cache
@require_GET
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    """The thanks after a tap; it offers contact only when the value just tapped (in the mark) is low."""
    tapped = tapped_value(token=token, mark=request.GET.get(TAPPED_MARK, ""))
    # A tap just before the week closed is still thanked after it (the mark proves the tap, not the link).
    link = submission.find_tap_link(token=token)
    if link is None or not (answers_as_open(link) or tapped is not None):
        return unknown_link(request)
    # Only the value of this tap decides, never an earlier week's score: a later visitor of a copied thanks
    # URL, or whoever taps a 3 on someone's link, must not learn how last week went.
    offer_help = tapped is not None and tapped <= settings.HELP_SCORE_THRESHOLD
    mark = request.GET.get(TAPPED_MARK) if tapped is not None else None
    return _slotted(request, "scores/thanks.html", token, mark=mark, offer_help=offer_help)


@lean_page
@require_GET
def stop(request: HttpRequest) -> HttpResponse:
    """How to stop taking part: through the account, which asks for both factors first."""
    return render(request, "scores/stop.html", _account_links(request))
