"""pytest fixtures for the fakes; registered suite-wide by ``pytest_plugins`` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from preventicons.gateways import MemorySmsGateway
from tests.fakes.smtp import FakeSmtpServer
from tests.fakes.twilio import FakeTwilio


@pytest.fixture
def fake_twilio(settings: Any) -> Iterator[FakeTwilio]:
    """A local Twilio API; SMS go to it through the real SDK (SMS_GATEWAY = TwilioSmsGateway)."""
    with FakeTwilio() as fake:
        settings.SMS_GATEWAY = "preventicons.gateways.TwilioSmsGateway"
        settings.TWILIO_ACCOUNT_SID = fake.account_sid
        settings.TWILIO_AUTH_TOKEN = fake.auth_token
        settings.TWILIO_FROM_NUMBER = fake.from_number
        settings.TWILIO_API_BASE_URL = fake.url
        yield fake


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[FakeSmtpServer]:
    """A real local SMTP server; e-mail goes to it through Django's SMTP backend."""
    with FakeSmtpServer() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = server.host
        settings.EMAIL_PORT = server.port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_TIMEOUT = 10
        yield server


@pytest.fixture(autouse=True)
def _empty_memory_sms_outbox() -> Iterator[None]:
    """Each test starts with an empty MemorySmsGateway.outbox, as Django empties mail.outbox."""
    MemorySmsGateway.outbox.clear()
    yield
    MemorySmsGateway.outbox.clear()
