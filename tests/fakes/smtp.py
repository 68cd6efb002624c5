"""A real SMTP server on 127.0.0.1 at a random port (aiosmtpd), collecting what it receives.

Refusals are scripted: ``refuse_next_recipients(1, "550 5.1.1 No such user")`` answers the next RCPT TO
with that reply (4xx for a temporary refusal, 5xx for a permanent one).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, server: FakeSmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        with self.server.lock:
            refusal = self.server.refusals.pop(0) if self.server.refusals else None
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        with self.server.lock:
            self.server.messages.append(
                ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(content))
            )
        return "250 Message accepted for delivery"


class _EphemeralPortController(Controller):
    """Binds port 0 and learns the port the system chose (aiosmtpd wants a fixed one)."""

    def _create_server(self) -> Awaitable[Any]:
        create = super()._create_server()

        async def bind() -> Any:
            server = await create
            assert isinstance(server, asyncio.Server)
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()


class FakeSmtpServer:
    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self.refusals: list[str] = []
        self.lock = threading.Lock()
        self._controller: _EphemeralPortController | None = None
        self._log_level: int | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        assert self._controller is not None, "the server is not running"
        return int(self._controller.port)

    def refuse_next_recipients(self, count: int = 1, reply: str = "550 5.1.1 Mailbox unavailable") -> None:
        with self.lock:
            self.refusals.extend([reply] * count)

    def wait_for(self, count: int, *, timeout: float) -> list[ReceivedMail]:
        """Wait until ``count`` messages arrived or ``timeout`` seconds passed; return what arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    break
            time.sleep(0.05)
        with self.lock:
            return list(self.messages)

    def start(self) -> FakeSmtpServer:
        # aiosmtpd logs envelopes (addresses) at INFO: that is the fake's log, not ours; keep it quiet.
        mail_log = logging.getLogger("mail.log")
        self._log_level = mail_log.level
        mail_log.setLevel(logging.WARNING)
        self._controller = _EphemeralPortController(_Handler(self), hostname="127.0.0.1", port=0)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._log_level is not None:
            logging.getLogger("mail.log").setLevel(self._log_level)
            self._log_level = None

    def __enter__(self) -> FakeSmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
