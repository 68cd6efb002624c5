"""Identity store: organisations, agreements, staff accounts and participants (contact data sealed)."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from preventicons.fields import EncryptedTextField


class Organisation(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    sector = models.CharField(_("sector"), max_length=100, help_text=_("The branche it is compared with."))
    arbo_provider = models.CharField(_("ARBO provider"), max_length=200, blank=True)
    contract_start = models.DateField(_("contract start"), null=True, blank=True)
    contract_end = models.DateField(_("contract end"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(contract_end__isnull=True)
                | Q(contract_start__isnull=True)
                | Q(contract_end__gte=models.F("contract_start")),
                name="organisation_contract_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Department(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="departments")
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        ordering = ["organisation", "name"]
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="department_unique_name")]

    def __str__(self) -> str:
        return f"{self.organisation} / {self.name}"


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

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="participants")
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="participants"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVITED)
    name = EncryptedTextField(null=True)
    email = EncryptedTextField(null=True)
    mobile = EncryptedTextField(null=True)
    # Keyed blind indexes (HMAC), so a re-imported list finds the same person without any plaintext.
    email_index = models.CharField(max_length=64, null=True, blank=True)
    mobile_index = models.CharField(max_length=64, null=True, blank=True)
    # The link to the pseudonymous scores, sealed under its own purpose key. Destroyed when they stop.
    pseudonym = EncryptedTextField(purpose="pseudonym_link", null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "email_index"], name="participant_unique_email"),
            models.UniqueConstraint(fields=["organisation", "mobile_index"], name="participant_unique_mobile"),
        ]

    def __str__(self) -> str:
        # Never the name: this string ends up in admin pages, logs and error reports.
        return f"participant {str(self.pk)[:8]}"
