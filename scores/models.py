"""Pseudonymous scores: a week, a sealed number, a per-week pseudonym; nothing leads back to a person."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from participants.models import Department, Organisation, Participant
from preventicons.fields import sealed_only
from scores.sealing import (
    VALUES,
    WEEK_PSEUDONYM_LENGTH,
    NaturalKeySealedField,
    SealedScoreValueField,
    padded_json,
)


class Score(models.Model):
    """One smiley for one week, unreadable and unlinkable without the keys (scores/sealing.py).

    Random primary key and no timestamp finer than the week: an ordered key or a creation time would let a
    DBA line score rows up with invitation or session rows written at the same moment. The week close
    gives every row of the week a new random id, so even the id of an open week's row leads nowhere later.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    week = models.DateField(help_text="The Monday of the ISO week the score belongs to.")
    # A number 1-5, sealed (the range is checked in code: the database sees ciphertext only). Which emotion
    # a number stands for lives in code. Bound to (pseudonym, week), which survives the close's new ids.
    value = SealedScoreValueField(bound_to=("pseudonym", "week"))
    # No index of its own: score_org_week, led by the organisation, serves every lookup by it, and a second
    # index cost every tap and every week close's rewrite an insert (a quarter of the close's index WAL).
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Only while the week is open, and sealed: the department's id (NO_DEPARTMENT without one), bound like the
    # value. In clear, a department of one would tell a dump of the open week whether its one person
    # answered (issue #14, F9). Every open row has one, so NULL against a ciphertext tells nothing either.
    # The week close opens it to freeze the aggregates and then strips it from every row (NULL).
    department = NaturalKeySealedField(bound_to=("pseudonym", "week"), null=True)
    # week_pseudonym(P, week): a keyed hash of the participant's secret and the week, never P itself, so it
    # repeats in no other week. Only whoever holds P and the key (a dossier, the participant) finds it.
    pseudonym = models.CharField(max_length=WEEK_PSEUDONYM_LENGTH)

    class Meta:
        verbose_name = _("score")
        verbose_name_plural = _("scores")
        constraints = [
            models.UniqueConstraint(fields=["pseudonym", "week"], name="score_one_per_pseudonym_per_week"),
            *sealed_only("value", "department"),
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
        verbose_name = _("weekly round")
        verbose_name_plural = _("weekly rounds")
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
    # No index of its own: weekly_link_once_per_week starts with it and serves every lookup by participant
    # (the round's "has a link this week", the cascade of an erasure, the week close's forgetting). The
    # round writes 100,000 links at once, and every index is written for every one of them.
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+", db_index=False)
    week = models.DateField(help_text="The Monday of the ISO week the link is for.")
    # Unique through a constraint rather than unique=True, which on PostgreSQL adds a second index for LIKE
    # queries: a token hash is only ever looked up whole.
    token_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = _("weekly link")
        verbose_name_plural = _("weekly links")
        constraints = [
            models.UniqueConstraint(fields=["participant", "week"], name="weekly_link_once_per_week"),
            models.UniqueConstraint(fields=["token_hash"], name="weekly_link_token_hash_unique"),
        ]

    def __str__(self) -> str:
        # Never the token hash or the participant: this string ends up in admin pages and logs.
        return f"weekly link {str(self.pk)[:8]}"


# --- week close ---


class ClosedWeek(models.Model):
    """A week closed for an organisation: its aggregates are frozen and its participation counted, once."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    week = models.DateField(help_text="The Monday of the ISO week that was closed.")
    # The organisation's SBI division when it closed the week: the comparisons of the week count it in that
    # division for good, so a code set or changed later does not move a past sector figure by exactly this
    # organisation's. Null: closed before it was recorded (today's division stands in).
    division = models.CharField(max_length=2, null=True, blank=True)  # noqa: DJ001

    class Meta:
        verbose_name = _("closed week")
        verbose_name_plural = _("closed weeks")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "week"], name="closed_week_once_per_organisation")
        ]

    def __str__(self) -> str:
        return f"closed week {self.week}"


FIGURES_WIDTH = 128


@dataclass(frozen=True)
class Figures:
    """Frozen figures of one group and week: how many scored, their sum, how many scored each value, and how
    many were sent a weekly link that week (None in figures frozen before that was counted)."""

    count: int
    total: int
    counts: tuple[int, ...]  # how many scored 1, 2, 3, 4 and 5
    invited: int | None = None
    # The organisation's row only: how many were on the employer's list (the participation bands' divisor).
    listed: int | None = None

    @property
    def distribution(self) -> dict[int, int]:
        """How many scored each value, 1 to 5."""
        return dict(zip(VALUES, self.counts, strict=True))

    @classmethod
    def of(cls, values: list[int], *, invited: int | None = None, listed: int | None = None) -> Figures:
        counts = [0] * len(VALUES)
        for value in values:
            counts[value - 1] += 1
        return cls(count=len(values), total=sum(values), counts=tuple(counts), invited=invited, listed=listed)

    def sealed_text(self) -> str:
        # Fixed width: a ciphertext's length must not tell a large group from a small one.
        return padded_json(
            {
                "n": self.count,
                "sum": self.total,
                "counts": list(self.counts),
                "inv": self.invited,
                "ls": self.listed,
            },
            width=FIGURES_WIDTH,
        )

    @classmethod
    def from_text(cls, text: str) -> Figures:
        data = json.loads(text)
        figures = cls(
            count=data["n"],
            total=data["sum"],
            counts=tuple(data["counts"]),
            invited=data.get("inv"),
            listed=data.get("ls"),
        )
        # What the database CHECK said while the figures were in clear.
        if len(figures.counts) != len(VALUES) or figures.count != sum(figures.counts):
            raise ValueError("frozen figures whose distribution does not add up")
        return figures


class WeeklyAggregate(models.Model):
    """The frozen figures of one week for a department, or for the whole organisation (department null).

    Written once when the week closes and never recomputed, so nothing that happens later (a stop, a
    department removed) changes a past figure. The grouping (organisation, department, week) is in clear;
    the figures are one sealed value bound to it, computed by the application from the opened scores (the
    database never sees a score in clear, so it cannot sum them). Every group is stored, also groups under
    5 people: suppression (at least 5, and complementary suppression against differencing) is applied when
    a report reads these rows (scores.queries.frozen_figures), by the employer reports, never here.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    # Kept when a department is removed later: the figure stays, as the organisation's history.
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    week = models.DateField(help_text="The Monday of the ISO week.")
    # Figures.sealed_text(), bound to the grouping, which the unique constraints make unique per row.
    figures = NaturalKeySealedField(bound_to=("organisation_id", "department_id", "week"))

    class Meta:
        verbose_name = _("weekly aggregate")
        verbose_name_plural = _("weekly aggregates")
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
            *sealed_only("figures"),
        ]

    def __str__(self) -> str:
        return f"aggregate for week {self.week}"

    @property
    def opened(self) -> Figures:
        """The figures, opened (DecryptionError when the ciphertext does not belong to this row)."""
        return Figures.from_text(self.figures)

    @property
    def distribution(self) -> dict[int, int]:
        """How many scored each value, 1 to 5."""
        return self.opened.distribution


# --- employer reports (scores/reports.py) ---

# Never fewer: no figure an employer sees comes from fewer answers than this (DESIGN.md).
MINIMUM_REPORT_THRESHOLD = 5


class ReportSetting(models.Model):
    """An organisation's smallest number of answers behind any figure its reports show.

    Absent means MINIMUM_REPORT_THRESHOLD. It can only be raised (scores.reports.raise_threshold, which
    writes a ReportSettingChange for every change): lowering it after the fact would publish figures of groups
    that were withheld before, and the difference between two reports would then single out a smaller group.
    """

    organisation = models.OneToOneField(
        Organisation, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    threshold = models.PositiveSmallIntegerField(_("smallest number of answers per figure"))

    class Meta:
        verbose_name = _("report setting")
        verbose_name_plural = _("report settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold__gte=MINIMUM_REPORT_THRESHOLD), name="report_threshold_at_least_five"
            )
        ]

    def __str__(self) -> str:
        return f"report setting of organisation {self.organisation_id}"


class ReportSettingChange(models.Model):
    """One change of an organisation's report settings: who, when, the old and the new value. Append-only
    (the admin shows it read-only); the employer sees it under its reports, the auditor in the notary."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(_("changed at"))
    # A staff account may be removed later; its name at the time stays with the change.
    changed_by = models.ForeignKey(
        "participants.StaffUser", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_by_name = models.CharField(_("changed by"), max_length=150)
    setting = models.CharField(_("setting"), max_length=40)
    old_value = models.CharField(_("old value"), max_length=40)
    new_value = models.CharField(_("new value"), max_length=40)

    class Meta:
        verbose_name = _("report setting change")
        verbose_name_plural = _("report setting changes")
        ordering = ["organisation", "changed_at", "pk"]
        indexes = [models.Index(fields=["organisation", "changed_at"], name="report_change_org_time")]

    def __str__(self) -> str:
        return f"{self.setting} {self.old_value} -> {self.new_value}"
