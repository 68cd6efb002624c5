"""The development mailbox: e-mail and text messages kept whole in files under ``var/mailbox/``.

``make run`` sends every message here (the defaults in development), so a newcomer can read the links and
codes of the demo on the development-only page ``/dev/mailbox/`` (preventicons/views.py), which answers 404
whenever DEBUG is off. Nothing of a message goes to a log: the worker's log says only that one arrived.
Refused in production: these files hold addresses, numbers, links and codes in clear.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

logger = logging.getLogger(__name__)

# The newest messages the page shows; older files stay on disk until `make clean`.
SHOWN = 200


def mailbox_dir() -> Path:
    """The folder the development mailbox writes to and reads from."""
    return Path(settings.VAR_DIR) / "mailbox"


def _refuse_in_production() -> None:
    if settings.PRODUCTION:
        raise ImproperlyConfigured(
            "the development mailbox keeps messages in clear on disk: not in production"
        )


@dataclass(frozen=True)
class MailboxMessage:
    """One message as it was handed over: channel ("email" or "sms"), recipient, subject, body, when."""

    channel: str
    to: str
    subject: str
    body: str
    at: str


def deliver(*, channel: str, to: str, subject: str, body: str) -> None:
    """Write one message to the mailbox, whole; the file is complete or absent (written, then renamed)."""
    _refuse_in_production()
    folder = mailbox_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Named by arrival, so a sorted listing is the order of arrival; the random part keeps parallel
    # writers (two worker processes) apart.
    name = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
    record = {
        "channel": channel,
        "to": to,
        "subject": subject,
        "body": body,
        "at": timezone.localtime().isoformat(timespec="seconds"),
    }
    partial = folder / f".{name}.tmp"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(record, file, ensure_ascii=False, indent=1)
    partial.rename(folder / f"{name}.json")
    # Neither recipient nor content: a log line is read by more people than the mailbox.
    logger.info("development mailbox: one %s arrived, read it at %s/dev/mailbox/", channel, settings.SITE_URL)


def read_mailbox(*, limit: int = SHOWN) -> list[MailboxMessage]:
    """The newest ``limit`` messages, newest first."""
    _refuse_in_production()
    folder = mailbox_dir()
    if not folder.is_dir():
        return []
    messages = []
    for path in sorted(folder.glob("*.json"), reverse=True)[:limit]:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # removed meanwhile, or not ours
        messages.append(
            MailboxMessage(
                channel=str(record.get("channel", "")),
                to=str(record.get("to", "")),
                subject=str(record.get("subject", "")),
                body=str(record.get("body", "")),
                at=str(record.get("at", "")),
            )
        )
    return messages


class MailboxEmailBackend(BaseEmailBackend):
    """Django e-mail backend of the development mailbox. Refused in production."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse_in_production()
        super().__init__(*args, **kwargs)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            deliver(
                channel="email",
                to=", ".join(message.recipients()),
                subject=str(message.subject),
                body=str(message.body),
            )
        return len(email_messages)


class MailboxSmsGateway:
    """SMS gateway of the development mailbox (settings.SMS_GATEWAY). Refused in production."""

    def __init__(self) -> None:
        _refuse_in_production()

    def send(self, *, to: str, body: str) -> str:
        deliver(channel="sms", to=to, subject="", body=body)
        return "mailbox"
