"""Identity store: organisations, agreements, staff accounts and participants (contact data sealed)."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from preventicons.fields import EncryptedTextField, sealed_only


class Organisation(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    sector = models.CharField(
        _("sector"), max_length=100, help_text=_("The sector (branche) it is compared with.")
    )
    arbo_provider = models.CharField(_("ARBO provider"), max_length=200, blank=True)
    contract_start = models.DateField(_("contract start"), null=True, blank=True)
    contract_end = models.DateField(_("contract end"), null=True, blank=True)
    # When the weekly round goes out, in Europe/Amsterdam time (scores/rounds.py): 0 is Monday.
    round_weekday = models.PositiveSmallIntegerField(_("weekday of the weekly round"), default=0)
    round_hour = models.PositiveSmallIntegerField(_("hour of the weekly round"), default=8)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(round_weekday__lte=6, round_hour__lte=23), name="organisation_round_moment_valid"
            ),
            models.CheckConstraint(
                condition=Q(contract_end__isnull=True)
                | Q(contract_start__isnull=True)
                | Q(contract_end__gte=models.F("contract_start")),
                name="organisation_contract_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Department(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="departments")
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        ordering = ["organisation", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="department_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.organisation} / {self.name}"


class ProcessingAgreement(models.Model):
    """A signed processing agreement (verwerkersovereenkomst). No processing starts before one is recorded."""

    class Party(models.TextChoices):
        ORGANISATION = "organisation", _("organisation")
        CASEMANAGER = "casemanager", _("casemanager")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    party = models.CharField(max_length=16, choices=Party.choices)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="agreements"
    )
    casemanager = models.ForeignKey(
        "StaffUser", on_delete=models.PROTECT, null=True, blank=True, related_name="agreements"
    )
    signed_on = models.DateField(_("signed on"))
    signer = EncryptedTextField()
    document_sha256 = models.CharField(_("SHA-256 of the signed document"), max_length=64)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(party="organisation", organisation__isnull=False, casemanager__isnull=True))
                | Q(party="casemanager", casemanager__isnull=False, organisation__isnull=True),
                name="agreement_party_matches",
            ),
            models.CheckConstraint(
                condition=Q(document_sha256__regex=r"^[0-9a-f]{64}$"), name="agreement_sha256_hex"
            ),
            *sealed_only("signer"),
        ]

    def __str__(self) -> str:
        return f"agreement {self.party} signed {self.signed_on}"


class StaffUser(AbstractUser):
    """A staff login: casemanager, employer (HR), auditor or platform admin; roles are groups.

    Employer staff belong to one organisation and see only its aggregates. Casemanagers and auditors
    have no organisation: they are scoped by assigned dossiers and attestations.
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="staff"
    )

    class Meta:
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")


class Participant(models.Model):
    """An employee on the address list. Contact data and the pseudonym link exist only sealed.

    The random primary key is known before the first save, so each ciphertext is bound to its row.
    """

    class Status(models.TextChoices):
        INVITED = "invited", _("invited")
        ACTIVE = "active", _("active")
        DECLINED = "declined", _("declined")
        STOPPED = "stopped", _("stopped")
        # No response for settings.INACTIVE_AFTER_WEEKS closed weeks: no weekly links, dossier unavailable,
        # until they come back (participants.participation.reactivate_participant).
        INACTIVE = "inactive", _("inactive")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="participants")
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="participants"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVITED)
    # False once a new full address list no longer names them: no more messages, anonymised on schedule.
    is_listed = models.BooleanField(default=True)
    unlisted_on = models.DateField(null=True, blank=True)
    # Restriction / objection: the participant paused all messages.
    messages_paused = models.BooleanField(default=False)
    prefers_email = models.BooleanField(default=True)
    prefers_sms = models.BooleanField(default=True)
    name = EncryptedTextField(null=True)
    email = EncryptedTextField(null=True)
    mobile = EncryptedTextField(null=True)
    # Keyed blind indexes (HMAC), so a re-imported list finds the same person without any plaintext.
    # NULL, not "": a stopped participant has no index, and NULLs never collide in the unique constraints.
    email_index = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    mobile_index = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The link to the pseudonymous scores, sealed under its own purpose key. Destroyed when they stop.
    pseudonym = EncryptedTextField(purpose="pseudonym_link", null=True)
    # Participation (the last week answered, closed weeks without an answer), sealed JSON of a fixed width.
    # Written only by the week-close batch (participants/participation.py), which rewrites it for every
    # active participant at every close: in clear, or rewritten only for those who answered, it would tell
    # a dump who answered which week. NULL until their first closed week.
    participation = EncryptedTextField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "email_index"], name="participant_unique_email"),
            models.UniqueConstraint(
                fields=["organisation", "mobile_index"], name="participant_unique_mobile"
            ),
            *sealed_only("name", "email", "mobile", "pseudonym", "participation"),
        ]

    def __str__(self) -> str:
        # Never the name: this string ends up in admin pages, logs and error reports.
        return f"participant {str(self.pk)[:8]}"


class Invitation(models.Model):
    """An enrolment link. Only the token's hash is stored; the link expires and is single-use."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invitation {str(self.pk)[:8]}"


class VerificationCode(models.Model):
    """A 6-digit code sent by e-mail or SMS: stored as a keyed hash, 10 minutes, single use, 5 tries."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("e-mail")
        SMS = "sms", _("SMS")

    class Purpose(models.TextChoices):
        ENROL = "enrol", _("enrolment")
        CHANGE = "change", _("change of contact data")
        STOP = "stop", _("stopping")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="codes")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    code_hash = models.CharField(max_length=64)
    # Where the code went when it verifies a new address or number (sealed): it replaces the old one
    # only once proven.
    target = EncryptedTextField(null=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["participant", "created_at"], name="code_participant_created")]
        constraints = [
            models.CheckConstraint(condition=Q(failed_attempts__lte=5), name="code_at_most_five_failures"),
            *sealed_only("target"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} code {str(self.pk)[:8]}"


class ConsentRecord(models.Model):
    """Which consent text version a participant agreed to or withdrew from, and when."""

    class Kind(models.TextChoices):
        GIVEN = "given", _("given")
        CONTACT = "contact", _("consent to be contacted")
        WITHDRAWN = "withdrawn", _("withdrawn")
        # Restriction and objection (GDPR art. 18 and 21): the participant paused, or resumed, all messages.
        PAUSED = "paused", _("messages paused")
        RESUMED = "resumed", _("messages resumed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text_version = models.CharField(max_length=32)
    recorded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"consent {self.kind} ({self.text_version})"


class AccountLink(models.Model):
    """A one-time link to the participant's account, sent by e-mail. Only the token's hash is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="account_links")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"account link {str(self.pk)[:8]}"
