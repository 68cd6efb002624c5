"""Demo data of the scores app: eight past weeks of smileys for the demo participants, weeks closed.

Called by ``manage.py seed_demo`` after the participants app's demo data; safe to run again (one score per
pseudonym and week is a database constraint, and closing a closed week changes nothing). It also prints
this week's smiley link of one demo participant, made as the Monday round makes it, to try the page.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from participants.models import Participant
from preventicons.crypto import hash_token
from scores import rounds
from scores.models import ClosedWeek, WeeklyAggregate, WeeklyLink
from scores.submission import record_score
from scores.weekclose import close_week, monday_of

DEMO_WEEKS = 8
RESPONSE_RATE = 0.85


@dataclass(frozen=True)
class DemoScore:
    week: dt.date
    value: int


def demo_scores(participant: Participant, weeks: list[dt.date]) -> list[DemoScore]:
    """A plausible, repeatable course for one person: a mood that drifts a step at a time."""
    pseudonym = participant.pseudonym
    assert pseudonym
    # Seeded by the pseudonym so a second run proposes the same scores (demo data, not a secret).
    rng = random.Random(pseudonym)  # noqa: S311  # nosec B311  # demo data, not a secret
    mood = rng.randint(2, 4)
    scores = []
    for week in weeks:
        mood = min(5, max(1, mood + rng.choice((-1, 0, 0, 1))))
        if rng.random() < RESPONSE_RATE:
            scores.append(DemoScore(week=week, value=mood))
    return scores


def seed(*, write: Callable[[str], None]) -> None:
    """Add the missing demo scores of the past weeks and close those weeks."""
    today = timezone.localdate()
    this_week = monday_of(today)
    weeks = [this_week - dt.timedelta(weeks=n) for n in range(DEMO_WEEKS, 0, -1)]
    people = list(Participant.objects.filter(pseudonym__isnull=False).with_status(Participant.Status.ACTIVE))
    closed = set(ClosedWeek.objects.filter(week__in=weeks).values_list("organisation_id", "week"))
    for participant in people:
        pseudonym = participant.pseudonym
        assert pseudonym
        for score in demo_scores(participant, weeks):
            if (participant.organisation_id, score.week) in closed:
                continue  # a closed week takes no score any more (a second seed)
            # The one way a score row is written (sealed, per-week pseudonym); a second run adds nothing.
            record_score(
                pseudonym=pseudonym,
                week=score.week,
                value=score.value,
                organisation_id=participant.organisation_id,
                department_id=participant.department_id,
            )
    for organisation_id in sorted({participant.organisation_id for participant in people}):
        for week in weeks:
            close_week(organisation_id=organisation_id, week=week, today=today)
    frozen = WeeklyAggregate.objects.filter(week__in=weeks).count()
    write(f"scores: {len(people)} people over {DEMO_WEEKS} weeks, {frozen} frozen weekly figures")
    # Chosen after the closes, which make someone without a score in four weeks inactive: the same person,
    # still active, on every run.
    still_active = Participant.objects.filter(pseudonym__isnull=False).with_status(Participant.Status.ACTIVE)
    demo_person = still_active.order_by("pk").first()
    if demo_person is not None:
        token = this_weeks_token(demo_person, this_week)
        url = settings.SITE_URL + reverse("scores:week", kwargs={"token": token})
        write(f"scores: a demo participant's smiley page this week (tap 1 or 2 for the offer of help): {url}")


def this_weeks_token(participant: Participant, week: dt.date) -> str:
    """The participant's link of ``week`` as the round makes it (token derived from the link's id)."""
    link = WeeklyLink.objects.filter(participant=participant, week=week).first()
    if link is None or link.token_hash != hash_token(rounds.link_token(link.pk)):
        WeeklyLink.objects.filter(participant=participant, week=week).delete()
        link = WeeklyLink(participant=participant, week=week, expires_at=rounds.week_closes_at(week))
        link.token_hash = hash_token(rounds.link_token(link.pk))
        link.save()
    return rounds.link_token(link.pk)
