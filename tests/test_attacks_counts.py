"""Adversary (operator: reads the live identity store or its files, no key file): the day's delivery counts.

Attacked: 33f639d and before, where ending a message (its tombstone) and adding one to its day's
DeliveryCount (per channel and outcome: sent, failed, cancelled) were one transaction. The tombstone's row
version and the count row's new version then carried the same transaction id (``xmin``), and the count
row's previous version (dead, readable with pageinspect until pruned) told which count went up. The
message's last pending version names its weekly link (``reference``), whose row names the participant; so
each weekly message was paired with "sent" (someone who takes part) or "cancelled" (a stand-in, someone who
stopped or pauses), even while every provider works: what the stand-ins of the weekly round are there to
hide (issue 14, tests/test_attacks_review6.py). Closed: a sender run counts what it ended in memory and
writes the counts when it stops, in one transaction of their own (preventicons.messaging.send_due_messages),
so no count row version shares an xmin with an outbox row version and one count transaction covers many
messages of both outcomes. Then (until preventicons 0009) a run's counts told how many of the messages it
ended went each way: one clear row per day, channel and outcome, so a run that ended a single message (a
retry after an outage, say) told its outcome by which row it rewrote, to whoever places that end between the
run's claims and its count by transaction id. Closed: the day's counts are one row, sealed (DeliveryTally),
which every run that ends anything rewrites whole at one length.

Found on the way: the transaction in which a real message settles the messages with nobody to send to that
waited for it (preventicons.messaging._Verdicts) was to give all of them one xmin, but each end was written
in a savepoint of its own, and a row written in a savepoint carries the savepoint's id: each tombstone had
an xmin of its own (and its count's). Ending a message is now one statement, with no savepoint.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from participants import account
from participants.models import Organisation, Participant, StaffUser
from preventicons import messaging
from preventicons.models import DeliveryTally, OutboundMessage
from scores import rounds
from tests.conftest import ALL_DATABASES
from tests.fakes.smtp import FakeSmtpServer
from tests.fakes.twilio import FakeTwilio
from tests.test_attacks_rowshape import START, _people

pytestmark = [pytest.mark.usefixtures("english", "empty_cache")]

WEEK = dt.date(2026, 11, 23)  # the week of START
CountRow = tuple[dt.date, str, str]
RENDERER = "tests.attacks-counts"
HERE = "reference-of-someone-who-takes-part"


def _render(reference: str, channel: str) -> messaging.RenderedMessage | None:
    # Only HERE takes part; any other reference is a stand-in's.
    if reference != HERE:
        return None
    return messaging.RenderedMessage(to="+31612345678", subject=None, body="Je week")


messaging.register_renderer(RENDERER, _render)


def _count_versions() -> dict[CountRow, tuple[int, str]]:
    """The live counts, opened with the key, beside what the operator reads of their rows: (day, channel,
    outcome) -> (count, xmin of the day's row), for every count above zero."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, xmin::text FROM preventicons_deliverytally")
        xmins = {str(pk): xmin for pk, xmin in cursor}
    return {
        (tally.day, channel, outcome): (count, xmins[str(tally.pk)])
        for tally in DeliveryTally.objects.all()
        for (channel, outcome), count in tally.opened().items()
        if count
    }


def _outbox_xmins() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM preventicons_outboundmessage")
        return {xmin for (xmin,) in cursor}


@pytest.fixture
def providers() -> Iterator[tuple[FakeSmtpServer, FakeTwilio]]:
    """The real SMTP backend to a local server and the Twilio SDK to a local API, from here on (the people
    are brought into their states with the in-memory ones, whose outboxes tests.test_attacks_rowshape reads).
    """
    with FakeSmtpServer() as smtp, FakeTwilio() as twilio:
        yield smtp, twilio


def _use(settings: Any, smtp: FakeSmtpServer, twilio: FakeTwilio) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = smtp.host, smtp.port, 10
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.SMS_GATEWAY = "preventicons.gateways.TwilioSmsGateway"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = twilio.account_sid, twilio.auth_token
    settings.TWILIO_FROM_NUMBER, settings.TWILIO_API_BASE_URL = twilio.from_number, twilio.url


# Committed transactions, as a live installation has them: in a test's own transaction every row would carry
# the test's id (or a savepoint's).
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
@time_machine.travel(START, tick=False)
def test_no_delivery_count_shares_a_transaction_with_the_end_of_a_message(
    organisation: Organisation,
    employer: StaffUser,
    settings: Any,
    providers: tuple[FakeSmtpServer, FakeTwilio],
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("xmin is PostgreSQL's")
    ids = _people(organisation, employer, settings)
    # Someone who takes part on each channel (the active person by e-mail, the other by SMS); everyone else
    # (never enrolled, declined, inactive, stopped, anonymised) gets a message with nobody to send to.
    account.pause_messages(participant=Participant.objects.get(pk=ids["paused"]), paused=False)
    smtp, twilio = providers
    _use(settings, smtp, twilio)
    twilio.fail_next(1, status=500)  # the one real SMS of run 1; e-mail goes
    counts_before = _count_versions()
    count_versions: list[dict[CountRow, tuple[int, str]]] = [counts_before]
    outbox_xmins = _outbox_xmins()
    queued = rounds.run_weekly_round(organisation=organisation, week=WEEK)
    assert queued.links == queued.emails + queued.sms == len(ids)
    # Run 1: the one the round's commit asks for (or this one, if none ran); every SMS waits. Run 2, past
    # the backoff, with Twilio back: the SMS go.
    for hours in (0, 2):
        with time_machine.travel(START + dt.timedelta(hours=hours), tick=False):
            messaging.send_due_messages()
        count_versions.append(_count_versions())
        outbox_xmins |= _outbox_xmins()

    assert not OutboundMessage.objects.filter(status=OutboundMessage.Status.PENDING).exists()
    mobile = Participant.objects.get(pk=ids["paused"]).mobile
    assert [to for received in smtp.messages for to in received.rcpt_tos] == ["prive.adres@example.org"]
    assert [sms["To"] for sms in twilio.messages] == [mobile]
    # Whoever reads xmin finds no count row version written where a message ended ...
    count_xmins = {xmin for versions in count_versions for _count, xmin in versions.values()}
    assert not count_xmins & outbox_xmins
    # ... and each run's counts written in one transaction, whatever their outcomes.
    for before, after in itertools.pairwise(count_versions):
        written = {xmin for row, (count, xmin) in after.items() if before.get(row, (0, ""))[0] != count}
        assert len(written) == 1, written
    # The counts still say how delivery went, on the day it went: per channel one message sent (the person
    # who takes part), the rest had nobody to go to.
    added = {
        row: count - counts_before.get(row, (0, ""))[0]
        for row, (count, _xmin) in count_versions[-1].items()
        if count != counts_before.get(row, (0, ""))[0]
    }
    today = timezone.localdate(START)
    expected = {
        (today, "email", "sent"): 1,
        (today, "sms", "sent"): 1,
        (today, "email", "cancelled"): queued.emails - 1,
        (today, "sms", "cancelled"): queued.sms - 1,
    }
    assert added == {row: count for row, count in expected.items() if count}
    assert sum(added.values()) == len(ids)


@pytest.mark.django_db(transaction=True)
def test_a_real_message_and_the_stand_in_it_settles_end_in_one_transaction(
    fake_twilio: FakeTwilio, time_machine: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("xmin is PostgreSQL's")
    time_machine.move_to(START, tick=False)
    # One commit (so one run): the stand-in, due a second earlier, is claimed first and waits for the real
    # SMS.
    with transaction.atomic():
        messaging.queue_many(
            [messaging.Deferred(key="week:stand-in:sms", channel="sms", renderer=RENDERER, reference="x")]
        )
        time_machine.shift(dt.timedelta(seconds=1))
        messaging.queue_many(
            [messaging.Deferred(key="week:taking-part:sms", channel="sms", renderer=RENDERER, reference=HERE)]
        )
    assert len(fake_twilio.messages) == 1
    ended = OutboundMessage.objects.filter(
        key_hash__in=[messaging.outbox_key_hash(f"week:{key}:sms") for key in ("stand-in", "taking-part")],
        status=OutboundMessage.Status.FINISHED,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text FROM preventicons_outboundmessage WHERE id = ANY(%s)",
            [list(ended.values_list("pk", flat=True))],
        )
        tombstones = [xmin for (xmin,) in cursor]
    assert len(tombstones) == 2
    # One xmin for both: which of the two was sent is not in the transaction ids ...
    assert len(set(tombstones)) == 1, tombstones
    # ... nor in the counts: both outcomes went up in a transaction of their own.
    counts = _count_versions()
    assert {row[1:]: count for row, (count, _xmin) in counts.items()} == {
        ("sms", "sent"): 1,
        ("sms", "cancelled"): 1,
    }
    assert len({xmin for _count, xmin in counts.values()} | set(tombstones)) == 2


def _operator_view() -> dict[str, dict[str, tuple[Any, ...]]]:
    """Every row of every delivery-count table as the live database shows it without the key file, the row's
    xmin first. Table -> row id -> its columns (the id's own column left out)."""
    with connection.cursor() as cursor:
        tables = [
            name
            for name in connection.introspection.table_names(cursor)
            if name.startswith("preventicons_delivery")
        ]
        view: dict[str, dict[str, tuple[Any, ...]]] = {}
        for table in tables:
            cursor.execute(f"SELECT xmin::text AS xmin, * FROM {table}")  # noqa: S608  # nosec B608  # catalogue names
            names = [column.name for column in cursor.description]
            rows = {}
            for row in cursor.fetchall():
                values = dict(zip(names, row, strict=True))
                key = str(values.pop("id"))
                rows[key] = tuple(values.values())
            view[table] = rows
    return view


def _what_a_run_changed(
    before: dict[str, dict[str, tuple[Any, ...]]], after: dict[str, dict[str, tuple[Any, ...]]]
) -> list[tuple[str, str, tuple[Any, ...], tuple[int, ...]]]:
    """Per row the run wrote: table, how (new, gone, changed), the values it kept (a sealed one as its length:
    all a dump tells of it), and which columns moved."""

    def shown(value: Any) -> Any:
        return ("sealed", len(value)) if isinstance(value, str) and value.startswith("v1.") else value

    changes: list[tuple[str, str, tuple[Any, ...], tuple[int, ...]]] = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, {}), after.get(table, {})
        for key in sorted(set(old) | set(new)):
            if key not in old:
                changes.append((table, "new", (), ()))
            elif key not in new:
                changes.append((table, "gone", tuple(shown(value) for value in old[key]), ()))
            elif old[key] != new[key]:
                moved = tuple(i for i, (a, b) in enumerate(zip(old[key], new[key], strict=True)) if a != b)
                kept = tuple(shown(value) for i, value in enumerate(old[key]) if i not in moved)
                changes.append((table, "changed", kept, moved))
    return changes


@pytest.mark.django_db(transaction=True)
def test_a_run_that_ends_a_single_message_writes_the_same_counts_whether_it_was_sent_or_had_nobody(
    fake_twilio: FakeTwilio, time_machine: Any
) -> None:
    """A run that ends one weekly message (a retry after an outage, the last of a round) and nothing else:
    its count transaction is placed by xmin between its claim and the next run's, so whatever it changed in
    the counts is that one message's outcome. The one message's last pending version names its weekly link,
    and the link its participant: "sent" would say the person takes part, "cancelled" that the row is a
    stand-in's (never enrolled, declined, paused or stopped). The dump must show the same change either
    way: in clear, one row per outcome, the run rewrote the "sent" row or the "cancelled" one."""
    time_machine.move_to(START, tick=False)
    # The day's counts exist already, for both outcomes: a run that writes a first row is not at stake here.
    messaging.queue_many(
        [
            messaging.Deferred(key="week:warm-here:sms", channel="sms", renderer=RENDERER, reference=HERE),
            messaging.Deferred(key="week:warm-none:sms", channel="sms", renderer=RENDERER, reference="x"),
        ]
    )
    messaging.send_due_messages()
    changed = {}
    for person, reference in (("taking-part", HERE), ("stand-in", "nobody")):
        time_machine.shift(dt.timedelta(minutes=5))
        with transaction.atomic():
            messaging.queue_many(
                [
                    messaging.Deferred(
                        key=f"week:{person}:sms", channel="sms", renderer=RENDERER, reference=reference
                    )
                ]
            )
            before = _operator_view()
        # queue_many's commit hook ran the sender: the one message is ended and counted by now.
        messaging.send_due_messages()
        changed[person] = _what_a_run_changed(before, _operator_view())
    assert len(fake_twilio.messages) == 2  # the warm-up's and the one who takes part's
    assert messaging.delivery_counts(day=timezone.localdate(START)) == {
        ("sms", "sent"): 2,
        ("sms", "cancelled"): 2,
    }
    assert changed["taking-part"], "the run counted nothing"
    assert changed["taking-part"] == changed["stand-in"], changed
