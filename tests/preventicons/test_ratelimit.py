"""The one rate limiter (preventicons.ratelimit): exact under parallel requests, one budget for every token
page, links we made never refused, and closed when Redis is away."""

from __future__ import annotations

import datetime as dt
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from participants.models import AccountLink, Invitation, Participant
from preventicons import crypto, ratelimit
from scores import rounds
from tests.conftest import ALL_DATABASES
from tests.scores.people import make_link, make_participant

pytestmark = pytest.mark.usefixtures("empty_cache")

# Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
REDIS_AWAY = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
}


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC), tick=False) as traveller:
        yield traveller


def parallel(count: int, action: Any) -> list[Any]:
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        start.wait(timeout=10)
        results[index] = action()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# --- the limiter itself -------------------------------------------------------------------------------


def test_a_budget_allows_exactly_its_limit_under_parallel_requests() -> None:
    budget = ratelimit.Budget("test-parallel", 5, 3600)

    decisions = parallel(16, lambda: ratelimit.spend(budget, "someone"))

    assert sum(1 for decision in decisions if decision.allowed) == 5
    # Refusals were taken back: the window holds the five, and the next is refused too.
    assert not ratelimit.spend(budget, "someone")
    assert ratelimit.spend(budget, "someone else")


def test_refusals_count_when_the_budget_says_so() -> None:
    budget = ratelimit.Budget("test-scanner", 2, 3600, count_refused=True)
    outcomes = [ratelimit.spend(budget, "scanner").allowed for _ in range(4)]

    assert outcomes == [True, True, False, False]
    assert ratelimit.wait(budget, "scanner").retry_after > 0


def test_the_pause_doubles_and_the_window_frees_what_left_it(settings: Any, clock: Any) -> None:
    # The local-memory cache keeps time with time.time(), which time-machine moves (Redis keeps its own).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    budget = ratelimit.Budget("test-pause", 3, 3600, backoff_seconds=30)

    assert ratelimit.spend(budget, "link")
    refused = ratelimit.spend(budget, "link")
    assert not refused and refused.retry_after == 30
    clock.shift(dt.timedelta(seconds=31))
    assert ratelimit.spend(budget, "link")
    assert ratelimit.wait(budget, "link").retry_after == 60
    clock.shift(dt.timedelta(seconds=61))
    assert ratelimit.spend(budget, "link")
    capped = ratelimit.wait(budget, "link")
    assert not capped and 3400 < capped.retry_after <= 3660
    clock.shift(dt.timedelta(minutes=62))
    assert ratelimit.spend(budget, "link")


def test_the_cache_holds_no_subject() -> None:
    ratelimit.spend(ratelimit.Budget("test-keys", 3, 3600), "203.0.113.66")
    keys = [key.decode() for key in cache._cache.get_client().keys("*")]  # type: ignore[attr-defined]

    assert keys and not any("203.0.113.66" in key for key in keys)


def test_with_redis_away_every_budget_is_refused(settings: Any) -> None:
    settings.CACHES = REDIS_AWAY

    decision = ratelimit.spend(ratelimit.Budget("test-away", 100, 3600), "someone")

    assert not decision and decision.unavailable and decision.retry_after > 0


# --- one budget for every token page ---------------------------------------------------------------


@pytest.fixture
def our_links(organisation: Any) -> dict[str, str]:
    participant = make_participant(organisation)
    _link, weekly = make_link(participant, week=rounds.week_of(timezone.now()))
    invited = Participant(organisation=organisation, status=Participant.Status.INVITED)
    invited.save()
    invitation_token = crypto.new_token()
    Invitation.objects.create(
        participant=invited,
        token_hash=crypto.hash_token(invitation_token),
        expires_at=timezone.now() + dt.timedelta(days=14),
    )
    account_token = crypto.new_token()
    AccountLink.objects.create(
        participant_ref=str(participant.pk),
        token_hash=crypto.hash_token(account_token),
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )
    return {"weekly": weekly, "invitation": invitation_token, "account": account_token}


TOKEN_PAGES = {
    "weekly": "/w/{}/",
    "thanks": "/w/{}/thanks/",
    "help": "/w/{}/help/",
    "invitation": "/i/{}/",
    "decline": "/i/{}/decline/",
    "account": "/me/link/{}/",
}
OWN_TOKEN = {"weekly": "weekly", "help": "weekly", "invitation": "invitation", "decline": "invitation"}
OWN_TOKEN["account"] = "account"


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("spent_on", list(TOKEN_PAGES))
def test_made_up_links_on_any_token_page_spend_one_budget_and_our_links_still_open(
    spent_on: str, our_links: dict[str, str], settings: Any
) -> None:
    settings.UNKNOWN_LINKS_PER_HOUR = 6
    scanner = Client()
    for n in range(6):
        assert scanner.get(TOKEN_PAGES[spent_on].format(f"{n:x>43}")).status_code in (302, 404)

    for page, pattern in TOKEN_PAGES.items():
        refused = scanner.get(pattern.format("made-up-" + "z" * 35))
        assert refused.status_code == 429, page
        assert 0 < int(refused["Retry-After"]) <= 3660
    for page, which in OWN_TOKEN.items():
        opened = scanner.get(TOKEN_PAGES[page].format(our_links[which]))
        assert opened.status_code in (200, 302), page
    # A link we made whose row is gone (a stopped person's, a decoy) is still ours: never refused.
    assert scanner.get(f"/i/{crypto.new_token()}/").status_code == 302
    assert scanner.get(f"/me/link/{crypto.new_token()}/").status_code == 302


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_parallel_scanners_get_exactly_the_budget_from_a_live_server(
    live_server: Any, settings: Any, our_links: dict[str, str]
) -> None:
    settings.UNKNOWN_LINKS_PER_HOUR = 10

    def fetch(path: str) -> int:
        try:
            with urllib.request.urlopen(live_server.url + path, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    pages = list(TOKEN_PAGES.values())
    statuses = parallel(24, lambda: fetch(pages[threading.get_ident() % len(pages)].format("q" * 43)))

    assert sum(1 for status in statuses if status != 429) == 10
    assert statuses.count(429) == 14
    # Our own link still opens for the same client.
    assert fetch(f"/w/{our_links['weekly']}/") == 200


# --- Redis away: fail closed, and say so ------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_with_redis_away_links_we_made_open_and_made_up_ones_are_refused(
    settings: Any, our_links: dict[str, str]
) -> None:
    settings.CACHES = REDIS_AWAY
    client = Client()

    assert client.get(f"/w/{'q' * 43}/").status_code == 429
    assert client.get(f"/i/{'q' * 43}/").status_code == 429
    assert client.get(f"/w/{our_links['weekly']}/").status_code == 200
    assert client.get(f"/i/{our_links['invitation']}/").status_code == 302
    assert client.get(f"/me/link/{our_links['account']}/").status_code == 302


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_with_redis_away_no_code_goes_out_and_the_page_says_so(
    settings: Any, our_links: dict[str, str], english: None
) -> None:
    settings.CACHES = REDIS_AWAY
    client = Client()
    client.get(f"/i/{our_links['invitation']}/")

    page = client.post(reverse("participants:enrol"), follow=True).content.decode()

    assert "We cannot send a code at the moment" in page


def test_the_limiter_is_the_only_code_that_counts_in_the_cache() -> None:
    # One limiter with one behaviour when Redis is away: no app keeps counters of its own. The employer
    # reports keep decided figures there (get and set, recomputed when missing), and the outbox the error a
    # provider last deferred a message with (messaging._Verdicts: set and get), and count nothing.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sources = {
        str(path.relative_to(root)): path.read_text(encoding="utf-8")
        for app in ("preventicons", "participants", "scores", "casefiles", "notary")
        for path in (root / app).rglob("*.py")
    }
    users = sorted(name for name, text in sources.items() if "from django.core.cache import" in text)
    assert users == ["preventicons/messaging.py", "preventicons/ratelimit.py", "scores/reports.py"]
    counting = sorted(name for name, text in sources.items() if re.search(r"cache\.(incr|decr|add)\(", text))
    assert counting == ["preventicons/ratelimit.py"]
