"""Casefiles (database 3) and anonymous progress notes (database 2).

A dossier knows its participant only as a pseudonym sealed under the casefiles key, plus a keyed index
to find it; a note knows its dossier only as HMAC(notes key, dossier number). Neither store names anyone.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from preventicons.fields import EncryptedTextField, sealed_only


class Dossier(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=16, unique=True)
    pseudonym = EncryptedTextField(purpose="casefiles_link", null=True)
    pseudonym_index = models.CharField(max_length=64, null=True, blank=True, unique=True)
    is_open = models.BooleanField(default=True)
    # False while the participant is inactive: casemanagers see individual scores of active participants only.
    is_available = models.BooleanField(default=True)
    # The day only: dossiers are opened by the help-request batch (scores.wellbeing), so neither this date,
    # the random id nor the row order, which within a batch is shuffled, follows the moment someone asked.
    opened_on = models.DateField()
    # How the participant asked to be contacted (scores.wellbeing.CONTACT_CHANNELS), sealed like P: which
    # contact someone chose is theirs to tell the casemanager, not a column to count in a dump.
    contact_channel = EncryptedTextField(null=True)

    class Meta:
        verbose_name = _("dossier")
        verbose_name_plural = _("dossiers")
        constraints = [*sealed_only("pseudonym", "contact_channel")]

    def __str__(self) -> str:
        return self.number


class ProgressNote(models.Model):
    """Lives in the notes database: no dossier number, no name, only an opaque subject reference."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=32)
    written_on = models.DateField()
    text = EncryptedTextField()

    class Meta:
        verbose_name = _("progress note")
        verbose_name_plural = _("progress notes")
        constraints = [*sealed_only("text")]

    def __str__(self) -> str:
        return f"{self.kind} note of {self.written_on}"


class AccessLogEntry(models.Model):
    """One look at, or act on, a dossier (NEN 7513): who, which dossier, what, when, from where.

    Append-only: written by casefiles.accesslog.record only; on PostgreSQL a trigger refuses UPDATE,
    DELETE and TRUNCATE (migration 0006), and ``chain`` links every row to the one before it under a key
    the database does not hold, so an altered or removed row shows (casefiles.accesslog.verify_chain).

    The staff member is kept as id and as username at the time: the log must still say who looked after
    an account is renamed or removed, and it cannot point into the identity store (no relation across
    stores). A staff username and a staff workstation's address are staff data about staff work, which
    NEN 7513 requires the log to hold; no row names a participant (only the dossier number).
    """

    class Action(models.TextChoices):
        VIEW_DOSSIER = "view_dossier", _("viewed the dossier")
        VIEW_SCORES = "view_scores", _("viewed the scores")
        REVEAL_CONTACT = "reveal_contact", _("revealed the contact details")
        ADD_NOTE = "add_note", _("added a note")
        VIEW_NOTES = "view_notes", _("viewed the notes")
        REASSIGN = "reassign", _("reassigned the dossier")
        DEPUTY_VIEW = "deputy_view", _("viewed as deputy")
        SEARCH = "search", _("searched for a dossier")
        CLOSE = "close", _("closed the dossier")

    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    at = models.DateTimeField(_("when"), editable=False)
    staff_user_id = models.PositiveBigIntegerField(_("staff member id"), editable=False)
    staff_username = models.CharField(_("staff member"), max_length=150, editable=False)
    # Blank for a search that found nothing: the string searched for is not kept.
    dossier_number = models.CharField(_("dossier"), max_length=16, blank=True, editable=False)
    action = models.CharField(_("action"), max_length=32, choices=Action.choices, editable=False)
    # The client address by the proxy rules (preventicons.clients); null for acts without a request.
    client_address = models.GenericIPAddressField(_("from"), null=True, blank=True, editable=False)
    # The code's own words (e.g. "to staff member 12"), never text a person typed.
    detail = models.CharField(_("detail"), max_length=200, blank=True, editable=False)
    chain = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"access log entry {self.sequence}"
