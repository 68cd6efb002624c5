"""The pages a visitor meets first, in a real browser on a phone and a desktop; staff login end to end."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from participants.models import StaffUser
from tests.browser.conftest import SCREENSHOTS, Visit
from tests.conftest import STAFF_PASSWORD

pytestmark = pytest.mark.browser

NO_HORIZONTAL_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
# Every visible form control, and whether something names it for a screen reader.
UNLABELLED_CONTROLS = """
() => [...document.querySelectorAll('input, select, textarea')]
    .filter(el => el.type !== 'hidden' && el.type !== 'submit' && !el.hidden)
    .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
    .map(el => el.name)
"""


def check_page(visit: Visit, *, device: str) -> None:
    """What every page owes every visitor: one heading, Dutch, no sideways scrolling, nothing refused."""
    page = visit.page
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("h1")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "nl"
    if device == "phone":
        assert page.evaluate(NO_HORIZONTAL_SCROLL)
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert visit.errors == []
    assert visit.foreign_requests == []


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_home_page(open_tab: Callable[[str], Visit], device: str) -> None:
    visit = open_tab(device)

    response = visit.page.goto("/")

    assert response is not None and response.status == 200
    check_page(visit, device=device)
    # The stylesheet loaded (a CSP refusal would leave the browser's default serif font).
    assert visit.page.evaluate("getComputedStyle(document.body).fontFamily") != "serif"
    if device == "phone":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        visit.page.screenshot(path=str(SCREENSHOTS / "home-phone.png"), full_page=True)


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_staff_login_page(open_tab: Callable[[str], Visit], device: str) -> None:
    visit = open_tab(device)

    visit.page.goto("/account/login/")

    check_page(visit, device=device)
    expect(visit.page.get_by_label("Gebruikersnaam")).to_be_visible()
    expect(visit.page.get_by_label("Wachtwoord")).to_be_visible()
    if device == "phone":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        visit.page.screenshot(path=str(SCREENSHOTS / "login-phone.png"), full_page=True)


def test_the_skip_link_is_the_first_stop_for_the_keyboard(open_tab: Callable[[str], Visit]) -> None:
    page = open_tab("desktop").page
    page.goto("/")

    page.keyboard.press("Tab")

    focused = page.locator(":focus")
    expect(focused).to_have_attribute("href", "#main")
    expect(focused).to_be_in_viewport()


def test_switching_to_english(open_tab: Callable[[str], Visit]) -> None:
    visit = open_tab("phone")
    visit.page.goto("/")

    visit.page.get_by_role("button", name="English").click()

    expect(visit.page.locator("html")).to_have_attribute("lang", "en")
    assert visit.errors == []


def press_next(page: Page) -> None:
    """The wizard's own submit button (the header has the language switch, a submit button too)."""
    page.locator("main .actions button[type=submit]").first.click()


def log_in(page: Page, user: StaffUser) -> None:
    page.goto("/account/login/")
    page.get_by_label("Gebruikersnaam").fill(user.username)
    page.get_by_label("Wachtwoord").fill(STAFF_PASSWORD)
    press_next(page)
    device = TOTPDevice.objects.get(user=user)
    code = str(totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)).zfill(6)
    page.get_by_label("Token").fill(code)
    press_next(page)


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_staff_logs_in_with_password_and_authenticator_code(
    open_tab: Callable[[str], Visit], employer: StaffUser, device: str
) -> None:
    visit = open_tab(device)

    log_in(visit.page, employer)

    expect(visit.page).to_have_url(re.compile(r"/staff/$"))
    check_page(visit, device=device)
    expect(visit.page.get_by_text(employer.username)).to_be_visible()
    if device == "phone":
        visit.page.screenshot(path=str(SCREENSHOTS / "staff-home-phone.png"), full_page=True)


def test_a_wrong_code_keeps_the_staff_member_out(
    open_tab: Callable[[str], Visit], employer: StaffUser
) -> None:
    visit = open_tab("phone")
    page = visit.page
    page.goto("/account/login/")
    page.get_by_label("Gebruikersnaam").fill(employer.username)
    page.get_by_label("Wachtwoord").fill(STAFF_PASSWORD)
    press_next(page)

    page.get_by_label("Token").fill("000000")
    press_next(page)

    expect(page.get_by_label("Token")).to_be_visible()
    expect(page.locator(".errorlist")).to_be_visible()
    page.goto("/staff/")
    assert "/account/login/" in page.url


def test_new_staff_sets_up_an_authenticator_app_on_a_phone(
    open_tab: Callable[[str], Visit], employer: StaffUser
) -> None:
    TOTPDevice.objects.filter(user=employer).delete()
    visit = open_tab("phone")
    page = visit.page
    page.goto("/account/login/")
    page.get_by_label("Gebruikersnaam").fill(employer.username)
    page.get_by_label("Wachtwoord").fill(STAFF_PASSWORD)
    press_next(page)
    # No second factor yet: the staff dashboard sends them to set one up.
    expect(page).to_have_url(re.compile(r"/account/two_factor/setup/$"))
    press_next(page)

    qr = page.locator("img[src$='/account/two_factor/qrcode/']")
    expect(qr).to_be_visible()
    assert page.evaluate("document.querySelector('img[src$=\"/qrcode/\"]').naturalWidth") > 0
    secret = page.locator("a[href^='otpauth://']").inner_text().strip()
    page.get_by_label("Token").fill(str(totp(base64.b32decode(secret))).zfill(6))
    press_next(page)

    expect(page).to_have_url(re.compile(r"/account/two_factor/setup/complete/$"))
    check_page(visit, device="phone")
    page.locator("main a[href='/staff/']").click()
    expect(page).to_have_url(re.compile(r"/staff/$"))
