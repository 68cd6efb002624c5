"""The weekly tap at its natural cost (issue #17): one lookup per request, no session, no cookie.

The smiley page, its POST and the thanks are served by preventicons.leanpages, in front of the session,
login, OTP, messages and CSRF middleware; each reads the link and its holder with one statement, the same
text every time (so psycopg prepares it on the server). These tests fail when the lean path is removed or
the lookup goes back to the ORM's several statements.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from participants.models import Organisation
from preventicons.roles import Role
from scores.models import Score
from tests.conftest import login_verified, make_staff
from tests.scores.people import make_link, make_participant, person_in_state

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WEEK = dt.date(2026, 11, 16)
TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=AMSTERDAM)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]


def _tap(client: Client, token: str, value: str = "4") -> list:
    page = client.get(f"/w/{token}/")
    posted = client.post(f"/w/{token}/", {"value": value})
    thanks = client.get(posted["Location"])
    return [page, posted, thanks]


@time_machine.travel(TUESDAY, tick=False)
def test_each_request_of_a_tap_reads_the_link_with_one_and_the_same_statement(
    organisation: Organisation,
) -> None:
    _participant, token = make_link(make_participant(organisation), week=WEEK)
    client = Client()
    statements = []
    for step in ("page", "post", "thanks"):
        with CaptureQueriesContext(connections["default"]) as captured:
            if step == "page":
                response = client.get(f"/w/{token}/")
            elif step == "post":
                response = client.post(f"/w/{token}/", {"value": "4"})
                thanks_url = response["Location"]
            else:
                response = client.get(thanks_url)
        assert response.status_code in (200, 303)
        statements.append([query["sql"] for query in captured.captured_queries])

    page, post, thanks = statements
    assert len(page) == len(thanks) == 1
    # The POST: the same lookup, then the one INSERT of the score (scores.submission.record_score).
    assert len(post) == 2 and post[1].startswith("INSERT INTO")
    assert page[0] == post[0] == thanks[0]
    assert Score.objects.count() == 1


@time_machine.travel(TUESDAY, tick=False)
def test_no_session_user_or_cookie_on_the_tap_pages_even_for_a_logged_in_browser(
    organisation: Organisation,
) -> None:
    # A staff member's browser that also taps its own smiley: the tap pages neither read nor refresh its
    # session, set no cookie and vary on none.
    browser = login_verified(Client(), make_staff("employer-tapping", Role.EMPLOYER, organisation))
    cookies_before = {name: morsel.value for name, morsel in browser.cookies.items()}
    _participant, token = make_link(make_participant(organisation), week=WEEK)

    answers = [*_tap(browser, token), browser.get("/w/stop/"), browser.get(f"/w/{token}/help/")]

    for answer in answers:
        assert answer.status_code in (200, 303)
        assert "Set-Cookie" not in answer, answer.request["PATH_INFO"]
        assert "Cookie" not in answer.get("Vary", "")
        # What the skipped middleware would have attached to the request.
        request = answer.wsgi_request
        assert not hasattr(request, "session") and not hasattr(request, "user")
        assert not hasattr(request, "_messages") and not hasattr(request, "csrf_processing_done")
        # What the lean path does itself for them: the language and the framing refusal.
        assert answer["X-Frame-Options"] == "DENY" and answer["Content-Language"]
        assert int(answer["Content-Length"]) == len(answer.content)
    assert {name: morsel.value for name, morsel in browser.cookies.items()} == cookies_before
    # The same browser's staff pages still have their session.
    assert browser.get("/staff/").status_code == 200


@time_machine.travel(TUESDAY, tick=False)
@pytest.mark.parametrize("asked", ["xx", "../en", ""])
def test_an_unknown_language_in_the_url_is_ignored(organisation: Organisation, asked: str) -> None:
    _participant, token = make_link(make_participant(organisation), week=WEEK)

    page = Client().get(f"/w/{token}/?lang={asked}", HTTP_ACCEPT_LANGUAGE="nl")

    assert page.status_code == 200 and page["Content-Language"] == "nl"
    assert "Hoe was je week?" in page.content.decode()


@time_machine.travel(TUESDAY, tick=False)
def test_the_language_cookie_a_visitor_already_has_still_counts_on_the_tap_pages(
    organisation: Organisation,
) -> None:
    _participant, token = make_link(make_participant(organisation), week=WEEK)
    browser = Client()
    browser.cookies["django_language"] = "en"

    page = browser.get(f"/w/{token}/", HTTP_ACCEPT_LANGUAGE="nl")

    assert page["Content-Language"] == "en" and "How was your week?" in page.content.decode()


@time_machine.travel(TUESDAY, tick=False)
def test_pages_drawn_once_per_language_carry_each_visitors_own_token_and_mark(
    organisation: Organisation,
) -> None:
    # The smiley page and the thanks are rendered once per language and filled per request
    # (preventicons.leanpages.slotted_page): nobody's page may carry another link's token or mark.
    tokens = [make_link(make_participant(organisation), week=WEEK)[1] for _ in range(2)]
    pages, thanks = [], []
    for token in tokens:
        client = Client()
        pages.append(client.get(f"/w/{token}/?lang=en").content.decode())
        location = client.post(f"/w/{token}/?lang=en", {"value": "2"})["Location"]
        thanks.append((location, client.get(location).content.decode()))

    for mine, other, page, (location, thanked) in zip(tokens, reversed(tokens), pages, thanks, strict=True):
        mark = location.split("tapped=")[1].split("&")[0]
        assert f"/w/{mine}/help/?lang=en" in page and other not in page
        assert f"/w/{mine}/help/?lang=en" in thanked and other not in thanked
        assert f'href="?tapped={mark}&amp;lang=nl"' in thanked
        assert "This week seems hard" in thanked
    assert thanks[0][0].split("tapped=")[1] not in thanks[1][1]


def _posted_statements(token: str) -> list[str]:
    """The statement texts a tap's POST sends, before its values are bound."""
    sent: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append(sql)
        return execute(sql, params, many, context)

    with connections["default"].execute_wrapper(record):
        answer = Client().post(f"/w/{token}/", {"value": "2"})
    assert answer.status_code == 303
    return sent


@time_machine.travel(TUESDAY, tick=False)
@pytest.mark.parametrize("refused", ["stopped", "inactive", "unlisted"])
def test_a_refused_tap_sends_what_a_repeated_tap_sends_and_writes_nothing(
    organisation: Organisation, refused: str
) -> None:
    # Whoever holds the link can tap it as often as they like and time the answers. A repeated tap of an
    # active person seals its value and sends the INSERT, which inserts nothing; a refused one (stopped,
    # inactive, unlisted) that skipped both answered measurably sooner and told that its person left.
    _active, active_token = make_link(person_in_state(organisation, "active"), week=WEEK)
    _gone, gone_token = make_link(person_in_state(organisation, refused), week=WEEK)
    _posted_statements(active_token)
    assert Score.objects.count() == 1

    repeated = _posted_statements(active_token)
    refused_tap = _posted_statements(gone_token)

    assert refused_tap == repeated and len(repeated) == 2
    assert repeated[1].startswith("INSERT INTO")
    assert Score.objects.count() == 1


def _synchronous_commit() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


@time_machine.travel(TUESDAY, tick=False)
def test_a_first_taps_commit_does_not_wait_for_the_disk(organisation: Organisation) -> None:
    # The test's transaction spans the request: what the tap's statement set for its own transaction is
    # still set here. A first tap that waited for the flush answered about a millisecond later than a
    # repeated one (bench/tap_timing.py), which told whoever holds the link whether the week was answered.
    _participant, token = make_link(make_participant(organisation), week=WEEK)
    assert _synchronous_commit() == "on"

    Client().post(f"/w/{token}/", {"value": "4"})

    assert Score.objects.count() == 1
    assert _synchronous_commit() == "off"


@pytest.mark.django_db(transaction=True)
@time_machine.travel(TUESDAY, tick=False)
def test_only_the_taps_own_transaction_skips_the_flush_wait(organisation: Organisation) -> None:
    # In autocommit, as in production: the setting ends with the tap's statement, so the next request on
    # the same persistent connection (an enrolment, a stop) commits durably again.
    _participant, token = make_link(make_participant(organisation), week=WEEK)

    Client().post(f"/w/{token}/", {"value": "4"})

    assert Score.objects.count() == 1
    assert _synchronous_commit() == "on"
