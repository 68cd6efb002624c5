"""The providers messages go out through: SMTP, the SMS gateways (console, memory, Twilio), staff login codes.

The outbox (preventicons/messaging.py) decides what is sent when and hands each message to a gateway here;
a gateway sends one message or raises TransientSendError or PermanentSendError, whose text is a short
classification, never an address or a body. Code asks ``sms_gateway()`` (settings.SMS_GATEWAY names the
class), never the SDK directly.

Staff login codes do not use the outbox: ``TwoFactorSmsGateway`` sends them at once (they live minutes),
limited per staff user.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import secrets
import smtplib
import sys
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage, get_connection
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client as TwilioClient

from preventicons import ratelimit

logger = logging.getLogger(__name__)

TWILIO_TIMEOUT_SECONDS = 20.0


class SendError(Exception):
    """A provider did not take a message. The text is a short classification, never an address or a body."""


class TransientSendError(SendError):
    """Trying again later may succeed: the network, the provider's 5xx or rate limit, our configuration."""


class PermanentSendError(SendError):
    """This message will never be accepted: an invalid number, a refused mailbox, a malformed address."""


# --- E-mail ------------------------------------------------------------------------------------------------


class EmailGateway:
    """Django's e-mail connection, opened on the first send and kept open until ``close``."""

    def __init__(self) -> None:
        self._mail: Any = None

    def send(self, *, to: str, subject: str, body: str) -> None:
        """Hand one e-mail to the SMTP server, or raise TransientSendError/PermanentSendError."""
        # Our own domain in the Message-ID (Django's default would name the sending host), and 128 random bits
        # from the operating system before it: email.utils.make_msgid puts the time, the process id and a
        # Mersenne Twister draw there, from which a mailbox reader could tell how much mail the same worker
        # sent in between. The Message-ID is neither kept nor logged: the mail server's log pairs it with the
        # recipient.
        message_id = f"<{secrets.token_hex(16)}@{_sender_domain()}>"
        try:
            if self._mail is None:
                # Opened here, the connection stays open for the rest of the run instead of one per message.
                connection = get_connection(fail_silently=False)
                connection.open()
                self._mail = connection
            email = EmailMessage(
                subject=subject,
                body=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[to],
                headers={"Message-ID": message_id},
                connection=self._mail,
            )
            email.send(fail_silently=False)
        except smtplib.SMTPException as exc:
            self.close()
            raise _smtp_error(exc) from None
        except ValueError:
            # Django refuses a malformed address or a header with a line break before any connection.
            raise PermanentSendError("e-mail refused locally: malformed address or header") from None
        except OSError as exc:
            self.close()
            raise TransientSendError(f"smtp unreachable ({type(exc).__name__})") from None

    def close(self) -> None:
        """Close the connection, if one is open; the next send opens a new one."""
        if self._mail is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._mail.close()
            self._mail = None


def _sender_domain() -> str:
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return address.rpartition("@")[2] or "preventicons.localhost"


def _smtp_error(exc: smtplib.SMTPException) -> SendError:
    # The server's reply text may quote the address: only the class and the reply code are kept.
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        label = "smtp recipient refused " + ",".join(str(code) for code in codes)
        if codes and all(500 <= code < 600 for code in codes):
            return PermanentSendError(label)
        return TransientSendError(label)
    if isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPAuthenticationError | smtplib.SMTPHeloError):
        # About our account or sender address, not this message: worth retrying once an operator fixes it.
        return TransientSendError(f"smtp {type(exc).__name__} {exc.smtp_code}")
    if isinstance(exc, smtplib.SMTPResponseException):
        label = f"smtp {type(exc).__name__} {exc.smtp_code}"
        if 500 <= exc.smtp_code < 600:
            return PermanentSendError(label)
        return TransientSendError(label)
    return TransientSendError(f"smtp {type(exc).__name__}")


# --- SMS gateways ------------------------------------------------------------------------------------------


class SmsGateway(Protocol):
    def send(self, *, to: str, body: str) -> str:
        """Hand one SMS to the provider and return its id, or raise TransientSendError/PermanentSendError."""
        ...


def sms_gateway() -> SmsGateway:
    """The gateway named by settings.SMS_GATEWAY."""
    gateway: SmsGateway = import_string(settings.SMS_GATEWAY)()
    return gateway


class ConsoleSmsGateway:
    """Development only: prints the SMS, like Django's console e-mail backend. Refused in production."""

    def __init__(self) -> None:
        if settings.PRODUCTION:
            raise ImproperlyConfigured("the console SMS gateway prints numbers and codes: not in production")

    def send(self, *, to: str, body: str) -> str:
        sys.stdout.write(f"SMS to {to}:\n{body}\n{'-' * 40}\n")
        sys.stdout.flush()
        return "console"


class MemorySmsGateway:
    """Tests: keeps sent SMS in the class-wide ``outbox`` list, like Django's locmem e-mail backend."""

    outbox: list[dict[str, str]] = []

    def send(self, *, to: str, body: str) -> str:
        provider_id = f"memory-{len(self.outbox) + 1}"
        self.outbox.append({"to": to, "body": body, "id": provider_id})
        return provider_id


class _RedirectingHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to another base URL: a local fake endpoint in tests, a sandbox in staging."""

    def __init__(self, *, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._base = urlsplit(base_url)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        original = urlsplit(url)
        url = urlunsplit(
            (
                self._base.scheme,
                self._base.netloc,
                self._base.path.rstrip("/") + original.path,
                original.query,
                original.fragment,
            )
        )
        return super().request(method, url, *args, **kwargs)


class TwilioSmsGateway:
    """Twilio's Messages API through the official SDK. The SDK does not retry: our outbox does."""

    def __init__(self) -> None:
        base_url = settings.TWILIO_API_BASE_URL
        http_client = (
            _RedirectingHttpClient(base_url=base_url, timeout=TWILIO_TIMEOUT_SECONDS)
            if base_url
            else TwilioHttpClient(timeout=TWILIO_TIMEOUT_SECONDS)
        )
        self.client = TwilioClient(
            settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http_client
        )

    def send(self, *, to: str, body: str) -> str:
        try:
            message = self.client.messages.create(to=to, from_=settings.TWILIO_FROM_NUMBER, body=body)
        except TwilioRestException as exc:
            raise _twilio_error(exc) from None
        except (requests.RequestException, TwilioException) as exc:
            raise TransientSendError(f"twilio unreachable ({type(exc).__name__})") from None
        return str(message.sid)


# Refusals about our account, a rate or a timeout, not about this message: they can pass.
_TWILIO_TRANSIENT_4XX = frozenset({401, 403, 404, 408, 409, 429})


def _twilio_error(exc: TwilioRestException) -> SendError:
    # Twilio's message text quotes the number ("The 'To' number +31... is not valid"): keep status and code.
    label = f"twilio {exc.status} code {exc.code}" if exc.code else f"twilio {exc.status}"
    if 400 <= exc.status < 500 and exc.status not in _TWILIO_TRANSIENT_4XX:
        return PermanentSendError(label)
    return TransientSendError(label)


# --- Staff login codes (django-two-factor-auth) ------------------------------------------------------------


class StaffSmsOutcome(enum.StrEnum):
    """What became of a staff login code by SMS; pages say it as it is (never "sent" when it was not)."""

    SENT = "sent"
    OVER_BUDGET = "over_budget"  # STAFF_SMS_PER_HOUR used up: ``retry_after`` says for how long
    UNAVAILABLE = "unavailable"  # the budget store is away (fails closed) or the provider failed


@dataclass(frozen=True)
class StaffSmsResult:
    outcome: StaffSmsOutcome
    retry_after: int = 0

    @property
    def sent(self) -> bool:
        return self.outcome is StaffSmsOutcome.SENT


# The attribute on the device object that carries the last send's StaffSmsResult to the page (two-factor
# ignores what a gateway returns).
STAFF_SMS_RESULT_ATTRIBUTE = "preventicons_sms_result"


def send_staff_sms(*, user_id: Any, to: str, token: str) -> StaffSmsResult:
    """Send a login code to a staff member's phone now, within their own budget (one per user, also while
    they register a phone), or send nothing and say why."""
    if user_id is None:
        # A device nobody owns yet would share one budget with every other such device: never send for it.
        logger.error("staff login code for a device without a user: not sent")
        return StaffSmsResult(StaffSmsOutcome.UNAVAILABLE)
    decision = ratelimit.spend(ratelimit.staff_sms_budget(), f"user:{user_id}")
    if decision.unavailable:
        return StaffSmsResult(StaffSmsOutcome.UNAVAILABLE, decision.retry_after)
    if not decision:
        logger.warning("staff user %s reached STAFF_SMS_PER_HOUR: login code not sent", user_id)
        return StaffSmsResult(StaffSmsOutcome.OVER_BUDGET, decision.retry_after)
    body = gettext("Your Preventicons login code is %(token)s. It is valid for a few minutes.") % {
        "token": token
    }
    try:
        sms_gateway().send(to=to, body=body)
    except SendError as exc:
        logger.warning("staff login code not sent: %s", exc)
        return StaffSmsResult(StaffSmsOutcome.UNAVAILABLE, ratelimit.UNAVAILABLE_RETRY_SECONDS)
    return StaffSmsResult(StaffSmsOutcome.SENT)


class TwoFactorSmsGateway:
    """django-two-factor-auth's gateway for staff login codes: sent at once, at most STAFF_SMS_PER_HOUR.

    Not through the outbox: a login code is useless minutes later, so it is sent now or not at all. The
    result is left on the device object (STAFF_SMS_RESULT_ATTRIBUTE) for the page to read.
    """

    def send_sms(self, device: Any, token: str) -> bool:
        """Send the code, or send nothing (and return False) once the staff user's hourly limit is used."""
        # A wrong code can trigger a new SMS: without a bound, anyone with a password could run up SMS.
        result = send_staff_sms(user_id=device.user_id, to=device.number.as_e164, token=token)
        setattr(device, STAFF_SMS_RESULT_ATTRIBUTE, result)
        return result.sent

    def make_call(self, device: Any, token: str) -> None:
        """Not offered: codes are not read out by phone (TWO_FACTOR_CALL_GATEWAY stays unset)."""
        raise NotImplementedError(
            "Preventicons does not read login codes out by phone: "
            "use an authenticator app, SMS or a backup token"
        )
