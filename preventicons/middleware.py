"""Headers Django's SecurityMiddleware and django-csp do not set."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=(), browsing-topics=()"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if self.is_personal(request):
            # Pages behind a staff login or a participant's session are personal: never kept by a shared
            # browser cache or a proxy, and never shown again from the back button after logging out.
            patch_cache_control(response, no_store=True, private=True)
        return response

    @staticmethod
    def is_personal(request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return True
        session = getattr(request, "session", None)
        # Any session at all (a participant's, a half-finished login): its pages are that visitor's alone.
        return session is not None and not session.is_empty()
