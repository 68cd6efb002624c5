"""Pages served without the session, login, OTP, messages and CSRF middleware: the weekly tap's pages.

On Monday morning most requests are someone tapping a smiley: the page, the POST and the thanks. Those pages
read no session, know no user, show no messages and need no CSRF cookie (the token in the URL is their
authority: scores.views). The middleware that serve staff and account pages would still do their work on
every tap (a session store, a lazy user, an OTP wrapper, a message storage, a CSRF check and cookie) and
could set a cookie or a ``Vary: Cookie``. So a view marked ``@lean_page`` is called straight from
``LeanPageMiddleware``, which sits after the security-header middleware (those headers still apply) and
before the session middleware; it does itself the two things the skipped middleware did that these pages
need: the language, and ``X-Frame-Options``.

The language comes from the URL (``?lang=en``), so switching works in a browser or in-app view that refuses
cookies, and setting it writes nothing; without one it is the language cookie a visitor already has, or the
browser's Accept-Language, as everywhere else (Django's LocaleMiddleware rules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.cache import patch_vary_headers

# The query parameter that names the page's language: one of settings.LANGUAGES, anything else is ignored.
LANGUAGE_PARAMETER = "lang"
_LEAN = "lean_page"

View = TypeVar("View", bound=Callable[..., HttpResponse])


def lean_page(view: View) -> View:
    """Mark a view to be served by LeanPageMiddleware: it must not use a session, a user or messages."""
    setattr(view, _LEAN, True)
    return view


def chosen_language(request: HttpRequest) -> str | None:
    """The language the URL asks for (``?lang=``), when it is one we offer; else None."""
    code = request.GET.get(LANGUAGE_PARAMETER, "")
    return code if code in dict(settings.LANGUAGES) else None


def page_language(request: HttpRequest) -> str:
    """The URL's language, else the language cookie or Accept-Language (as LocaleMiddleware decides)."""
    return chosen_language(request) or translation.get_language_from_request(request)


def keep_language(url: str, request: HttpRequest) -> str:
    """``url`` carrying the language the URL of ``request`` chose, so the next page keeps it."""
    code = chosen_language(request)
    if code is None:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({LANGUAGE_PARAMETER: code})}"


def language_links(request: HttpRequest) -> list[dict[str, str]]:
    """For each other language: its code, its own name and this page's address in it (a link, no form).

    The address keeps the page's other query parameters (the thanks page's mark) and sets ``lang``.
    """
    current = translation.get_language()
    kept = {key: value for key, value in request.GET.items() if key != LANGUAGE_PARAMETER}
    links = []
    for code, _label in settings.LANGUAGES:
        if code == current:
            continue
        query = urlencode({**kept, LANGUAGE_PARAMETER: code})
        name = translation.get_language_info(code)["name_local"]
        links.append({"code": code, "name": name, "href": f"?{query}"})
    return links


def context(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``language_links`` on a lean page (computed only if a template shows them)."""
    if not getattr(request, _LEAN, False):
        return {}
    return {"language_links": lambda: language_links(request)}


class LeanPageMiddleware:
    """Serves ``@lean_page`` views directly; every other request goes on through the middleware below."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        if not getattr(match.func, _LEAN, False):
            return self.get_response(request)
        # As Django's handler does, so that what looks at the request afterwards (the security headers'
        # "does this path carry a token") finds the match instead of resolving again.
        request.resolver_match = match
        setattr(request, _LEAN, True)
        language = page_language(request)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = match.func(request, *match.args, **match.kwargs)
        return self._finish(response, language)

    @staticmethod
    def _finish(response: HttpResponse, language: Any) -> HttpResponse:
        # What LocaleMiddleware and XFrameOptionsMiddleware would have added.
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY"))
        return response
