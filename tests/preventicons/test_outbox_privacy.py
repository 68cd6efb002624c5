"""The outbox names nobody: what an operator with database dumps finds there, and what a retry can still do.

The attacker holds dumps of the identity database and the mail server's log (which pairs each Message-ID
with its recipient), but not the key file. Messages go out through Django's SMTP backend to a real local SMTP
server and through the real twilio SDK to a local fake of the API.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from preventicons import messaging
from preventicons.messaging import queue_email, queue_sms, send_due_messages
from preventicons.models import DeliveryTally, OutboundMessage
from tests.fakes.smtp import FakeSmtpServer
from tests.fakes.twilio import FakeTwilio

ADDRESS = "eva.devries@zorggroep-noord.example"
NUMBER = "+31612345670"
LINK_TOKEN = "Qm8x2LwT5vZ9pR4kN7cJ1hB6dF3sG0aY"
BODY = f"Beste Eva,\n\nhttps://preventicons.example/i/{LINK_TOKEN}/\n"

# What the renderer below knows: reference -> whether there is still someone to send to.
_REACHABLE: dict[str, bool] = {}


def _render(reference: str, channel: str) -> messaging.RenderedMessage | None:
    if not _REACHABLE.get(reference):
        return None
    if channel == "email":
        return messaging.RenderedMessage(to=ADDRESS, subject="Je week", body=BODY)
    return messaging.RenderedMessage(to=NUMBER, subject=None, body=BODY)


messaging.register_renderer("tests.outbox-privacy", _render)


@pytest.fixture
def reachable() -> Iterator[dict[str, bool]]:
    _REACHABLE.clear()
    yield _REACHABLE
    _REACHABLE.clear()


def dump(table: str) -> str:
    """Every column of every row, as an operator's `SELECT *` shows them."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - a fixed table name
        return repr(cursor.fetchall())


def forms_of(participant_id: uuid.UUID) -> list[str]:
    return [str(participant_id), participant_id.hex, str(participant_id).upper()]


@pytest.mark.django_db
def test_sent_failed_and_cancelled_messages_leave_no_row_that_names_anyone(
    smtp_server: FakeSmtpServer,
    fake_twilio: FakeTwilio,
    reachable: dict[str, bool],
    caplog: pytest.LogCaptureFixture,
    settings: Any,
) -> None:
    settings.MESSAGE_MAX_ATTEMPTS = 1
    caplog.set_level(logging.DEBUG)
    participant_id = uuid.uuid4()
    weekly_link = str(uuid.uuid4())
    gone_link = str(uuid.uuid4())
    reachable[weekly_link] = True
    keys = {
        "sent e-mail": f"enrol:{participant_id}:email:1",
        "sent sms": f"enrol:{participant_id}:sms:1",
        "failed e-mail": f"remind:{participant_id}:2026-11-16:email",
        "failed sms": f"remind:{participant_id}:2026-11-16:sms",
        "weekly e-mail": f"week:{participant_id}:2026-11-16:email",
        "cancelled sms": f"week:{participant_id}:2026-11-23:sms",
        "withdrawn e-mail": f"changed:{participant_id}:20261116T090000:email",
    }
    queue_email(key=keys["sent e-mail"], to=ADDRESS, subject="Welkom", body=BODY)
    queue_sms(key=keys["sent sms"], to=NUMBER, body=BODY)
    messaging.queue_many(
        [
            messaging.Deferred(
                key=keys["weekly e-mail"],
                channel="email",
                renderer="tests.outbox-privacy",
                reference=weekly_link,
            ),
            messaging.Deferred(
                key=keys["cancelled sms"], channel="sms", renderer="tests.outbox-privacy", reference=gone_link
            ),
        ]
    )
    send_due_messages()
    smtp_server.refuse_next_recipients(1, f"550 5.1.1 <{ADDRESS}>: unknown user")
    fake_twilio.fail_next(1, status=400, message=f"The 'To' number {NUMBER} is not a valid phone number.")
    queue_email(key=keys["failed e-mail"], to=ADDRESS, subject="Herinnering", body=BODY)
    queue_sms(key=keys["failed sms"], to=NUMBER, body=BODY)
    send_due_messages()
    # Queued, then withdrawn by a stop before it went out.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queue_email(key=keys["withdrawn e-mail"], to=ADDRESS, subject="Gewijzigd", body=BODY)
    assert messaging.cancel_pending(keys_containing=[f":{participant_id}:"]) == 1

    # What reached the providers, and what the mail server's log and Twilio's console pair with a recipient.
    assert [mail.rcpt_tos for mail in smtp_server.messages] == [[ADDRESS], [ADDRESS]]
    message_ids = [str(mail.message["Message-ID"]) for mail in smtp_server.messages]
    sids = [sms["sid"] for sms in fake_twilio.messages]
    assert len(message_ids) == 2 and len(sids) == 1

    stored = dump("preventicons_outboundmessage") + dump("preventicons_deliverytally")
    logged = caplog.text + repr([record.args for record in caplog.records])
    secrets = [
        *forms_of(participant_id),
        *message_ids,
        *(message_id.strip("<>").split("@")[0] for message_id in message_ids),
        *sids,
        *keys.values(),
        weekly_link,
        gone_link,
        ADDRESS,
        NUMBER,
        LINK_TOKEN,
    ]
    for secret in secrets:
        assert secret not in stored, secret
    for secret in [*message_ids, *sids, *forms_of(participant_id), ADDRESS, NUMBER, LINK_TOKEN]:
        assert secret not in logged, secret
    # Seven tombstones: a hashed key and a retention period each, nothing that tells them apart.
    finished = OutboundMessage.objects.values_list(
        "status",
        "channel",
        "renderer",
        "reference",
        "cancel_tag",
        "attempts",
        "last_error",
        "next_attempt_at",
    )
    assert list(finished) == [("finished", "", "", "", "", 0, "", None)] * 7
    assert len(set(OutboundMessage.objects.values_list("finished_period", flat=True))) == 1


@pytest.mark.django_db
def test_a_pending_row_holds_a_keyed_hash_and_a_cancel_tag_but_no_participant_id(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    participant_id = uuid.uuid4()
    queue_email(key=f"enrol:{participant_id}:email:1", to=ADDRESS, subject="Welkom", body=BODY)

    stored = dump("preventicons_outboundmessage")
    for secret in [*forms_of(participant_id), "enrol:", ADDRESS, LINK_TOKEN]:
        assert secret not in stored
    (message,) = OutboundMessage.objects.all()
    assert message.status == "pending" and len(message.key_hash) == len(message.cancel_tag) == 64


@pytest.mark.django_db
def test_a_key_queued_again_after_its_message_was_sent_sends_nothing(
    smtp_server: FakeSmtpServer, fake_twilio: FakeTwilio
) -> None:
    participant_id = uuid.uuid4()
    email_key, sms_key = f"enrol:{participant_id}:email:1", f"enrol:{participant_id}:sms:1"
    assert queue_email(key=email_key, to=ADDRESS, subject="Welkom", body=BODY)
    assert queue_sms(key=sms_key, to=NUMBER, body=BODY)
    send_due_messages()
    assert (len(smtp_server.messages), len(fake_twilio.messages)) == (1, 1)

    # A retried job queues the same messages again, after they were sent and their rows became tombstones.
    assert queue_email(key=email_key, to=ADDRESS, subject="Welkom", body=BODY) is False
    assert queue_sms(key=sms_key, to=NUMBER, body=BODY) is False
    messaging.queue_many(
        [
            messaging.Outgoing(key=email_key, channel="email", to=ADDRESS, subject="Welkom", body=BODY),
            messaging.Outgoing(key=sms_key, channel="sms", to=NUMBER, body=BODY),
        ]
    )
    # Even on the other channel: a tombstone keeps no channel, only that its key is used.
    assert queue_sms(key=email_key, to=NUMBER, body=BODY) is False
    assert send_due_messages().claimed == 0

    assert (len(smtp_server.messages), len(fake_twilio.messages)) == (1, 1)
    assert OutboundMessage.objects.filter(status="pending").count() == 0


@pytest.mark.django_db
def test_failed_cancelled_and_withdrawn_keys_queued_again_send_nothing(
    smtp_server: FakeSmtpServer, fake_twilio: FakeTwilio, reachable: dict[str, bool], settings: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    participant_id = uuid.uuid4()
    failed, cancelled, withdrawn = (f"{kind}:{participant_id}:sms" for kind in ("enrol", "week", "changed"))
    fake_twilio.fail_next(1, status=400)
    queue_sms(key=failed, to=NUMBER, body=BODY)
    messaging.queue_many(
        [messaging.Deferred(key=cancelled, channel="sms", renderer="tests.outbox-privacy", reference="gone")]
    )
    send_due_messages()
    queue_sms(key=withdrawn, to=NUMBER, body=BODY)
    messaging.cancel_pending(keys_containing=[f":{participant_id}:"])

    reachable["gone"] = True  # whoever it was for is reachable again: still nothing twice
    for key in (failed, cancelled, withdrawn):
        assert queue_sms(key=key, to=NUMBER, body=BODY) is False
    send_due_messages()

    assert fake_twilio.messages == [] and len(fake_twilio.requests) == 1


@pytest.mark.django_db
def test_cancel_pending_ends_only_the_subjects_messages(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    jan, piet, code = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    queue_email(key=f"invite:{jan}:{uuid.uuid4()}:email", to=ADDRESS, subject="s", body="b")
    queue_sms(key=f"week:{jan}:2026-11-16:sms", to=NUMBER, body="b")
    queue_sms(key=f"code:{code}:sms", to=NUMBER, body="b")
    queue_sms(key=f"week:{piet}:2026-11-16:sms", to=NUMBER, body="b")

    assert messaging.cancel_pending(keys_containing=[f":{jan}:", f"code:{code}:"]) == 3

    pending = OutboundMessage.objects.filter(status="pending").values_list("key_hash", flat=True)
    assert list(pending) == [messaging.outbox_key_hash(f"week:{piet}:2026-11-16:sms")]
    for part in ("invite:", ":", f"{jan}", "week:2026-11-16:"):
        with pytest.raises(ValueError, match="name an id"):
            messaging.cancel_pending(keys_containing=[part])


@pytest.mark.django_db
def test_daily_counts_per_channel_and_outcome_add_up_to_the_finished_messages(
    smtp_server: FakeSmtpServer,
    fake_twilio: FakeTwilio,
    reachable: dict[str, bool],
    time_machine: Any,
    settings: Any,
) -> None:
    settings.MESSAGE_MAX_ATTEMPTS = 1
    monday = dt.datetime(2026, 11, 16, 23, 30, tzinfo=dt.UTC)  # 00:30 on Tuesday in Amsterdam
    time_machine.move_to(monday, tick=False)
    expected: Counter[tuple[dt.date, str, str]] = Counter()
    tuesday = timezone.localdate()
    assert tuesday == dt.date(2026, 11, 17)
    for n in range(3):
        queue_email(key=f"a:{uuid.uuid4()}:{n}", to=ADDRESS, subject="s", body="b")
        queue_sms(key=f"a:{uuid.uuid4()}:{n}", to=NUMBER, body="b")
    smtp_server.refuse_next_recipients(1)
    fake_twilio.fail_next(2, status=400)
    send_due_messages()
    expected.update({(tuesday, "email", "sent"): 2, (tuesday, "email", "failed"): 1})
    expected.update({(tuesday, "sms", "sent"): 1, (tuesday, "sms", "failed"): 2})

    time_machine.move_to(monday + dt.timedelta(days=1), tick=False)
    wednesday = timezone.localdate()
    reachable["here"] = True
    messaging.queue_many(
        [
            messaging.Deferred(
                key="w:1:sms", channel="sms", renderer="tests.outbox-privacy", reference="here"
            ),
            messaging.Deferred(
                key="w:2:sms", channel="sms", renderer="tests.outbox-privacy", reference="gone"
            ),
            messaging.Deferred(
                key="w:3:email", channel="email", renderer="tests.outbox-privacy", reference="x"
            ),
        ]
    )
    send_due_messages()
    expected.update({(wednesday, "sms", "sent"): 1, (wednesday, "sms", "cancelled"): 1})
    expected.update({(wednesday, "email", "cancelled"): 1})

    counted = Counter(
        {
            (tally.day, channel, outcome): count
            for tally in DeliveryTally.objects.all()
            for (channel, outcome), count in tally.opened().items()
            if count
        }
    )
    assert counted == expected
    assert sum(counted.values()) == OutboundMessage.objects.filter(status="finished").count() == 9
    assert messaging.delivery_counts(day=wednesday) == {
        ("sms", "sent"): 1,
        ("sms", "cancelled"): 1,
        ("email", "cancelled"): 1,
    }
