"""Which client a request came from: the socket's address, or what our own proxies forward, never more."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone

from participants.models import Organisation
from preventicons.clients import client_address
from scores import rounds
from tests.scores.people import make_link, make_participant

PROXY = "10.0.0.2"


def address(forwarded: str | None, *, proxies: int, settings: Any) -> str:
    settings.PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(request)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        # No proxy of ours: whatever the header says is the client's own word.
        (0, "198.51.100.7", PROXY),
        (0, None, PROXY),
        # One proxy appends the address it was connected from; entries to its left were sent by the client.
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "203.0.113.66, 198.51.100.7", "198.51.100.7"),
        (1, " 203.0.113.66 ,198.51.100.7 ", "198.51.100.7"),
        # A load balancer before the TLS proxy: the client is second from the right.
        (2, "203.0.113.66, 198.51.100.7, 10.0.0.9", "198.51.100.7"),
        (1, "2001:DB8::0001", "2001:db8::1"),
        # Fewer entries than proxies, or not an address where our proxy writes one: the socket's address.
        (1, None, PROXY),
        (1, "", PROXY),
        (2, "198.51.100.7", PROXY),
        (1, "203.0.113.66, not-an-address", PROXY),
        (1, "198.51.100.7, unknown", PROXY),
    ],
)
def test_the_client_address(settings: Any, proxies: int, forwarded: str | None, expected: str) -> None:
    assert address(forwarded, proxies=proxies, settings=settings) == expected


@pytest.mark.django_db
@pytest.mark.usefixtures("empty_cache")
def test_behind_the_proxy_one_scanner_does_not_lock_out_the_colleagues(
    settings: Any, organisation: Organisation
) -> None:
    # Every request comes from the proxy's socket; only the forwarded address tells the clients apart.
    settings.PROXY_COUNT = 1
    participant = make_participant(organisation)
    _link, token = make_link(participant, week=rounds.week_of(timezone.now()))
    scanner = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.66")
    colleague = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.7")
    for _ in range(settings.UNKNOWN_LINKS_PER_HOUR):
        assert scanner.get("/w/" + "x" * 43 + "/").status_code == 404

    assert scanner.get("/w/" + "y" * 43 + "/").status_code == 429
    # The colleague's own mistyped link is theirs to count, not the scanner's; their real one works.
    assert colleague.get("/w/" + "y" * 43 + "/").status_code == 404
    assert colleague.get(f"/w/{token}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("empty_cache")
def test_without_a_proxy_a_made_up_forwarded_address_does_not_escape_the_limit(
    settings: Any,
) -> None:
    settings.PROXY_COUNT = 0
    for n in range(settings.UNKNOWN_LINKS_PER_HOUR):
        spoofing = Client(REMOTE_ADDR="203.0.113.66", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        assert spoofing.get("/w/" + "x" * 43 + "/").status_code == 404

    fresh_claim = Client(REMOTE_ADDR="203.0.113.66", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert fresh_claim.get("/w/" + "y" * 43 + "/").status_code == 429
