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
