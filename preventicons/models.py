"""Platform-level models (identity database)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from preventicons.fields import EncryptedTextField, sealed_only


class OutboundMessage(models.Model):
    """One e-mail or SMS in the outbox: queued once per key, sent at least once, gone once final.

    A pending row holds what it takes to send (sealed) and to retry. Once the message is final (sent, failed
    or cancelled) the row becomes a tombstone: the keyed hash of its key and the retention period it ended
    in, nothing else. The tombstone is what keeps queueing idempotent: a retried job that queues the same key
    again collides with it on the unique index and sends nothing.

    Nothing here names a person: the key is stored only as a keyed hash (preventicons.messaging computes it),
    there is no participant id, no provider id and no Message-ID. How deliveries went is counted per day and
    channel in DeliveryTally (sealed), never kept per message.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("e-mail")
        SMS = "sms", _("SMS")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        # Sent, failed or cancelled, deliberately not told apart: a tombstone says only that its key is used.
        FINISHED = "finished", _("finished")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # HMAC of the readable key ("enrol:<participant uuid>:email:1"): whoever holds a dump but not the key file
    # cannot tell whose message a row was, nor find a given person's rows. Unique through a constraint
    # (outbox_key_once) rather than unique=True, which on PostgreSQL adds a second index for LIKE queries: a
    # key hash is only ever looked up whole, and a weekly round writes 100,000 rows through every index.
    key_hash = models.CharField(max_length=64)
    # Pending only: HMAC of the key's subject (the id after its kind), so cancel_pending can find a person's
    # queued messages without the row naming them. Gone once final.
    cancel_tag = models.CharField(max_length=64, blank=True, default="")
    channel = models.CharField(max_length=8, choices=Channel.choices, blank=True, default="")
    # Sealed while pending; None once final (the body carries link tokens).
    recipient = EncryptedTextField(null=True)
    subject = EncryptedTextField(null=True)
    body = EncryptedTextField(null=True)
    # A deferred message holds no content at all: the registered ``renderer`` (e.g. "scores.weekly") makes
    # recipient, subject and body at send time from ``reference``, an opaque id such as a weekly link's UUID.
    # Both go when the message is final: the reference would name the link, and the link its participant.
    renderer = models.CharField(max_length=40, blank=True, default="")
    reference = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When a pending row is next due; while a sender holds it, the end of that sender's lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A short classification such as "twilio 500 code 20500" while a retry waits: never an address or a body.
    last_error = models.CharField(max_length=200, blank=True, default="")
    # Finished only: the MESSAGE_RETENTION_DAYS-long period (counted from 1970-01-01) the message ended in,
    # so tombstones can be pruned without keeping a time that would date each message.
    finished_period = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("outbound message")
        verbose_name_plural = _("outbound messages")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="outbox_pending_due",
            ),
            models.Index(fields=["cancel_tag"], condition=Q(status="pending"), name="outbox_pending_tag"),
            # Tombstones only (prune_finished_messages): a pending row, all a round writes, is not in it.
            models.Index(
                fields=["finished_period"], condition=Q(status="finished"), name="outbox_finished_period"
            ),
        ]
        constraints = [
            # What keeps queueing idempotent: one row, pending or tombstone, per hashed key.
            models.UniqueConstraint(fields=["key_hash"], name="outbox_key_once"),
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(channel__in=["email", "sms"]))
                | (Q(status="finished") & Q(channel="")),
                name="outbox_known_channel_and_status",
            ),
            models.CheckConstraint(
                condition=~Q(status="pending")
                | Q(next_attempt_at__isnull=False, finished_period__isnull=True),
                name="outbox_pending_has_due_time",
            ),
            # A finished message is a tombstone: its hashed key and its period, nothing that names or dates.
            models.CheckConstraint(
                condition=Q(status="pending")
                | Q(
                    recipient__isnull=True,
                    subject__isnull=True,
                    body__isnull=True,
                    cancel_tag="",
                    next_attempt_at__isnull=True,
                    finished_period__isnull=False,
                    renderer="",
                    reference="",
                    attempts=0,
                    last_error="",
                ),
                name="outbox_finished_is_a_tombstone",
            ),
            # A deferred message never holds content, not even sealed; it always names what renders it.
            models.CheckConstraint(
                condition=Q(renderer="", reference="")
                | (
                    ~Q(renderer="")
                    & ~Q(reference="")
                    & Q(recipient__isnull=True, subject__isnull=True, body__isnull=True)
                ),
                name="outbox_deferred_holds_no_content",
            ),
            models.CheckConstraint(
                condition=~Q(channel="sms") | Q(subject__isnull=True),
                name="outbox_sms_has_no_subject",
            ),
            *sealed_only("recipient", "subject", "body"),
        ]

    def __str__(self) -> str:
        return f"outbox message {self.pk} ({self.status})"


class DeliveryTally(models.Model):
    """How many messages ended in each outcome, per channel, for one day: what is left to diagnose delivery.

    One row per local day, its counts sealed to the row (``counts``: every channel and outcome, each as ten
    digits, so every day's ciphertext has one length whatever the numbers). Counted by the sender run that
    ended the messages, once, when it stops, in a transaction of its own (preventicons.messaging
    send_due_messages), which rewrites the day's row whatever the run ended. In clear, one row per day,
    channel and outcome told which outcome went up in which run: a run that ended a single weekly message (a
    retry after an outage, say) named its outcome, and that message's last pending version names its weekly
    link, whose row names the participant: "sent" is someone who takes part, "cancelled" a stand-in (issue
    14, tests/test_attacks_counts.py). The counts add up to the finished messages, short only of those ended
    by a run that died (or failed to write its counts) before it stopped, never beyond. Read them with
    ``manage.py delivery_counts``.
    """

    class Outcome(models.TextChoices):
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        # A deferred message whose renderer found nobody to send to any more (stopped, paused, no address).
        CANCELLED = "cancelled", _("cancelled")

    # Every (channel, outcome) the sealed counts hold, in their order there.
    CELLS = tuple(
        (channel, outcome) for channel in ("email", "sms") for outcome in ("sent", "failed", "cancelled")
    )
    DIGITS = 10

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The local (TIME_ZONE) date the messages became final.
    day = models.DateField(unique=True)
    counts = EncryptedTextField()

    class Meta:
        verbose_name = _("delivery tally")
        verbose_name_plural = _("delivery tallies")
        constraints = [*sealed_only("counts")]

    def __str__(self) -> str:
        return f"delivery tally of {self.day}"

    @classmethod
    def text_of(cls, counts: dict[tuple[str, str], int]) -> str:
        """``counts`` as the sealed text holds them: one fixed-width number per cell, in CELLS' order."""
        unknown = set(counts) - set(cls.CELLS)
        if unknown:
            raise ValueError(f"no such channel and outcome: {sorted(unknown)}")
        return ",".join(f"{counts.get(cell, 0):0{cls.DIGITS}d}" for cell in cls.CELLS)

    def opened(self) -> dict[tuple[str, str], int]:
        """Every cell's count (zeros included), from the sealed text."""
        numbers = self.counts.split(",") if self.counts else ["0"] * len(self.CELLS)
        return {cell: int(number) for cell, number in zip(self.CELLS, numbers, strict=True)}


# --- Staff second factors (preventicons/staffauth.py) ----------------------------------------------


class StaffLoginGuard(models.Model):
    """One staff user's wrong second-factor codes, counted in the database, and the lock they lead to.

    django-otp counts failures per device in Python (a read-modify-write: parallel wrong codes are lost
    updates) and only ever delays. Here every wrong code is one atomic increment, and the account locks after
    STAFF_SECOND_FACTOR_MAX_FAILURES until the lock times out or a platform admin releases it.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="login_guard"
    )
    failures = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("staff login guard")
        verbose_name_plural = _("staff login guards")

    def __str__(self) -> str:
        return f"login guard of staff user {self.user_id}"


class PhoneCodeUse(models.Model):
    """The last time step whose text-message code was accepted for one phone device.

    two-factor's PhoneDevice derives its codes from a TOTP key and accepts any of the last six steps
    (three minutes) without remembering a used one: without this row one code logs in again and again.
    """

    device = models.OneToOneField(
        "phonenumber.PhoneDevice", on_delete=models.CASCADE, primary_key=True, related_name="code_use"
    )
    last_t = models.BigIntegerField(default=-1)

    class Meta:
        verbose_name = _("used phone code")
        verbose_name_plural = _("used phone codes")

    def __str__(self) -> str:
        return f"code use of phone device {self.device_id}"


# --- Anchors of append-only logs kept in another store ----------------------------------------------


class LogAnchor(models.Model):
    """A copy of a signed head of an append-only log that lives in another store (the notary's ledger, in
    the casefiles store): its size, root, time, key and signature, nothing else.

    Kept here, in the identity store, so that whoever can rewrite one store cannot make a log shorter
    unseen: removing the last entries of the ledger together with its signed heads leaves these copies
    behind, and the ledger's verification checks that it still holds every head copied here
    (notary.ledger). The signature is the notary's own, so a copy cannot be forged here either. Names
    nobody; append-only on PostgreSQL (migration 0008).
    """

    log = models.CharField(max_length=32, editable=False)
    tree_size = models.PositiveBigIntegerField(editable=False)
    root_hash = models.CharField(max_length=64, editable=False)
    signed_at = models.DateTimeField(editable=False)
    key_fingerprint = models.CharField(max_length=64, editable=False)
    signature = models.CharField(max_length=128, editable=False)

    class Meta:
        verbose_name = _("log anchor")
        verbose_name_plural = _("log anchors")
        constraints = [models.UniqueConstraint(fields=["log", "tree_size"], name="one_anchor_per_log_size")]

    def __str__(self) -> str:
        return f"{self.log} anchored at size {self.tree_size}"
