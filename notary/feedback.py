"""Feedback for the employer: participants' ratings and remarks, handed over at least five people at a time.

How a sign-off's feedback travels (notary.signoffs): the sign-off batch writes, with each ledger entry, one
sealed ``PendingFeedback`` row, with or without a rating, so its presence says nothing. ``write_mixed``
turns the pending rows into ``Feedback`` rows in a transaction of its own, and only once at least
MIX_MINIMUM are pending, all together in random order: no Feedback row shares a transaction with its own
ledger entry, nor comes from a batch that held one sign-off (an operator who reads the transaction ids of a
dump pairs nothing). The rating is sealed as the remark is, and so is the organisation: a waiting row in a
mix that held one sign-off of its organisation would otherwise pair with that organisation's one
``signed_off`` entry since the last mix. ``release_ready`` opens them and decides in Python.

A release counts people, not rows: a participant with several ended trajectories may give feedback on each,
so every waiting row carries its person's keyed hash (``person_of``), sealed, and a release takes at most
one row per person. An organisation's waiting feedback is released once it comes from at least
FEEDBACK_RELEASE_MINIMUM (never under five) different people, one row of each, in one FeedbackRelease
dated the day; a person's other rows wait for a later release, beside other people again. The employer sees a
release's ratings as a distribution and its remarks apart from them, ordered by their text alone: never a
rating next to a remark, never an order or a date per remark, so nothing says which came first or pairs one
remark with one rating. Until a release, the employer's page shows nothing of what waits, not even whether
anything does: a count under five is a count under five.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notary.models import Feedback, FeedbackRelease, PendingFeedback
from preventicons import crypto
from preventicons.dbrouter import CASEFILES
from preventicons.fields import column_cipher

# The floor below every setting: DESIGN.md, no number from fewer than five people reaches an employer.
SMALLEST_RELEASE = 5
# Feedback rows are written only from at least this many pending sign-offs at once.
MIX_MINIMUM = 5
RATINGS = (1, 2, 3, 4, 5)
# A pending feedback is padded to this many bytes before sealing, rating or not (as a queued sign-off is).
PENDING_BYTES = 4608
# Who gave a waiting row from before persons were kept: all such rows count as one person (the safe side).
UNKNOWN_PERSON = ""


def person_of(pseudonym: str) -> str:
    """The participant's keyed hash for counting people in a release: purpose-bound (it matches no other
    index), only ever stored sealed, and dropped when the row is released."""
    return crypto.keyed_hash("casefiles_index", "feedback person", pseudonym)


def pend(signoffs: list[dict[str, Any]]) -> None:
    """One sealed PendingFeedback per recorded sign-off (``organisation``, ``rating`` or None, ``remark``,
    ``person``), in random order. Called in the sign-off batch's transaction, beside the ledger entries."""
    rows = []
    for signoff in signoffs:
        rating = signoff.get("rating")
        if rating is not None and int(rating) not in RATINGS:
            raise ValueError("a rating off the scale")
        plaintext = json.dumps(
            {
                "organisation": int(signoff["organisation"]),
                "rating": None if rating is None else int(rating),
                "remark": signoff.get("remark") or None,
                "person": signoff.get("person") or UNKNOWN_PERSON,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        size = len(plaintext.encode("utf-8"))
        if size > PENDING_BYTES:
            raise ValueError("a pending feedback is longer than its padding")
        row = PendingFeedback()
        row.sealed = plaintext + " " * (PENDING_BYTES - size)  # JSON allows trailing blanks
        rows.append(row)
    secrets.SystemRandom().shuffle(rows)
    PendingFeedback.objects.bulk_create(rows)


def write_mixed() -> int:
    """Write the pending feedback as Feedback rows, all of it together in random order, once at least
    MIX_MINIMUM are pending; how many Feedback rows were written. A transaction of its own: call it after the
    sign-off batch has committed, never inside it."""
    with transaction.atomic(using=CASEFILES):
        # Locked: a second run at the same time waits, then finds the rows gone.
        pending = list(PendingFeedback.objects.select_for_update())
        if len(pending) < MIX_MINIMUM:
            return 0
        secrets.SystemRandom().shuffle(pending)
        rows = []
        for row in pending:
            opened = json.loads(row.sealed or "{}")
            if opened.get("rating") is None:
                continue
            written = Feedback(organisation=int(opened["organisation"]), rating=int(opened["rating"]))
            written.remark = opened.get("remark") or None
            written.person = opened.get("person") or None
            rows.append(written)
        Feedback.objects.bulk_create(rows)
        PendingFeedback.objects.filter(pk__in=[row.pk for row in pending]).delete()
    return len(rows)


def release_minimum() -> int:
    return max(SMALLEST_RELEASE, int(settings.FEEDBACK_RELEASE_MINIMUM))


def release_ready(*, today: dt.date | None = None) -> list[FeedbackRelease]:
    """Release the waiting feedback of every organisation whose waiting rows come from at least the minimum
    of people: one row of each person, chosen at random, together; the releases made. A person's other
    rows wait for a later release. Run at the end of the sign-off batch; a second run finds too few."""
    day = today or timezone.localdate()
    minimum = release_minimum()
    made = []
    with transaction.atomic(using=CASEFILES):
        # organisation -> person -> the person's waiting rows
        waiting: dict[int, dict[str, list[uuid.UUID]]] = defaultdict(lambda: defaultdict(list))
        persons = column_cipher(Feedback, "person")
        organisations = column_cipher(Feedback, "organisation")
        # Locked: feedback written by a batch running at the same time is released once, by one of them.
        # Every waiting row is read and opened: the organisation is sealed, so no query can pick one's rows.
        for pk, organisation, sealed in (
            Feedback.objects.select_for_update()
            .filter(release__isnull=True)
            .values_list("pk", "organisation", "person")
        ):
            person = UNKNOWN_PERSON if sealed is None else persons.open(str(sealed), str(pk))
            waiting[int(organisations.open(str(organisation), str(pk)))][person].append(pk)
        for organisation_id, people in sorted(waiting.items()):
            if len(people) < minimum:
                continue
            chosen = [secrets.choice(ids) for ids in people.values()]
            release = FeedbackRelease.objects.create(organisation_id=organisation_id, released_on=day)
            # The person's hash is needed no longer: what the employer reads is not kept linkable.
            Feedback.objects.filter(pk__in=chosen).update(release=release, person=None)
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
