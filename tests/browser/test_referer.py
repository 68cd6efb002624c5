"""What the office proxy would log of a weekly page in a real browser: no request carries the token.

Under the site's "same-origin" policy Chromium sends the page's whole address as the Referer of its CSS,
images and favicon, and after a tap the thanks page's address with its mark: a proxy's usual log format
writes it down. Token pages answer "no-referrer", so no request made from them has a Referer at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from playwright.sync_api import Request, expect

from participants.models import Organisation
from scores import rounds
from tests.browser.conftest import Visit
from tests.scores.people import make_link, make_participant

pytestmark = pytest.mark.browser


def test_a_weekly_page_and_its_thanks_send_no_referer_with_any_request(
    open_tab: Callable[[str], Visit], organisation: Organisation
) -> None:
    participant = make_participant(organisation)
    _link, token = make_link(participant, week=rounds.week_of(dt.datetime.now(tz=dt.UTC)))
    visit = open_tab("phone")
    sent: list[tuple[str, dict[str, str]]] = []

    def on_request(request: Request) -> None:
        sent.append((request.url, request.all_headers()))

    visit.page.on("request", on_request)

    visit.page.goto(f"/w/{token}/")
    visit.page.locator("main form button.smiley[value='4']").tap()
    expect(visit.page.locator("h1#thanks")).to_be_visible()
    visit.page.wait_for_load_state("networkidle")

    subresources = [(url, headers) for url, headers in sent if f"/w/{token}/" not in url]
    assert any("/static/" in url for url, _headers in subresources)  # the CSS at least: the test sees them
    for url, headers in sent:
        assert token not in headers.get("referer", ""), url
    for url, headers in subresources:
        assert not headers.get("referer"), url  # Chromium reports a Referer it did not send as ""
