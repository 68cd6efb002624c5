"""The weekly round: one link per listed person per week, sent on the channel they chose at enrolment.

Idempotent and resumable by the database: a link is unique per participant and week, a message per outbox
key, and each batch writes its links and its messages in one transaction. A second run, a retried task or a
restart after a killed worker finds the committed batches and sends only what is missing, each message once.

The outbox holds no address and no token for these messages: each is queued deferred, naming the renderer
"scores.weekly" and the link's id, and rendered when it is sent. The link's token is derived from its id
under a key (``link_token``), so the round seals nothing, and a participant who stops, pauses or leaves before
the message goes out is not messaged. The weekly channel is sealed in every row, "none" too: the round opens
it, and the address it names only to tell whether there is one (participants.queries.weekly_recipients).
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from participants import queries
from participants.agreements import AgreementMissing, require_signed_agreement
from participants.models import Organisation
from preventicons import messaging
from preventicons.crypto import hash_token
from preventicons.dbrouter import pipelined
from preventicons.keys import get_key_set
from preventicons.models import OutboundMessage
from scores.models import WeeklyLink, WeeklyRound

logger = logging.getLogger(__name__)

EMAIL = OutboundMessage.Channel.EMAIL
SMS = OutboundMessage.Channel.SMS
RENDERER = "scores.weekly"
# The domain label of the weekly link tokens under the blind_index key: no other keyed hash can equal one.
_TOKEN_KIND = b"weekly-link-token"


@dataclass
class RoundReport:
    """What one run of a weekly round did; a repeated run reports zero links."""

    organisation_id: int
    week: dt.date
    # Links made and messages queued, for everyone on the list alike: only those who take part when a
    # message is sent get it (render_weekly_message), so the round itself never learns who does.
    links: int = 0
    emails: int = 0
    sms: int = 0
    batches: int = 0


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


# --- links -----------------------------------------------------------------------------------


def link_token(link_id: uuid.UUID | str) -> str:
    """The token of a weekly link: HMAC-SHA256 of its random id under the blind_index key, 256 bits, URL-safe.

    Only someone holding the key can derive it from the id; the database keeps hash_token(token) as before.
    """
    return _derive_token(get_key_set().hmac_key("blind_index"), str(link_id))


def _derive_token(key: bytes, link_id: str) -> str:
    digest = hmac.digest(key, _TOKEN_KIND + b"\x00" + link_id.encode("ascii"), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _link_prefix() -> str:
    return settings.SITE_URL + reverse("scores:week", kwargs={"token": "TOKEN"}).removesuffix("TOKEN/")  # nosec B105  # a placeholder


def render_weekly_message(reference: str, channel: str) -> messaging.RenderedMessage | None:
    """The outbox renderer "scores.weekly": the week's message for the link ``reference``, by ``channel``.

    None when there is nobody to send it to any more: the link is gone or closed, or its participant is no
    longer active, listed and unpaused, no longer wants this channel or has no address for it.
    """
    try:
        link_id = uuid.UUID(reference)
    except ValueError:
        return None
    link = (
        WeeklyLink.objects.select_related("participant")
        .only("expires_at", *queries.message_holder_columns("participant"))
        .filter(pk=link_id)
        .first()
    )
    if link is None or link.expires_at <= timezone.now():
        return None
    address = queries.weekly_address(link.participant, channel)
    if address is None:
        return None
    with translation.override(settings.LANGUAGE_CODE):
        texts = _texts(link.expires_at)
        context = {
            "link": f"{_link_prefix()}{link_token(link.pk)}/",
            "stop": texts.stop,
            "until": texts.until,
        }
        if channel == EMAIL:
            return messaging.RenderedMessage(to=address, subject=texts.subject, body=texts.email % context)
        if channel == SMS:
            return messaging.RenderedMessage(to=address, subject=None, body=texts.sms % context)
    return None


# --- the round --------------------------------------------------------------------------------


def run_weekly_round(
    *,
    organisation: Organisation,
    week: dt.date,
    batch_size: int | None = None,
    after_batch: Callable[[int], None] | None = None,
) -> RoundReport:
    """Make this week's link for everyone on the list, once, with one message each, and send it to every
    active, unpaused participant on the channel they chose (queries.weekly_recipients: the others' messages
    end unsent).

    Raises AgreementMissing, sending nothing, when the organisation's processing agreement is not recorded.
    ``after_batch`` is called with the batch number after each batch has committed.

    Each batch is one transaction. On PostgreSQL the next batch is read before this one's rows go to the
    server, and made (ids, tokens, messages) while the server writes them (pipeline mode): the two cores
    work side by side instead of the one waiting for the other. A batch made in the transaction before is
    written only if no other run wrote any of its people meanwhile; if one did, the batch is read again.
    """
    require_signed_agreement(organisation)
    batch_size = batch_size or settings.WEEKLY_ROUND_BATCH_SIZE
    report = RoundReport(organisation_id=organisation.pk, week=week)
    weekly_round, created = WeeklyRound.objects.get_or_create(
        organisation=organisation, week=week, defaults={"started_at": timezone.now()}
    )
    if not created:
        # Resumed or run again: its links are newer than the planner's statistics, which would make the
        # first read below go through every link once per participant (queries.refresh_recipient_statistics).
        queries.refresh_recipient_statistics(excluding_table=WeeklyLink._meta.db_table)
    making = _BatchMaker(organisation=organisation, week=week, size=batch_size)
    after: object = None
    ahead: _Batch | None = None  # the next batch, read and made in the transaction before
    while True:
        batch = ahead
        ahead = None
        try:
            with transaction.atomic():
                # Runs of the same round take turns batch by batch, so two never prepare the same
                # participant; the unique constraints would refuse a double anyway.
                WeeklyRound.objects.select_for_update().filter(pk=weekly_round.pk).first()
                if batch is None:
                    batch = making.read(after=after, fresh=True)
                if batch is None:
                    break
                upcoming = making.recipients(after=batch.last)
                with pipelined(router.db_for_write(WeeklyLink)):
                    _write(batch, week=week, expires_at=making.expires_at)
                    if upcoming:
                        ahead = making.make(upcoming, fresh=False)
        except IntegrityError:
            if batch is None or batch.fresh:
                raise
            # Another run wrote some of these people after this batch was read: read it again, under the lock.
            ahead = None
            continue
        after = batch.last
        report.links += len(batch.link_ids)
        report.emails += batch.emails
        report.sms += batch.sms
        report.batches += 1
        if after_batch is not None:
            after_batch(report.batches)
        if ahead is None:  # nobody after this batch
            break
    WeeklyRound.objects.filter(pk=weekly_round.pk, finished_at__isnull=True).update(
        finished_at=timezone.now()
    )
    logger.info(
        "weekly round organisation %s week %s: %d links, %d e-mails and %d SMS queued in %d batches",
        organisation.pk,
        week,
        report.links,
        report.emails,
        report.sms,
        report.batches,
    )
    return report


def _links_of_the_week(*, week: dt.date, after: object) -> QuerySet[WeeklyLink]:
    # Only the links of participants after ``after``, the only ones a batch reads: the same answer, but
    # PostgreSQL then reads those few index entries instead of every link the round has made so far (its
    # anti-join reads them all), which made each batch slower than the one before.
    links = WeeklyLink.objects.filter(week=week)
    return links if after is None else links.filter(participant_id__gt=after)


@dataclass(frozen=True)
class _Texts:
    subject: str
    email: str
    sms: str
    stop: str
    until: str


def _texts(expires_at: dt.datetime) -> _Texts:
    # Once per message, at send time: the language and the stop link are those of the moment it goes out.
    until = (timezone.localtime(expires_at) - dt.timedelta(minutes=1)).strftime("%d-%m-%Y %H:%M")
    return _Texts(
        subject=_("How was your week?"),
        email=_(
            "How was your week? Tap one of five smileys: it takes a few seconds.\n\n"
            "%(link)s\n\n"
            "The link works until %(until)s. Your employer never sees whether you answer or what.\n\n"
            "Would you like to talk to someone? Behind the same link you can ask a casemanager to contact "
            "you, whatever your answer.\n\n"
            "Would you rather not receive these messages any more? %(stop)s"
        ),
        sms=_("Preventicons: how was your week? Tap a smiley: %(link)s Stop: %(stop)s"),
        stop=settings.SITE_URL + reverse("scores:stop"),
        until=until,
    )


@dataclass(frozen=True)
class _Batch:
    """One batch of the round, made but not yet written: its links and their messages."""

    last: object  # the last participant id read: the next batch starts after it
    fresh: bool  # read in the transaction that writes it (under the round's lock)
    link_ids: list[str]
    participant_ids: list[str]
    token_hashes: list[str]
    messages: list[messaging.Outgoing | messaging.Deferred]
    emails: int
    sms: int


@dataclass
class _BatchMaker:
    """Reads and makes the round's batches for one organisation and week."""

    organisation: Organisation
    week: dt.date
    size: int

    def __post_init__(self) -> None:
        self.expires_at = week_closes_at(self.week)
        self._key = get_key_set().hmac_key("blind_index")

    def recipients(self, *, after: object) -> list[queries.WeeklyRecipient]:
        """The next batch's people after ``after`` (by id) who have no link this week yet."""
        batch, _last = queries.weekly_recipients(
            organisation=self.organisation,
            excluding=Exists(
                _links_of_the_week(week=self.week, after=after).filter(participant=OuterRef("pk"))
            ),
            after=after,
            size=self.size,
        )
        return batch

    def read(self, *, after: object, fresh: bool) -> _Batch | None:
        recipients = self.recipients(after=after)
        return self.make(recipients, fresh=fresh) if recipients else None

    def make(self, recipients: list[queries.WeeklyRecipient], *, fresh: bool) -> _Batch:
        """The batch's link ids, tokens and messages: Python only, nothing sent to the database."""
        link_ids: list[str] = []
        participant_ids: list[str] = []
        token_hashes: list[str] = []
        messages: list[messaging.Outgoing | messaging.Deferred] = []
        for participant in recipients:
            link_id = str(uuid.uuid4())
            participant_id = str(participant.pk)
            link_ids.append(link_id)
            participant_ids.append(participant_id)
            token_hashes.append(hash_token(_derive_token(self._key, link_id)))
            # One message queued alike for everyone on the list: neither the link rows nor the outbox rows
            # may tell who takes part. The renderer sends only the messages of those who can take part now.
            messages.append(
                _weekly_message(participant.pk, self.week, participant.channel, link_id, participant.stand_in)
            )
        return _Batch(
            last=recipients[-1].pk,
            fresh=fresh,
            link_ids=link_ids,
            participant_ids=participant_ids,
            token_hashes=token_hashes,
            messages=messages,
            emails=sum(participant.channel == EMAIL for participant in recipients),
            sms=sum(participant.channel == SMS for participant in recipients),
        )


def _write(batch: _Batch, *, week: dt.date, expires_at: dt.datetime) -> None:
    # No ON CONFLICT: a link row that already exists means its messages exist too, and the batch must then
    # roll back rather than queue a message for a link the database does not know.
    connection = connections[router.db_for_write(WeeklyLink)]
    if connection.vendor == "postgresql":
        # One statement for the batch's links, no ORM (a round is mostly rows).
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO scores_weeklylink (id, participant_id, week, token_hash, expires_at) "
                "SELECT id::uuid, participant_id::uuid, %s, token_hash, %s "
                "FROM unnest(string_to_array(%s, ','), string_to_array(%s, ','), string_to_array(%s, ',')) "
                "AS l(id, participant_id, token_hash)",
                [
                    week,
                    expires_at,
                    ",".join(batch.link_ids),
                    ",".join(batch.participant_ids),
                    ",".join(batch.token_hashes),
                ],
            )
    else:
        # The embedded default (SQLite) has no unnest or ::uuid: the ORM's bulk insert, the same rows.
        WeeklyLink.objects.using(connection.alias).bulk_create(
            [
                WeeklyLink(
                    id=uuid.UUID(link_id),
                    participant_id=uuid.UUID(participant_id),
                    week=week,
                    token_hash=token_hash,
                    expires_at=expires_at,
                )
                for link_id, participant_id, token_hash in zip(
                    batch.link_ids, batch.participant_ids, batch.token_hashes, strict=True
                )
            ]
        )
    messaging.queue_many(batch.messages)


# --- the hourly beat --------------------------------------------------------------------------


def _weekly_key(participant_id: uuid.UUID, week: dt.date, channel: str, *, stand_in: bool) -> str:
    # "week:<participant>:<week>:<channel>": stopping or pausing cancels it by ":<participant>:". A stand-in's
    # key says so (hashed in the outbox, like every key): queue_for_newcomers can then queue the real one for
    # someone who joins during the week.
    return f"week:{participant_id}:{week.isoformat()}:{channel}{':stand-in' if stand_in else ''}"


def _weekly_message(
    participant_id: uuid.UUID, week: dt.date, channel: str, link_id: str, stand_in: bool
) -> messaging.Deferred:
    """The week's message of one link, rendered when it is sent (render_weekly_message)."""
    return messaging.Deferred(
        key=_weekly_key(participant_id, week, channel, stand_in=stand_in),
        channel=channel,
        renderer=RENDERER,
        reference=link_id,
    )


def queue_for_newcomers(*, organisation: Organisation, week: dt.date) -> int:
    """This week's message for everyone of the organisation who can take part now and whose link's message
    was queued on a stand-in (they had not enrolled when the round ran); how many were asked for.

    Not part of the round the beat runs (a newcomer's first link comes with the next week's round): for
    running the round again by hand (``manage.py run_weekly_round``, as the demo does). The message's key is
    the one the round gives a participant's own channel, so whoever already has theirs gets nothing twice.
    Inserting it tells that its link's person joined since the round, as their enrolment's own write does.
    Whoever's stand-in is still pending on the channel they chose gets none: the stand-in reaches them.
    """
    links = list(
        WeeklyLink.objects.filter(
            participant_id__in=queries.ids_in_organisation(organisation.pk),
            week=week,
            expires_at__gt=timezone.now(),
        ).values_list("pk", "participant_id")
    )
    channels = queries.weekly_channels(participant for _link, participant in links)
    # A stand-in still pending on the channel now chosen will be rendered for its person (the renderer looks
    # only at the link and the channel): a second message would reach them twice this week.
    stand_ins = {
        messaging.outbox_key_hash(_weekly_key(participant, week, channel, stand_in=True)): participant
        for participant, channel in channels.items()
    }
    using = router.db_for_write(OutboundMessage)
    still_pending = {
        stand_ins[key_hash]
        for key_hash in OutboundMessage.objects.using(using)
        .filter(key_hash__in=list(stand_ins), status=OutboundMessage.Status.PENDING)
        .values_list("key_hash", flat=True)
    }
    messages: list[messaging.Outgoing | messaging.Deferred] = [
        _weekly_message(participant, week, channels[participant], str(link), stand_in=False)
        for link, participant in links
        if participant in channels and participant not in still_pending
    ]
    with transaction.atomic(using=using):
        messaging.queue_many(messages)
    return len(messages)


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
