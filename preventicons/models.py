"""Platform-level models (identity database)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from preventicons.fields import EncryptedTextField, sealed_only


class OutboundMessage(models.Model):
    """One e-mail or SMS in the outbox: queued once per key, sent at least once, its content wiped when done.

    The row outlives its content on purpose: the unique ``key`` is what makes queueing idempotent, so a
    retried job that queues the same message again finds the row and sends nothing twice.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("e-mail")
        SMS = "sms", _("SMS")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        # A deferred message whose renderer found nobody to send to any more (stopped, paused, no address).
        CANCELLED = "cancelled", _("cancelled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # An opaque idempotency key such as "enrol:<participant uuid>:email:1"; never an address or a name.
    key = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # Sealed while pending; set to None once sent or failed (the body carries link tokens).
    recipient = EncryptedTextField(null=True)
    subject = EncryptedTextField(null=True)
    body = EncryptedTextField(null=True)
    # A deferred message holds no content at all: the registered ``renderer`` (e.g. "scores.weekly") makes
    # recipient, subject and body at send time from ``reference``, an opaque id such as a weekly link's UUID.
    renderer = models.CharField(max_length=40, blank=True, default="")
    reference = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When a pending row is next due; while a sender holds it, the end of that sender's lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=200, blank=True, default="")
    # A short classification such as "twilio 400 code 21211": never the address, the number or the body.
    last_error = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="outbox_pending_due",
            ),
            models.Index(fields=["created_at"], name="outbox_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=["email", "sms"])
                & Q(status__in=["pending", "sent", "failed", "cancelled"]),
                name="outbox_known_channel_and_status",
            ),
            models.CheckConstraint(
                condition=~Q(status="pending") | Q(next_attempt_at__isnull=False),
                name="outbox_pending_has_due_time",
            ),
            # What has been sent, or given up on, keeps no address and no body (with its link tokens).
            models.CheckConstraint(
                condition=Q(status="pending")
                | Q(recipient__isnull=True, subject__isnull=True, body__isnull=True),
                name="outbox_finished_holds_no_content",
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
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="outbox_sent_has_sent_at",
            ),
            models.CheckConstraint(
                condition=~Q(channel="sms") | Q(subject__isnull=True),
                name="outbox_sms_has_no_subject",
            ),
            *sealed_only("recipient", "subject", "body"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} message {self.pk} ({self.status})"


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

    def __str__(self) -> str:
        return f"code use of phone device {self.device_id}"
