"""E-mail and SMS: an outbox written inside the caller's transaction, sent after it commits.

Contract used by the apps:

    queue_email(*, key: str, to: str, subject: str, body: str) -> bool
    queue_sms(*, key: str, to: str, body: str) -> bool

Both write one outbox row per unique ``key`` (e.g. "enrol:<participant id>:email:1") inside the caller's
transaction; a second call with the same key changes nothing and returns False, also long after the first
was sent. Sending happens after commit, through the send_due_messages task, with retries and backoff; the
recipient and body are sealed. Keys name an event, never a person's data: no address, no number, no name.
A key reads "<kind>:<subject id>[:<detail>...]"; cancel_pending finds queued messages by their subject id.

The outbox names nobody: keys are stored only as keyed hashes (``outbox_key_hash``, the one place they are
computed), and a message that is final (sent, failed, cancelled) leaves only a tombstone, its hashed key, so
that queueing stays idempotent. No participant id, provider id or Message-ID is kept, nor logged. How
deliveries went is counted per day, channel and outcome in a sealed DeliveryTally, once per sender run and
apart from any message's end (see send_due_messages).

A message may instead be queued deferred (``queue_many`` with ``Deferred``): the row then holds only the
name of a renderer registered with ``register_renderer`` and an opaque reference, and the sender asks the
renderer for recipient, subject and body at send time; a renderer answering None cancels the message, as
soon as a real message on its channel would end (while the provider fails, it is deferred like one).

The providers themselves (SMTP, the SMS gateways, Twilio) and the staff login codes, which do not use the
outbox, live in preventicons/gateways.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from preventicons.crypto import keyed_hash
from preventicons.gateways import (
    EmailGateway,
    PermanentSendError,
    SendError,
    SmsGateway,
    TransientSendError,
    sms_gateway,
)
from preventicons.models import DeliveryTally, OutboundMessage

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger(__name__)

# Delivery semantics (what the apps can count on):
# - Never lost. A message exists as a committed outbox row before anyone tries to send it. The task
#   scheduled on commit only hurries things along; the beat runs send_due_messages every 30 seconds and
#   sends whatever is due, so a broker outage, a lost task or a dead worker delays a message, never drops it.
# - Never sent twice by a retry or a doubled task run. Queueing the same key again inserts nothing (unique
#   constraint). Sending begins by claiming one row in a short transaction (FOR UPDATE SKIP LOCKED), which
#   moves its next_attempt_at to the end of a lease and counts the attempt; a concurrent or later run finds
#   the row locked or not yet due and leaves it alone. An outcome is recorded only while the claim is still
#   ours (same attempt count, still pending).
# - At least once within the provider-call window. If the process dies after the provider took a message
#   but before "sent" is recorded, the row becomes due again when the lease ends and is sent again. Neither
#   SMTP nor the SMS API takes an idempotency key from us, so exactly-once is not on offer; the window is
#   one provider call. The provider call is made outside any database transaction: no lock or connection is
#   held across the network.
# - Bounded. Every claim counts an attempt; a transient failure waits with exponential backoff and jitter,
#   a permanent one (an invalid number, a refused mailbox) or MESSAGE_MAX_ATTEMPTS ends in "failed".
# - Final means gone. A sent, failed or cancelled message becomes a tombstone: the hashed key stays (so a
#   retried job that queues it again sends nothing), recipient, body, reference, channel, attempts and errors
#   go. No provider id or Message-ID is ever kept: with the mail server's log it would name the recipient of
#   every row.
# - Counted apart. Its outcome is not written with the tombstone: a count row written in the transaction
#   that ends a message carries that transaction's id (xmin), and its last pending version names the weekly
#   link, so the count's old and new versions would tell whether that person's message was sent or had
#   nobody to go to (issue 14). A run adds up what it ended and adds it to the day's DeliveryTally in one
#   transaction of its own when it stops (send_due_messages); a run that dies before then loses its counts,
#   never doubles them. The tally is one row per day with every count sealed in it, rewritten whole by every
#   run that ended anything: a run that ends a single message (a retry after an outage, say) changes it as
#   one that ended another outcome would, where a clear row per outcome told which went up.
# - Deferred messages are rendered after the claim, outside any transaction, just before the provider call;
#   a renderer that finds nobody to send to any more ends the row "cancelled", but only as a real message on
#   its channel would end now: while the provider defers real messages, such a row is deferred alike (same
#   error, its own backoff), so the pending rows do not list who takes part (_Verdicts). A renderer that
#   raises counts as a transient failure (its text is not kept: it may quote content).

# Longer than any single provider call (EMAIL_TIMEOUT, gateways.TWILIO_TIMEOUT_SECONDS), so a live sender
# never loses its claim; short enough that a message whose sender died goes out again soon.
CLAIM_LEASE = dt.timedelta(minutes=10)
KEY_MAX_LENGTH = 200

_jitter = random.SystemRandom()
# Keyed hashes of outbox keys live under the blind-index key, separated from every other use by these labels.
KEY_HASH_PURPOSE = "blind_index"
KEY_HASH_LABEL = "outbox-key"
CANCEL_TAG_LABEL = "outbox-subject"


@dataclass
class SendReport:
    """What one send_due_messages run did."""

    deferred: int = 0
    # The messages it ended, per (local day, channel, outcome): what it adds to DeliveryTally when it stops,
    # and what its sent, failed and cancelled figures count.
    ended: Counter[tuple[dt.date, str, str]] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return self._ended(DeliveryTally.Outcome.SENT)

    @property
    def failed(self) -> int:
        return self._ended(DeliveryTally.Outcome.FAILED)

    @property
    def cancelled(self) -> int:
        return self._ended(DeliveryTally.Outcome.CANCELLED)

    @property
    def claimed(self) -> int:
        return self.deferred + sum(self.ended.values())

    def _ended(self, outcome: str) -> int:
        return sum(count for (_day, _channel, each), count in self.ended.items() if each == outcome)

    def add(self, other: SendReport) -> None:
        """Take over what ``other`` (a part of this run, committed) did."""
        self.deferred += other.deferred
        self.ended.update(other.ended)


# --- Queueing ----------------------------------------------------------------------------------------------


def queue_email(*, key: str, to: str, subject: StrOrPromise, body: StrOrPromise) -> bool:
    """Queue one e-mail under ``key`` in the caller's transaction; False, changing nothing, if it exists."""
    return _queue(key=key, channel=OutboundMessage.Channel.EMAIL, to=to, subject=subject, body=body)


def queue_sms(*, key: str, to: str, body: StrOrPromise) -> bool:
    """Queue one SMS under ``key`` in the caller's transaction; False, changing nothing, if it exists."""
    return _queue(key=key, channel=OutboundMessage.Channel.SMS, to=to, subject=None, body=body)


def _check_key(key: str) -> None:
    if not key or len(key) > KEY_MAX_LENGTH or not key.isascii() or not key.isprintable() or " " in key:
        raise ValueError(f"an outbox key is 1-{KEY_MAX_LENGTH} printable ASCII characters without spaces")
    if "@" in key:
        raise ValueError("an outbox key names an event, never an address")


def outbox_key_hash(key: str) -> str:
    """What the outbox stores of ``key``: its keyed hash. The one place a key becomes a column value."""
    _check_key(key)
    return keyed_hash(KEY_HASH_PURPOSE, KEY_HASH_LABEL, key)


def _subject_of(key: str) -> str:
    # "<kind>:<subject id>[:<detail>...]": the subject is what a stop or pause cancels by (a participant or
    # a code id). A key without a second part has no subject and cannot be cancelled by one.
    parts = key.split(":")
    return parts[1] if len(parts) > 1 else ""


def _cancel_tag(subject: str) -> str:
    if not subject:
        return ""
    return keyed_hash(KEY_HASH_PURPOSE, CANCEL_TAG_LABEL, subject)


def _queue(*, key: str, channel: str, to: str, subject: StrOrPromise | None, body: StrOrPromise) -> bool:
    key_hash = outbox_key_hash(key)
    if not isinstance(to, str) or not to or not body:
        raise ValueError("a message needs a recipient (text) and a body")
    if subject is not None and ("\n" in str(subject) or "\r" in str(subject)):
        raise ValueError("an e-mail subject is one line")
    using = router.db_for_write(OutboundMessage)
    message = OutboundMessage(
        key_hash=key_hash,
        cancel_tag=_cancel_tag(_subject_of(key)),
        channel=channel,
        recipient=to,
        # Lazy translations become text here: the sealed column takes only str.
        subject=None if subject is None else str(subject),
        body=str(body),
        next_attempt_at=timezone.now(),
    )
    try:
        # A savepoint: a duplicate key rolls back only this insert, never the caller's transaction. A
        # concurrent insert of the same key waits on the unique index and then fails here.
        with transaction.atomic(using=using):
            message.save(force_insert=True, using=using)
    except IntegrityError:
        existing = (
            OutboundMessage.objects.using(using)
            .filter(key_hash=key_hash)
            .values_list("status", "channel")
            .first()
        )
        if existing is None:
            raise
        status, existing_channel = existing
        # A tombstone keeps no channel: a finished key is simply used, whatever channel is asked for now.
        if status == OutboundMessage.Status.PENDING and existing_channel != channel:
            raise ValueError("this outbox key already names a message on another channel") from None
        return False
    if not _hurry_registered(using):
        transaction.on_commit(_hurry_sending, using=using)
    return True


def _hurry_registered(using: str) -> bool:
    # One nudge per transaction is enough: a weekly round queueing thousands of messages publishes one task,
    # not thousands. A nudge counts only if no savepoint rollback from here on can discard it (Django keeps
    # each hook with the savepoints open when it was registered).
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return False
    open_savepoints = set(connection.savepoint_ids)
    return any(
        func is _hurry_sending and savepoints <= open_savepoints
        for savepoints, func, *_ in connection.run_on_commit
    )


def _hurry_sending() -> None:
    from preventicons.tasks import send_due_messages  # the tasks module imports this one

    try:
        send_due_messages.delay()
    except BrokerError as exc:
        # The row is committed; the periodic run sends it. Nothing about the message goes in this line.
        logger.warning(
            "broker unreachable (%s): a queued message waits for the periodic run", type(exc).__name__
        )


# --- Sending -----------------------------------------------------------------------------------------------


def send_due_messages(*, limit: int = 100) -> SendReport:
    """Send up to ``limit`` due messages. Safe to run twice at once: each row is claimed before it is sent.

    What the run ended is added to the day's DeliveryTally when it stops (also when it stops through an
    exception), in one transaction that ends no message: no count row version shares an xmin with a
    message's end, and one count transaction covers every message the run ended (issue 14). A run whose
    process dies first leaves its messages ended and uncounted: the counts may then fall short of the
    tombstones, never exceed them, since a message is counted only by the run whose claim ended it.
    """
    report = SendReport()
    verdicts = _Verdicts(report)
    try:
        with _Senders() as senders:
            for _ in range(limit):
                message = _claim_next_due()
                if message is None:
                    break
                _attempt(message, senders, verdicts, report)
            verdicts.settle_the_rest()
    finally:
        _write_counts(report.ended)
    return report


def retry_delay(*, attempts: int) -> dt.timedelta:
    """The wait after the given number of failed attempts: doubling from the base, capped, with jitter."""
    base = settings.MESSAGE_RETRY_BASE_SECONDS
    ceiling = settings.MESSAGE_RETRY_MAX_SECONDS
    delay = min(ceiling, base * 2 ** min(max(attempts - 1, 0), 32))
    # Jitter spreads a burst of failures (a provider outage) so their retries do not arrive in step.
    return dt.timedelta(seconds=delay * _jitter.uniform(0.5, 1.0))


def retention_period(*, at: dt.datetime | None = None) -> int:
    """The number of the MESSAGE_RETENTION_DAYS-long period (counted from 1970-01-01, UTC) ``at`` falls in."""
    day = (at or timezone.now()).astimezone(dt.UTC).date()
    return (day - dt.date(1970, 1, 1)).days // max(settings.MESSAGE_RETENTION_DAYS, 1)


def prune_finished_messages() -> int:
    """Delete the tombstones of messages finished before the previous retention period; never pending ones.

    A tombstone is kept at least MESSAGE_RETENTION_DAYS and at most twice that: long enough for any retry of
    the job that queued it. It carries its period, not a time, so it cannot date its message.
    """
    deleted, _ = OutboundMessage.objects.filter(
        status=OutboundMessage.Status.FINISHED, finished_period__lt=retention_period() - 1
    ).delete()
    return deleted


def delivery_counts(*, day: dt.date) -> dict[tuple[str, str], int]:
    """How many messages ended on ``day`` (local date), per (channel, outcome); none ended, none named."""
    tally = DeliveryTally.objects.filter(day=day).first()
    if tally is None:
        return {}
    return {cell: count for cell, count in tally.opened().items() if count}


def _short_id(message: OutboundMessage) -> str:
    return message.pk.hex[:8]


def _claim_next_due() -> OutboundMessage | None:
    using = router.db_for_write(OutboundMessage)
    now = timezone.now()
    with transaction.atomic(using=using):
        message = (
            OutboundMessage.objects.using(using)
            .select_for_update(skip_locked=True)
            .filter(status=OutboundMessage.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .first()
        )
        if message is None:
            return None
        message.attempts += 1
        message.next_attempt_at = now + CLAIM_LEASE
        message.save(update_fields=["attempts", "next_attempt_at"], using=using)
    return message


def _attempt(message: OutboundMessage, senders: _Senders, verdicts: _Verdicts, report: SendReport) -> None:
    if message.attempts > settings.MESSAGE_MAX_ATTEMPTS:
        # The last permitted attempt never reported back (its sender died mid-call): do not add another.
        logger.warning(
            "%s message %s: no outcome after the last attempt", message.channel, _short_id(message)
        )
        _finish(message, outcome=DeliveryTally.Outcome.FAILED, report=report)
        return
    if message.renderer:
        try:
            rendered = _render(message)
        except SendError as exc:
            _conclude(message, exc, report)  # our renderer's failure, not the provider's: no verdict
            return
        if rendered is None:
            # Nobody to send to (a stand-in, someone who stopped or pauses): it ends or waits as a real
            # message on its channel does now, never at once while the provider fails (_Verdicts).
            verdicts.stand_in(message)
            return
        to, subject, body = rendered.to, rendered.subject or "", rendered.body
    else:
        to, subject, body = message.recipient or "", message.subject or "", message.body or ""
    error: SendError | None = None
    try:
        senders.deliver(message, to=to, subject=subject, body=body)
    except SendError as exc:
        error = exc
    verdicts.delivered(message, error)


def _conclude(message: OutboundMessage, error: SendError | None, report: SendReport) -> None:
    """Record what became of one claimed message: sent, failed, or deferred with backoff."""
    Outcome = DeliveryTally.Outcome
    if error is None:
        _finish(message, outcome=Outcome.SENT, report=report)
    elif isinstance(error, PermanentSendError):
        # Counted in the day's sealed tally ("failed"), and logged nowhere: only a real message meets the
        # provider, so only a real one fails for good, and a line written as it fails told, of a sender run
        # that ended one message, that its person takes part (its tombstone's last pending version names its
        # weekly link; review 12). The provider's reason stays in the provider's own log (Twilio's console,
        # the mail server's bounces); `manage.py delivery_counts` shows how many failed per day and channel.
        _finish(message, outcome=Outcome.FAILED, report=report)
    else:
        _defer(message, str(error), report, outcome_at_the_end=Outcome.FAILED)


def _defer(message: OutboundMessage, error: str, report: SendReport, *, outcome_at_the_end: str) -> None:
    # The same lines and columns for a real message and for one that only stands in for it (_Verdicts):
    # a log or a dump must not tell them apart; only the day's count tells, in aggregate, how many ended so.
    if message.attempts >= settings.MESSAGE_MAX_ATTEMPTS:
        logger.warning(
            "%s message %s failed after %d attempts: %s",
            message.channel,
            _short_id(message),
            message.attempts,
            error,
        )
        _finish(message, outcome=outcome_at_the_end, report=report)
        return
    logger.info(
        "%s message %s deferred after attempt %d: %s",
        message.channel,
        _short_id(message),
        message.attempts,
        error,
    )
    _record(
        message,
        next_attempt_at=timezone.now() + retry_delay(attempts=message.attempts),
        last_error=error[:200],
    )
    report.deferred += 1


# The provider's verdict on a channel, as the last real message met it and the next runs read it: kept while
# a retry may still come (the longest backoff, twice), so a run that meets no real message on that channel
# still knows whether the provider defers. Holds a short classification ("smtp unreachable (...)"), no more.
_VERDICT_KEY = "outbox:provider-defers:{channel}"


def provider_verdict_keys() -> list[str]:
    """The cache keys that hold, per channel, the error its provider last deferred a real message with."""
    return [_VERDICT_KEY.format(channel=channel) for channel in OutboundMessage.Channel.values]


def _cached(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A cache call that never stops a sender run: with the cache away (Redis down), no verdict is known."""
    try:
        return call(*args, **kwargs)
    except Exception:  # whatever the cache backend raises: the run goes on without it
        logger.warning("outbox: the cache did not answer; the provider's last verdict is not known")
        return None


class _Verdicts:
    """What each channel's provider does to a real message now, so that a message with nobody to send to
    (a stand-in, or someone who stopped, pauses or is inactive) ends or waits exactly as a real one would.

    Otherwise, while a provider fails, only the messages of those who take part would stay pending (with
    attempts, an error and a reference to their weekly link) while every other row ended at its first
    claim: one dump of the outbox would list who takes part (issue 14, tests/test_attacks_review6.py).

    So a renderer answering None sends nothing and ends nothing at once: the row waits, claimed, for the next
    real message on its channel in this run and is settled by that message's outcome, in its transaction:
    ended (counted "cancelled") if the real one ended, sent or refused for its own recipient; deferred with
    the same error and its own backoff if the real one was deferred, and ended after as many attempts. Once
    this run has met a real message on the channel, a later one is settled at once by that verdict; one left
    at the end of the run by this run's verdict, or else by the one earlier runs left in the cache (none: it
    ends).
    """

    def __init__(self, report: SendReport) -> None:
        self._report = report
        self._seen: dict[str, str] = {}  # this run: channel -> "" (a real one ended) or the deferring error
        self._cleared: set[str] = set()
        self._waiting: dict[str, list[OutboundMessage]] = {}

    def stand_in(self, message: OutboundMessage) -> None:
        """A claimed message with nobody to send to: settle it now if this run knows its channel's verdict."""
        verdict = self._seen.get(message.channel)
        if verdict is None:
            self._waiting.setdefault(message.channel, []).append(message)
            return
        self._settle([message], verdict=verdict, real=None)

    def delivered(self, message: OutboundMessage, error: SendError | None) -> None:
        """A real message met its provider: record that, and settle the stand-ins waiting on its channel."""
        verdict = str(error)[:200] if isinstance(error, TransientSendError) else ""
        self._seen[message.channel] = verdict
        self._remember(message.channel, verdict)
        waiting = self._waiting.pop(message.channel, [])
        self._settle(waiting, verdict=verdict, real=(message, error))

    def settle_the_rest(self) -> None:
        """End of the run: settle who still waits by the latest verdict known for their channel."""
        for channel, waiting in self._waiting.items():
            verdict = self._seen.get(channel)
            if verdict is None:
                verdict = _cached(cache.get, _VERDICT_KEY.format(channel=channel)) or ""
            self._settle(waiting, verdict=verdict, real=None)
        self._waiting = {}

    def _remember(self, channel: str, verdict: str) -> None:
        key = _VERDICT_KEY.format(channel=channel)
        if verdict:
            _cached(cache.set, key, verdict, timeout=2 * settings.MESSAGE_RETRY_MAX_SECONDS)
            self._cleared.discard(channel)
        elif channel not in self._cleared:
            _cached(cache.delete, key)
            self._cleared.add(channel)

    def _settle(
        self,
        stand_ins: list[OutboundMessage],
        *,
        verdict: str,
        real: tuple[OutboundMessage, SendError | None] | None,
    ) -> None:
        # One transaction for the real message and the stand-ins it settles, written in random order: their
        # rows share one xmin (no savepoint within: _finish and _record are single statements), and neither
        # the order of the new row versions nor of the log lines tells which of them was the real one. Their
        # outcomes join the run's counts only once the transaction committed: a group rolled back ended
        # nothing, and its messages are counted when they do end.
        group = SendReport()
        steps: list[Callable[[], None]] = [
            partial(self._settle_one, message, verdict, group) for message in stand_ins
        ]
        if real is not None:
            steps.append(partial(_conclude, real[0], real[1], group))
        if not steps:
            return
        _jitter.shuffle(steps)
        with transaction.atomic(using=router.db_for_write(OutboundMessage)):
            for step in steps:
                step()
        self._report.add(group)

    @staticmethod
    def _settle_one(message: OutboundMessage, verdict: str, report: SendReport) -> None:
        Outcome = DeliveryTally.Outcome
        if not verdict:
            _finish(message, outcome=Outcome.CANCELLED, report=report)
            return
        # Counted "cancelled" when it ends: the day's "failed" stays the count of real messages that failed.
        _defer(message, verdict, report, outcome_at_the_end=Outcome.CANCELLED)


# What a final message leaves: its hashed key and its retention period (outbox_finished_is_a_tombstone).
def _tombstone(*, at: dt.datetime) -> dict[str, Any]:
    return {
        "status": OutboundMessage.Status.FINISHED,
        "finished_period": retention_period(at=at),
        "cancel_tag": "",
        "channel": "",
        "recipient": None,
        "subject": None,
        "body": None,
        "renderer": "",
        "reference": "",
        "attempts": 0,
        "next_attempt_at": None,
        "last_error": "",
    }


def _finish(message: OutboundMessage, *, outcome: str, report: SendReport) -> None:
    # Only while the claim is ours, as in _record; then it counts in this run's report, and only there: the
    # count is written when the run stops (send_due_messages), never in the transaction that ends a message.
    now = timezone.now()
    updated = (
        OutboundMessage.objects.using(router.db_for_write(OutboundMessage))
        .filter(pk=message.pk, status=OutboundMessage.Status.PENDING, attempts=message.attempts)
        .update(**_tombstone(at=now))
    )
    if not updated:
        logger.warning(
            "outbox message %s was cancelled or claimed again before its outcome was recorded",
            _short_id(message),
        )
        return
    report.ended[(timezone.localdate(now), message.channel, outcome)] += 1


def _write_counts(ended: Counter[tuple[dt.date, str, str]]) -> None:
    # One transaction for all of a run's counts, which ends no message. Never retried: a commit whose answer
    # was lost may have counted, and a count lost is better than one counted twice. Days in order, so two
    # runs stopping at once take the rows' locks alike; each day's row is rewritten whole, sealed anew.
    if not ended:
        return
    using = router.db_for_write(DeliveryTally)
    by_day: dict[dt.date, Counter[tuple[str, str]]] = {}
    for (day, channel, outcome), count in ended.items():
        by_day.setdefault(day, Counter())[(channel, outcome)] += count
    with transaction.atomic(using=using):
        for day, counts in sorted(by_day.items()):
            # The day's row, made by the first run to count on it (a run racing it inserts nothing), then
            # locked: one statement each, no savepoint.
            DeliveryTally.objects.using(using).bulk_create(
                [DeliveryTally(day=day, counts=DeliveryTally.text_of({}))], ignore_conflicts=True
            )
            tally = DeliveryTally.objects.using(using).select_for_update().get(day=day)
            total = Counter(tally.opened())
            total.update(counts)
            tally.counts = DeliveryTally.text_of(dict(total))
            tally.save(using=using, update_fields=["counts"])


def _record(message: OutboundMessage, **changes: Any) -> None:
    # Only while the claim is ours: a sender that outlived its lease must not overwrite a newer attempt.
    updated = (
        OutboundMessage.objects.using(router.db_for_write(OutboundMessage))
        .filter(pk=message.pk, status=OutboundMessage.Status.PENDING, attempts=message.attempts)
        .update(**changes)
    )
    if not updated:
        logger.warning(
            "outbox message %s was cancelled or claimed again before its outcome was recorded",
            _short_id(message),
        )


class Pacer:
    """Spaces one process's sends per channel to at most the configured rate (0: unpaced).

    Providers refuse bursts beyond their rate (Twilio answers 429): pacing keeps a weekly round of many
    thousands of messages within it instead of turning it into retries. The rate is per sending process;
    with several workers, configure the provider's rate divided by the number of workers.
    """

    def __init__(
        self,
        rates: dict[str, float] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rates is None:
            rates = {
                OutboundMessage.Channel.EMAIL: settings.MESSAGE_RATE_EMAIL_PER_SECOND,
                OutboundMessage.Channel.SMS: settings.MESSAGE_RATE_SMS_PER_SECOND,
            }
        self._intervals = {channel: 1.0 / rate for channel, rate in rates.items() if rate > 0}
        self._clock = clock
        self._sleep = sleep
        self._last: dict[str, float] = {}

    def wait_for(self, channel: str) -> None:
        """Return when a message may go out on ``channel``; sleeps only as long as its rate needs."""
        interval = self._intervals.get(channel)
        if interval is None:
            return
        last = self._last.get(channel)
        if last is not None:
            remaining = last + interval - self._clock()
            if remaining > 0:
                self._sleep(remaining)
        self._last[channel] = self._clock()


class _Senders:
    """The e-mail connection and SMS gateway of one run, each opened on first use and closed at the end."""

    def __init__(self) -> None:
        self._mail = EmailGateway()
        self._sms: SmsGateway | None = None
        self._pacer = Pacer()

    def __enter__(self) -> _Senders:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._mail.close()

    def deliver(self, message: OutboundMessage, *, to: str, subject: str, body: str) -> None:
        """Hand one message to its provider; what the provider calls it (SID, Message-ID) is not kept."""
        self._pacer.wait_for(message.channel)
        if message.channel == OutboundMessage.Channel.EMAIL:
            self._mail.send(to=to, subject=subject, body=body)
            return
        if self._sms is None:
            self._sms = sms_gateway()
        self._sms.send(to=to, body=body)


# --- Cancelling (added for participants.account: stopping and pausing) -------------------------------------


_SUBJECT_PART = re.compile(r"(?:[A-Za-z0-9_-]+)?:([^:\s]{16,}):")


def cancel_pending(*, keys_containing: list[str], only_with_content: bool = False) -> int:
    """End, unsent, the pending messages about the given subjects; returns how many.

    ``only_with_content``: only those that hold a recipient and text (queued with them), not the deferred
    ones, which hold a renderer's reference and end at their claim when the renderer finds nobody (a stop
    in the request batch: ending its person's deferred messages there would name them, review 8).

    Each part names a key's subject as the keys spell it: ":<id>:" (any kind) or "<kind>:<id>:", the id at
    least 16 characters (a uuid), never a bare kind such as "invite:". Keys are stored only hashed, so a
    message is found by the keyed hash of its subject (its cancel tag), not by text.

    Runs in the caller's transaction. The messages become tombstones, so queueing one of their keys again
    sends nothing either; they are not counted in DeliveryTally (an act of the participant, not a delivery).
    A message a sender has already claimed may still go out: its outcome is then recorded on no row.
    """
    tags = set()
    for part in keys_containing:
        match = _SUBJECT_PART.fullmatch(part)
        if match is None:
            raise ValueError("a key part to cancel by must name an id, not only a kind")
        tags.add(keyed_hash(KEY_HASH_PURPOSE, CANCEL_TAG_LABEL, match.group(1)))
    if not tags:
        return 0
    using = router.db_for_write(OutboundMessage)
    pending = OutboundMessage.objects.using(using).filter(
        cancel_tag__in=tags, status=OutboundMessage.Status.PENDING
    )
    if only_with_content:
        pending = pending.filter(renderer="")
    return pending.update(**_tombstone(at=timezone.now()))


# --- Queueing many at once (added for scores.rounds: the weekly round) -------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One message for ``queue_many``: the same fields queue_email/queue_sms take, plus its channel."""

    key: str
    channel: str
    to: str
    body: str
    subject: str | None = None


@dataclass(frozen=True)
class Deferred:
    """One message for ``queue_many``, rendered at send time by the renderer registered as ``renderer``.

    ``reference`` is an opaque id the renderer understands (a weekly link's UUID), never personal data.
    """

    key: str
    channel: str
    renderer: str
    reference: str


@dataclass(frozen=True)
class RenderedMessage:
    """What a renderer makes of a deferred message at send time; ``subject`` is None for an SMS."""

    to: str
    subject: str | None
    body: str


# fn(reference, channel) -> the message, or None when there is nobody to send it to any more.
Renderer = Callable[[str, str], RenderedMessage | None]

_renderers: dict[str, Renderer] = {}
RENDERER_MAX_LENGTH = 40
REFERENCE_MAX_LENGTH = 64


def register_renderer(name: str, fn: Renderer) -> None:
    """Make ``name`` render deferred messages with ``fn``; registering the same function again is harmless."""
    if not name or len(name) > RENDERER_MAX_LENGTH or not name.isascii() or not name.isprintable():
        raise ValueError(f"a renderer name is 1-{RENDERER_MAX_LENGTH} printable ASCII characters")
    existing = _renderers.get(name)
    if existing is not None and existing is not fn:
        raise ValueError(f"renderer {name!r} is already registered to another function")
    _renderers[name] = fn


def _render(message: OutboundMessage) -> RenderedMessage | None:
    renderer = _renderers.get(message.renderer)
    if renderer is None:
        # A deployment without the app that queued it: retried, and failed once the attempts are used.
        raise TransientSendError(f"no renderer {message.renderer!r}")
    try:
        rendered = renderer(message.reference, message.channel)
    except Exception as exc:
        # One broken message must not stop the run; the exception's text may quote content, its class not.
        raise TransientSendError(f"renderer {message.renderer} raised {type(exc).__name__}") from None
    if rendered is None:
        return None
    if not rendered.to or not rendered.body:
        raise PermanentSendError(f"renderer {message.renderer} gave no recipient or body")
    if message.channel == OutboundMessage.Channel.SMS and rendered.subject is not None:
        raise PermanentSendError(f"renderer {message.renderer} gave an SMS a subject")
    if rendered.subject is not None and ("\n" in rendered.subject or "\r" in rendered.subject):
        raise PermanentSendError(f"renderer {message.renderer} gave a subject of more than one line")
    return rendered


def queue_many(messages: list[Outgoing | Deferred]) -> None:
    """Queue many messages in the caller's transaction; keys already queued are left alone.

    The same insert-if-absent semantics as queue_email/queue_sms (ON CONFLICT DO NOTHING on the unique key),
    without telling which were new. Each ``Outgoing`` row's recipient and body are sealed to that row, as in
    save(); ``Deferred`` rows hold no content and go in with one raw INSERT, no ORM and no crypto.
    """
    if not messages:
        return
    sealed = [message for message in messages if isinstance(message, Outgoing)]
    deferred = [message for message in messages if isinstance(message, Deferred)]
    using = router.db_for_write(OutboundMessage)
    if sealed:
        _queue_sealed(sealed, using=using)
    if deferred:
        _queue_deferred(deferred, using=using)
    if not _hurry_registered(using):
        transaction.on_commit(_hurry_sending, using=using)


_CHANNELS = frozenset(OutboundMessage.Channel.values)


def _queue_deferred(messages: list[Deferred], *, using: str) -> None:
    key_hashes: list[str] = []
    tags: list[str] = []
    for message in messages:
        key_hashes.append(outbox_key_hash(message.key))
        tags.append(_cancel_tag(_subject_of(message.key)))
        if message.channel not in _CHANNELS:
            raise ValueError("unknown channel")
        if message.renderer not in _renderers:
            raise ValueError(f"no renderer {message.renderer!r} is registered")
        reference = message.reference
        if (
            not reference
            or len(reference) > REFERENCE_MAX_LENGTH
            or not reference.isprintable()
            or "@" in reference
        ):
            raise ValueError(f"a reference is an opaque id of 1-{REFERENCE_MAX_LENGTH} printable characters")
    now = timezone.now()
    if connections[using].vendor != "postgresql":
        # The embedded default (SQLite): the ORM's insert-if-absent, one statement per batch.
        OutboundMessage.objects.using(using).bulk_create(
            [
                OutboundMessage(
                    key_hash=key_hash,
                    cancel_tag=tag,
                    channel=message.channel,
                    renderer=message.renderer,
                    reference=message.reference,
                    next_attempt_at=now,
                )
                for message, key_hash, tag in zip(messages, key_hashes, tags, strict=True)
            ],
            ignore_conflicts=True,
        )
        return
    # One statement for the whole batch: each column travels as one newline-separated text (hashes,
    # channels, renderer names and references are printable, so never hold one), the rows are built server
    # side, and the unique hashed key keeps the first row queued under it, as in queue_email/queue_sms.
    sql = (
        "INSERT INTO preventicons_outboundmessage (id, key_hash, cancel_tag, channel, renderer, reference, "
        "recipient, subject, body, status, attempts, next_attempt_at, last_error, finished_period) "
        "SELECT gen_random_uuid(), key_hash, cancel_tag, channel, renderer, reference, "
        "NULL, NULL, NULL, %s, 0, %s, '', NULL "
        "FROM unnest(string_to_array(%s, E'\\n'), string_to_array(%s, E'\\n'), "
        "string_to_array(%s, E'\\n'), string_to_array(%s, E'\\n'), string_to_array(%s, E'\\n')) "
        "AS m(key_hash, cancel_tag, channel, renderer, reference) "
        "ON CONFLICT (key_hash) DO NOTHING"
    )
    with connections[using].cursor() as cursor:
        cursor.execute(
            sql,
            [
                OutboundMessage.Status.PENDING.value,
                now,
                "\n".join(key_hashes),
                "\n".join(tags),
                "\n".join(message.channel for message in messages),
                "\n".join(message.renderer for message in messages),
                "\n".join(message.reference for message in messages),
            ],
        )


def _queue_sealed(messages: list[Outgoing], *, using: str) -> None:
    now = timezone.now()
    rows = []
    for message in messages:
        key_hash = outbox_key_hash(message.key)
        if message.channel not in OutboundMessage.Channel.values:
            raise ValueError("unknown channel")
        if not message.to or not message.body:
            raise ValueError("a message needs a recipient (text) and a body")
        if message.channel == OutboundMessage.Channel.SMS and message.subject is not None:
            raise ValueError("an SMS has no subject")
        if message.subject is not None and ("\n" in message.subject or "\r" in message.subject):
            raise ValueError("an e-mail subject is one line")
        rows.append(
            OutboundMessage(
                key_hash=key_hash,
                cancel_tag=_cancel_tag(_subject_of(message.key)),
                channel=message.channel,
                recipient=message.to,
                subject=message.subject,
                body=message.body,
                next_attempt_at=now,
            )
        )
    # bulk_create calls each field's pre_save, which seals recipient, subject and body to the row's own pk.
    OutboundMessage.objects.using(using).bulk_create(rows, ignore_conflicts=True)
