"""Headers Django's SecurityMiddleware and django-csp do not set, and the styled 404 under DEBUG."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound
from django.template import loader
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils.cache import patch_cache_control

PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=(), browsing-topics=()"
)


# The steps a link's finder can take without the phone, and the method that does a step's work: an
# invitation link's, up to its SMS code, a link from the account-link form's, up to the account's, and a
# weekly link's help request.
EVEN_LINK_STEPS = {
    "participants:invitation": "GET",
    "participants:invitation-decline": "GET",
    "participants:enrol": "POST",
    "participants:enrol-open": "POST",
    "participants:account-link-open": "GET",
    "participants:account-link-confirm": "POST",
    "participants:account-code": "POST",
    "participants:account-code-resend": "POST",
    # Asking for help on a weekly link: queued for a participant, checked no further for anyone else.
    "scores:help": "POST",
}


class EvenLinkStepsMiddleware:
    """Answer each step of a link before its SMS code no sooner than settings.LINK_STEP_SECONDS after it
    came in.

    The pages read the same whatever the link's person did, but the work behind them did not: an invitation
    link of someone who stopped texts a decoy code stored nowhere and checks no guess, and a decoy from the
    account-link form (stopped, declined, or moved to another address) uses up nothing, writes no code and
    checks none, where a real link does all that; a weekly link's help request is queued only for someone
    who still takes part. Each answered sooner for the one than for the other, which whoever holds the link,
    the employer with every work mailbox included, could measure (review 11). Outermost, so the session's
    save waits too; the floor is far above either path's work.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and EVEN_LINK_STEPS.get(match.view_name) == request.method:
            left = float(settings.LINK_STEP_SECONDS) - (time.monotonic() - started)
            if left > 0:
                time.sleep(left)
        return response


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        match = self.resolved(request)
        if match is not None and "token" in match.kwargs:
            # A page whose address holds a link token sends no Referer at all: under the site's same-origin
            # policy its CSS, images and favicon requests would carry the token (and the thanks page's mark)
            # to whatever proxy logs Referers. Django's SecurityMiddleware only sets the default when unset.
            response.headers["Referrer-Policy"] = "no-referrer"
        elif match is not None and "number" in match.kwargs:
            # A dossier page: its number is no token, but in a proxy's Referer log it would tie a staff
            # workstation to a dossier outside the access log. Only the origin goes ("no-referrer" would make
            # the browser post the page's forms with "Origin: null", which Django's CSRF check refuses:
            # tests/browser/test_casemanager_journey.py).
            response.headers["Referrer-Policy"] = "strict-origin"
        if self.is_personal(request):
            # Pages behind a staff login or a participant's session are personal: never kept by a shared
            # browser cache or a proxy, and never shown again from the back button after logging out.
            patch_cache_control(response, no_store=True, private=True)
        return response

    @staticmethod
    def resolved(request: HttpRequest) -> ResolverMatch | None:
        """The request's URL pattern match, resolved here when the request was not (a redirect, a 404)."""
        match: ResolverMatch | None = getattr(request, "resolver_match", None)
        if match is None:
            for path in (request.path_info, request.path_info + "/"):
                try:
                    return resolve(path)
                except Resolver404:
                    continue
        return match

    @staticmethod
    def is_personal(request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return True
        session = getattr(request, "session", None)
        # Any session at all (a participant's, a half-finished login): its pages are that visitor's alone.
        return session is not None and not session.is_empty()


class StyledNotFoundMiddleware:
    """Under DEBUG too, a missing page answers with our own 404 page, not Django's technical one.

    Django's debug 404 lists every URL pattern of the site (the staff and admin paths among them) to
    whoever mistypes an address on a development server that others can reach, and looks like a crash to a
    newcomer trying the demo. Without DEBUG Django renders templates/404.html itself and this does nothing.
    Errors other than 404 keep Django's debug pages: a developer needs the traceback of a 500.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and getattr(request, "resolver_match", None) is None
        ):
            # No URL pattern matched: the answer is Django's technical page listing the patterns.
            return self.not_found(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if settings.DEBUG and isinstance(exception, Http404):
            # A view's Http404: under DEBUG Django would show its technical page with the exception text.
            return self.not_found(request)
        return None

    @staticmethod
    def not_found(request: HttpRequest) -> HttpResponse:
        return HttpResponseNotFound(loader.render_to_string("404.html", request=request))
