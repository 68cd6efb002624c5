"""Enrolment in a real browser on a phone, in Dutch: the link, its SMS code, consent, a corrected number."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from participants import enrolment, invitations
from participants.models import InvitationSchedule, Organisation, Participant
from preventicons import messaging
from preventicons.gateways import MemorySmsGateway
from scores import wellbeing
from tests.browser.conftest import SCREENSHOTS, Visit
from tests.conftest import ALL_DATABASES

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
    participant = Participant(organisation=organisation, name="Jan de Vries")
    participant.set_email("jan@example.nl")
    participant.set_mobile("+31612345678")
    participant.save()
    invitations.send_invitations(organisation=organisation)
    # At the schedule's first moment, whatever the time of day the test runs (eager tasks send at once).
    invitations.send_due_invitations(now=InvitationSchedule.objects.get(participant=participant).next_due_at)
    messaging.send_due_messages()
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


def open_with_the_sms_code(visit: Visit, token: str, *, path: str = "") -> None:
    """The link's first page (the same for everyone), the code by SMS, and in."""
    page = visit.page
    page.goto(f"/i/{token}/{path}")
    expect(page).to_have_url(re.compile(r"/enrol/$"))
    assert token not in page.url
    check_phone_page(visit, "landing" + ("-decline" if path else ""))
    submit(page, "/enrol/")
    expect(page).to_have_url(re.compile(r"/enrol/open/$"))
    check_phone_page(visit, "open")
    expect(page.locator("#id_code")).to_have_attribute("autocomplete", "one-time-code")
    messaging.send_due_messages()
    sms = MemorySmsGateway.outbox[-1]
    code = CODE.search(sms["body"])
    assert code and sms["to"] == "+31612345678"
    page.locator("#id_code").fill(code.group(1))
    submit(page, "/enrol/open/")


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)  # the request batch joins every store
def test_enrolment_on_a_phone(open_tab: Callable[[str], Visit], organisation: Organisation) -> None:
    participant, token = invited_participant(organisation)
    visit = open_tab("phone")
    page = visit.page

    open_with_the_sms_code(visit, token)
    expect(page).to_have_url(re.compile(r"/enrol/consent/$"))
    expect(page.get_by_text(enrolment.CONSENT_TEXT_VERSION)).to_be_visible()
    check_phone_page(visit, "consent")
    submit(page, "/enrol/consent/")

    expect(page).to_have_url(re.compile(r"/enrol/details/$"))
    check_phone_page(visit, "details")
    expect(page.locator("#id_mobile")).to_have_attribute("type", "tel")
    expect(page.locator("input[name=weekly_channel][value=sms]")).to_be_checked()
    page.locator("#id_mobile").fill("06 87654321")
    submit(page, "/enrol/details/")

    expect(page).to_have_url(re.compile(r"/enrol/codes/$"))
    check_phone_page(visit, "codes")
    expect(page.locator("#id_email_code")).to_have_count(0)  # the address on file needs no new code
    expect(page.locator("#id_sms_code")).to_have_attribute("inputmode", "numeric")
    expect(page.locator("#id_sms_code")).to_have_attribute("autocomplete", "one-time-code")
    messaging.send_due_messages()
    sms = MemorySmsGateway.outbox[-1]
    sms_code = CODE.search(sms["body"])
    assert sms_code and sms["to"] == "+31687654321"

    wrong = f"{(int(sms_code.group(1)) + 1) % 10**6:06d}"
    page.locator("#id_sms_code").fill(wrong)
    submit(page, "/enrol/codes/")
    expect(page.locator("main .errorlist")).to_contain_text("4")  # tries left, in whatever language
    page.locator("#id_sms_code").fill(sms_code.group(1))
    submit(page, "/enrol/codes/")

    expect(page).to_have_url(re.compile(r"/enrol/welcome/$"))
    check_phone_page(visit, "welcome")
    # The next request batch makes them a participant (participants.requestqueue.confirm_enrolment).
    assert wellbeing.take_up_help_requests().enrolments == 1
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE
    assert participant.mobile == "+31687654321"
    assert participant.weekly_channel == Participant.WeeklyChannel.SMS


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)  # the request batch joins every store
def test_declining_on_a_phone(open_tab: Callable[[str], Visit], organisation: Organisation) -> None:
    participant, token = invited_participant(organisation)
    visit = open_tab("phone")
    page = visit.page

    open_with_the_sms_code(visit, token, path="decline/")
    expect(page).to_have_url(re.compile(r"/enrol/decline/$"))
    check_phone_page(visit, "decline")
    participant.refresh_from_db()
    assert participant.status == Participant.Status.INVITED  # nothing before the confirmation
    submit(page, "/enrol/decline/")

    expect(page.locator("h1")).to_be_visible()
    participant.refresh_from_db()
    assert participant.status == Participant.Status.INVITED  # queued: the next batch makes it
    assert wellbeing.take_up_help_requests().declines == 1
    participant.refresh_from_db()
    assert participant.status == Participant.Status.DECLINED
