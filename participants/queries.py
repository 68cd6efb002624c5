"""What other apps may read about participants: the public read surface of the participants app.

``scores`` (and later ``casefiles``) ask these functions and never read a participant column themselves, so
a sealed column, a renamed field or a new rule (who can take part this week) changes here only. The status
and the pause are sealed (participants.models): every decision on them is made in Python, after opening.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from participants.models import Organisation, Participant
from preventicons.fields import column_of, open_column
from preventicons.models import OutboundMessage

# The participant columns the weekly pages need to tell what a link can still do (LinkHolder).
_LINK_HOLDER_COLUMNS = ("status", "is_listed", "pseudonym", "organisation_id", "department_id")
# The participant columns a weekly message needs when it is rendered (weekly_address).
_MESSAGE_HOLDER_COLUMNS = (
    "status",
    "is_listed",
    "messages_paused",
    "weekly_channel",
    "email",
    "private_email",
    "mobile",
)


def link_holder_columns(relation: str) -> list[str]:
    """The columns to load through ``relation`` (a foreign key to Participant) for what LinkHolder reads."""
    return [f"{relation}__{name}" for name in _LINK_HOLDER_COLUMNS]


def message_holder_columns(relation: str) -> list[str]:
    """The columns to load through ``relation`` (a foreign key to Participant) for weekly_address."""
    return [f"{relation}__{name}" for name in _MESSAGE_HOLDER_COLUMNS]


@dataclass(frozen=True)
class LinkHolder:
    """The participant of a weekly link as the tap reads it: the link_holder_columns in one row, still sealed.

    Read in the same statement as the link (scores.submission.find_tap_link: one round trip per request of
    a tap); the sealed status and pseudonym are opened only when the POST asks, never to show a page.
    """

    pk: uuid.UUID
    sealed_status: str
    is_listed: bool
    sealed_pseudonym: str | None
    organisation_id: int
    department_id: int | None

    @classmethod
    def select_columns(cls, alias: str, quote: Any) -> str:
        """The SELECT list, in the order of this class's fields, for the participant table as ``alias``."""
        names = ("id", *_LINK_HOLDER_COLUMNS)
        return ", ".join(f"{alias}.{quote(column_of(Participant, name))}" for name in names)

    @classmethod
    def from_row(cls, row: tuple[Any, ...], *, on_sqlite: bool) -> LinkHolder:
        pk, status, is_listed, pseudonym, organisation_id, department_id = row
        return cls(
            pk=uuid.UUID(pk) if on_sqlite and isinstance(pk, str) else pk,
            sealed_status=status,
            is_listed=bool(is_listed),
            sealed_pseudonym=pseudonym,
            organisation_id=organisation_id,
            department_id=department_id,
        )

    def may_use_weekly_link(self) -> bool:
        """Whether a weekly link still takes a score: its holder is active, on the list, with a pseudonym."""
        status = open_column(Participant, "status", self.pk, self.sealed_status)
        return bool(status == Participant.Status.ACTIVE and self.is_listed and self.sealed_pseudonym)

    @property
    def pseudonym(self) -> str | None:
        return open_column(Participant, "pseudonym", self.pk, self.sealed_pseudonym)


def participant_table() -> str:
    """The participants' table name, for the statements other apps write by hand (scores' tap lookup)."""
    return Participant._meta.db_table


def weekly_address(participant: Participant, channel: str) -> str | None:
    """Where this week's message goes by ``channel``, or None: not taking part, or not the channel chosen.

    Only the address the participant chose and proved at enrolment: after the invitation schedule, nothing
    goes to an address the employer supplied unless the participant chose it.
    """
    if not participant.can_take_part_this_week():
        return None
    chosen = participant.weekly_channel
    if channel == OutboundMessage.Channel.EMAIL and chosen == Participant.WeeklyChannel.PRIVATE_EMAIL:
        return participant.private_email or None
    if channel == OutboundMessage.Channel.EMAIL and chosen == Participant.WeeklyChannel.WORK_EMAIL:
        return participant.email or None
    if channel == OutboundMessage.Channel.SMS and chosen == Participant.WeeklyChannel.SMS:
        return participant.mobile or None
    return None


@dataclass(frozen=True)
class WeeklyRecipient:
    """Someone the weekly round makes a link for, and where its message is queued: by e-mail, by SMS, both or
    neither (never the address itself). Neither: the link is made and queued nowhere (see weekly_recipients).
    """

    pk: uuid.UUID
    by_email: bool
    by_sms: bool


def _by_email() -> Q:
    channel = Participant.WeeklyChannel
    return Q(weekly_channel=channel.PRIVATE_EMAIL, private_email__isnull=False) | Q(
        weekly_channel=channel.WORK_EMAIL, email__isnull=False
    )


def _by_sms() -> Q:
    return Q(weekly_channel=Participant.WeeklyChannel.SMS, mobile__isnull=False)


def weekly_recipients(
    *, organisation: Organisation, excluding: Any, after: object, size: int
) -> tuple[list[WeeklyRecipient], object]:
    """The next ``size`` enrolled people on the employer's list after ``after`` (by id), and the last id read.

    Everyone on the list who enrolled and whose row is not shredded gets a link, whatever they did since: a
    week's link rows name their participants in clear, and links made only for those who take part would
    list them in a dump of the open week (issue #14). ``by_email`` and ``by_sms`` say where the link's
    message is queued (the channel chosen, with an address), for everyone alike, so the outbox does not
    tell them apart either; only the messages of those who can take part then (active, not paused) are
    sent, the others end unsent when the worker meets them (scores.rounds.render_weekly_message).
    ``excluding`` is a condition on the participant row (an ``Exists`` of this week's link) that leaves out
    whoever already has one. Nothing sealed is opened: whether someone takes part this week is decided when
    the message is sent, from the row as it is then; whether an address exists is read, not the address.
    """
    candidates = (
        # A row that never enrolled, and one shredded (a stop, the anonymisation: Participant.shredded), has
        # no weekly channel: nobody to make a link for, and a dump shows both anyway. Among the enrolled, a
        # link for everyone: whether they are active, paused or inactive is sealed and must stay unreadable.
        # (Someone who enrols mid-week has no link yet, so a later run of the round sends them this week's.)
        Participant.objects.filter(organisation=organisation, is_listed=True, weekly_channel__isnull=False)
        .exclude(excluding)
        .annotate(
            by_email=ExpressionWrapper(_by_email(), output_field=BooleanField()),
            by_sms=ExpressionWrapper(_by_sms(), output_field=BooleanField()),
        )
        .order_by("pk")
        .values_list("pk", "by_email", "by_sms")
    )
    if after is not None:
        candidates = candidates.filter(pk__gt=after)
    chosen = [WeeklyRecipient(pk, bool(by_email), bool(by_sms)) for pk, by_email, by_sms in candidates[:size]]
    return chosen, chosen[-1].pk if chosen else None


def ids_in_organisation(organisation_id: int) -> QuerySet[Participant, Any]:
    """The ids of an organisation's participants, as a subquery (``participant_id__in=...``)."""
    return Participant.objects.filter(organisation_id=organisation_id).values("pk")


def taking_part(participant_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these participants who can take part this week (active, listed, not paused), decided here:
    the status and the pause are sealed."""
    rows = Participant.objects.filter(pk__in=list(participant_ids), is_listed=True)
    return set(rows.ids_with_status(Participant.Status.ACTIVE, paused=False))


def listed_count(organisation_id: int) -> int:
    """How many are on the organisation's list: the employer's own knowledge. A stop, a pause or a decline
    leaves a row listed (a stop shreds it, but only the employer's next list unlists it)."""
    return Participant.objects.filter(organisation_id=organisation_id, is_listed=True).count()


def active_pseudonym(participant_id: uuid.UUID) -> str | None:
    """The pseudonym P of an active participant; None for anyone else (or nobody)."""
    current = Participant.objects.filter(pk=participant_id).only("status", "pseudonym").first()
    if current is None or current.status != Participant.Status.ACTIVE or not current.pseudonym:
        return None
    return current.pseudonym


def active_participants(organisation_id: int) -> list[Participant]:
    """The organisation's active participants, by id (the status is sealed: opened and decided here)."""
    found = Participant.objects.filter(organisation_id=organisation_id, pseudonym__isnull=False)
    found = found.order_by("pk")
    return [participant for participant in found if participant.status == Participant.Status.ACTIVE]


def has_pseudonyms(organisation: Organisation) -> bool:
    """Whether any participant of the organisation has a pseudonym (enrolled and not stopped)."""
    return Participant.objects.filter(organisation=organisation, pseudonym__isnull=False).exists()


@dataclass(frozen=True)
class Described:
    """Who a participant is, for the demo's printout only (development data, never a real person)."""

    name: str
    organisation: str
    department: str


def describe(participant_id: uuid.UUID) -> Described:
    """The name, organisation and department of a participant, for the demo's printout."""
    participant = Participant.objects.select_related("organisation", "department").get(pk=participant_id)
    department = participant.department.name if participant.department else "-"
    return Described(
        name=participant.name or "", organisation=participant.organisation.name, department=department
    )
