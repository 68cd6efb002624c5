"""The README's demo walk, in Chromium, against the embedded default as `make run` starts it.

Fresh SQLite files, `migrate` and `seed_demo` in processes of their own, then web, worker and beat from
Procfile.dev (honcho), exactly as `make run` does. The walk: the invitation link seed_demo printed,
enrolment with the codes read from the development mailbox, this week's link from the mailbox and a tap,
the account opened with both factors (the e-mailed link and the SMS code), and the stop.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from preventicons.dbrouter import ALIASES
from tests.browser.conftest import PHONE
from tests.conftest import BASE_DIR, embedded_default_environment, run_on_embedded_default

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PRIVATE_EMAIL = "demo.thuis@example.org"
CODE = re.compile(r"\b(\d{6})\b")
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}


@dataclass(frozen=True)
class Demo:
    site: str
    var_dir: Path
    seeded: str
    invitation: str
    name: str
    work_email: str
    organisation: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, *, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # nosec B310  # our own local server
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """`make run` on fresh files: migrate, seed_demo, and web, worker and beat under honcho."""
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    environment = {**embedded_default_environment(tmp_path), "PREVENTICONS_SITE_URL": site, "PORT": str(port)}
    for alias in ALIASES:
        run_on_embedded_default(
            "manage.py", "migrate", f"--database={alias}", "--no-input", "-v0", var_dir=tmp_path
        )
    seeded = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    invited = re.search(
        r"participants: (.+?) \((.+?)\) is invited and not enrolled yet; "
        r"work address (\S+), .*\n\s+(\S+/i/\S+/)",
        seeded,
    )
    organisation = re.search(r"run_weekly_round (\d+)", seeded)
    assert invited and organisation, seeded
    log = (tmp_path / "run.log").open("w")
    # Procfile.dev names .venv/bin/...: the virtualenv this suite runs in.
    honcho = Path(sys.executable).with_name("honcho")
    stack = subprocess.Popen(
        [str(honcho), "start", "-f", "Procfile.dev"],
        cwd=BASE_DIR,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(site + "/")
        yield Demo(
            site=site,
            var_dir=tmp_path,
            seeded=seeded,
            invitation=invited.group(4),
            name=invited.group(1),
            work_email=invited.group(3),
            organisation=organisation.group(1),
        )
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        try:
            stack.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait(timeout=10)
        log.close()


class Mailbox:
    """The development mailbox page, read as a newcomer reads it, in a tab of its own."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.seen = 0
        self.latest: list[tuple[str, str]] = []

    def count(self) -> int:
        self.page.goto("/dev/mailbox/")
        return self.page.locator(".dev-message").count()

    def settle(self, *, seconds: float = 60) -> int:
        """Wait until the worker has sent what seed_demo queued (the count holds still); how many."""
        deadline = time.monotonic() + seconds
        counts = [-1, -2, -3]
        while not (counts[-1] > 0 and counts[-1] == counts[-2] == counts[-3]):
            assert time.monotonic() < deadline, f"the development mailbox did not settle: {counts[-3:]}"
            time.sleep(1)
            counts.append(self.count())
        self.seen = counts[-1]
        return self.seen

    def new_messages(self, number: int = 1, *, seconds: float = 45) -> list[str]:
        """The bodies of the next ``number`` messages to arrive (sent by the worker), newest first."""
        deadline = time.monotonic() + seconds
        while (count := self.count()) < self.seen + number:
            assert time.monotonic() < deadline, f"no new message in the development mailbox after {seconds}s"
            time.sleep(0.5)
        self.latest = []
        for message in self.page.locator(".dev-message").all()[: count - self.seen]:
            kind = "sms" if "dev-message-sms" in (message.get_attribute("class") or "") else "email"
            self.latest.append((kind, message.locator(".dev-message-body").inner_text()))
        self.seen = count
        return [body for _kind, body in self.latest]

    def code(self, kind: str) -> str:
        """The code in the message of ``kind`` ("email" or "sms") among those that just arrived."""
        bodies = [body for found, body in self.latest if found == kind]
        assert len(bodies) == 1, self.latest
        match = CODE.search(bodies[0])
        assert match, bodies[0]
        return match.group(1)


def submit(page: Page, action: str) -> None:
    page.locator(f"main form[action='{action}'] button[type=submit]").first.click()


def test_the_readme_demo_walk(browser: Browser, demo: Demo) -> None:
    context = browser.new_context(base_url=demo.site, **PHONE)
    page = context.new_page()
    mailbox = Mailbox(context.new_page())
    assert mailbox.settle() >= 27  # this week's round (27 demo people) and the invitations have gone out
    results = Axe().run(mailbox.page, options=WCAG_AA)
    assert results.violations_count == 0, results.generate_report()
    page.goto("/")
    expect(page.locator("a[href='/dev/mailbox/']")).to_be_visible()

    # Enrol: the printed invitation link, its SMS code, consent, a private address and its e-mail code.
    page.goto(demo.invitation)
    expect(page).to_have_url(re.compile(r"/enrol/$"))
    submit(page, "/enrol/")
    mailbox.new_messages()
    page.locator("#id_code").fill(mailbox.code("sms"))
    submit(page, "/enrol/open/")
    expect(page).to_have_url(re.compile(r"/enrol/consent/$"))
    submit(page, "/enrol/consent/")
    expect(page).to_have_url(re.compile(r"/enrol/details/$"))
    page.locator("input[name=weekly_channel][value=private_email]").check()
    page.locator("#id_private_email").fill(PRIVATE_EMAIL)
    submit(page, "/enrol/details/")
    expect(page).to_have_url(re.compile(r"/enrol/codes/$"))
    mailbox.new_messages()
    page.locator("#id_email_code").fill(mailbox.code("email"))
    submit(page, "/enrol/codes/")
    expect(page).to_have_url(re.compile(r"/enrol/welcome/$"))

    # A tap: the request batch that makes the enrolment, then this week's round for the newly enrolled
    # (the commands seed_demo names), then the mailbox's link.
    for command in (["take_up_requests"], ["run_weekly_round", demo.organisation]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=BASE_DIR,
            env={**embedded_default_environment(demo.var_dir), "PREVENTICONS_SITE_URL": demo.site},
            capture_output=True,
            check=True,
            timeout=120,
            text=True,
        )
        assert command != ["take_up_requests"] or "enrolments 1" in done.stdout, done.stdout
    (weekly,) = mailbox.new_messages()
    assert "/w/" in weekly
    mailbox.page.locator(".dev-message").first.locator("a[href*='/w/']").first.click()
    expect(mailbox.page.locator("form.week-form")).to_be_visible()
    mailbox.page.locator("main form button.smiley[value='4']").click()
    expect(mailbox.page).to_have_url(re.compile(r"/w/[A-Za-z0-9_-]{43}/thanks/"))

    # The account: a link by e-mail to the work address on the list, then the SMS code (both factors).
    page.goto("/me/link/")
    page.locator("#id_email").fill(demo.work_email)
    submit(page, "/me/link/")
    (link_mail,) = mailbox.new_messages()
    assert "/me/link/" in link_mail
    page.goto(re.search(r"https?://\S+(/me/link/[A-Za-z0-9_-]{43}/)", link_mail).group(1))  # type: ignore[union-attr]
    submit(page, "/me/link/open/")
    expect(page).to_have_url(re.compile(r"/me/link/code/$"))
    mailbox.new_messages()
    page.locator("#id_sms_code").fill(mailbox.code("sms"))
    submit(page, "/me/link/code/")
    expect(page).to_have_url(re.compile(r"/me/$"))
    expect(page.locator("main")).to_contain_text(demo.work_email)
    expect(page.locator("main")).to_contain_text(demo.name)

    # Stop, with the codes of both factors from the mailbox.
    page.goto("/me/stop/")
    submit(page, "/me/stop/")
    expect(page).to_have_url(re.compile(r"/me/stop/confirm/$"))
    mailbox.new_messages(2)
    page.locator("#id_email_code").fill(mailbox.code("email"))
    page.locator("#id_sms_code").fill(mailbox.code("sms"))
    submit(page, "/me/stop/confirm/")
    expect(page).to_have_url(re.compile(r"/me/stopped/$"))
    context.close()

    # The worker's and web's logs carry none of the links or codes the mailbox showed.
    log = (demo.var_dir / "run.log").read_text()
    token = demo.invitation.rstrip("/").rsplit("/", 1)[-1]
    assert token not in log and demo.work_email not in log and PRIVATE_EMAIL not in log
