"""An employer's journey through the reports in Chromium (issue 19): log in with two factors, open the
reports, go from quarters to weeks and years, read the chart and the tables, download the CSV, open the
printable page, and raise the threshold; axe-core's WCAG 2.2 A and AA rules find nothing on the dashboard,
the printable page or the settings page.

The figures are made as the platform makes them: scores recorded by the submission's one write and frozen by
the real week close, for the employer's organisation (a department over the threshold, one hovering near it,
one of three people) and for three peers in its SBI division, so the sector comparison appears.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from django.utils import translation
from playwright.sync_api import Page, expect

from participants.models import Department, Organisation, StaffUser
from scores.submission import record_score
from scores.weekclose import close_week
from tests.browser.conftest import Visit
from tests.browser.test_accessibility import not_status_codes, violations
from tests.browser.test_smoke import NO_HORIZONTAL_SCROLL, log_in
from tests.casefiles.world import ONE_WEEK, active_participant, this_monday
from tests.conftest import ALL_DATABASES, make_organisation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]

WEEKS = 16  # closed weeks up to last week: always two quarters or more
# Department -> how many people answer every week. Three is under the threshold of five: folded.
EMPLOYER_DEPARTMENTS = {"Verpleging": 8, "Thuiszorg": 6, "Keuken": 3}
PEER_SBI_CODES = ("8710", "8720", "8730")


def answer(person: int, week: int) -> int:
    """A spread of answers, never (nearly) all alike: every group passes the rules on its own size."""
    return (person + week) % 5 + 1


def live_through(organisation: Organisation, people: dict[Department, int], weeks: list[dt.date]) -> None:
    """Everyone answers every week; each week is closed by the real week close."""
    members = [
        active_participant(organisation, department=department)
        for department, count in people.items()
        for _ in range(count)
    ]
    for index, week in enumerate(weeks):
        for number, participant in enumerate(members):
            assert participant.pseudonym
            record_score(
                pseudonym=participant.pseudonym,
                week=week,
                value=answer(number, index),
                organisation_id=organisation.pk,
                department_id=participant.department_id,
            )
        close_week(organisation_id=organisation.pk, week=week, today=this_monday(), vacuum=False)


def reporting_organisation(organisation: Organisation, weeks: list[dt.date]) -> None:
    Organisation.objects.filter(pk=organisation.pk).update(sbi_code="8710")
    Department.objects.filter(organisation=organisation).delete()
    people = {
        Department.objects.create(organisation=organisation, name=name): count
        for name, count in EMPLOYER_DEPARTMENTS.items()
    }
    live_through(organisation, people, weeks)
    for number, code in enumerate(PEER_SBI_CODES):
        peer = make_organisation(f"Zorgpartner {number + 1}", "zorg")
        Organisation.objects.filter(pk=peer.pk).update(sbi_code=code)
        live_through(peer, {Department.objects.get(organisation=peer, name="Care"): 6}, weeks)


def dutch(text: str) -> str:
    """What the page shows for this text to the Dutch browser (the English text while it is untranslated)."""
    with translation.override("nl"):
        return translation.gettext(text)


class Line(NamedTuple):
    """One line of the report's CSV, by position (its header is in the reader's language)."""

    period: str
    first_week: str
    group: str
    answers: str
    average: str
    hard: str
    participation: str
    note: str


def download_csv(page: Page, tmp_path: Path) -> list[Line]:
    with page.expect_download() as started:
        page.locator("main .downloads a[href$='report.csv']").click()
    download = started.value
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    header, *lines = csv.reader(io.StringIO(target.read_text(encoding="utf-8")))
    assert len(header) == len(Line._fields)
    return [Line(*line) for line in lines]


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_an_employer_reads_its_reports_downloads_them_and_raises_the_threshold(
    open_tab: Callable[[str], Visit],
    organisation: Organisation,
    employer: StaffUser,
    device: str,
    tmp_path: Path,
) -> None:
    weeks = [this_monday() - ONE_WEEK * back for back in range(WEEKS, 0, -1)]
    reporting_organisation(organisation, weeks)
    visit = open_tab(device)
    page = visit.page

    # Password, then the authenticator's code; the staff navigation leads to the reports (by quarter).
    log_in(page, employer)
    expect(page).to_have_url(re.compile(r"/staff/$"))
    page.locator("nav.staff-nav a[href='/reports/']").click()
    expect(page).to_have_url(re.compile(rf"/reports/{organisation.pk}/quarter/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(organisation.name)
    expect(page.locator("body")).not_to_contain_text(re.compile(r"\{[#%]"))  # no template text leaked

    # The chart: one image with a title for a screen reader; the table with the numbers beside it.
    chart = page.locator("main figure svg[role=img]")
    expect(chart).to_be_visible()
    expect(chart.locator("title")).not_to_be_empty()
    assert chart.evaluate("svg => svg.getBoundingClientRect().width") > 300
    trend = page.locator("section[aria-labelledby=trend-heading] table")
    expect(trend.locator("thead th")).to_have_count(4)  # period, the organisation, its sector, everyone
    assert len(trend.locator("tbody tr").all()) >= 2  # two quarters or more
    groups = page.locator("section[aria-labelledby=groups-heading] table")
    expect(groups.locator("tbody th")).to_have_text(
        [dutch("Whole organisation"), "Keuken", "Thuiszorg", "Verpleging", dutch("Other departments")]
    )
    assert violations(page) == "", "dashboard by quarter"
    assert page.evaluate(NO_HORIZONTAL_SCROLL), "dashboard by quarter"

    # Weeks, then years: each level its own page, the current one marked.
    for level, periods in (("week", 13), ("year", None)):
        page.locator(f"nav.levels a[href$='/{level}/']").click()
        expect(page).to_have_url(re.compile(rf"/reports/{organisation.pk}/{level}/$"))
        expect(page.locator("nav.levels a[aria-current=page]")).to_have_attribute(
            "href", f"/reports/{organisation.pk}/{level}/"
        )
        expect(page.locator("main figure svg[role=img] title")).not_to_be_empty()
        if periods is not None:
            expect(groups.locator("thead th")).to_have_count(periods + 1)
        assert violations(page) == "", f"dashboard by {level}"
        assert page.evaluate(NO_HORIZONTAL_SCROLL), f"dashboard by {level}"
    # Keuken's three people are never shown, not even as a count; the sector figure is.
    keuken = groups.locator("tbody tr").filter(has=page.get_by_role("rowheader", name="Keuken"))
    expect(keuken).to_contain_text(dutch("in other departments"))

    # The CSV of the weeks: it parses, and every number in it comes from five answers or more.
    page.locator("nav.levels a[href$='/week/']").click()
    rows = download_csv(page, tmp_path)
    assert {row.group for row in rows} >= {dutch("Whole organisation"), "Verpleging", dutch("Your sector")}
    assert len({row.period for row in rows}) == 13
    for row in rows:
        if row.answers:
            assert int(row.answers) >= 5, row
        else:
            assert not (row.average or row.hard or row.participation), row
    assert all(not row.answers for row in rows if row.group == "Keuken")
    assert any(row.average for row in rows if row.group == dutch("Your sector"))

    # The printable page: the same tables without the navigation.
    page.locator("main .downloads a[href$='/print/']").click()
    expect(page).to_have_url(re.compile(rf"/reports/{organisation.pk}/week/print/$"))
    expect(page.locator("main table").first).to_be_visible()
    expect(page.locator("nav.staff-nav")).to_have_count(0)
    assert violations(page) == "", "printable page"
    page.go_back()

    # Settings: raise the threshold to 7, and see the change listed with who made it.
    page.locator("main a[href$='/settings/']").first.click()
    expect(page).to_have_url(re.compile(rf"/reports/{organisation.pk}/settings/$"))
    assert violations(page) == "", "settings"
    page.locator("main input[name=threshold]").fill("7")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"/reports/{organisation.pk}/settings/$"))
    history = page.locator("section[aria-labelledby=history-heading] tbody tr")
    expect(history).to_have_count(1)
    expect(history.locator("td")).to_have_text([re.compile(r"\d"), employer.username, "5", "7"])
    expect(page.locator("main input[name=threshold]")).to_have_attribute("min", "8")
    assert violations(page) == "", "settings after a change"

    # The dashboard now says 7.
    page.locator("main a[href$='/quarter/']").first.click()
    expect(page.locator("main .helptext").first).to_contain_text("7")
    assert visit.foreign_requests == []
    assert not_status_codes(visit.errors) == []
