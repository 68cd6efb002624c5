"""Enrolment in a real browser on a phone, in Dutch: the link, consent, a corrected number, both codes."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from participants import enrolment
from participants.models import Organisation, Participant
from preventicons.crypto import blind_index_email, blind_index_phone
from preventicons.messaging import MemorySmsGateway
from tests.browser.conftest import SCREENSHOTS, Visit

pytestmark = pytest.mark.browser

LINK = re.compile(r"/i/([A-Za-z0-9_-]{43})/")
CODE = re.compile(r"\b(\d{6})\b")
NO_HORIZONTAL_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
UNLABELLED_CONTROLS = """
() => [...document.querySelectorAll('input, select, textarea')]
    .filter(el => el.type !== 'hidden' && el.type !== 'submit' && !el.hidden)
    .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
    .map(el => el.name)
"""


def invited_participant(organisation: Organisation) -> tuple[Participant, str]:
    participant = Participant(
        organisation=organisation,
        name="Jan de Vries",
        email="jan@example.nl",
        mobile="+31612345678",
        email_index=blind_index_email("jan@example.nl"),
        mobile_index=blind_index_phone("+31612345678"),
    )
    participant.save()
    enrolment.send_invitations(organisation=organisation)  # committed: sent at once (eager tasks)
    match = LINK.search(str(mail.outbox[-1].body))
    assert match
    return participant, match.group(1)


def check_phone_page(visit: Visit, name: str) -> None:
    """One heading, Dutch, no sideways scrolling, every field labelled, nothing refused by the CSP."""
    page = visit.page
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("h1")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "nl"
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert visit.errors == [] and visit.foreign_requests == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"enrol-{name}-phone.png"), full_page=True)


def submit(page: Page, action: str) -> None:
    page.locator(f"main form[action='{action}'] button[type=submit]").click()


def test_enrolment_on_a_phone(open_tab: Callable[[str], Visit], organisation: Organisation) -> None:
    participant, token = invited_participant(organisation)
    visit = open_tab("phone")
    page = visit.page

    page.goto(f"/i/{token}/")
    expect(page).to_have_url(re.compile(r"/enrol/$"))
    assert token not in page.url
    expect(page.get_by_text(enrolment.CONSENT_TEXT_VERSION)).to_be_visible()
    check_phone_page(visit, "consent")
    submit(page, "/enrol/")

    expect(page).to_have_url(re.compile(r"/enrol/details/$"))
    check_phone_page(visit, "details")
    expect(page.locator("#id_mobile")).to_have_attribute("type", "tel")
    page.locator("#id_mobile").fill("06 87654321")
    submit(page, "/enrol/details/")

    expect(page).to_have_url(re.compile(r"/enrol/codes/$"))
    check_phone_page(visit, "codes")
    for field in ("#id_email_code", "#id_sms_code"):
        expect(page.locator(field)).to_have_attribute("inputmode", "numeric")
        expect(page.locator(field)).to_have_attribute("autocomplete", "one-time-code")
    email_code = CODE.search(str(mail.outbox[-1].body))
    sms = MemorySmsGateway.outbox[-1]
    sms_code = CODE.search(sms["body"])
    assert email_code and sms_code and sms["to"] == "+31687654321"

    wrong = f"{(int(email_code.group(1)) + 1) % 10**6:06d}"
    page.locator("#id_email_code").fill(wrong)
    page.locator("#id_sms_code").fill(sms_code.group(1))
    submit(page, "/enrol/codes/")
    expect(page.locator("main .errorlist")).to_contain_text("4")  # tries left, in whatever language
    page.locator("#id_email_code").fill(email_code.group(1))
    submit(page, "/enrol/codes/")

    expect(page).to_have_url(re.compile(r"/enrol/welcome/$"))
    check_phone_page(visit, "welcome")
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE
    assert participant.mobile == "+31687654321"


def test_declining_on_a_phone(open_tab: Callable[[str], Visit], organisation: Organisation) -> None:
    participant, token = invited_participant(organisation)
    visit = open_tab("phone")
    page = visit.page

    page.goto(f"/i/{token}/decline/")
    expect(page).to_have_url(re.compile(r"/enrol/decline/$"))
    check_phone_page(visit, "decline")
    submit(page, "/enrol/decline/")

    expect(page.locator("h1")).to_be_visible()
    participant.refresh_from_db()
    assert participant.status == Participant.Status.DECLINED
