"""The weekly smiley page: five buttons in one form, the thanks, and the explanations for a dead link.

Nothing here opens a session or writes anything but the score row (scores.submission): the account is
reached through its own e-mailed link, in a separate request.

What a page shows never depends on a score unless the request proves it comes from the tap that recorded
it. The weekly link sits in a mailbox or on a phone that others may open (the employer's IT, a mail
scanner that fetches and keeps the page, whoever the message was forwarded to): opening it must not tell
whether this week was answered, or how any week went. So:

- the smiley page (GET) is the same for everyone, with the same quiet offer to talk to someone;
- the tap (POST) records and answers 303 to the thanks page (Post/Redirect/Get: a reload cannot post again),
  the same for a first and a repeated tap;
- the thanks page offers contact after a hard week only when its URL carries the short-lived, signed mark
  that the POST which recorded this week's score adds; without it, it thanks like any other.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from redis.exceptions import RedisError

from participants.account import RATE_WINDOW_SECONDS
from preventicons import crypto
from preventicons.clients import client_address
from scores import submission
from scores.submission import LinkState
from scores.wellbeing import should_offer_help

logger = logging.getLogger(__name__)

# Unknown tokens per client per hour before their pages answer 429 instead of 404: guessing a 256-bit token
# is hopeless anyway, this keeps a scanner's requests cheap. Only unknown links are counted or refused, so a
# colleague behind the same office address still opens their own link, and a known link costs no cache trip.
UNKNOWN_LINKS_PER_REQUESTER_PER_HOUR = 30
# How long the thanks page's "this tap recorded the score" mark holds: long enough to read the page and
# come back to it, short enough that a copied thanks URL soon tells no more than the link itself.
RECORDED_MARK_MAX_AGE = 60 * 60

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


def _counter_key(request: HttpRequest) -> str:
    requester = crypto.keyed_hash("blind_index", "weekly-link-requester", client_address(request))
    return f"weekly-link:unknown:{requester}"


def _count_unknown(request: HttpRequest) -> int:
    """Count one more unknown link for this client in the window; returns the count, 0 when it cannot."""
    key = _counter_key(request)
    try:
        if cache.add(key, 1, timeout=RATE_WINDOW_SECONDS):
            return 1
        return int(cache.incr(key))
    except ValueError:
        # The window ended between add() and incr(): this lookup opens a new one next time.
        return 0
    except (RedisError, OSError) as exc:
        # Fails open: with the cache (Redis) down, the limit is off, and known links never needed it.
        logger.warning(
            "rate limit cache unreachable (%s): unknown weekly link not counted", type(exc).__name__
        )
        return 0


def _account_links(token: str | None = None) -> dict[str, str]:
    links = {"account": reverse("participants:account-link"), "stop": reverse("scores:stop")}
    if token is not None:
        links["help"] = reverse("scores:help", kwargs={"token": token})
    return links


def _problem(request: HttpRequest, state: LinkState) -> HttpResponse:
    if state == LinkState.UNKNOWN and _count_unknown(request) > UNKNOWN_LINKS_PER_REQUESTER_PER_HOUR:
        response = render(request, "scores/too_many.html", status=429)
        response["Retry-After"] = str(RATE_WINDOW_SECONDS)
        return response
    status = {LinkState.UNKNOWN: 404, LinkState.EXPIRED: 410, LinkState.STOPPED: 410}[state]
    return render(
        request, "scores/link_problem.html", {"state": state.value, **_account_links()}, status=status
    )


def _recorded_signer(token: str) -> signing.TimestampSigner:
    # Salted with the token: a mark made for one link means nothing on another.
    return signing.TimestampSigner(salt=f"scores.week.recorded:{token}")


def _recorded_by_this_tap(request: HttpRequest, token: str) -> bool:
    mark = request.GET.get("recorded", "")
    try:
        return _recorded_signer(token).unsign(mark, max_age=RECORDED_MARK_MAX_AGE) == "1"
    except signing.BadSignature:  # also SignatureExpired
        return False


# No CSRF check: the form's authority is the unguessable token in its URL, not a cookie that a forged
# cross-site request could ride on; and one tap must work in a browser or in-app view that refuses cookies.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def week(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the five smileys; POST records the chosen one and redirects to the thanks."""
    if request.method == "POST":
        return _submit(request, token)
    link = submission.find_weekly_link(token=token)
    state = submission.link_state(link)
    if state != LinkState.OPEN or link is None:
        return _problem(request, state)
    return render(request, "scores/week.html", {"smileys": SMILEYS, **_account_links(token)})


def _submit(request: HttpRequest, token: str) -> HttpResponse:
    try:
        value = int(request.POST.get("value", ""))
        result = submission.submit_score(token=token, value=value)
    except ValueError:
        # An unknown link with a bad value says "unknown link": the value is checked before the lookup.
        if submission.find_weekly_link(token=token) is None:
            return _problem(request, LinkState.UNKNOWN)
        return render(
            request,
            "scores/week.html",
            {"smileys": SMILEYS, "invalid": True, **_account_links(token)},
            status=400,
        )
    except submission.SubmissionRefused as refused:
        return _problem(request, refused.state)
    thanks = reverse("scores:thanks", kwargs={"token": token})
    if result.recorded:
        thanks += "?" + urlencode({"recorded": _recorded_signer(token).sign("1")})
    return HttpResponseRedirect(thanks, status=303)


@never_cache
@require_GET
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    """The thanks after a tap; it offers contact after a hard week only to the tap that recorded the score."""
    link = submission.find_weekly_link(token=token)
    state = submission.link_state(link)
    recorded = _recorded_by_this_tap(request, token)
    # A tap that recorded just before the week closed is still thanked after it.
    if link is None or not (state == LinkState.OPEN or (state == LinkState.EXPIRED and recorded)):
        return _problem(request, state)
    pseudonym = link.participant.pseudonym
    offer_help = recorded and pseudonym is not None and should_offer_help(pseudonym=pseudonym, week=link.week)
    return render(request, "scores/thanks.html", {"offer_help": offer_help, **_account_links(token)})


@require_GET
def stop(request: HttpRequest) -> HttpResponse:
    """How to stop taking part: through the account, which asks for both codes first."""
    return render(request, "scores/stop.html", _account_links())
