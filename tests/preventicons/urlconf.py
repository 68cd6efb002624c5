"""The URLconf's token routes, found by walking it, so a token pattern added later is covered by the tests."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver


def token_routes(patterns: list[URLPattern | URLResolver] | None = None, prefix: str = "") -> list[str]:
    """Every URL pattern whose route takes a ``token``, as a path with the token spelled ``<token>``."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += token_routes(pattern.url_patterns, route)
        elif "<str:token>" in route or "<token>" in route:
            found.append("/" + route.replace("<str:token>", "<token>"))
    return found


TOKEN_ROUTES = token_routes()
