"""Which client a request came from, for rate limits: the socket's address, or the proxies' word for it.

Behind the TLS-terminating proxy production requires, every request reaches gunicorn from the proxy's own
address; keyed on ``REMOTE_ADDR``, the rate limits would then count all participants as one client, and
thirty truncated links from anyone would lock everybody out of their weekly smileys for an hour.

``PREVENTICONS_PROXY_COUNT`` says how many proxies of our own stand in front of the app. Each appends the
address it was connected from to ``X-Forwarded-For``, so the client is the entry that many places from the
right; anything further left was written by the client and is not believed. With 0 (the default, for an
app that listens to clients directly) the header is ignored altogether: believing it there would let anyone
pick a fresh "address" per request and walk past every limit.

The address is used only as a rate-limit key, through a keyed hash: it is never stored or logged.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's IP address as the trusted proxies report it, or the socket's when there are none."""
    socket_address = request.META.get("REMOTE_ADDR", "")
    hops = settings.PROXY_COUNT
    if hops <= 0:
        return socket_address
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:
        # Fewer entries than proxies: the request did not come through all of them (a health check on
        # the inside, a misconfiguration). The nearest sender is all we know.
        return socket_address
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        # Our own proxy writes an address; anything else in that place means the header is not what we
        # think, and the socket's address is the safer key.
        return socket_address
