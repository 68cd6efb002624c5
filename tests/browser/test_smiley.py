"""The weekly smiley in a real browser on a phone, in Dutch: tap one, see the thanks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from participants.models import Organisation
from scores import rounds
from scores.models import Score
from tests.browser.conftest import SCREENSHOTS, Visit
from tests.scores.people import make_link, make_participant

pytestmark = pytest.mark.browser

NO_HORIZONTAL_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
# Each smiley is a large target: at least 44 by 44 CSS pixels.
SMALL_TARGETS = """
() => [...document.querySelectorAll('button.smiley')]
    .map(el => el.getBoundingClientRect())
    .filter(box => box.width < 44 || box.height < 44).length
"""


def test_tapping_a_smiley_on_a_phone_records_it_and_thanks(
    open_tab: Callable[[str], Visit], organisation: Organisation
) -> None:
    participant = make_participant(organisation)
    week = rounds.week_of(dt.datetime.now(tz=dt.UTC))
    _link, token = make_link(participant, week=week)
    visit = open_tab("phone")
    page = visit.page

    page.goto(f"/w/{token}/")

    assert page.evaluate("document.documentElement.lang") == "nl"
    smileys = page.locator("main form button.smiley")
    expect(smileys).to_have_count(5)
    for index in range(5):
        expect(smileys.nth(index)).to_be_visible()
        assert smileys.nth(index).inner_text().strip()  # a visible text label, not only a face
    assert page.evaluate(SMALL_TARGETS) == 0
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "smiley-week-phone.png"), full_page=True)

    page.locator("main form button.smiley[value='4']").tap()

    expect(page.locator("h1#thanks")).to_be_visible()
    assert f"/w/{token}/thanks/?tapped=" in page.url  # redirected: a reload cannot post again
    expect(page.locator("#help-offer")).to_have_count(0)
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    assert visit.errors == [] and visit.foreign_requests == []
    page.screenshot(path=str(SCREENSHOTS / "smiley-thanks-phone.png"), full_page=True)
    assert sorted(score.value for score in Score.objects.all()) == [4]


def test_the_smileys_work_by_keyboard(open_tab: Callable[[str], Visit], organisation: Organisation) -> None:
    participant = make_participant(organisation)
    week = rounds.week_of(dt.datetime.now(tz=dt.UTC))
    _link, token = make_link(participant, week=week)
    page = open_tab("desktop").page
    page.goto(f"/w/{token}/")

    page.locator("main form button.smiley[value='2']").focus()
    page.keyboard.press("Enter")

    expect(page.locator("h1#thanks")).to_be_visible()
    assert sorted(score.value for score in Score.objects.all()) == [2]


def test_a_hard_week_is_offered_contact_and_a_reload_records_nothing_more(
    open_tab: Callable[[str], Visit], organisation: Organisation
) -> None:
    participant = make_participant(organisation)
    week = rounds.week_of(dt.datetime.now(tz=dt.UTC))
    _link, token = make_link(participant, week=week)
    page = open_tab("phone").page
    page.goto(f"/w/{token}/")

    page.locator("main form button.smiley[value='1']").tap()

    offer = page.locator("aside.help-offer a.button")
    expect(offer).to_be_visible()
    page.reload()
    expect(page.locator("h1#thanks")).to_be_visible()
    offer.tap()
    expect(page.locator("#contact-consent")).to_be_visible()
    assert sorted(score.value for score in Score.objects.all()) == [1]
