"""A page whose address holds a link token sends no Referer: not to our own static files, not anywhere.

The attacker runs the office network and its proxy, whose usual log format writes the Referer of every
request: under the site's "same-origin" policy the weekly page's CSS, SVG and favicon requests would carry
its token, and after a tap the token and the thanks page's mark. Every token route of the URLconf is walked,
so a token pattern added later is covered too.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from participants.models import Organisation
from preventicons.crypto import new_token
from scores import rounds
from tests.preventicons.urlconf import TOKEN_ROUTES
from tests.scores.people import make_link, make_participant


@pytest.mark.django_db
@pytest.mark.parametrize("route", TOKEN_ROUTES)
def test_every_token_route_answers_with_no_referrer(client: Client, route: str) -> None:
    path = route.replace("<token>", new_token())

    answers = [
        client.get(path),
        client.get(path + "?recorded=1:1tXq9Z:signature"),
        client.post(path, {"value": "3"}),
        client.get(path.rstrip("/")),  # answered before the URL resolves: CommonMiddleware adds the slash
    ]

    for response in answers:
        assert response["Referrer-Policy"] == "no-referrer", (path, response.status_code)


@pytest.mark.django_db
def test_an_open_weekly_link_and_its_thanks_send_no_referrer(
    client: Client, organisation: Organisation
) -> None:
    participant = make_participant(organisation)
    _link, token = make_link(participant, week=rounds.week_of(dt.datetime.now(tz=dt.UTC)))

    page = client.get(f"/w/{token}/")
    tap = client.post(f"/w/{token}/", {"value": "4"})
    thanks = client.get(tap["Location"])

    assert (page.status_code, tap.status_code, thanks.status_code) == (200, 303, 200)
    assert f"/w/{token}/thanks/" in tap["Location"]
    for response in (page, tap, thanks):
        assert response["Referrer-Policy"] == "no-referrer"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/", "/w/stop/", "/me/link/", "/enrol/", "/account/login/", "/no-such-page/"]
)
def test_pages_without_a_token_keep_the_site_policy(client: Client, path: str) -> None:
    assert client.get(path)["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_the_weekly_forms_work_as_a_browser_posts_them_from_a_no_referrer_page(
    organisation: Organisation,
) -> None:
    # Under "no-referrer" a browser posts a form with "Origin: null" and no Referer, over HTTPS in production:
    # exactly what Django's CSRF check refuses. The token pages' own forms must not depend on it.
    participant = make_participant(organisation)
    _link, token = make_link(participant, week=rounds.week_of(dt.datetime.now(tz=dt.UTC)))
    browser = Client(enforce_csrf_checks=True)

    tap = browser.post(f"/w/{token}/", {"value": "2"}, secure=True, headers={"Origin": "null"})
    help_page = browser.get(f"/w/{token}/help/", secure=True)
    help_post = browser.post(
        f"/w/{token}/help/", {"consent": "yes", "channel": "x"}, secure=True, headers={"Origin": "null"}
    )

    assert tap.status_code == 303
    assert help_page.status_code in (200, 410)
    assert help_post.status_code != 403


@pytest.mark.django_db
def test_the_language_switch_on_a_token_page_works_without_a_referer_or_a_cookie(
    organisation: Organisation,
) -> None:
    participant = make_participant(organisation)
    _link, token = make_link(participant, week=rounds.week_of(dt.datetime.now(tz=dt.UTC)))
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(f"/w/{token}/", secure=True, HTTP_ACCEPT_LANGUAGE="nl")
    # A link to the same page in the other language (preventicons.leanpages), not the form that sets a
    # cookie: it needs neither a Referer (the page sends none) nor a cookie.
    assert 'href="?lang=en"' in page.content.decode()
    assert 'action="/i18n/setlang/"' not in page.content.decode()

    switched = browser.get(f"/w/{token}/?lang=en", secure=True, HTTP_ACCEPT_LANGUAGE="nl")
    tapped = browser.post(f"/w/{token}/?lang=en", {"value": "4"}, secure=True, HTTP_ORIGIN="null")
    thanks = browser.get(tapped["Location"], secure=True, HTTP_ACCEPT_LANGUAGE="nl")

    assert switched.status_code == 200 and switched["Content-Language"] == "en"
    assert "How was your week?" in switched.content.decode()
    # The language goes along with the tap to the thanks page, and from there to the help page.
    assert tapped.status_code == 303 and "lang=en" in tapped["Location"]
    assert thanks["Content-Language"] == "en" and "Thank you" in thanks.content.decode()
    assert f"/w/{token}/help/?lang=en" in thanks.content.decode()
    assert not browser.cookies
    assert all("Set-Cookie" not in answer for answer in (page, switched, tapped, thanks))


# What in a page's HTML would override its Referrer-Policy header: a referrer meta tag, or a referrerpolicy
# attribute on a link, image or script.
_OVERRIDE = re.compile(r"<meta[^>]*\bname=[\"']?referrer\b|\breferrerpolicy\s*=", re.IGNORECASE)


@pytest.mark.django_db
def test_no_token_page_overrides_its_no_referrer_header_in_its_html(
    client: Client, organisation: Organisation
) -> None:
    """A browser obeys a <meta name="referrer"> (or a referrerpolicy attribute) over the header: one in a
    template shared by the token pages would send the token in the Referer of every CSS, SVG and favicon
    request again, while every header test above still passes."""
    participant = make_participant(organisation)
    _link, token = make_link(participant, week=rounds.week_of(dt.datetime.now(tz=dt.UTC)))
    tap = client.post(f"/w/{token}/", {"value": "1"})
    pages = [
        client.get(f"/w/{token}/"),
        client.get(tap["Location"]),
        client.get(f"/w/{token}/help/"),
        *(client.get(route.replace("<token>", new_token())) for route in TOKEN_ROUTES),
    ]

    assert pages[0].status_code == pages[1].status_code == 200
    for page in pages:
        html = page.content.decode()
        assert not _OVERRIDE.search(html), (page.status_code, _OVERRIDE.search(html))
