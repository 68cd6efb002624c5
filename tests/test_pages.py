"""Pages: language, security headers, nothing from third parties, markup a screen reader can use."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

import preventicons.settings as product_settings
from participants.models import Organisation, Participant, StaffUser
from participants.session import bind_participant_session
from preventicons.staffauth import REAUTH_SESSION_KEY
from tests.conftest import STAFF_PASSWORD, login_verified

URL_ATTRIBUTES = {"src", "href", "action", "srcset", "poster", "data", "formaction", "manifest", "background"}
LABELLED_INPUTS = {"input", "select", "textarea"}
UNLABELLED_INPUT_TYPES = {"hidden", "submit", "button", "reset", "image"}


@dataclass
class Page:
    """What a test needs to know about one rendered page."""

    html_lang: str | None = None
    h1_count: int = 0
    urls: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    label_targets: set[str] = field(default_factory=set)
    inputs: list[dict[str, str | None]] = field(default_factory=list)
    inline_scripts: int = 0
    inline_styles: int = 0
    event_handlers: list[str] = field(default_factory=list)
    viewport: str | None = None


class PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self.in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.page.html_lang = attributes.get("lang")
        if tag == "h1":
            self.page.h1_count += 1
        if tag == "meta" and attributes.get("name") == "viewport":
            self.page.viewport = attributes.get("content")
        if tag == "script" and not attributes.get("src"):
            self.page.inline_scripts += 1
        if tag == "style":
            self.page.inline_styles += 1
        if tag == "label" and attributes.get("for"):
            self.page.label_targets.add(attributes["for"] or "")
        visible = "hidden" not in attributes and attributes.get("type", "text") not in UNLABELLED_INPUT_TYPES
        if tag in LABELLED_INPUTS and visible:
            self.page.inputs.append(attributes)
        for name, value in attrs:
            if name == "id" and value:
                self.page.ids.add(value)
            if name == "style":
                self.page.inline_styles += 1
            if name.startswith("on"):
                self.page.event_handlers.append(f"<{tag} {name}>")
            if name in URL_ATTRIBUTES and value:
                self.page.urls.extend(part.strip().split(" ")[0] for part in value.split(","))


def parse(html: str) -> Page:
    parser = PageParser()
    parser.feed(html)
    return parser.page


def foreign_urls(page: Page, own_host: str = "testserver") -> list[str]:
    """URLs that would make the browser contact another host (http, https or protocol-relative)."""
    found = []
    for url in page.urls:
        parts = urlsplit(url)
        leaves = parts.scheme in {"http", "https"} or url.startswith("//")
        if leaves and parts.hostname != own_host:
            found.append(url)
    return found


def login_wizard_token_step(client: Client, user: StaffUser) -> Any:
    return client.post(
        reverse("two_factor:login"),
        {"login_view-current_step": "auth", "auth-username": user.username, "auth-password": STAFF_PASSWORD},
    )


@pytest.fixture
def rendered_pages(
    client: Client, employer: StaffUser, platform_admin: StaffUser, casemanager: StaffUser
) -> dict[str, str]:
    """Every kind of page this foundation renders, as anonymous visitor, staff and admin."""
    pages: dict[str, str] = {}
    anonymous = Client()
    pages["home"] = anonymous.get(reverse("home")).content.decode()
    pages["login"] = anonymous.get(reverse("two_factor:login")).content.decode()
    pages["login token step"] = login_wizard_token_step(Client(), casemanager).content.decode()
    staff = login_verified(Client(), employer)
    pages["two_factor:reauth"] = staff.get(reverse("two_factor:reauth")).content.decode()
    # The credential pages open after the password and a current code again (preventicons/staffauth.py).
    session = staff.session
    session[REAUTH_SESSION_KEY] = {"user": employer.pk, "at": int(time.time())}
    session.save()
    for name in (
        "staff-home",
        "two_factor:profile",
        "two_factor:backup_tokens",
        "two_factor:setup_complete",
        "two_factor:password_change",
    ):
        pages[name] = staff.get(reverse(name)).content.decode()
    pages["phone_create"] = staff.get(reverse("two_factor:phone_create")).content.decode()
    newcomer = StaffUser.objects.create_user(username="hr-new", password=STAFF_PASSWORD)
    fresh = Client()
    fresh.force_login(newcomer)
    pages["setup"] = fresh.get(reverse("two_factor:setup")).content.decode()
    pages["setup generator step"] = fresh.post(
        reverse("two_factor:setup"), {"staff_setup_view-current_step": "welcome"}
    ).content.decode()
    admin = login_verified(Client(), platform_admin)
    pages["admin index"] = admin.get(reverse("admin:index")).content.decode()
    pages["admin staff"] = admin.get(reverse("admin:participants_staffuser_changelist")).content.decode()
    pages["admin staff change"] = admin.get(
        reverse("admin:participants_staffuser_change", args=[employer.pk])
    ).content.decode()
    return pages


# --- language ------------------------------------------------------------------------------------


@pytest.fixture
def product_language(settings: Any) -> None:
    """The product's own default language (the test settings run the rest of the suite in English)."""
    settings.LANGUAGE_CODE = product_settings.LANGUAGE_CODE


def test_the_product_default_language_is_dutch() -> None:
    assert product_settings.LANGUAGE_CODE == "nl"


@pytest.mark.django_db
@pytest.mark.usefixtures("product_language")
def test_pages_are_dutch_by_default(client: Client) -> None:
    response = client.get(reverse("home"))

    assert response["Content-Language"] == "nl"
    assert parse(response.content.decode()).html_lang == "nl"


@pytest.mark.django_db
@pytest.mark.usefixtures("product_language")
def test_switching_to_english_changes_the_language_and_the_lang_attribute(client: Client) -> None:
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("two_factor:login")})
    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor:login")

    response = client.get(reverse("two_factor:login"))

    assert response["Content-Language"] == "en"
    page = parse(response.content.decode())
    assert page.html_lang == "en"
    assert "<h1>Login</h1>" in response.content.decode()

    client.post(reverse("set_language"), {"language": "nl", "next": "/"})
    response = client.get(reverse("home"))
    assert response["Content-Language"] == "nl"
    assert parse(response.content.decode()).html_lang == "nl"


@pytest.mark.django_db
@pytest.mark.usefixtures("product_language")
def test_an_unknown_language_is_refused_and_dutch_stays(client: Client) -> None:
    client.post(reverse("set_language"), {"language": "de", "next": "/"})

    assert client.get(reverse("home"))["Content-Language"] == "nl"


@pytest.mark.django_db
@pytest.mark.usefixtures("product_language")
def test_a_browser_asking_for_a_language_we_lack_gets_dutch(client: Client) -> None:
    response = client.get(reverse("home"), headers={"accept-language": "de-DE,de;q=0.9"})

    assert response["Content-Language"] == "nl"


@pytest.mark.django_db
def test_set_language_refuses_a_redirect_to_another_host(client: Client) -> None:
    response = client.post(reverse("set_language"), {"language": "en", "next": "https://evil.example/"})

    assert response.status_code == 302
    assert urlsplit(response["Location"]).netloc == ""


@pytest.mark.django_db
@pytest.mark.usefixtures("product_language")
def test_the_language_switch_offers_the_other_language(client: Client) -> None:
    html = client.get(reverse("home")).content.decode()

    assert 'name="language" value="en"' in html
    assert 'name="language" value="nl"' not in html


# --- security headers --------------------------------------------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/account/login/", "/staff/", "/admin/", "/no-such-page/"])
def test_every_answer_carries_the_security_headers(client: Client, path: str) -> None:
    response = client.get(path)

    header = response["Content-Security-Policy"]
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header
    directives = csp_directives(header)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert response["X-Frame-Options"] == "DENY"
    # Not "no-referrer": with it, browsers post forms with "Origin: null" and the CSRF check refuses them.
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "interest-cohort=()"):
        assert feature in policy


def cache_control(response: Any) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


@pytest.mark.parametrize("path", ["/staff/", "/account/two_factor/", "/"])
def test_pages_for_a_logged_in_staff_member_are_never_stored(
    client: Client, employer: StaffUser, path: str
) -> None:
    login_verified(client, employer)

    response = client.get(path)

    assert response.status_code == 200
    assert {"no-store", "private"} <= cache_control(response)


def test_pages_in_a_participant_session_are_never_stored(client: Client, organisation: Organisation) -> None:
    participant = Participant.objects.create(organisation=organisation)
    session = client.session
    bind_participant_session(session, participant)
    session.save()

    assert "no-store" in cache_control(client.get(reverse("home")))


def test_the_login_wizard_is_never_stored(client: Client, employer: StaffUser) -> None:
    assert "no-store" in cache_control(client.get(reverse("two_factor:login")))
    assert "no-store" in cache_control(login_wizard_token_step(client, employer))


@pytest.mark.django_db
def test_the_public_home_page_may_be_cached(client: Client) -> None:
    assert "no-store" not in cache_control(client.get(reverse("home")))


# --- nothing from third parties, markup that works without inline code -------------------------


def test_no_page_loads_anything_from_another_host(rendered_pages: dict[str, str]) -> None:
    for name, html in rendered_pages.items():
        assert foreign_urls(parse(html)) == [], name


def test_the_url_scan_would_notice_a_cdn() -> None:
    page = parse(
        '<link href="//cdnjs.cloudflare.com/x.css"><script src="https://fonts.example/f.js"></script>'
        '<img srcset="/a.png 1x, http://img.example/b.png 2x"><a href="/staff/">x</a>'
    )

    assert foreign_urls(page) == [
        "//cdnjs.cloudflare.com/x.css",
        "https://fonts.example/f.js",
        "http://img.example/b.png",
    ]


def test_our_stylesheets_import_nothing_from_elsewhere() -> None:
    for folder in settings.STATICFILES_DIRS:
        for sheet in Path(folder).rglob("*.css"):
            text = sheet.read_text()
            assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text), sheet


def test_pages_carry_no_inline_script_style_or_event_handler(rendered_pages: dict[str, str]) -> None:
    # The CSP forbids them, so a browser would silently drop them: none may be needed.
    for name, html in rendered_pages.items():
        page = parse(html)
        assert page.inline_scripts == 0, name
        assert page.inline_styles == 0, name
        assert page.event_handlers == [], name
        assert "javascript:" not in html, name


def test_every_page_has_one_h1_a_viewport_and_a_skip_link_target(rendered_pages: dict[str, str]) -> None:
    for name, html in rendered_pages.items():
        if name.startswith("admin"):
            continue
        page = parse(html)
        assert page.h1_count == 1, name
        assert page.viewport == "width=device-width, initial-scale=1", name
        assert "main" in page.ids, name
        assert '<a class="skip-link" href="#main">' in html, name


def test_every_form_field_has_a_label(rendered_pages: dict[str, str]) -> None:
    for name, html in rendered_pages.items():
        if name.startswith("admin"):
            continue
        page = parse(html)
        for attributes in page.inputs:
            labelled = attributes.get("id") in page.label_targets or attributes.get("aria-label")
            assert labelled, (name, attributes)


def test_the_login_form_asks_for_username_and_password_with_labels(client: Client, db: Any) -> None:
    page = parse(client.get(reverse("two_factor:login")).content.decode())

    assert {"id_auth-username", "id_auth-password"} <= page.label_targets
    assert {"id_auth-username", "id_auth-password"} <= page.ids


def test_a_wrong_password_is_announced(client: Client, employer: StaffUser) -> None:
    response = client.post(
        reverse("two_factor:login"),
        {"login_view-current_step": "auth", "auth-username": employer.username, "auth-password": "wrong"},
    )

    html = response.content.decode()
    assert 'class="form-errors" role="alert"' in html


def test_the_setup_page_shows_the_qr_code_from_our_own_host(rendered_pages: dict[str, str]) -> None:
    page = parse(rendered_pages["setup generator step"])

    assert reverse("two_factor:qr") in page.urls
