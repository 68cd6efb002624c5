"""Browser tests: Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Playwright's sync API keeps an event loop running in the test thread, and Django refuses database calls from
a thread with a running loop unless told otherwise; the test thread only prepares data, the live server
answers the browser from its own thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request

from preventicons.roles import Role

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A Dutch visitor's browser: the site follows Accept-Language, and Dutch is what our users mostly ask for.
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "nl-NL",
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, "locale": "nl-NL"}
DEVICES = {"phone": PHONE, "desktop": DESKTOP}
SCREENSHOTS = Path(settings.VAR_DIR) / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # `playwright install` downloads nothing here: Debian's Chromium is the browser.
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(autouse=True)
def role_groups(transactional_db: None) -> None:
    """The role groups a migration made: a transactional test before this one may have flushed them."""
    for role in Role:
        Group.objects.get_or_create(name=role.value)


@dataclass
class Visit:
    """One browser tab, with everything it complained about and every host it reached."""

    page: Page
    errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)


@pytest.fixture
def open_tab(browser: Browser, live_server: Any) -> Iterator[Callable[[str], Visit]]:
    """Opens a tab on a phone or a desktop, recording console errors (CSP violations among them)."""
    contexts: list[BrowserContext] = []
    own_host = urlsplit(live_server.url).hostname

    def open_on(device: str) -> Visit:
        context = browser.new_context(base_url=live_server.url, **DEVICES[device])
        contexts.append(context)
        visit = Visit(page=context.new_page())

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                visit.errors.append(message.text)

        def on_request(request: Request) -> None:
            host = urlsplit(request.url).hostname
            if host is not None and host != own_host:
                visit.foreign_requests.append(request.url)

        visit.page.on("console", on_console)
        visit.page.on("pageerror", lambda error: visit.errors.append(str(error)))
        visit.page.on("request", on_request)
        return visit

    yield open_on
    for context in contexts:
        context.close()
