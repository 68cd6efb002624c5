"""Demo data of the scores app: half a year of past weeks made by the real weekly round, taps and week close.

Called by ``manage.py seed_demo`` after the participants app's demo data; safe to run again (a closed week
is skipped, a round sends nothing twice, one score per pseudonym and week is a database constraint). Each
past week is lived through as the platform lives it, with the week passed to the jobs instead of a clock:
the round makes the week's links and queues its messages, the demo people tap their links during that week
(``submit_score`` at a moment of that week), and the week close freezes the figures, counts participation
and deletes the links (so the queued messages of past weeks end cancelled when the worker meets them).
Then this week's round runs, and the command prints an unanswered smiley link of this week and whose it is,
and where the demo employer finds its reports: 26 closed weeks are two full quarters and more, enough for a
trend by week, by quarter and by year.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from participants import queries
from participants.agreements import has_signed_agreement
from participants.models import Organisation, StaffUser
from preventicons import messaging
from scores import rounds
from scores.models import Score, WeeklyLink
from scores.sealing import week_pseudonym
from scores.submission import submit_score
from scores.weekclose import close_week, is_week_closed, monday_of

DEMO_WEEKS = 26
# The employer login whose reports the demo points at (participants.management.demo makes it).
DEMO_EMPLOYER = "demo-hr-zorg"
RESPONSE_RATE = 0.85
# When the demo people tap in a past week: its Wednesday at noon, well inside the week the link is open.
TAP_AFTER = dt.timedelta(days=2, hours=12)


@dataclass(frozen=True)
class DemoScore:
    week: dt.date
    value: int


def demo_scores(pseudonym: str, weeks: list[dt.date]) -> list[DemoScore]:
    """A plausible, repeatable course for one person: a mood that drifts a step at a time."""
    # Seeded by the pseudonym so a second run proposes the same scores (demo data, not a secret).
    rng = random.Random(pseudonym)  # noqa: S311  # nosec B311  # demo data, not a secret
    mood = rng.randint(2, 4)
    scores = []
    for week in weeks:
        mood = min(5, max(1, mood + rng.choice((-1, 0, 0, 1))))
        if rng.random() < RESPONSE_RATE:
            scores.append(DemoScore(week=week, value=mood))
    return scores


def live_through_week(*, organisation: Organisation, week: dt.date, weeks: list[dt.date]) -> int:
    """The round, the taps and the close of one past ``week``; how many scores it recorded."""
    rounds.run_weekly_round(organisation=organisation, week=week)
    moment = rounds.week_starts_at(week) + TAP_AFTER
    recorded = 0
    links = list(
        WeeklyLink.objects.filter(participant_id__in=queries.ids_in_organisation(organisation.pk), week=week)
    )
    sent = _sent(links)
    for link in sent:
        pseudonym = queries.active_pseudonym(link.participant_id)
        assert pseudonym  # sent to active participants only
        scores = {score.week: score.value for score in demo_scores(pseudonym, weeks)}
        if week in scores:
            # The token the participant's message carries, tapped as the smiley page does.
            token = rounds.link_token(link.pk)
            recorded += submit_score(token=token, value=scores[week], now=moment).recorded
    close_week(organisation_id=organisation.pk, week=week, today=week + dt.timedelta(days=7))
    # The week is over: its queued messages (one for everyone on the list) would only be cancelled one by one
    # when the worker meets them, and 26 weeks of them would keep `make run`'s worker busy long after the
    # demo starts.
    messaging.cancel_pending(keys_containing=[f"week:{link.participant_id}:" for link in links])
    return recorded


def _sent(links: Iterable[WeeklyLink]) -> list[WeeklyLink]:
    """The links whose message went out: the round makes one for everyone enrolled and queues its message
    alike, but only the messages of those who can take part are sent."""
    links = list(links)
    sending = queries.taking_part(link.participant_id for link in links)
    return [link for link in links if link.participant_id in sending]


def unanswered_link(*, week: dt.date) -> tuple[uuid.UUID, str] | None:
    """A demo participant's id with a sent link of ``week`` and no score yet, with the link's token."""
    for link in _sent(WeeklyLink.objects.filter(week=week).order_by("participant_id")):
        # The status is sealed (participants.models): opened and decided in Python, not in SQL.
        pseudonym = queries.active_pseudonym(link.participant_id)
        if (
            pseudonym
            and not Score.objects.filter(pseudonym=week_pseudonym(pseudonym, week), week=week).exists()
        ):
            return link.participant_id, rounds.link_token(link.pk)
    return None


def seed(*, write: Callable[[str], None]) -> None:
    """Live through the missing past weeks, run this week's round, and print an unanswered smiley link."""
    this_week = monday_of(timezone.localdate())
    weeks = [this_week - dt.timedelta(weeks=n) for n in range(DEMO_WEEKS, 0, -1)]
    organisations = [
        organisation
        for organisation in Organisation.objects.order_by("pk")
        if has_signed_agreement(organisation) and queries.has_pseudonyms(organisation)
    ]
    recorded = 0
    for organisation in organisations:
        for week in weeks:
            if not is_week_closed(organisation_id=organisation.pk, week=week):
                recorded += live_through_week(organisation=organisation, week=week, weeks=weeks)
        rounds.run_weekly_round(organisation=organisation, week=this_week)
    write(
        f"scores: {DEMO_WEEKS} past weeks lived through by the weekly round, taps and the week close "
        f"({recorded} scores added); this week's round has run"
    )
    write_reports_url(write=write)
    found = unanswered_link(week=this_week)
    if found is None:
        write("scores: every demo participant has answered this week (make clean starts afresh)")
        return
    participant_id, token = found
    url = settings.SITE_URL + reverse("scores:week", kwargs={"token": token})
    who = queries.describe(participant_id)
    write(
        f"scores: this week's smiley link of {who.name} ({who.organisation}, "
        f"{who.department}), not answered yet (tap 1 or 2 for the offer of help):"
    )
    write(f"  {url}")


def write_reports_url(*, write: Callable[[str], None]) -> None:
    """Where the demo employer reads its organisation's reports (by quarter, its page's default)."""
    employer = StaffUser.objects.filter(username=DEMO_EMPLOYER).select_related("organisation").first()
    if employer is None or employer.organisation is None:
        return
    url = settings.SITE_URL + reverse(
        "scores:report", kwargs={"organisation_id": employer.organisation.pk, "level": "quarter"}
    )
    write(
        f"scores: the reports of {employer.organisation.name} for {DEMO_EMPLOYER} (departments over and "
        "under the threshold, a sector comparison):"
    )
    write(f"  {url}")
