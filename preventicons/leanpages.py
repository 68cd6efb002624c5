"""Pages served without the session, login, OTP, messages and CSRF middleware: the weekly tap's pages.

On Monday morning most requests are someone tapping a smiley: the page, the POST and the thanks. Those pages
read no session, know no user, show no messages and need no CSRF cookie (the token in the URL is their
authority: scores.views). The middleware that serve staff and account pages would still do their work on
every tap (a session store, a lazy user, an OTP wrapper, a message storage, a CSRF check and cookie) and
could set a cookie or a ``Vary: Cookie``. So a view marked ``@lean_page`` is called straight from
``LeanPageMiddleware``, which sits after the security-header middleware (those headers still apply) and
before the session middleware; it does itself the things the skipped middleware did that these pages
need: the language, ``X-Frame-Options`` and the host check; an error in such a view is turned into its error
page here, in the page's language and with those headers.

The language comes from the URL (``?lang=en``), so switching works in a browser or in-app view that refuses
cookies, and setting it writes nothing; without one it is the language cookie a visitor already has, or the
browser's Accept-Language, as everywhere else (Django's LocaleMiddleware rules).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.core.handlers.exception import response_for_exception
from django.core.signals import setting_changed
from django.dispatch import receiver
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


def keep_language(url: str, code: str | None) -> str:
    """``url`` carrying the language ``code`` the URL chose (chosen_language), so the next page keeps it."""
    if code is None:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({LANGUAGE_PARAMETER: code})}"


def language_links(kept: Mapping[str, str]) -> list[dict[str, str]]:
    """For each other language: its code, its own name and this page's address in it (a link, no form).

    The address keeps the page's query parameters in ``kept`` (the thanks page's mark) and sets ``lang``.
    """
    current = translation.get_language()
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
    kept = {key: str(value) for key, value in request.GET.items() if key != LANGUAGE_PARAMETER}
    return {"language_links": lambda: language_links(kept)}


# --- pages rendered once per language ------------------------------------------------------------------
_rendered: dict[tuple[Any, ...], str] = {}


@receiver(setting_changed)
def _forget_rendered_pages(**_kwargs: Any) -> None:
    """A settings change (override_settings in a test) draws the pages anew: they hold what settings chose."""
    _rendered.clear()


def slotted_page(key: tuple[Any, ...], render: Callable[[], str], slots: Mapping[str, str]) -> str:
    """A page rendered once per ``key`` (which must name the language) with placeholders, filled per request.

    For pages whose only per-request content is a few URL-safe values (the weekly link's token, the
    thanks page's mark): ``render`` draws the page with each slot's placeholder where the value goes, and
    every later request only replaces the placeholders (``slots``: placeholder -> value, already escaped).
    Under DEBUG every request renders, so an edited template shows at once.
    """
    page = None if settings.DEBUG else _rendered.get(key)
    if page is None:
        page = render()
        if not settings.DEBUG:
            _rendered[key] = page
    for placeholder, value in slots.items():
        page = page.replace(placeholder, value)
    return page


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
            try:
                # What CommonMiddleware did for these pages: refuse a Host outside ALLOWED_HOSTS (400).
                request.get_host()
                response = match.func(request, *match.args, **match.kwargs)
            except Exception as exc:
                # Turned into the error page here, inside the language and before _finish: left to the
                # handler above, the 500 came in the thread's previous language without X-Frame-Options.
                response = response_for_exception(request, exc)
        return self._finish(response, language)

    @staticmethod
    def _finish(response: HttpResponse, language: str) -> HttpResponse:
        # What LocaleMiddleware, XFrameOptionsMiddleware and CommonMiddleware would have added (without a
        # Content-Length gunicorn sends the page chunked).
        if not response.streaming:
            response.headers.setdefault("Content-Length", str(len(response.content)))
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY"))
        return response
