"""Attestations in Chromium (issue #20): the auditor issues one for an ended quarter; the employer finds it
on its start page, downloads it and verifies it on the public page, which says "valid"; a copy with one
byte changed says "not valid". axe-core's WCAG 2.2 A and AA rules find nothing on the pages on the way.

The ledger holds the quarter's trajectories as the feed appends them (tests/notary/world.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.utils import translation
from playwright.sync_api import Page, expect

from notary import signing
from notary.models import Attestation
from participants.models import Organisation, StaffUser
from tests.browser.conftest import SCREENSHOTS, Visit
from tests.browser.test_accessibility import not_status_codes, violations
from tests.browser.test_smoke import NO_HORIZONTAL_SCROLL, log_in
from tests.conftest import ALL_DATABASES
from tests.notary.world import IN_Q3, engage, record_trajectory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]

QUARTER = "2026-Q3"


def dutch(text: str) -> str:
    """What the page shows for this text to the Dutch browser (the English text while it is untranslated)."""
    with translation.override("nl"):
        return translation.gettext(text)


def upload_for_verification(page: Page, file: Path) -> None:
    page.goto("/verify/")
    page.get_by_label(dutch("The attestation file")).set_input_files(str(file))
    page.get_by_role("button", name=dutch("Verify"), exact=True).click()


def test_the_auditor_issues_and_the_employer_downloads_and_verifies_an_attestation(
    open_tab: Callable[[str], Visit],
    organisation: Organisation,
    employer: StaffUser,
    auditor: StaffUser,
    tmp_path: Path,
) -> None:
    engage(auditor.pk, organisation.pk)
    improved = record_trajectory(organisation.pk, opened=IN_Q3[0], completed=IN_Q3[4], outcome="improved")
    not_improved = record_trajectory(
        organisation.pk, opened=IN_Q3[1], completed=IN_Q3[6], outcome="not_improved"
    )

    # The auditor: the organisation's attestations, the button for the quarter that ended.
    auditing = open_tab("desktop")
    page = auditing.page
    log_in(page, auditor)
    page.goto(f"/notary/organisations/{organisation.pk}/attestations/")
    assert violations(page) == "", "the auditor's attestations"
    issue = dutch("Issue the attestation for %(period)s") % {"period": QUARTER}
    page.get_by_role("button", name=issue).click()
    expect(page.locator(".messages")).to_contain_text(
        dutch("The attestation for %(period)s is signed and issued.") % {"period": QUARTER}
    )
    expect(page.locator("main")).to_contain_text(improved)
    expect(page.locator("main")).to_contain_text(not_improved)
    page.get_by_role("button", name=issue).click()  # a second press issues nothing new
    expect(page.locator(".messages")).to_contain_text(re.compile("."))
    assert Attestation.objects.count() == 1
    assert violations(page) == "", "the auditor's attestations after issuing"
    page.screenshot(path=str(SCREENSHOTS / "attestations-auditor.png"), full_page=True)

    # The employer: from the start page to the list, the download.
    employing = open_tab("phone")
    page = employing.page
    log_in(page, employer)
    expect(page).to_have_url(re.compile(r"/staff/$"))
    page.locator("main .staff-pages a[href='/attestations/']").click()
    expect(page).to_have_url(re.compile(r"/attestations/$"))
    assert violations(page) == "", "the employer's attestations"
    assert page.evaluate(NO_HORIZONTAL_SCROLL), "the employer's attestations on a phone"
    with page.expect_download() as started:
        page.get_by_role(
            "link", name=dutch("Download the attestation for %(period)s") % {"period": QUARTER}
        ).click()
    download = started.value
    downloaded = tmp_path / download.suggested_filename
    download.save_as(downloaded)
    assert downloaded.suffix == ".json"

    # The public page: the key's fingerprint, and the verdict on the downloaded file.
    upload_for_verification(page, downloaded)
    verdict = page.locator("section.verdict")
    expect(verdict.get_by_role("heading")).to_have_text(dutch("Valid"))
    expect(verdict).to_contain_text(signing.fingerprint())
    expect(verdict).to_contain_text(organisation.name)
    expect(verdict).to_contain_text(not_improved)
    expect(page.locator("#fingerprint")).to_have_text(signing.fingerprint())
    assert violations(page) == "", "the verdict: valid"
    assert page.evaluate(NO_HORIZONTAL_SCROLL), "the verdict on a phone"
    page.screenshot(path=str(SCREENSHOTS / "verify-valid-phone.png"), full_page=True)

    # One byte changed: one trajectory's outcome, "improved" made "imprived".
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(downloaded.read_bytes().replace(b'"improved"', b'"imprived"', 1))
    assert tampered.read_bytes() != downloaded.read_bytes()
    upload_for_verification(page, tampered)
    expect(verdict.get_by_role("heading")).to_have_text(dutch("Not valid"))
    expect(verdict).not_to_contain_text(organisation.name)
    assert violations(page) == "", "the verdict: not valid"
    assert auditing.foreign_requests == [] and employing.foreign_requests == []
    assert not_status_codes(auditing.errors) == [] and not_status_codes(employing.errors) == []
