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

from django.db import connections, router
from django.db.models import QuerySet

from participants.models import Organisation, Participant
from preventicons.crypto import keyed_hasher
from preventicons.fields import as_stored, column_cipher, column_of, open_column
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
        # The pseudonym is opened too: every row holds one sealed, an empty one until enrolment and after a
        # stop (participants.models), so only its text tells.
        return bool(status == Participant.Status.ACTIVE and self.is_listed and self.pseudonym)

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
    """Someone the weekly round makes a link for, and the outbox channel ("email" or "sms") its one message
    is queued on (never the address itself): everyone on the list has one (see weekly_recipients)."""

    pk: uuid.UUID
    channel: str
    # No channel of their own: the message is queued on a stand-in and can never be sent.
    stand_in: bool = False


def _outbox_channel(weekly_channel: str) -> str:
    """The outbox channel a weekly channel writes on: SMS, or e-mail (to a private or the work address)."""
    sms = weekly_channel == Participant.WeeklyChannel.SMS
    return OutboundMessage.Channel.SMS if sms else OutboundMessage.Channel.EMAIL


def weekly_recipients(
    *, organisation: Organisation, excluding: Any, after: object, size: int
) -> tuple[list[WeeklyRecipient], object]:
    """The next ``size`` people on the employer's list after ``after`` (by id), and the last id read.

    Everyone on the list gets a link and one queued message, whatever they did: enrolled or not, stopped or
    anonymised, active, paused or inactive. A week's link rows name their participants in clear, and the
    outbox rows name their link, so links (or messages) made only for those who enrolled would list them in a
    dump of the open week (issue #14; tests/test_attacks_review5.py). The message goes on the channel the
    person chose; someone with none (never enrolled, or shredded) gets a stand-in of their own, e-mail or SMS
    as a keyed hash of their row's id says, the same every week. A row's channel so changes between two weeks
    only where its enrolment or its stop changed it (README "Known limits"). Only the messages of those who
    can take part then (active, listed, not paused, with an address for the channel) are sent; the others end
    unsent when the worker meets them (scores.rounds.render_weekly_message). ``excluding`` is a condition on
    the participant row (an ``Exists`` of this week's link) that leaves out whoever already has one.

    The weekly channel is sealed in every row, "none" too (participants.models): opened here, never tested
    in SQL, and not kept. No address is opened: whether there is one is the renderer's to find when it sends.
    """
    cipher = column_cipher(Participant, "weekly_channel")
    stand_in = keyed_hasher("blind_index", "weekly-stand-in-channel")
    stand_ins = (OutboundMessage.Channel.EMAIL, OutboundMessage.Channel.SMS)
    rows = (
        Participant.objects.filter(organisation=organisation, is_listed=True)
        .exclude(excluding)
        .order_by("pk")
        .values_list("pk", as_stored("weekly_channel"))
    )
    read = list((rows if after is None else rows.filter(pk__gt=after))[:size])
    chosen: list[WeeklyRecipient] = []
    for pk, sealed in read:
        chosen_channel = cipher.open(sealed, str(pk)) if sealed else None
        if chosen_channel:
            chosen.append(WeeklyRecipient(pk, _outbox_channel(chosen_channel)))
        else:
            chosen.append(WeeklyRecipient(pk, stand_ins[int(stand_in(str(pk))[-1], 16) % 2], stand_in=True))
    return chosen, (read[-1][0] if read else after)


def refresh_recipient_statistics(*, excluding_table: str) -> None:
    """Have PostgreSQL sample anew the tables weekly_recipients reads: the participants and
    ``excluding_table``, the one its ``excluding`` condition looks in. Nothing on another database.

    For a round that had already started (resumed after a crash, or run again by hand): its links were
    written since autovacuum last sampled, so the statistics know only past weeks' links, estimate this
    week's at one row, and the planner reads every link once per participant (a nested-loop anti join: some
    245 s for 100,000 people, 0.3 s once analysed; bench/weekly_round.py). Samples column values the tables
    already hold, as autovacuum does: ids, keyed hashes and ciphertexts, nothing in clear.
    """
    connection = connections[router.db_for_read(Participant)]
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {quote(Participant._meta.db_table)}, {quote(excluding_table)}")


def ids_in_organisation(organisation_id: int) -> QuerySet[Participant, Any]:
    """The ids of an organisation's participants, as a subquery (``participant_id__in=...``)."""
    return Participant.objects.filter(organisation_id=organisation_id).values("pk")


def taking_part(participant_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these participants who can take part this week (active, listed, not paused), decided here:
    the status and the pause are sealed."""
    rows = Participant.objects.filter(pk__in=list(participant_ids), is_listed=True)
    return set(rows.ids_with_status(Participant.Status.ACTIVE, paused=False))


def weekly_channels(participant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Of these participants, those who can take part this week, with the outbox channel ("email" or
    "sms") of the weekly channel they chose; opened here, the channel is sealed."""
    rows = Participant.objects.filter(pk__in=list(taking_part(participant_ids))).only("weekly_channel")
    return {row.pk: _outbox_channel(row.weekly_channel) for row in rows if row.weekly_channel}


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
    # The pseudonym is sealed in every row (an empty one before enrolment and after a stop): opened here.
    found = Participant.objects.filter(organisation_id=organisation_id).order_by("pk")
    return [
        participant
        for participant in found
        if participant.status == Participant.Status.ACTIVE and participant.pseudonym
    ]


def has_pseudonyms(organisation: Organisation) -> bool:
    """Whether any participant of the organisation has a pseudonym (enrolled and not stopped): opened, as
    every row holds one sealed (participants.models). For the demo data."""
    return any(
        participant.pseudonym
        for participant in Participant.objects.filter(organisation=organisation).only("pk", "pseudonym")
    )


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
