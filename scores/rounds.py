"""The weekly round: one link per active participant per week, sent by the channels they prefer.

Idempotent and resumable by the database: a link is unique per participant and week, a message per outbox
key, and each batch writes its links and its messages in one transaction. A second run, a retried task or a
restart after a killed worker finds the committed batches and sends only what is missing, each message once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from participants.agreements import AgreementMissing, require_signed_agreement
from participants.enrolment import send_enrolment_reminders
from participants.models import Organisation, Participant
from preventicons import messaging
from preventicons.crypto import hash_token, new_token
from preventicons.models import OutboundMessage
from scores.models import WeeklyLink, WeeklyRound

logger = logging.getLogger(__name__)

EMAIL = OutboundMessage.Channel.EMAIL
SMS = OutboundMessage.Channel.SMS


@dataclass
class RoundReport:
    """What one run of a weekly round did; a repeated run reports zero links."""

    organisation_id: int
    week: dt.date
    links: int = 0
    emails: int = 0
    sms: int = 0
    batches: int = 0
    reminders: int = 0


# --- weeks ------------------------------------------------------------------------------------


def week_of(moment: dt.datetime) -> dt.date:
    """The Monday of the ISO week this moment falls in, in Europe/Amsterdam."""
    day = timezone.localtime(moment).date()
    return day - dt.timedelta(days=day.weekday())


def week_starts_at(week: dt.date) -> dt.datetime:
    """Monday 00:00 of the week, Europe/Amsterdam."""
    return timezone.make_aware(dt.datetime.combine(week, dt.time()))


def week_closes_at(week: dt.date) -> dt.datetime:
    """When the week closes and its links stop working: the next Monday 00:00, Europe/Amsterdam."""
    return timezone.make_aware(dt.datetime.combine(week + dt.timedelta(days=7), dt.time()))


def round_moment(*, organisation: Organisation, week: dt.date) -> dt.datetime:
    """When the organisation's round for this week is due, by its weekday and hour (Europe/Amsterdam)."""
    day = week + dt.timedelta(days=organisation.round_weekday)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour=organisation.round_hour)))


# --- the round --------------------------------------------------------------------------------


def _recipients(organisation: Organisation, week: dt.date) -> Q:
    return Q(
        organisation=organisation,
        status=Participant.Status.ACTIVE,
        is_listed=True,
        messages_paused=False,
    ) & (Q(prefers_email=True, email__isnull=False) | Q(prefers_sms=True, mobile__isnull=False))


def run_weekly_round(
    *,
    organisation: Organisation,
    week: dt.date,
    batch_size: int | None = None,
    after_batch: Callable[[int], None] | None = None,
) -> RoundReport:
    """Send this week's link to every active, listed, unpaused participant once, and the enrolment reminders.

    Raises AgreementMissing, sending nothing, when the organisation's processing agreement is not recorded.
    ``after_batch`` is called with the batch number after each batch has committed.
    """
    require_signed_agreement(organisation)
    batch_size = batch_size or settings.WEEKLY_ROUND_BATCH_SIZE
    report = RoundReport(organisation_id=organisation.pk, week=week)
    weekly_round, _created = WeeklyRound.objects.get_or_create(
        organisation=organisation, week=week, defaults={"started_at": timezone.now()}
    )
    report.reminders = send_enrolment_reminders(organisation=organisation, week=week)
    expires_at = week_closes_at(week)
    after = None
    with translation.override(settings.LANGUAGE_CODE):
        texts = _texts(expires_at)
        while True:
            with transaction.atomic():
                # Runs of the same round take turns batch by batch, so two never prepare the same participant;
                # the unique constraints would refuse a double anyway.
                WeeklyRound.objects.select_for_update().filter(pk=weekly_round.pk).first()
                batch = _next_batch(organisation, week, after=after, size=batch_size)
                if not batch:
                    break
                _prepare(batch, week=week, expires_at=expires_at, texts=texts, report=report)
                after = batch[-1].pk
            report.batches += 1
            if after_batch is not None:
                after_batch(report.batches)
    WeeklyRound.objects.filter(pk=weekly_round.pk, finished_at__isnull=True).update(
        finished_at=timezone.now()
    )
    logger.info(
        "weekly round organisation %s week %s: %d links, %d e-mails, %d SMS in %d batches, %d reminders",
        organisation.pk,
        week,
        report.links,
        report.emails,
        report.sms,
        report.batches,
        report.reminders,
    )
    return report


def _next_batch(organisation: Organisation, week: dt.date, *, after: object, size: int) -> list[Participant]:
    candidates = (
        Participant.objects.filter(_recipients(organisation, week))
        .exclude(Exists(WeeklyLink.objects.filter(participant=OuterRef("pk"), week=week)))
        .only("id", "email", "mobile", "prefers_email", "prefers_sms")
        .order_by("pk")
    )
    if after is not None:
        candidates = candidates.filter(pk__gt=after)
    return list(candidates[:size])


@dataclass(frozen=True)
class _Texts:
    subject: str
    email: str
    sms: str
    stop: str
    until: str


def _texts(expires_at: dt.datetime) -> _Texts:
    # Translated once per run, not once per participant: a round for 100,000 people is mostly string work.
    until = (timezone.localtime(expires_at) - dt.timedelta(minutes=1)).strftime("%d-%m-%Y %H:%M")
    return _Texts(
        subject=_("How was your week?"),
        email=_(
            "How was your week? Tap one of five smileys: it takes a few seconds.\n\n"
            "%(link)s\n\n"
            "The link works until %(until)s. Your employer never sees whether you answer or what.\n\n"
            "Would you rather not receive these messages any more? %(stop)s"
        ),
        sms=_("Preventicons: how was your week? Tap a smiley: %(link)s Stop: %(stop)s"),
        stop=settings.SITE_URL + reverse("scores:stop"),
        until=until,
    )


def _prepare(
    batch: list[Participant], *, week: dt.date, expires_at: dt.datetime, texts: _Texts, report: RoundReport
) -> None:
    links: list[WeeklyLink] = []
    outgoing: list[messaging.Outgoing] = []
    prefix = settings.SITE_URL + reverse("scores:week", kwargs={"token": "TOKEN"}).removesuffix("TOKEN/")
    for participant in batch:
        token = new_token()
        links.append(
            WeeklyLink(
                participant_id=participant.pk, week=week, token_hash=hash_token(token), expires_at=expires_at
            )
        )
        context = {"link": f"{prefix}{token}/", "stop": texts.stop, "until": texts.until}
        # "week:<participant>:<week>:<channel>": stopping or pausing cancels it by ":<participant>:".
        key = f"week:{participant.pk}:{week.isoformat()}"
        if participant.prefers_email and participant.email:
            outgoing.append(
                messaging.Outgoing(
                    key=f"{key}:email",
                    channel=EMAIL,
                    to=participant.email,
                    subject=texts.subject,
                    body=texts.email % context,
                )
            )
            report.emails += 1
        if participant.prefers_sms and participant.mobile:
            outgoing.append(
                messaging.Outgoing(
                    key=f"{key}:sms", channel=SMS, to=participant.mobile, body=texts.sms % context
                )
            )
            report.sms += 1
    # No ignore_conflicts on the links: a link row that already exists means its messages exist too, and the
    # batch must then roll back rather than send a token the database does not know.
    WeeklyLink.objects.bulk_create(links)
    messaging.queue_many(outgoing)
    report.links += len(links)


# --- the hourly beat --------------------------------------------------------------------------


def due_organisations(*, now: dt.datetime) -> list[tuple[Organisation, dt.date]]:
    """Organisations whose round moment has come this week and whose round for it has not finished."""
    week = week_of(now)
    finished = WeeklyRound.objects.filter(organisation=OuterRef("pk"), week=week, finished_at__isnull=False)
    due = []
    for organisation in Organisation.objects.exclude(Exists(finished)).order_by("pk"):
        if round_moment(organisation=organisation, week=week) <= now:
            due.append((organisation, week))
    return due


def run_due_rounds(*, now: dt.datetime | None = None) -> list[RoundReport]:
    """Run (or resume) every round due now; an organisation without an agreement is skipped and logged."""
    now = now or timezone.now()
    reports = []
    for organisation, week in due_organisations(now=now):
        try:
            reports.append(run_weekly_round(organisation=organisation, week=week))
        except AgreementMissing:
            logger.warning("weekly round skipped: organisation %s has no signed agreement", organisation.pk)
    return reports
