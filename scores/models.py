"""Pseudonymous scores: a week, a number and a pseudonym, nothing that leads back to a person."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from participants.models import Department, Organisation, Participant


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
    department = models.ForeignKey(
        Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The pseudonym P in clear; the participant row carries P only sealed. Cleared when they stop.
    pseudonym = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001  (NULL: many, unique per week)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(value__gte=1, value__lte=5), name="score_value_1_to_5"),
            models.UniqueConstraint(fields=["pseudonym", "week"], name="score_one_per_pseudonym_per_week"),
        ]
        indexes = [models.Index(fields=["organisation", "week"], name="score_org_week")]

    def __str__(self) -> str:
        return f"score for week {self.week}"


class WeeklyRound(models.Model):
    """That an organisation's weekly round for a week was started and finished: the hourly beat's memory."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    week = models.DateField(help_text="The Monday of the ISO week.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "week"], name="weekly_round_once_per_week"),
        ]

    def __str__(self) -> str:
        return f"round {self.week} of organisation {self.organisation_id}"


class WeeklyLink(models.Model):
    """The link in one participant's weekly message. Only the token's hash is stored.

    Nothing is ever written on it when a score is submitted (no used_at): a mark here at the moment a score
    row appears would tie the two together. Whether the week is already answered is decided by the score
    table's unique constraint, so the link keeps working, harmlessly, for the whole week.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    week = models.DateField(help_text="The Monday of the ISO week the link is for.")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "week"], name="weekly_link_once_per_week"),
        ]

    def __str__(self) -> str:
        # Never the token hash or the participant: this string ends up in admin pages and logs.
        return f"weekly link {str(self.pk)[:8]}"


# --- week close ---


class ClosedWeek(models.Model):
    """A week closed for an organisation: its aggregates are frozen and its participation counted, once."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    week = models.DateField(help_text="The Monday of the ISO week that was closed.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "week"], name="closed_week_once_per_organisation")
        ]

    def __str__(self) -> str:
        return f"closed week {self.week}"


class WeeklyAggregate(models.Model):
    """The frozen figures of one week for a department, or for the whole organisation (department null).

    Written once when the week closes and never recomputed, so anonymising a participant later (their scores
    lose their department) never changes a past figure. Every group is stored, also groups under 5 people:
    suppression (at least 5, and complementary suppression against differencing) is applied when a report
    reads these rows, by the employer reports, never here.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    # Kept when a department is removed later: the figure stays, as the organisation's history.
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    week = models.DateField(help_text="The Monday of the ISO week.")
    count = models.PositiveIntegerField()
    total = models.PositiveIntegerField(help_text="The sum of the values.")
    count_1 = models.PositiveIntegerField(default=0)
    count_2 = models.PositiveIntegerField(default=0)
    count_3 = models.PositiveIntegerField(default=0)
    count_4 = models.PositiveIntegerField(default=0)
    count_5 = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "department", "week"],
                condition=Q(department__isnull=False),
                name="aggregate_once_per_department_week",
            ),
            # NULL never equals NULL in a unique index: the organisation-wide row needs its own constraint.
            models.UniqueConstraint(
                fields=["organisation", "week"],
                condition=Q(department__isnull=True),
                name="aggregate_once_per_organisation_week",
            ),
            models.CheckConstraint(
                condition=Q(
                    count=models.F("count_1")
                    + models.F("count_2")
                    + models.F("count_3")
                    + models.F("count_4")
                    + models.F("count_5")
                ),
                name="aggregate_distribution_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"aggregate for week {self.week}"

    @property
    def distribution(self) -> dict[int, int]:
        """How many scored each value, 1 to 5."""
        return {value: getattr(self, f"count_{value}") for value in range(1, 6)}
