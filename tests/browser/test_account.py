"""Opening the account in a real browser, in Dutch: the e-mailed link, then the SMS code, then the account."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from participants.account import ACCOUNT_LINK_LIFETIME
from participants.models import AccountLink, Organisation
from preventicons import crypto
from preventicons.gateways import MemorySmsGateway
from scores import rounds
from tests.browser.conftest import Visit
from tests.browser.test_accessibility import not_status_codes, violations
from tests.conftest import ALL_DATABASES
from tests.scores.people import add_score, make_participant

# Every store: the account page asks casefiles whether a trajectory waits for the participant's sign-off.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]

CODE = re.compile(r"\b(\d{6})\b")


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_the_account_opens_after_the_link_and_the_sms_code_and_offers_contact_after_a_drop(
    open_tab: Callable[[str], Visit], organisation: Organisation, device: str
) -> None:
    participant = make_participant(organisation)
    this_week = rounds.week_of(dt.datetime.now(tz=dt.UTC))
    # Last week a 5, this week a 3: a drop that the weekly thanks no longer shows (whoever tapped the 3 on
    # someone's link would learn of last week), so it reaches them here, behind both factors.
    for week, value in ((this_week - dt.timedelta(weeks=1), 5), (this_week, 3)):
        add_score(participant, week=week, value=value)
    token = crypto.new_token()
    AccountLink.objects.create(
        participant_ref=str(participant.pk),
        token_hash=crypto.hash_token(token),
        expires_at=timezone.now() + ACCOUNT_LINK_LIFETIME,
    )
    visit = open_tab(device)
    page = visit.page

    page.goto(f"/me/link/{token}/")
    expect(page).to_have_url(re.compile(r"/me/link/open/$"))
    assert violations(page) == ""
    page.locator("main form[action='/me/link/open/'] button[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/me/link/code/$"))
    assert violations(page) == ""
    expect(page.locator("#id_sms_code")).to_have_attribute("autocomplete", "one-time-code")
    # The link alone opens nothing: the account sends this browser back to the code.
    page.goto("/me/")
    expect(page).to_have_url(re.compile(r"/me/link/code/$"))
    sms = MemorySmsGateway.outbox[-1]
    code = CODE.search(sms["body"])
    assert code and sms["to"] == participant.mobile
    page.locator("#id_sms_code").fill(f"{(int(code.group(1)) + 1) % 10**6:06d}")
    page.locator("main form[action='/me/link/code/'] button[type=submit]").click()
    expect(page.locator("main .errorlist")).to_contain_text("4")  # tries left, in whatever language
    assert violations(page) == ""
    page.locator("#id_sms_code").fill(code.group(1))
    page.locator("main form[action='/me/link/code/'] button[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/me/$"))
    expect(page.get_by_text(participant.email or "-")).to_be_visible()
    offer = page.locator("main aside.help-offer a[href='/me/help/']")
    expect(offer).to_be_visible()
    assert violations(page) == ""
    offer.click()
    expect(page.locator("#contact-consent")).to_be_visible()
    assert violations(page) == ""
    # The wrong code answered 400, which Chromium notes in the console; nothing else may be there.
    assert not_status_codes(visit.errors) == [] and visit.foreign_requests == []
