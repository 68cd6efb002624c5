"""E-mail and SMS. (Interface; being completed.)

Contract used by the apps:

    queue_email(*, key: str, to: str, subject: str, body: str) -> bool
    queue_sms(*, key: str, to: str, body: str) -> bool

Both write one outbox row per unique ``key`` (e.g. "enrol:<participant id>:email:1") inside the caller's
transaction; a second call with the same key changes nothing and returns False. Sending happens after
commit, through the send_due_messages task, with retries and backoff; the recipient and body are sealed.
"""

from __future__ import annotations


def queue_email(*, key: str, to: str, subject: str, body: str) -> bool:
    raise NotImplementedError


def queue_sms(*, key: str, to: str, body: str) -> bool:
    raise NotImplementedError


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
