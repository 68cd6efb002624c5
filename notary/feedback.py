"""Feedback for the employer: participants' ratings and remarks, handed over at least five at a time.

A Feedback row waits (no release) until its organisation has FEEDBACK_RELEASE_MINIMUM (never under five)
waiting; then they are all released together, in one FeedbackRelease dated the day. The employer sees a
release's ratings as a distribution and its remarks apart from them, ordered by their text alone: never a
rating next to a remark, never an order or a date per remark, so nothing says which came first or pairs one
remark with one rating. Until a release, the employer's page shows nothing of what waits, not even whether
anything does: a count under five is a count under five.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notary.models import Feedback, FeedbackRelease
from preventicons.dbrouter import CASEFILES

# The floor below every setting: DESIGN.md, no number from fewer than five people reaches an employer.
SMALLEST_RELEASE = 5


def release_minimum() -> int:
    return max(SMALLEST_RELEASE, int(settings.FEEDBACK_RELEASE_MINIMUM))


def release_ready(*, today: dt.date | None = None) -> list[FeedbackRelease]:
    """Release the waiting feedback of every organisation that has at least the minimum waiting, all of it
    together; the releases made. Run at the end of the sign-off batch; a second run finds too few waiting."""
    day = today or timezone.localdate()
    minimum = release_minimum()
    made = []
    with transaction.atomic(using=CASEFILES):
        waiting: dict[int, list[uuid.UUID]] = defaultdict(list)
        # Locked: feedback written by a batch running at the same time is released once, by one of them.
        for pk, organisation_id in (
            Feedback.objects.select_for_update()
            .filter(release__isnull=True)
            .values_list("pk", "organisation_id")
        ):
            waiting[organisation_id].append(pk)
        for organisation_id, ids in sorted(waiting.items()):
            if len(ids) < minimum:
                continue
            release = FeedbackRelease.objects.create(organisation_id=organisation_id, released_on=day)
            Feedback.objects.filter(pk__in=ids).update(release=release)
            made.append(release)
    return made


@dataclass(frozen=True)
class ShownRelease:
    """One release as the employer reads it: the day, how many, the ratings counted, the remarks apart."""

    id: uuid.UUID
    released_on: dt.date
    count: int
    # (rating, how many gave it), from 5 down to 1, every rating listed even when nobody gave it.
    distribution: list[tuple[int, int]]
    # By their text alone (case folded): an order that follows neither time nor rating.
    remarks: list[str]


def _shown(release: FeedbackRelease, rows: list[Feedback]) -> ShownRelease:
    ratings = [row.rating for row in rows]
    remarks = sorted((row.remark for row in rows if row.remark), key=lambda text: (text.casefold(), text))
    return ShownRelease(
        id=release.pk,
        released_on=release.released_on,
        count=len(rows),
        distribution=[(rating, ratings.count(rating)) for rating in (5, 4, 3, 2, 1)],
        remarks=remarks,
    )


def releases_for(organisation_id: int) -> list[ShownRelease]:
    """The organisation's releases, newest first."""
    releases = list(
        FeedbackRelease.objects.filter(organisation_id=organisation_id).order_by("-released_on", "pk")
    )
    rows: dict[uuid.UUID, list[Feedback]] = defaultdict(list)
    for row in Feedback.objects.filter(release__in=releases):
        assert row.release_id is not None  # filtered above
        rows[row.release_id].append(row)
    return [_shown(release, rows[release.pk]) for release in releases]


def release_of(organisation_id: int, release_id: uuid.UUID) -> ShownRelease | None:
    """One release of this organisation; None for another organisation's or one that does not exist."""
    release = FeedbackRelease.objects.filter(organisation_id=organisation_id, pk=release_id).first()
    if release is None:
        return None
    return _shown(release, list(Feedback.objects.filter(release=release)))
