"""Each staff role logs in with its second factor and reaches every page of its navigation; axe-core's WCAG
2.2 A and AA rules find nothing on those pages or on the error pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Visit
from tests.browser.test_accessibility import violations
from tests.browser.test_smoke import log_in
from tests.conftest import ALL_DATABASES

# The dossier pages read the casefiles and notes stores.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]

# What each role must find in its navigation (more appear as the dossier, report and notary pages land).
EXPECTED = {
    "employer": {
        "/staff/",
        "/staff/import/",
        "/staff/invitations/",
        "/attestations/",
        "/account/two_factor/",
    },
    "casemanager": {"/staff/", "/dossiers/", "/account/two_factor/"},
    "auditor": {"/staff/", "/notary/", "/account/two_factor/"},
    "platform_admin": {"/staff/", "/staff/import/", "/staff/invitations/", "/admin/", "/account/two_factor/"},
}


@pytest.mark.parametrize("persona", sorted(EXPECTED))
def test_each_role_reaches_every_page_of_its_navigation(
    open_tab: Callable[[str], Visit], persona: str, request: Any
) -> None:
    user = request.getfixturevalue(persona)
    visit = open_tab("desktop")
    page = visit.page
    log_in(page, user)
    expect(page).to_have_url(re.compile(r"/staff/$"))

    links = page.locator("nav.staff-nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert EXPECTED[persona] <= set(links), links

    for href in links:
        response = page.goto(href)
        assert response is not None and response.status == 200, href
        if not href.startswith("/admin/"):
            # Our own pages: the staff navigation and footer, and nothing axe objects to.
            expect(page.locator("nav.staff-nav")).to_be_visible()
            expect(page.locator(".site-footer")).to_contain_text("Preventicons voor professionals")
        assert violations(page) == "", href
    assert visit.foreign_requests == []


def test_the_error_pages_meet_wcag_aa(open_tab: Callable[[str], Visit], employer: Any) -> None:
    visit = open_tab("phone")
    page = visit.page

    response = page.goto("/geen-pagina/")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Deze pagina bestaat niet")
    assert violations(page) == ""

    log_in(page, employer)
    response = page.goto("/admin/")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Je hebt geen toegang tot deze pagina")
    assert violations(page) == ""


def test_the_import_preview_meets_wcag_aa(
    open_tab: Callable[[str], Visit], employer: Any, tmp_path: Any
) -> None:
    visit = open_tab("desktop")
    page = visit.page
    log_in(page, employer)
    upload = tmp_path / "adressen.csv"
    upload.write_text("naam;e-mail;mobiel;afdeling\r\nAnna Smit;anna@example.nl;0611000001;Zorg\r\n")

    page.goto("/staff/import/")
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Lijst controleren").click()

    expect(page.get_by_role("heading", name="Bekijk wat deze import doet")).to_be_visible()
    assert violations(page) == ""
    page.get_by_role("button", name="Deze lijst importeren").click()
    expect(page.get_by_text("De adressenlijst is geïmporteerd", exact=False)).to_be_visible()
