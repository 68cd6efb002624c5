"""Pseudonymous scores: a week, a number and a pseudonym, nothing that leads back to a person."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from participants.models import Department, Organisation


class Score(models.Model):
    """One smiley for one week.

    Random primary key and no timestamp finer than the week: an ordered key or a creation time would let a
    DBA line score rows up with invitation or session rows written at the same moment.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    week = models.DateField(help_text="The Monday of the ISO week the score belongs to.")
    # A number only: which emotion a number stands for lives in code, not in the database.
    value = models.PositiveSmallIntegerField()
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    # Kept while the participant is active; stripped when they stop.
    department = models.ForeignKey(Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The pseudonym P in clear; the participant row carries P only sealed. Cleared when they stop.
    pseudonym = models.CharField(max_length=32, null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(value__gte=1, value__lte=5), name="score_value_1_to_5"),
            models.UniqueConstraint(fields=["pseudonym", "week"], name="score_one_per_pseudonym_per_week"),
        ]
        indexes = [models.Index(fields=["organisation", "week"], name="score_org_week")]
