"""A casemanager's journey in Chromium (issue 18): log in with two factors, open the newest help request,
reveal the contact, read the chart, start a trajectory and add a note; axe-core's WCAG 2.2 A and AA rules
find nothing on the dashboard or the dossier, the contact shown and a refused note's form included.

Against pytest-django's live server and the three PostgreSQL stores, with the help requests made through
the real flow (tests/casefiles/world.py). The login is the real form: the password, then a code computed
from the casemanager's TOTP device, as their authenticator app would show it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, Request, expect

from casefiles import notes as casenotes
from casefiles.models import Dossier, ProgressNote, Trajectory
from participants.models import Organisation
from tests.browser.conftest import Visit
from tests.browser.test_accessibility import not_status_codes, violations
from tests.browser.test_smoke import NO_HORIZONTAL_SCROLL, log_in
from tests.casefiles.world import active_participant, add_weeks, ask_for_help, signed_casemanager
from tests.conftest import ALL_DATABASES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]

NAME = "Jan de Vries"
ADDRESS = "jan.devries@example.nl"
SCORES: list[int | None] = [4, 4, 5, 4, 2]


def section(page: Page, heading: str) -> Locator:
    """The page's <section> named by this heading (the casefiles pages label each by its h2)."""
    return page.locator("section").filter(has=page.get_by_role("heading", name=heading, exact=True))


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_casemanager_takes_up_the_newest_help_request_from_login_to_note(
    open_tab: Callable[[str], Visit], organisation: Organisation, live_server: Any, device: str
) -> None:
    anna = signed_casemanager("cm-anna", organisation)
    # An older request, three days waiting, and the newest: Jan's, after a sharp drop this week.
    earlier = ask_for_help(
        active_participant(organisation, name="Els Bakker", email_address="els@example.nl")
    )
    three_days_ago = timezone.localdate() - dt.timedelta(days=3)
    earlier = Dossier.objects.get(pk=earlier.pk)
    earlier.opened_on, earlier.awaiting_contact_since = three_days_ago, three_days_ago  # sealed: saved
    earlier.save(update_fields=["opened_on", "awaiting_contact_since"])
    # His private address, proven at enrolment: the one an e-mail request reveals (never the work address).
    jan = active_participant(
        organisation, name=NAME, email_address="j.devries@werk.example", private_email=ADDRESS
    )
    add_weeks(jan, SCORES)
    newest = ask_for_help(jan)
    assert {earlier.casemanager_id, newest.casemanager_id} == {anna.pk}
    visit = open_tab(device)
    page = visit.page
    sent: list[tuple[str, str, dict[str, str]]] = []  # (the page it was sent from, its URL, its headers)

    def on_request(request: Request) -> None:
        sent.append((page.url, request.url, request.all_headers()))

    page.on("request", on_request)

    # Password, then the authenticator's code: the real login form, both factors.
    log_in(page, anna)
    expect(page).to_have_url(re.compile(r"/staff/$"))
    page.locator("nav.staff-nav a[href='/dossiers/']").click()
    expect(page).to_have_url(re.compile(r"/dossiers/$"))

    new_requests = section(page, "Nieuwe hulpvragen")
    expect(new_requests.get_by_role("link", name=earlier.number)).to_be_visible()
    expect(new_requests.get_by_role("row").filter(has_text=newest.number)).to_contain_text("nieuwe hulpvraag")
    expect(page.locator("main")).not_to_contain_text("Jan")  # numbers only, no names
    assert violations(page) == "", "dashboard"
    assert page.evaluate(NO_HORIZONTAL_SCROLL), "dashboard"

    new_requests.get_by_role("link", name=newest.number).click()
    expect(page).to_have_url(re.compile(rf"/dossiers/{newest.number}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(newest.number)
    expect(page.locator("main")).not_to_contain_text(NAME)  # no contact before it is asked for
    expect(page.locator("body")).not_to_contain_text(re.compile(r"\{[#%]"))  # no template text leaked

    # The chart: one image for a screen reader, a dot on each answered week; the table beside it.
    chart = section(page, "Wekelijkse scores").locator("svg[role=img]")
    expect(chart).to_be_visible()
    expect(chart.locator("circle")).to_have_count(len(SCORES))
    assert chart.evaluate("svg => svg.getBoundingClientRect().width") > 300
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    rows = page.get_by_role("table", name="Beantwoorde weken").locator("tbody tr")
    expect(rows).to_have_count(len(SCORES))
    assert rows.locator("td").all_inner_texts() == [str(value) for value in reversed(SCORES)]

    # Contact, on the explicit action only.
    page.get_by_role("button", name="Contactgegevens tonen").click()
    contact = section(page, "Contact")
    expect(contact.get_by_role("status")).to_contain_text(NAME)
    expect(contact.get_by_role("status")).to_contain_text(ADDRESS)
    assert violations(page) == "", "dossier with the contact shown"

    # A trajectory: its kind and its start date.
    trajectories = section(page, "Trajecten")
    trajectories.get_by_label("Soort traject").select_option("coaching")
    trajectories.get_by_label("Startdatum").fill(timezone.localdate().isoformat())
    trajectories.get_by_role("button", name="Traject starten").click()
    expect(page).to_have_url(re.compile(rf"/dossiers/{newest.number}/#trajectories$"))
    expect(page.get_by_text("Het traject is gestart.")).to_be_visible()
    expect(section(page, "Trajecten").locator("article.trajectory h3")).to_have_text(["Coaching"])

    # A note, listed once it is written.
    notes = section(page, "Voortgangsnotities")
    notes.get_by_label("Soort notitie").select_option("intake")
    notes.get_by_label("Notitie:", exact=True).fill("Eerste gesprek gehad over de werkdruk.")
    notes.get_by_role("button", name="Notitie toevoegen").click()
    expect(page).to_have_url(re.compile(rf"/dossiers/{newest.number}/#notes$"))
    expect(page.get_by_text("De notitie is toegevoegd.")).to_be_visible()
    expect(section(page, "Voortgangsnotities").locator("article.note")).to_have_count(1)
    expect(section(page, "Voortgangsnotities").locator(".note-text")).to_have_text(
        "Eerste gesprek gehad over de werkdruk."
    )

    # A note naming the participant's address: refused, the part named, nothing written.
    refused_text = f"Mailde naar {ADDRESS} over de afspraak."
    notes = section(page, "Voortgangsnotities")
    notes.get_by_label("Soort notitie").select_option("session")
    notes.get_by_label("Notitie:", exact=True).fill(refused_text)
    notes.get_by_role("button", name="Notitie toevoegen").click()
    notes = section(page, "Voortgangsnotities")
    expect(notes.locator(".errorlist")).to_contain_text(f"“{ADDRESS}”")
    expect(notes.get_by_label("Notitie:", exact=True)).to_have_value(refused_text)
    expect(notes.locator("article.note")).to_have_count(1)
    assert violations(page) == "", "dossier with a refused note"

    assert Trajectory.objects.filter(dossier=newest).count() == 1
    # Queued for the note batch (casefiles.notes), and on the page at once all the same.
    assert len(casenotes.notes_of(newest)) == 1 and not ProgressNote.objects.exists()
    assert visit.foreign_requests == []
    assert not_status_codes(visit.errors) == []  # the refused note answers 400, nothing else complains
    # What a proxy logging Referers learns: the site, never a dossier. A dossier page's requests (its CSS, its
    # forms) carry at most the bare origin ("strict-origin": "no-referrer" would post the forms with
    # "Origin: null", which Django's CSRF check refuses); its forms post with our real Origin.
    from_dossier = [
        (url, headers) for on_page, url, headers in sent if f"/dossiers/{newest.number}/" in on_page
    ]
    assert any("/static/" in url for url, _headers in from_dossier)
    posts = [headers for _url, headers in from_dossier if headers.get("origin")]
    assert posts and {headers["origin"] for headers in posts} == {live_server.url}
    for url, headers in from_dossier:
        assert urlsplit(headers.get("referer") or "/").path == "/", url
    for _on_page, url, headers in sent:
        assert newest.number not in headers.get("referer", ""), url
