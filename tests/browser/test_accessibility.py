"""axe-core's WCAG 2.2 A and AA rules on every page a participant meets, on a phone and a desktop.

Contrast, names of controls, landmarks, headings, language and the rest that a screen reader or a low-vision
reader depends on: the rules the hand-written checks in test_smiley and test_enrolment do not cover.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from participants.models import Organisation
from scores import rounds
from tests.browser.conftest import Visit
from tests.browser.test_enrolment import invited_participant
from tests.scores.people import make_link, make_participant

pytestmark = pytest.mark.browser

WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}
AXE = Axe()


def violations(page: Page) -> str:
    """axe's report of what the page in this tab breaks, or "" when it breaks nothing."""
    results = AXE.run(page, options=WCAG_AA)
    return results.generate_report() if results.violations_count else ""


def not_status_codes(errors: list[str]) -> list[str]:
    """Console errors other than Chromium's note that a page answered 404 or 410 (dead links do)."""
    return [error for error in errors if "the server responded with a status of 4" not in error]


def check(visit: Visit, path: str) -> None:
    response = visit.page.goto(path)
    assert response is not None and response.status < 500, path
    assert violations(visit.page) == "", path


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_the_weekly_pages_meet_wcag_aa(
    open_tab: Callable[[str], Visit], organisation: Organisation, device: str
) -> None:
    week = rounds.week_of(dt.datetime.now(tz=dt.UTC))
    _link, token = make_link(make_participant(organisation), week=week)
    _old_link, old_token = make_link(make_participant(organisation), week=week - dt.timedelta(weeks=1))
    visit = open_tab(device)

    check(visit, f"/w/{token}/")
    check(visit, f"/w/{token}/help/")
    check(visit, f"/w/{old_token}/")  # a closed week answers like an unknown link
    check(visit, "/w/" + "x" * 43 + "/")  # an unknown link too
    check(visit, "/w/stop/")
    visit.page.goto(f"/w/{token}/")
    visit.page.locator("main form button.smiley[value='1']").click()
    visit.page.wait_for_url("**/thanks/**")
    assert visit.page.locator("#help-offer").count() == 1
    assert violations(visit.page) == ""  # the thanks, with the offer after a hard week
    assert not_status_codes(visit.errors) == [] and visit.foreign_requests == []


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_the_enrolment_and_account_doors_meet_wcag_aa(
    open_tab: Callable[[str], Visit], organisation: Organisation, device: str
) -> None:
    _participant, token = invited_participant(organisation)
    visit = open_tab(device)

    check(visit, "/")
    check(visit, f"/i/{token}/")  # the invitation: what taking part means, and consent
    check(visit, "/me/link/")
    check(visit, "/account/login/")
    assert visit.errors == [] and visit.foreign_requests == []


def test_the_check_finds_what_it_looks_for(
    open_tab: Callable[[str], Visit], organisation: Organisation
) -> None:
    # Grey on white and a field without a label, added to a real page: axe must name both.
    week = rounds.week_of(dt.datetime.now(tz=dt.UTC))
    _link, token = make_link(make_participant(organisation), week=week)
    page = open_tab("phone").page
    page.goto(f"/w/{token}/")
    page.evaluate(
        """() => {
            const faint = document.createElement('p');
            faint.textContent = 'Hard to read';
            faint.style.color = '#cccccc';
            faint.style.background = '#ffffff';
            const field = document.createElement('input');
            field.type = 'text';
            document.querySelector('main').append(faint, field);
        }"""
    )

    report = violations(page)

    assert "color-contrast" in report and "label" in report
