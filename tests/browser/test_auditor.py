"""The auditor, in Chromium: from the start page to an engaged organisation's period, the choice of another
period and a spot check; axe-core's WCAG 2.2 A and AA rules find nothing on the way."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from casefiles import accesslog
from casefiles.models import Trajectory
from notary import periods
from participants.models import Organisation, StaffUser
from tests.browser.conftest import Visit
from tests.browser.test_accessibility import violations
from tests.browser.test_smoke import log_in
from tests.conftest import ALL_DATABASES
from tests.notary.garant import append_trajectory, clean_garant, sign_head, today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_the_auditor_reads_a_period_and_spot_checks_a_reference(
    open_tab: Callable[[str], Visit], organisation: Organisation, auditor: StaffUser, device: str
) -> None:
    garant = clean_garant(organisation, auditor)
    trajectory = Trajectory.objects.create(
        dossier=garant.world.dossier, kind="coaching", started_on=today() - dt.timedelta(days=2)
    )
    reference = append_trajectory(trajectory, sessions=3, outcome="improved", took_place=True)
    accesslog.record("view_dossier", user=garant.world.anna, dossier_number=garant.world.dossier.number)
    sign_head()
    visit = open_tab(device)
    page = visit.page

    log_in(page, auditor)
    # By address, not by text: the new strings are translated at the end of the issue (locale/).
    page.locator('nav.staff-nav a[href="/notary/"]').click()
    expect(page).to_have_url(re.compile(r"/notary/$"))
    assert violations(page) == ""
    page.get_by_role("link", name=organisation.name).click()
    expect(page.locator("main table").first).to_contain_text(reference)
    assert violations(page) == ""

    month = periods.month(today().year, today().month)
    page.locator("select#period").select_option(month.key)
    page.locator("form.period button").click()
    expect(page).to_have_url(re.compile(rf"period={month.key}$"))
    page.get_by_role("link", name=re.compile(reference)).click()
    expect(page.locator("h1")).to_contain_text(reference)
    assert violations(page) == ""
    assert garant.world.dossier.number not in page.content()
    assert visit.foreign_requests == []
