"""Attacks on the lean tap path (preventicons.leanpages, issue #17), as the employer and the operator would.

The weekly link's pages are served in front of the session, locale, common, CSRF, auth, OTP, messages and
framing middleware, drawn once per language and filled per request. These tests try what that could have
broken: a page or header that tells people apart once the language is chosen in the URL, a bad mark, a bad
value; a cached page that grows or carries someone else's token; what the skipped middleware still did for
these pages (the host check, the error page in the visitor's language with its headers).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client

from participants.models import Organisation, Participant
from preventicons import crypto, leanpages
from scores.views import tapped_mark
from tests.conftest import ALL_DATABASES
from tests.scores.people import LINK_HOLDER_STATES, make_link, make_participant, person_in_state
from tests.scores.test_submission import VARYING, _page

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WEEK = dt.date(2026, 11, 16)
TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=AMSTERDAM)

pytestmark = pytest.mark.usefixtures("empty_cache")


def _walk_in_languages(token: str, foreign_mark: str) -> list[tuple[str, int, str, str, str]]:
    """Every weekly-link page in each way of choosing a language, with bad marks and bad values."""
    results = []

    def seen(name: str, response: Any) -> None:
        location = VARYING.sub("", response.get("Location", "")).replace(token, "TOKEN")
        headers = {k: v for k, v in response.items() if k not in ("Content-Security-Policy", "Location")}
        body = _page(response).replace(token, "TOKEN")
        results.append((name, response.status_code, location, str(sorted(headers.items())), body))

    extra: dict[str, str]
    for label, query, extra in (
        ("url-nl", "?lang=nl", {}),
        ("url-en", "?lang=en", {"Accept-Language": "nl"}),
        ("accept-nl", "", {"Accept-Language": "nl-NL,nl;q=0.9"}),
        ("bogus-lang", "?lang=%22%3E%3Cscript%3E", {"Accept-Language": "en"}),
    ):
        visitor = Client(headers=extra)
        glue = "&" if query else "?"
        seen(f"{label} page", visitor.get(f"/w/{token}/{query}"))
        tap = visitor.post(f"/w/{token}/{query}", {"value": "2"})
        seen(f"{label} tap", tap)
        seen(f"{label} thanks", visitor.get(tap["Location"]))
        seen(f"{label} again", visitor.post(f"/w/{token}/{query}", {"value": "5"}))
        seen(f"{label} bad value", visitor.post(f"/w/{token}/{query}", {"value": "9"}))
        seen(f"{label} no value", visitor.post(f"/w/{token}/{query}", {}))
        seen(f"{label} no mark", visitor.get(f"/w/{token}/thanks/{query}"))
        seen(f"{label} junk mark", visitor.get(f"/w/{token}/thanks/{query}{glue}tapped=%3Cb%3Ex"))
        seen(f"{label} foreign mark", visitor.get(f"/w/{token}/thanks/{query}{glue}tapped={foreign_mark}"))
        seen(f"{label} help", visitor.get(f"/w/{token}/help/{query}"))
        seen(f"{label} help bad", visitor.post(f"/w/{token}/help/{query}", {"channel": "pigeon"}))
        ask = {"consent": "yes", "channel": "email"}
        seen(f"{label} help ok", visitor.post(f"/w/{token}/help/{query}", ask))
        seen(f"{label} stop", visitor.get(f"/w/stop/{query}"))
    browser = Client()
    browser.cookies["django_language"] = "nl"
    seen("cookie page", browser.get(f"/w/{token}/"))
    seen("cookie thanks", browser.get(f"/w/{token}/thanks/"))
    return results


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(TUESDAY, tick=False)
@pytest.mark.parametrize("answered", [False, True], ids=["unanswered", "answered"])
@pytest.mark.parametrize("status", LINK_HOLDER_STATES)
def test_every_weekly_link_page_reads_the_same_in_every_language_and_with_bad_marks(
    organisation: Organisation, status: str, answered: bool
) -> None:
    # The employer opens the link in each language, with a mark that is junk or made for another link, a
    # bad value, the help and stop pages: headers and bodies must be the reference's, whatever the person did.
    foreign_mark = tapped_mark(token=crypto.new_token(), value=1)
    reference = make_participant(organisation)
    _reference_link, reference_token = make_link(reference, week=WEEK)
    person = person_in_state(organisation, status, answered_week=WEEK if answered else None, value=1)
    _link, token = make_link(person, week=WEEK)

    mine, theirs = _walk_in_languages(token, foreign_mark), _walk_in_languages(reference_token, foreign_mark)

    for (name, *got), (_name, *expected) in zip(mine, theirs, strict=True):
        assert got == expected, name
    by_name = {name: (status_code, body) for name, status_code, _loc, _headers, body in mine}
    for dutch in ("url-nl page", "accept-nl thanks", "cookie thanks"):
        assert 'lang="nl"' in by_name[dutch][1], dutch
    assert 'lang="en"' in by_name["url-en page"][1]
    assert "<script>" not in "".join(body for _status, body in by_name.values())


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_pages_drawn_once_stay_few_whatever_the_language_asked(organisation: Organisation) -> None:
    # A scanner asking in every spelling of every language must not grow the per-process page store.
    _participant, token = make_link(make_participant(organisation), week=WEEK)
    for spelling in ("en", "EN", "en-US", "en-gb", "nl-BE", "xx", "nl;q=1", "*", "zh-Hant-TW", "en" * 40):
        Client(HTTP_ACCEPT_LANGUAGE=spelling).get(f"/w/{token}/?lang={spelling}")
        browser = Client()
        browser.cookies["django_language"] = spelling
        browser.get(f"/w/{token}/thanks/?lang={spelling}&tapped=x")
    languages = {key[1] for key in leanpages._rendered} | {key[2] for key in leanpages._rendered}
    assert languages <= {"nl", "en", None}


# --- what the skipped middleware still did for these pages ---------------------------------------------


def _unopenable_status(person: Participant, organisation: Organisation) -> None:
    """Give ``person`` a sealed status that does not open in their row (a row restored from another one)."""
    donor = make_participant(organisation)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE participants_participant SET status = "
            "(SELECT status FROM participants_participant WHERE id = %s) WHERE id = %s",
            [donor.pk, person.pk],
        )


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_an_error_on_a_lean_page_answers_in_the_visitors_language_and_refuses_framing(
    organisation: Organisation,
) -> None:
    # An error inside a lean view went out past the language override and below no framing middleware: the
    # 500 page came in whatever language the worker thread's previous request had, without X-Frame-Options.
    person = make_participant(organisation)
    _link, token = make_link(person, week=WEEK)
    _unopenable_status(person, organisation)
    browser = Client(raise_request_exception=False)
    browser.get("/staff/", HTTP_ACCEPT_LANGUAGE="en")  # an earlier request on this thread, in English

    failed = browser.post(f"/w/{token}/?lang=nl", {"value": "3"})

    assert failed.status_code == 500
    assert failed["X-Frame-Options"] == "DENY"
    assert failed["Content-Language"] == "nl"
    html = failed.content.decode()
    assert '<html lang="nl">' in html and "Er ging bij ons iets mis" in html
    assert token not in html


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_a_lean_page_refuses_a_host_that_is_not_allowed(organisation: Organisation) -> None:
    # CommonMiddleware checked the Host header against ALLOWED_HOSTS (request.get_host()); the lean path
    # skipped it, so the tap pages answered for any host name (a rebinding name, a poisoned cache key).
    _participant, token = make_link(make_participant(organisation), week=WEEK)

    for path in (f"/w/{token}/", f"/w/{token}/thanks/", f"/w/{token}/help/", "/w/stop/"):
        answer = Client(raise_request_exception=False).get(path, HTTP_HOST="evil.example")
        assert answer.status_code == 400, path
    assert Client().get(f"/w/{token}/").status_code == 200


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_a_changed_setting_redraws_the_pages_drawn_once(organisation: Organisation, settings: Any) -> None:
    # The pages drawn once per language outlived a settings change (a test's override_settings, the
    # settings fixture): a later test then read a page drawn under an earlier test's settings.
    _participant, token = make_link(make_participant(organisation), week=WEEK)
    assert "/static/css/site.css" in Client().get(f"/w/{token}/?lang=en").content.decode()

    settings.STATIC_URL = "/assets/"

    assert "/assets/css/site.css" in Client().get(f"/w/{token}/?lang=en").content.decode()


@pytest.mark.django_db
@time_machine.travel(TUESDAY, tick=False)
def test_the_pages_drawn_once_read_as_the_pages_drawn_every_time(
    organisation: Organisation, settings: Any
) -> None:
    # Under DEBUG every request draws the page (leanpages.slotted_page): what the store serves must be that.
    _participant, token = make_link(make_participant(organisation), week=WEEK)

    def tap_pages() -> list[str]:
        visitor = Client()
        tap = visitor.post(f"/w/{token}/?lang=nl", {"value": "1"})
        pages = [
            visitor.get(f"/w/{token}/"),
            visitor.get(tap["Location"]),
            visitor.get(f"/w/{token}/thanks/"),
        ]
        return [_page(page) for page in pages]

    stored, stored_again = tap_pages(), tap_pages()
    settings.DEBUG = True
    drawn = tap_pages()

    assert stored == stored_again == drawn
