"""The outbox: queued once per key, sent at least once and never twice by a retry, sealed, and quiet in logs.

A finished message leaves a tombstone (its hashed key) and a count per day, channel and outcome; what names
nobody is tested as the attack in tests/preventicons/test_outbox_privacy.py.

SMS go through the real twilio SDK over HTTP to a local fake endpoint; e-mail through Django's SMTP backend
to a real local SMTP server. Time moves with time-machine, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy
from two_factor.plugins.phonenumber.models import PhoneDevice

from participants.models import StaffUser
from preventicons import gateways, messaging, tasks
from preventicons.celery import app as celery_app
from preventicons.gateways import MemorySmsGateway, TwoFactorSmsGateway
from preventicons.messaging import (
    CLAIM_LEASE,
    queue_email,
    queue_sms,
    retry_delay,
    send_due_messages,
)
from preventicons.models import OutboundMessage
from tests.fakes.celery import celery_on_broker, unused_tcp_port
from tests.fakes.smtp import FakeSmtpServer
from tests.fakes.twilio import FakeTwilio

NUMBER = "+31612345678"
ADDRESS = "j.jansen@zorggroep-noord.example"
LINK_TOKEN = "Zk3v9QpL0xT7mN2bR8cW4yH6jD1sF5gA"
SMS_BODY = f"Uw code staat klaar: https://preventicons.example/i/{LINK_TOKEN}/"
EMAIL_SUBJECT = "Welkom bij Preventicons, Jan Jansen"
EMAIL_BODY = f"Beste Jan,\n\nKlik op https://preventicons.example/i/{LINK_TOKEN}/ om te beginnen.\n"


def row(key: str) -> OutboundMessage:
    return OutboundMessage.objects.get(key_hash=messaging.outbox_key_hash(key))


def rows(*keys: str) -> Any:
    return OutboundMessage.objects.filter(key_hash__in=[messaging.outbox_key_hash(key) for key in keys])


def counted() -> dict[tuple[str, str], int]:
    """Today's delivery counts per (channel, outcome)."""
    return messaging.delivery_counts(day=timezone.localdate())


def is_tombstone(message: OutboundMessage) -> bool:
    return message.status == OutboundMessage.Status.FINISHED and (
        message.channel,
        message.recipient,
        message.subject,
        message.body,
        message.renderer,
        message.reference,
        message.cancel_tag,
        message.attempts,
        message.last_error,
        message.next_attempt_at,
    ) == ("", None, None, None, "", "", "", 0, "", None)


def raw_columns(key: str) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT recipient, subject, body FROM preventicons_outboundmessage WHERE key_hash = %s",
            [messaging.outbox_key_hash(key)],
        )
        found = cursor.fetchone()
    assert found is not None
    return tuple(found)


@pytest.fixture
def clock(time_machine: Any) -> Any:
    # This morning at nine: the tests shift the clock by hours, and from the evening on that crossed
    # midnight, so a message that failed "today" was counted on a day the assertion no longer called today.
    morning = dt.datetime.combine(timezone.localdate(), dt.time(9), tzinfo=timezone.get_current_timezone())
    time_machine.move_to(morning, tick=True)
    return time_machine


def past_any_backoff(clock: Any, settings: Any) -> None:
    clock.shift(dt.timedelta(seconds=settings.MESSAGE_RETRY_MAX_SECONDS + 1))


# --- Queueing ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queued_message_is_sealed_in_the_database() -> None:
    assert queue_email(key="enrol:p1:email:1", to=ADDRESS, subject=EMAIL_SUBJECT, body=EMAIL_BODY)

    stored = raw_columns("enrol:p1:email:1")
    for column, plaintext in zip(stored, (ADDRESS, EMAIL_SUBJECT, EMAIL_BODY), strict=True):
        assert column.startswith("v1.")
        assert plaintext not in column
        assert LINK_TOKEN not in column and "jansen" not in column.lower()
    message = row("enrol:p1:email:1")
    assert (message.recipient, message.subject, message.body) == (ADDRESS, EMAIL_SUBJECT, EMAIL_BODY)
    assert message.status == OutboundMessage.Status.PENDING


@pytest.mark.django_db
def test_queueing_the_same_key_twice_keeps_one_row_and_sends_once() -> None:
    assert queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY) is True
    assert queue_sms(key="code:p1:sms:1", to="+31699999999", body="another body") is False

    assert rows("code:p1:sms:1").count() == 1
    assert send_due_messages().sent == 1
    assert queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY) is False
    assert send_due_messages().sent == 0
    assert MemorySmsGateway.outbox == [{"to": NUMBER, "body": SMS_BODY, "id": "memory-1"}]


@pytest.mark.django_db
def test_a_key_is_bound_to_its_channel() -> None:
    queue_sms(key="code:p1:1", to=NUMBER, body=SMS_BODY)
    with pytest.raises(ValueError, match="another channel"):
        queue_email(key="code:p1:1", to=ADDRESS, subject="s", body="b")


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "enrol:j.jansen@example.org:1", "enrol p1", "x" * 201, "enrol:jänsen"])
def test_a_key_that_could_carry_personal_data_is_refused(key: str) -> None:
    with pytest.raises(ValueError):
        queue_sms(key=key, to=NUMBER, body=SMS_BODY)
    assert not OutboundMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_queueing_of_one_key_inserts_once() -> None:
    first_inserted, second_started = threading.Event(), threading.Event()
    results: dict[str, bool] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)
                first_inserted.set()
                second_started.wait(timeout=10)
                # Hold the transaction open while the second insert waits on the unique index.
                time.sleep(0.3)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_inserted.wait(timeout=10)
            second_started.set()
            with transaction.atomic():
                results["second"] = queue_sms(key="code:p1:sms:1", to="+31699999999", body="other")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == {"first": True, "second": False}
    assert OutboundMessage.objects.count() == 1
    assert [sms["to"] for sms in MemorySmsGateway.outbox] == [NUMBER]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_sends_nothing() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        queue_email(key="enrol:p1:email:1", to=ADDRESS, subject=EMAIL_SUBJECT, body=EMAIL_BODY)
        queue_sms(key="enrol:p1:sms:1", to=NUMBER, body=SMS_BODY)
        raise RuntimeError("the enrolment failed")
    with transaction.atomic(), pytest.raises(RuntimeError), transaction.atomic():
        queue_sms(key="enrol:p2:sms:1", to=NUMBER, body=SMS_BODY)
        raise RuntimeError("only this savepoint rolls back")

    assert not OutboundMessage.objects.exists()
    send_due_messages()
    assert mail.outbox == [] and MemorySmsGateway.outbox == []


@pytest.mark.django_db(transaction=True)
def test_a_committed_message_is_sent_on_commit() -> None:
    with transaction.atomic():
        queue_email(key="enrol:p1:email:1", to=ADDRESS, subject=EMAIL_SUBJECT, body=EMAIL_BODY)
        assert mail.outbox == []

    assert [message.to for message in mail.outbox] == [[ADDRESS]]
    assert is_tombstone(row("enrol:p1:email:1"))


@pytest.mark.django_db
def test_one_transaction_queueing_many_messages_publishes_one_run(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        for n in range(5):
            queue_sms(key=f"weekly:p{n}:sms", to=NUMBER, body=SMS_BODY)
        with pytest.raises(RuntimeError), transaction.atomic():
            queue_sms(key="weekly:rolled-back:sms", to=NUMBER, body=SMS_BODY)
            raise RuntimeError

    assert len(callbacks) == 1
    assert len(MemorySmsGateway.outbox) == 5


@pytest.mark.django_db
def test_a_nudge_lost_with_a_savepoint_is_registered_again(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            queue_sms(key="weekly:rolled-back:sms", to=NUMBER, body=SMS_BODY)
            raise RuntimeError
        queue_sms(key="weekly:p1:sms", to=NUMBER, body=SMS_BODY)

    assert len(callbacks) == 1
    assert [sms["to"] for sms in MemorySmsGateway.outbox] == [NUMBER]


@pytest.mark.django_db
def test_lazy_translations_are_queued_as_text_and_a_subject_is_one_line() -> None:
    assert queue_email(
        key="enrol:p1:email:1", to=ADDRESS, subject=gettext_lazy("Welcome"), body=gettext_lazy("Hi")
    )
    assert row("enrol:p1:email:1").subject == "Welcome"
    with pytest.raises(ValueError, match="one line"):
        queue_email(key="enrol:p2:email:1", to=ADDRESS, subject="Welcome\nBcc: x@example.org", body="b")


@pytest.mark.django_db
def test_an_unreachable_broker_loses_no_message(
    caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        celery_on_broker(f"redis://127.0.0.1:{unused_tcp_port()}/0"),
        caplog.at_level(logging.WARNING),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)

    assert len(callbacks) == 1
    assert "broker unreachable" in caplog.text
    assert NUMBER not in caplog.text and LINK_TOKEN not in caplog.text
    assert row("code:p1:sms:1").status == OutboundMessage.Status.PENDING
    # The periodic run (beat) picks the message up.
    assert tasks.send_due_messages.delay().get() == 1
    assert [sms["to"] for sms in MemorySmsGateway.outbox] == [NUMBER]


@pytest.mark.django_db
def test_the_database_refuses_a_finished_message_that_keeps_anything_but_its_hashed_key() -> None:
    queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)
    tombstone = {
        "status": "finished",
        "finished_period": 1,
        "channel": "",
        "recipient": None,
        "body": None,
        "cancel_tag": "",
        "next_attempt_at": None,
        "attempts": 0,
    }
    for kept in (
        {"channel": "sms"},
        {"next_attempt_at": timezone.now()},
        {"attempts": 1},
        {"last_error": "twilio 500"},
        {"cancel_tag": "0" * 64},
        {"finished_period": None},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            rows("code:p1:sms:1").update(**{**tombstone, **kept})
    rows("code:p1:sms:1").update(**tombstone)


# --- Sending SMS through the Twilio SDK --------------------------------------------------------------------


@pytest.mark.django_db
def test_sms_goes_through_the_twilio_sdk_to_the_api(fake_twilio: FakeTwilio) -> None:
    queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)

    report = send_due_messages()

    assert report.sent == 1
    assert [(m["To"], m["From"], m["Body"]) for m in fake_twilio.messages] == [
        (NUMBER, fake_twilio.from_number, SMS_BODY)
    ]
    request = fake_twilio.requests[0]
    assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    assert request.authorised
    assert is_tombstone(row("code:p1:sms:1"))
    assert counted() == {("sms", "sent"): 1}


@pytest.mark.django_db
def test_sent_message_keeps_no_recipient_or_body(fake_twilio: FakeTwilio) -> None:
    queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)
    send_due_messages()

    assert raw_columns("code:p1:sms:1") == (None, None, None)
    message = row("code:p1:sms:1")
    assert message.recipient is None and message.body is None


@pytest.mark.django_db
def test_twilio_500_is_retried_after_backoff_and_delivered_once(
    fake_twilio: FakeTwilio, clock: Any, settings: Any
) -> None:
    fake_twilio.fail_next(1, status=500)
    queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)

    first = send_due_messages()
    message = row("code:p1:sms:1")
    assert (first.sent, first.deferred) == (0, 1)
    assert message.status == OutboundMessage.Status.PENDING
    assert message.attempts == 1 and message.last_error == "twilio 500 code 20500"
    assert message.next_attempt_at is not None
    assert message.next_attempt_at > timezone.now() + dt.timedelta(
        seconds=settings.MESSAGE_RETRY_BASE_SECONDS / 3
    )

    assert send_due_messages().claimed == 0  # not due yet: the backoff holds
    assert len(fake_twilio.requests) == 1

    past_any_backoff(clock, settings)
    assert send_due_messages().sent == 1
    assert send_due_messages().claimed == 0

    assert [request.status for request in fake_twilio.requests] == [500, 201]
    assert [m["Body"] for m in fake_twilio.messages] == [SMS_BODY]
    assert is_tombstone(row("code:p1:sms:1"))
    assert counted() == {("sms", "sent"): 1}


@pytest.mark.django_db
def test_twilio_429_is_transient(fake_twilio: FakeTwilio, clock: Any, settings: Any) -> None:
    fake_twilio.fail_next(1, status=429)
    queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)

    assert send_due_messages().deferred == 1
    assert row("code:p1:sms:1").last_error == "twilio 429 code 20429"
    past_any_backoff(clock, settings)
    assert send_due_messages().sent == 1
    assert len(fake_twilio.messages) == 1


@pytest.mark.django_db
def test_twilio_400_invalid_number_fails_without_retry(
    fake_twilio: FakeTwilio, clock: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake_twilio.fail_next(1, status=400, code=21211)
    queue_sms(key="code:p1:sms:1", to="+3161234", body=SMS_BODY)

    with caplog.at_level(logging.WARNING):
        report = send_due_messages()
    past_any_backoff(clock, settings)
    send_due_messages()

    assert report.failed == 1
    assert len(fake_twilio.requests) == 1 and fake_twilio.messages == []
    # Counted, not logged: only a real message fails for good (tests/test_attacks_review12.py).
    assert "21211" not in caplog.text
    assert is_tombstone(row("code:p1:sms:1"))
    assert counted() == {("sms", "failed"): 1}


@pytest.mark.django_db
def test_transient_failures_end_after_max_attempts(
    fake_twilio: FakeTwilio, clock: Any, settings: Any
) -> None:
    settings.MESSAGE_MAX_ATTEMPTS = 3
    fake_twilio.fail_next(10, status=503)
    queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)

    for _ in range(6):
        send_due_messages()
        past_any_backoff(clock, settings)

    assert len(fake_twilio.requests) == 3
    assert is_tombstone(row("code:p1:sms:1"))
    assert counted() == {("sms", "failed"): 1}


@pytest.mark.django_db
def test_a_doubled_run_sends_once(fake_twilio: FakeTwilio) -> None:
    queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)

    assert tasks.send_due_messages.delay().get() == 1
    assert tasks.send_due_messages.delay().get() == 0
    assert len(fake_twilio.messages) == 1
    assert counted() == {("sms", "sent"): 1}


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_send_each_message_once(fake_twilio: FakeTwilio) -> None:
    for n in range(4):
        # Straight into the table: queue_sms would send each at commit, and here the runs must race.
        OutboundMessage(
            key_hash=messaging.outbox_key_hash(f"code:p{n}:sms:1"),
            channel=OutboundMessage.Channel.SMS,
            recipient=f"+3161234567{n}",
            body=f"{SMS_BODY} #{n}",
            next_attempt_at=timezone.now(),
        ).save()
    fake_twilio.delay = 0.2  # keep each provider call in flight while the other run looks for work
    reports: list[messaging.SendReport] = []

    def run() -> None:
        try:
            reports.append(send_due_messages())
        finally:
            connections.close_all()

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=60)

    assert sum(report.sent for report in reports) == 4
    assert sorted(m["To"] for m in fake_twilio.messages) == [f"+3161234567{n}" for n in range(4)]
    assert OutboundMessage.objects.filter(status=OutboundMessage.Status.FINISHED).count() == 4
    assert counted() == {("sms", "sent"): 4}


class CrashingSmsGateway:
    """Stands for a worker that dies during the provider call: the outcome is never recorded."""

    def send(self, *, to: str, body: str) -> str:
        raise RuntimeError("worker died mid-call")


@pytest.mark.django_db
def test_a_send_that_never_reported_back_is_sent_after_the_lease(clock: Any, settings: Any) -> None:
    settings.SMS_GATEWAY = f"{__name__}.CrashingSmsGateway"
    queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)
    with pytest.raises(RuntimeError):
        send_due_messages()

    settings.SMS_GATEWAY = "preventicons.gateways.MemorySmsGateway"
    assert send_due_messages().claimed == 0  # still leased to the sender that died
    clock.shift(CLAIM_LEASE + dt.timedelta(seconds=1))
    assert send_due_messages().sent == 1
    assert len(MemorySmsGateway.outbox) == 1
    assert is_tombstone(row("code:p1:sms:1"))


BROKEN_NUMBER = "+31612345679"


class CrashingForOneNumberSmsGateway(MemorySmsGateway):
    """A run that stops halfway: the provider call for one number raises what no sender expects."""

    def send(self, *, to: str, body: str) -> str:
        if to == BROKEN_NUMBER:
            raise RuntimeError("worker died mid-call")
        return super().send(to=to, body=body)


@pytest.mark.django_db
def test_a_run_stopped_by_an_error_counts_what_it_ended_and_nothing_twice(clock: Any, settings: Any) -> None:
    settings.SMS_GATEWAY = f"{__name__}.CrashingForOneNumberSmsGateway"
    for n, number in enumerate((NUMBER, BROKEN_NUMBER, NUMBER)):
        queue_sms(key=f"code:p{n}:sms:1", to=number, body=SMS_BODY)
        clock.shift(dt.timedelta(seconds=1))  # claimed in this order
    with pytest.raises(RuntimeError):
        send_due_messages()
    # The counts are written when a run stops, also through an error: the one it ended is counted.
    assert counted() == {("sms", "sent"): 1}

    settings.SMS_GATEWAY = "preventicons.gateways.MemorySmsGateway"
    assert send_due_messages().sent == 1  # the third; the second is still leased to the run that stopped
    clock.shift(CLAIM_LEASE + dt.timedelta(seconds=1))
    assert send_due_messages().sent == 1
    assert len(MemorySmsGateway.outbox) == 3
    assert counted() == {("sms", "sent"): 3}
    assert OutboundMessage.objects.filter(status=OutboundMessage.Status.FINISHED).count() == 3


def test_retry_delay_doubles_is_capped_and_jittered(settings: Any) -> None:
    settings.MESSAGE_RETRY_BASE_SECONDS = 30
    settings.MESSAGE_RETRY_MAX_SECONDS = 3600
    for attempts in range(1, 15):
        expected = min(3600, 30 * 2 ** (attempts - 1))
        delays = {retry_delay(attempts=attempts).total_seconds() for _ in range(20)}
        assert all(expected / 2 <= delay <= expected for delay in delays)
        assert len(delays) > 1


# --- Sending e-mail through a real SMTP server -------------------------------------------------------------


@pytest.mark.django_db
def test_email_reaches_the_smtp_server(smtp_server: FakeSmtpServer, settings: Any) -> None:
    queue_email(key="enrol:p1:email:1", to=ADDRESS, subject=EMAIL_SUBJECT, body=EMAIL_BODY)
    queue_email(key="enrol:p2:email:1", to="b@zorggroep-noord.example", subject="Hallo", body="Tekst")

    assert send_due_messages().sent == 2

    first = smtp_server.messages[0]
    assert first.rcpt_tos == [ADDRESS]
    assert first.message["Subject"] == EMAIL_SUBJECT
    assert first.message["From"] == settings.DEFAULT_FROM_EMAIL
    assert first.message.get_content().replace("\r\n", "\n") == EMAIL_BODY
    # Our domain, not the host's; before it random bits only: no time, no process id, no sequence.
    message_ids = [str(mail.message["Message-ID"]) for mail in smtp_server.messages]
    assert all(re.fullmatch(r"<[0-9a-f]{32}@preventicons\.localhost>", mid) for mid in message_ids)
    assert len(set(message_ids)) == 2
    assert [m.rcpt_tos for m in smtp_server.messages[1:]] == [["b@zorggroep-noord.example"]]
    assert raw_columns("enrol:p1:email:1") == (None, None, None)


@pytest.mark.django_db
def test_refused_mailbox_fails_permanently_and_the_next_email_still_goes(
    smtp_server: FakeSmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.refuse_next_recipients(1, f"550 5.1.1 <{ADDRESS}>: Recipient address rejected")
    queue_email(key="enrol:p1:email:1", to=ADDRESS, subject=EMAIL_SUBJECT, body=EMAIL_BODY)
    queue_email(key="enrol:p2:email:1", to="b@zorggroep-noord.example", subject="Hallo", body="Tekst")

    with caplog.at_level(logging.WARNING):
        report = send_due_messages()

    assert (report.sent, report.failed) == (1, 1)
    assert is_tombstone(row("enrol:p1:email:1"))
    assert "550" not in caplog.text
    assert counted() == {("email", "sent"): 1, ("email", "failed"): 1}
    assert [m.rcpt_tos for m in smtp_server.messages] == [["b@zorggroep-noord.example"]]


@pytest.mark.django_db
def test_temporary_smtp_refusal_is_retried(smtp_server: FakeSmtpServer, clock: Any, settings: Any) -> None:
    smtp_server.refuse_next_recipients(1, "451 4.7.1 Greylisted, try again later")
    queue_email(key="enrol:p1:email:1", to=ADDRESS, subject=EMAIL_SUBJECT, body=EMAIL_BODY)

    assert send_due_messages().deferred == 1
    assert row("enrol:p1:email:1").last_error == "smtp recipient refused 451"
    past_any_backoff(clock, settings)
    assert send_due_messages().sent == 1
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db
def test_unreachable_smtp_server_is_retried(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", unused_tcp_port()
    queue_email(key="enrol:p1:email:1", to=ADDRESS, subject=EMAIL_SUBJECT, body=EMAIL_BODY)

    assert send_due_messages().deferred == 1
    message = row("enrol:p1:email:1")
    assert message.status == OutboundMessage.Status.PENDING
    assert message.last_error == "smtp unreachable (ConnectionRefusedError)"
    assert message.recipient == ADDRESS  # kept, sealed, for the next attempt


# --- Logs --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_failing_sends_log_no_number_address_body_or_token(
    fake_twilio: FakeTwilio,
    smtp_server: FakeSmtpServer,
    caplog: pytest.LogCaptureFixture,
    clock: Any,
    settings: Any,
) -> None:
    settings.MESSAGE_MAX_ATTEMPTS = 2
    caplog.set_level(logging.DEBUG)
    # Twilio and SMTP servers quote the number or address in their error text.
    fake_twilio.fail_next(1, status=400, message=f"The 'To' number {NUMBER} is not a valid phone number.")
    fake_twilio.fail_next(1, status=500)
    smtp_server.refuse_next_recipients(1, f"550 5.1.1 <{ADDRESS}>: unknown user")
    smtp_server.refuse_next_recipients(2, f"452 4.2.2 <b@zorggroep-noord.example> {EMAIL_SUBJECT} over quota")
    queue_sms(key="code:p1:sms:1", to=NUMBER, body=SMS_BODY)
    queue_sms(key="code:p2:sms:1", to="+31687654321", body=SMS_BODY)
    queue_email(key="enrol:p1:email:1", to=ADDRESS, subject=EMAIL_SUBJECT, body=EMAIL_BODY)
    queue_email(
        key="enrol:p2:email:1", to="b@zorggroep-noord.example", subject=EMAIL_SUBJECT, body=EMAIL_BODY
    )

    send_due_messages()
    past_any_backoff(clock, settings)
    send_due_messages()

    assert counted() == {("sms", "failed"): 1, ("sms", "sent"): 1, ("email", "failed"): 2}
    assert any(record.levelno >= logging.WARNING for record in caplog.records)
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    errors = "".join(OutboundMessage.objects.values_list("last_error", flat=True))
    for secret in (
        NUMBER,
        "612345678",
        "+31687654321",
        ADDRESS,
        "zorggroep-noord",
        LINK_TOKEN,
        "Jansen",
        "Beste Jan",
    ):
        assert secret not in logged
        assert secret not in errors


# --- Retention and tasks -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_prune_keeps_tombstones_a_retention_period_and_never_pending_rows(clock: Any, settings: Any) -> None:
    settings.MESSAGE_RETENTION_DAYS = 90
    settings.SMS_GATEWAY = f"{__name__}.RefusingSmsGateway"
    queue_sms(key="old:failed", to=NUMBER, body=SMS_BODY)
    send_due_messages()
    settings.SMS_GATEWAY = "preventicons.gateways.MemorySmsGateway"
    queue_sms(key="old:sent", to=NUMBER, body=SMS_BODY)
    send_due_messages()
    queue_sms(key="old:pending", to=NUMBER, body=SMS_BODY)
    # Still waiting for its next attempt when the retention period has passed.
    rows("old:pending").update(next_attempt_at=timezone.now() + dt.timedelta(days=400))

    clock.shift(dt.timedelta(days=89))
    assert tasks.prune_sent_messages.delay().get() == 0
    # Within the retention period a retried job queueing the same key again sends nothing.
    assert queue_sms(key="old:sent", to=NUMBER, body=SMS_BODY) is False
    clock.shift(dt.timedelta(days=2 * 90 - 89))
    queue_sms(key="recent:sent", to=NUMBER, body=SMS_BODY)
    send_due_messages()

    assert tasks.prune_sent_messages.delay().get() == 2

    assert rows("old:pending", "recent:sent").count() == OutboundMessage.objects.count() == 2
    assert tasks.prune_sent_messages.delay().get() == 0
    assert len(MemorySmsGateway.outbox) == 2


class RefusingSmsGateway:
    def send(self, *, to: str, body: str) -> str:
        raise gateways.PermanentSendError("test refusal")


def test_the_beat_schedule_names_registered_tasks(settings: Any) -> None:
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if entry["task"].startswith("preventicons."):
            assert entry["task"] in celery_app.tasks
    assert {"preventicons.tasks.send_due_messages", "preventicons.tasks.prune_sent_messages"} <= {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }


# --- Staff login codes by SMS ------------------------------------------------------------------------------


@pytest.fixture
def staff_phone(db: Any) -> Iterator[PhoneDevice]:
    user = StaffUser.objects.create_user(username="cm-sms", password="correct horse battery staple")
    device = PhoneDevice.objects.create(
        user=user, name="default", number=NUMBER, method="sms", confirmed=True
    )
    cache.clear()  # the rate limiter's counters (preventicons.ratelimit)
    yield device
    cache.clear()


def test_staff_login_code_goes_out_by_sms_at_once(staff_phone: PhoneDevice, fake_twilio: FakeTwilio) -> None:
    staff_phone.generate_challenge()  # what django-two-factor-auth's login view does

    assert [m["To"] for m in fake_twilio.messages] == [NUMBER]
    code = re.search(r"\b(\d{6})\b", fake_twilio.messages[0]["Body"])
    assert code is not None
    assert staff_phone.verify_token(code.group(1))
    assert not OutboundMessage.objects.exists()  # not through the outbox: the code lives minutes


def test_staff_sms_limit_refuses_the_next_code(
    staff_phone: PhoneDevice, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.STAFF_SMS_PER_HOUR = 3
    for _ in range(3):
        staff_phone.generate_challenge()
    with caplog.at_level(logging.WARNING):
        staff_phone.generate_challenge()
        refused = TwoFactorSmsGateway().send_sms(staff_phone, "123456")

    assert refused is False
    assert len(MemorySmsGateway.outbox) == 3
    assert "STAFF_SMS_PER_HOUR" in caplog.text and NUMBER not in caplog.text and "123456" not in caplog.text


def test_staff_sms_limit_is_per_user(staff_phone: PhoneDevice, settings: Any) -> None:
    settings.STAFF_SMS_PER_HOUR = 1
    other_user = StaffUser.objects.create_user(username="hr-sms", password="correct horse battery staple")
    other = PhoneDevice.objects.create(user=other_user, name="default", number="+31687654321", method="sms")
    assert TwoFactorSmsGateway().send_sms(staff_phone, "111111") is True
    assert TwoFactorSmsGateway().send_sms(staff_phone, "222222") is False
    assert TwoFactorSmsGateway().send_sms(other, "333333") is True
    assert [sms["to"] for sms in MemorySmsGateway.outbox] == [NUMBER, "+31687654321"]


def test_staff_sms_limit_holds_under_concurrent_requests(staff_phone: PhoneDevice, settings: Any) -> None:
    settings.STAFF_SMS_PER_HOUR = 5
    start = threading.Barrier(12)

    def request_code() -> None:
        start.wait(timeout=10)
        TwoFactorSmsGateway().send_sms(staff_phone, "123456")

    threads = [threading.Thread(target=request_code) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(MemorySmsGateway.outbox) == 5


def test_staff_sms_limit_opens_again_after_an_hour(
    staff_phone: PhoneDevice, settings: Any, clock: Any
) -> None:
    # The local-memory cache keeps time with time.time(), which time-machine moves (Redis keeps its own).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.STAFF_SMS_PER_HOUR = 1
    assert TwoFactorSmsGateway().send_sms(staff_phone, "111111") is True
    clock.shift(dt.timedelta(minutes=59))
    assert TwoFactorSmsGateway().send_sms(staff_phone, "222222") is False
    clock.shift(dt.timedelta(minutes=2))
    assert TwoFactorSmsGateway().send_sms(staff_phone, "333333") is True


def test_login_codes_by_phone_call_are_not_offered(staff_phone: PhoneDevice) -> None:
    with pytest.raises(NotImplementedError, match="phone"):
        TwoFactorSmsGateway().make_call(staff_phone, "123456")


# --- Deferred messages: rendered at send time, never stored ------------------------------------------------

# What the test renderer knows: reference -> (address, number), or absent when there is nobody any more.
_PEOPLE: dict[str, tuple[str, str]] = {}
_RENDER_FAILURES: list[str] = []


def _render_for_tests(reference: str, channel: str) -> messaging.RenderedMessage | None:
    if reference in _RENDER_FAILURES:
        raise RuntimeError(f"cannot render for {ADDRESS}")  # a text that must never reach a log line
    person = _PEOPLE.get(reference)
    if person is None:
        return None
    address, number = person
    if channel == OutboundMessage.Channel.EMAIL:
        return messaging.RenderedMessage(to=address, subject=EMAIL_SUBJECT, body=EMAIL_BODY)
    return messaging.RenderedMessage(to=number, subject=None, body=SMS_BODY)


messaging.register_renderer("tests.people", _render_for_tests)


@pytest.fixture
def people() -> Iterator[dict[str, tuple[str, str]]]:
    _PEOPLE.clear()
    _RENDER_FAILURES.clear()
    yield _PEOPLE
    _PEOPLE.clear()
    _RENDER_FAILURES.clear()


def deferred(key: str, reference: str, channel: str = "sms") -> messaging.Deferred:
    return messaging.Deferred(key=key, channel=channel, renderer="tests.people", reference=reference)


@pytest.mark.django_db
def test_a_deferred_message_is_rendered_at_send_time_and_never_stored(
    people: dict[str, tuple[str, str]], smtp_server: FakeSmtpServer
) -> None:
    people["ref-1"] = (ADDRESS, NUMBER)
    messaging.queue_many(
        [deferred("week:p1:sms", "ref-1"), deferred("week:p1:email", "ref-1", channel="email")]
    )
    assert raw_columns("week:p1:sms") == raw_columns("week:p1:email") == (None, None, None)
    assert (row("week:p1:sms").renderer, row("week:p1:sms").reference) == ("tests.people", "ref-1")

    send_due_messages()

    assert [(sms["to"], sms["body"]) for sms in MemorySmsGateway.outbox] == [(NUMBER, SMS_BODY)]
    assert [mail.rcpt_tos for mail in smtp_server.messages] == [[ADDRESS]]
    assert smtp_server.messages[0].message["Subject"] == EMAIL_SUBJECT
    assert is_tombstone(row("week:p1:sms")) and is_tombstone(row("week:p1:email"))
    assert counted() == {("sms", "sent"): 1, ("email", "sent"): 1}
    assert raw_columns("week:p1:sms") == raw_columns("week:p1:email") == (None, None, None)


@pytest.mark.django_db
def test_a_deferred_message_with_nobody_to_send_to_is_cancelled(people: dict[str, tuple[str, str]]) -> None:
    messaging.queue_many([deferred("week:p1:sms", "ref-gone")])

    report = send_due_messages()

    assert (report.cancelled, report.sent, report.claimed) == (1, 0, 1)
    assert MemorySmsGateway.outbox == []
    assert is_tombstone(row("week:p1:sms"))
    assert counted() == {("sms", "cancelled"): 1}
    assert raw_columns("week:p1:sms") == (None, None, None)
    assert send_due_messages().claimed == 0


@pytest.mark.django_db
def test_queueing_deferred_messages_twice_keeps_the_first_and_nudges_once(
    people: dict[str, tuple[str, str]], django_capture_on_commit_callbacks: Any
) -> None:
    people["ref-1"] = (ADDRESS, NUMBER)
    people["ref-2"] = (ADDRESS, "+31687654321")
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        messaging.queue_many([deferred("week:p1:sms", "ref-1")])
        messaging.queue_many([deferred("week:p1:sms", "ref-2"), deferred("week:p2:sms", "ref-2")])
        queue_sms(key="code:p3:sms:1", to=NUMBER, body=SMS_BODY)

    assert len(callbacks) == 1
    # p1's message went to ref-1's number: the first queueing kept its reference.
    assert sorted(sms["to"] for sms in MemorySmsGateway.outbox) == sorted([NUMBER, "+31687654321", NUMBER])


@pytest.mark.django_db
def test_a_rolled_back_deferred_queueing_leaves_nothing(people: dict[str, tuple[str, str]]) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        messaging.queue_many([deferred("week:p1:sms", "ref-1")])
        raise RuntimeError
    assert not OutboundMessage.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("message", "error"),
    [
        (messaging.Deferred(key="week:p1:sms", channel="sms", renderer="nobody", reference="r"), "renderer"),
        (deferred("week:p1:fax", "ref-1", channel="fax"), "channel"),
        (deferred("week:a@b.nl:sms", "ref-1"), "never an address"),
        (deferred("week:p1:sms", "a@b.nl"), "opaque id"),
        (deferred("week:p1:sms", ""), "opaque id"),
    ],
)
def test_a_deferred_message_is_refused_before_anything_is_written(
    message: messaging.Deferred, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        messaging.queue_many([deferred("week:p0:sms", "ref-0"), message])
    assert not OutboundMessage.objects.exists()


def test_a_renderer_name_is_registered_to_one_function() -> None:
    messaging.register_renderer("tests.people", _render_for_tests)  # again, the same: harmless
    with pytest.raises(ValueError, match="already registered"):
        messaging.register_renderer("tests.people", lambda reference, channel: None)


@pytest.mark.django_db
def test_the_database_refuses_a_deferred_message_with_content() -> None:
    messaging.queue_many([deferred("week:p1:sms", "ref-1")])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE preventicons_outboundmessage SET body = 'v1.k.x' WHERE key_hash = %s",
            [messaging.outbox_key_hash("week:p1:sms")],
        )
    message = row("week:p1:sms")
    message.body = SMS_BODY
    with pytest.raises(IntegrityError), transaction.atomic():
        message.save()


@pytest.mark.django_db
def test_a_renderer_that_raises_is_retried_then_fails_and_logs_nothing_it_said(
    people: dict[str, tuple[str, str]], caplog: pytest.LogCaptureFixture, clock: Any, settings: Any
) -> None:
    settings.MESSAGE_MAX_ATTEMPTS = 2
    caplog.set_level(logging.DEBUG)
    _RENDER_FAILURES.append("ref-1")
    people["ref-1"] = (ADDRESS, NUMBER)
    messaging.queue_many([deferred("week:p1:sms", "ref-1")])

    assert send_due_messages().deferred == 1
    past_any_backoff(clock, settings)
    assert send_due_messages().failed == 1

    assert is_tombstone(row("week:p1:sms"))
    assert counted() == {("sms", "failed"): 1}
    assert "renderer tests.people raised RuntimeError" in caplog.text
    assert MemorySmsGateway.outbox == []
    assert ADDRESS not in caplog.text


# --- A message with nobody to send to meets what a real one meets (tests/test_attacks_review6.py) -----------


def _unreachable_smtp(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", unused_tcp_port()


def _pending_state(key: str) -> tuple[Any, ...]:
    message = row(key)
    return (message.status, message.attempts, message.last_error)


@pytest.mark.django_db
def test_a_message_with_nobody_to_send_to_waits_for_the_next_real_one_and_meets_its_failure(
    people: dict[str, tuple[str, str]], caplog: pytest.LogCaptureFixture, clock: Any, settings: Any
) -> None:
    caplog.set_level(logging.INFO)
    _unreachable_smtp(settings)
    # Claimed first (queued a second earlier), before this run has met the provider at all.
    messaging.queue_many([deferred("week:p1:email", "ref-gone", channel="email")])
    clock.shift(dt.timedelta(seconds=1))
    people["ref-2"] = (ADDRESS, NUMBER)
    messaging.queue_many([deferred("week:p2:email", "ref-2", channel="email")])

    report = send_due_messages()

    assert (report.deferred, report.cancelled, report.claimed) == (2, 0, 2)
    assert (
        _pending_state("week:p1:email")
        == _pending_state("week:p2:email")
        == ("pending", 1, "smtp unreachable (ConnectionRefusedError)")
    )
    assert caplog.text.count("deferred after attempt 1: smtp unreachable") == 2
    assert counted() == {}
    # The provider is back: the real one goes out, the other ends unsent, and the day counts each.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    past_any_backoff(clock, settings)
    report = send_due_messages()
    assert (report.sent, report.cancelled) == (1, 1)
    assert [message.to for message in mail.outbox] == [[ADDRESS]]
    assert counted() == {("email", "sent"): 1, ("email", "cancelled"): 1}


@pytest.mark.django_db
def test_a_run_that_meets_no_real_message_on_the_channel_keeps_the_last_verdict(
    people: dict[str, tuple[str, str]], clock: Any, settings: Any
) -> None:
    _unreachable_smtp(settings)
    people["ref-1"] = (ADDRESS, NUMBER)
    messaging.queue_many([deferred("week:p1:email", "ref-1", channel="email")])
    assert send_due_messages().deferred == 1
    # Queued while the real one waits out its backoff: this run meets no real e-mail.
    messaging.queue_many([deferred("week:p2:email", "ref-gone", channel="email")])
    assert send_due_messages().deferred == 1
    assert _pending_state("week:p2:email") == _pending_state("week:p1:email")
    # A message on the other channel, whose provider works, ends as at once as a real SMS would be sent.
    messaging.queue_many([deferred("week:p3:sms", "ref-gone")])
    assert send_due_messages().cancelled == 1


@pytest.mark.django_db
def test_a_cache_that_does_not_answer_stops_no_run(
    people: dict[str, tuple[str, str]], clock: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider's last verdict lives in the cache (Redis in production). With the cache away, a run still
    sends, defers and ends its messages; a message with nobody to send to that meets no real one ends."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_tcp_port()}/0",
        }
    }
    _unreachable_smtp(settings)
    people["ref-1"] = (ADDRESS, NUMBER)
    messaging.queue_many([deferred("week:p1:email", "ref-1", channel="email")])
    assert send_due_messages().deferred == 1
    messaging.queue_many([deferred("week:p2:email", "ref-gone", channel="email")])

    assert send_due_messages().cancelled == 1
    assert "the cache did not answer" in caplog.text


@pytest.mark.django_db
def test_a_message_with_nobody_to_send_to_ends_after_as_many_attempts_counted_as_cancelled(
    people: dict[str, tuple[str, str]], clock: Any, settings: Any
) -> None:
    settings.MESSAGE_MAX_ATTEMPTS = 2
    _unreachable_smtp(settings)
    people["ref-1"] = (ADDRESS, NUMBER)
    messaging.queue_many(
        [
            deferred("week:p1:email", "ref-1", channel="email"),
            deferred("week:p2:email", "ref-gone", channel="email"),
        ]
    )
    assert send_due_messages().deferred == 2
    past_any_backoff(clock, settings)
    report = send_due_messages()

    assert (report.failed, report.cancelled) == (1, 1)
    assert is_tombstone(row("week:p1:email")) and is_tombstone(row("week:p2:email"))
    # "failed" stays the count of real messages that failed.
    assert counted() == {("email", "failed"): 1, ("email", "cancelled"): 1}


@pytest.mark.django_db
@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_deferred_queueing_keeps_the_first_key_on_either_database(
    people: dict[str, tuple[str, str]], monkeypatch: pytest.MonkeyPatch, vendor: str, settings: Any
) -> None:
    if vendor == "postgresql" and connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's statement on another database")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    first, second = "participant-0000000001", "participant-0000000002"
    # The portable insert (the embedded SQLite default) on the same table.
    monkeypatch.setattr(connection, "vendor", vendor)
    messaging.queue_many(
        [deferred(f"week:{first}:sms", "ref-1"), deferred(f"week:{second}:email", "ref-2", "email")]
    )
    messaging.queue_many([deferred(f"week:{first}:sms", "ref-9")])

    assert [row(f"week:{first}:sms").reference, row(f"week:{second}:email").reference] == ["ref-1", "ref-2"]
    assert messaging.cancel_pending(keys_containing=[f":{first}:"]) == 1
    assert OutboundMessage.objects.filter(status="pending").count() == 1
