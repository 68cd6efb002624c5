"""E-mail and SMS. (Placeholder interface; completed in the messaging work.)"""

from __future__ import annotations


class ConsoleSmsGateway:
    def send(self, *, to: str, body: str) -> str:
        print(f"SMS to {to}: {body}")  # noqa: T201
        return "console"


class MemorySmsGateway:
    outbox: list[dict[str, str]] = []

    def send(self, *, to: str, body: str) -> str:
        self.outbox.append({"to": to, "body": body})
        return f"memory-{len(self.outbox)}"


class TwilioSmsGateway:
    pass


class TwoFactorSmsGateway:
    pass
