"""The development mailbox: messages kept whole under var/mailbox/, a page that exists only while DEBUG is
on, and logs that stay redacted."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import Client
from pytest_django.fixtures import Settings

from preventicons import devmailbox, messaging
from preventicons.checks import check_gateways
from preventicons.crypto import new_token
from tests.preventicons.test_logging import written  # noqa: F401  # the configured handlers, captured

pytestmark = pytest.mark.django_db

NUMBER = "+31612345670"
ADDRESS = "eva.devries@zorggroep-noord.example"


@pytest.fixture
def mailbox(settings: Settings, tmp_path: Path) -> Path:
    """Development as `make run` has it: the mailbox backends, in a var/ of the test's own."""
    settings.VAR_DIR = tmp_path
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "preventicons.devmailbox.MailboxEmailBackend"
    settings.SMS_GATEWAY = "preventicons.devmailbox.MailboxSmsGateway"
    return tmp_path / "mailbox"


def send_a_link_and_a_code(token: str) -> None:
    with transaction.atomic():
        messaging.queue_email(
            key="test:devmailbox-0000000001:email",
            to=ADDRESS,
            subject="Je code",
            body=f"Je code is 123456.\n\nhttp://127.0.0.1:8000/me/link/{token}/",
        )
        messaging.queue_sms(key="test:devmailbox-0000000001:sms", to=NUMBER, body=f"Tik: http://x/w/{token}/")
    messaging.send_due_messages()


def test_messages_land_whole_and_the_page_shows_links_and_codes(mailbox: Path, client: Client) -> None:
    token = new_token()

    send_a_link_and_a_code(token)

    assert len(list(mailbox.glob("*.json"))) == 2
    assert oct(mailbox.stat().st_mode & 0o777) == "0o700"
    assert all(oct(path.stat().st_mode & 0o777) == "0o600" for path in mailbox.glob("*.json"))
    page = client.get("/dev/mailbox/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="http://127.0.0.1:8000/me/link/{token}/"' in html  # a link one can follow
    assert "123456" in html and ADDRESS in html and NUMBER in html and "Je code" in html
    # Newest first: the text message was handed over after the e-mail.
    assert html.index(NUMBER) < html.index(ADDRESS)
    assert "no-store" in page["Cache-Control"]


def test_the_page_answers_404_whenever_debug_is_off(
    mailbox: Path, client: Client, settings: Settings
) -> None:
    send_a_link_and_a_code(new_token())
    settings.DEBUG = False

    page = client.get("/dev/mailbox/")

    assert page.status_code == 404
    assert "123456" not in page.content.decode()


def test_the_page_answers_404_in_production_whatever_debug_says(
    mailbox: Path, client: Client, settings: Settings
) -> None:
    settings.PRODUCTION = True

    assert client.get("/dev/mailbox/").status_code == 404


def test_the_home_page_links_the_mailbox_only_while_debug_is_on(client: Client, settings: Settings) -> None:
    settings.DEBUG = True
    assert 'href="/dev/mailbox/"' in client.get("/").content.decode()
    settings.DEBUG = False
    assert "/dev/mailbox/" not in client.get("/").content.decode()


def test_the_logs_say_a_message_arrived_and_nothing_of_it(mailbox: Path, written: io.StringIO) -> None:  # noqa: F811
    token = new_token()

    send_a_link_and_a_code(token)

    output = written.getvalue()
    assert re.search(r"development mailbox: one sms arrived", output)
    for secret in (token, NUMBER, ADDRESS, "123456"):
        assert secret not in output
    assert any(token in path.read_text() for path in mailbox.glob("*.json"))


def test_the_mailbox_refuses_production(settings: Settings, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured):
        devmailbox.MailboxSmsGateway()
    with pytest.raises(ImproperlyConfigured):
        devmailbox.MailboxEmailBackend()
    with pytest.raises(ImproperlyConfigured):
        devmailbox.read_mailbox()
    assert not (tmp_path / "mailbox").exists()


def test_the_system_check_refuses_the_mailbox_in_production(settings: Settings) -> None:
    settings.PRODUCTION = True
    settings.EMAIL_BACKEND = "preventicons.devmailbox.MailboxEmailBackend"
    settings.SMS_GATEWAY = "preventicons.devmailbox.MailboxSmsGateway"

    assert [error.id for error in check_gateways()] == ["preventicons.E005", "preventicons.E005"]
