"""Who works on a dossier: assignment, reassignment, deputies, and which dossiers a casemanager may open.

A dossier belongs to one casemanager, chosen among those the platform admin linked to its organisation
(``participants.casemanagers``: linked only after their processing agreement is recorded). A new dossier
goes to the linked casemanager with the fewest open dossiers, a tie to any of them at random. A deputy
set for an absence period may open the absent casemanager's dossiers during that period only; every look
they take is logged as a deputy look, which the regular casemanager sees on the dossier.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from casefiles import accesslog
from casefiles.models import AccessLogEntry, Deputy, Dossier
from participants import casemanagers, livecontact
from participants.models import StaffUser
from preventicons import crypto, messaging
from preventicons.dbrouter import CASEFILES, every_store
from preventicons.roles import Role, has_role


def tell_casemanager(dossier: Dossier) -> None:
    """E-mail the dossier's casemanager that it waits for their first contact: no number, no name, a link.

    Queued in the caller's transaction under a key of the dossier, the casemanager and the day of the
    request, so a retried batch or a second look at the same request sends nothing twice.
    """
    if dossier.casemanager_id is None or dossier.awaiting_contact_since is None:
        return
    address = casemanagers.notification_address(dossier.casemanager_id)
    if not address:
        return
    days = settings.DOSSIER_FIRST_CONTACT_WORKING_DAYS
    messaging.queue_email(
        key=f"dossier-waiting:{dossier.pk}:{dossier.casemanager_id}:{dossier.awaiting_contact_since.isoformat()}",
        to=address,
        subject=_("A help request is waiting for you"),
        body=_(
            "A participant asked to be contacted and their dossier is now yours. The first contact is due "
            "within %(days)d working days. Log in to see the dossier:\n\n%(url)s\n\n"
            "This message names no one and no dossier on purpose."
        )
        % {"days": days, "url": settings.SITE_URL + reverse("casefiles:dashboard")},
    )


class AssignmentRefused(Exception):
    """The dossier cannot go to this casemanager; the message says why, for the admin."""


def least_busy_casemanager(organisation_id: int, *, other_than: int | None = None) -> int | None:
    """The id of the casemanager serving the organisation with the fewest open dossiers, or None."""
    serving = [cm for cm in casemanagers.casemanagers_serving(organisation_id) if cm != other_than]
    if not serving:
        return None
    # Open or closed is sealed: every dossier of these casemanagers is read (one query) and counted here.
    load = Counter(
        dossier.casemanager_id
        for dossier in Dossier.objects.filter(casemanager_id__in=serving).only(
            "pk", "casemanager_id", "is_open"
        )
        if dossier.is_open
    )
    fewest = min(load.get(cm, 0) for cm in serving)
    return secrets.choice([cm for cm in serving if load.get(cm, 0) == fewest])


def assign_waiting_dossiers() -> int:
    """Give every dossier without a casemanager to one serving its organisation; how many got one.

    A dossier waits when its organisation had no linked casemanager at the help request. Idempotent: a
    second run finds nothing waiting, or still nobody to give it to.

    A dossier a stop closed while it waited is given out too, the same way and in the same run: left
    without a casemanager for good, ``casemanager_id IS NULL`` beside assigned dossiers of its organisation
    would tell a dump a stop (only a stop closes a dossier nobody holds). Its casemanager hears nothing, and
    it shows nowhere: it is closed, its participant reference leads to nobody (``live``), and the least busy
    count reads open dossiers only.
    """
    assigned = 0
    # Every store: the e-mail to the casemanager (identity store) commits with the assignment, or neither.
    with every_store():
        waiting = Dossier.objects.select_for_update().filter(
            casemanager_id__isnull=True, organisation_id__isnull=False
        )
        fields = ("pk", "organisation_id", "casemanager_id", "awaiting_contact_since", "is_open")
        for dossier in waiting.only(*fields):
            assert dossier.organisation_id is not None  # filtered above
            chosen = least_busy_casemanager(dossier.organisation_id)
            if chosen is not None:
                Dossier.objects.filter(pk=dossier.pk).update(casemanager_id=chosen)
                dossier.casemanager_id = chosen
                if dossier.is_open:  # sealed, so decided here: a closed one is news to nobody
                    tell_casemanager(dossier)
                assigned += 1
    return assigned


def reassign(dossier: Dossier, *, to: StaffUser, by: StaffUser, request: HttpRequest | None = None) -> None:
    """The platform admin gives the dossier to another casemanager serving its organisation; logged."""
    if dossier.organisation_id is None or not casemanagers.is_serving(
        casemanager_id=to.pk, organisation_id=dossier.organisation_id
    ):
        raise AssignmentRefused(_("This casemanager does not serve the dossier's organisation."))
    previous = dossier.casemanager_id
    with every_store():
        Dossier.objects.filter(pk=dossier.pk).update(casemanager_id=to.pk)
        dossier.casemanager_id = to.pk
        tell_casemanager(dossier)
        accesslog.record(
            AccessLogEntry.Action.REASSIGN,
            user=by,
            dossier_number=dossier.number,
            request=request,
            detail=f"from staff member {previous} to staff member {to.pk}",
        )


def absent_colleagues(deputy_id: int, *, on: dt.date | None = None) -> list[int]:
    """The casemanagers this one stands in for today (their absence period includes the day)."""
    day = on or timezone.localdate()
    return list(
        Deputy.objects.filter(deputy_id=deputy_id, starts_on__lte=day, ends_on__gte=day).values_list(
            "casemanager_id", flat=True
        )
    )


@dataclass(frozen=True)
class DeputyPeriod:
    """One absence period in which ``deputy_id`` stood in for ``casemanager_id``, both days included."""

    casemanager_id: int
    deputy_id: int
    starts_on: dt.date
    ends_on: dt.date

    def covers(self, *, casemanager_id: int | None, deputy_id: int, day: dt.date) -> bool:
        return (
            self.casemanager_id == casemanager_id
            and self.deputy_id == deputy_id
            and self.starts_on <= day <= self.ends_on
        )


def deputy_periods(deputy_ids: Iterable[int]) -> list[DeputyPeriod]:
    """Every period in which one of these staff members stood in for a colleague (for the notary's check
    that each look was the casemanager's or their deputy's)."""
    wanted = set(deputy_ids)
    if not wanted:
        return []
    rows = Deputy.objects.filter(deputy_id__in=wanted).values_list(
        "casemanager_id", "deputy_id", "starts_on", "ends_on"
    )
    return [DeputyPeriod(*row) for row in rows]


@dataclass(frozen=True)
class Reach:
    """Whose dossiers a casemanager may open now: their own, and those of colleagues they stand in for."""

    user_id: int
    standing_in_for: tuple[int, ...]

    @property
    def casemanager_ids(self) -> list[int]:
        return [self.user_id, *self.standing_in_for]

    def is_deputy_for(self, dossier: Dossier) -> bool:
        return dossier.casemanager_id != self.user_id


def reach_of(user: StaffUser) -> Reach:
    """What this staff member may open; nothing for anyone without the casemanager role."""
    if not has_role(user, Role.CASEMANAGER):
        return Reach(user_id=0, standing_in_for=())
    return Reach(user_id=user.pk, standing_in_for=tuple(absent_colleagues(user.pk)))


def visible_dossiers(reach: Reach) -> QuerySet[Dossier]:
    """The dossiers within reach that may be shown: open ones, and closed ones (read only) until retention
    unlinks them.

    A stopped participant's dossier is closed and its participant reference is random: ``live`` never finds
    it, so it is neither listed nor opened. Nor before that: the request batch closes it a day after the stop
    (casefiles.operations.close_dossier), and until then its reference names a stopped participant. Two
    checks live in the identity store and are made by the caller: that the dossier's casemanager still
    serves its organisation (``serves``), and that its participant is active (``live``); an inactive
    participant's dossier cannot be opened.
    """
    if not reach.user_id:
        return Dossier.objects.none()
    # Open or closed is sealed, and needs no asking here: an open dossier always has its index (only
    # retention destroys one, of a closed dossier at the term), so "still linked" covers both.
    return Dossier.objects.filter(pseudonym_index__isnull=False, casemanager_id__in=reach.casemanager_ids)


def participant_of(dossier: Dossier) -> tuple[uuid.UUID, str] | None:
    """The dossier's participant id and pseudonym P, opened; None for an unlinked dossier. After a stop both
    are random (Dossier.forget_participant): a pair no participant answers to."""
    if not dossier.participant_ref or not dossier.pseudonym:
        return None
    return uuid.UUID(dossier.participant_ref), dossier.pseudonym


def live(dossiers: Iterable[Dossier]) -> set[uuid.UUID]:
    """The ids of those dossiers whose participant is active now (one identity query for them all).

    Casemanagers see individual data of active participants only. Whether someone is active is read live
    from the identity store, never copied here: a copy flipped when they become inactive or come back would
    be a write in the casefiles store in the second they act (issue 18, the operator's attack).
    """
    pairs = {}
    for dossier in dossiers:
        found = participant_of(dossier)
        if found is not None:
            pairs[found[0]] = (dossier.pk, found[1])
    active = livecontact.active_among({participant: pair[1] for participant, pair in pairs.items()})
    return {pairs[participant][0] for participant in active}


def serves(dossier: Dossier, *, reach: Reach | None = None) -> bool:
    """Whether the dossier's casemanager still serves its organisation (linked, role, agreement); with
    ``reach``, also whether a deputy looking at it serves that organisation themselves."""
    if dossier.casemanager_id is None or dossier.organisation_id is None:
        return False
    if not casemanagers.is_serving(
        casemanager_id=dossier.casemanager_id, organisation_id=dossier.organisation_id
    ):
        return False
    # A deputy stands in only where they may work themselves: the admin's choice of a deputy is no link to
    # an organisation whose dossiers they may otherwise never be given.
    return (
        reach is None
        or not reach.is_deputy_for(dossier)
        or casemanagers.is_serving(casemanager_id=reach.user_id, organisation_id=dossier.organisation_id)
    )


def may_open(dossier: Dossier | None, reach: Reach) -> bool:
    """Whether the dossier found within reach may be opened: its casemanager still serves its organisation
    and its participant is active. The same identity queries run when nothing was found, so a number that is
    not within reach answers in the time of one that is (the refusals of issue 18 alike, in time too).
    """
    probe = dossier if dossier is not None else Dossier(casemanager_id=reach.user_id, organisation_id=0)
    serving = serves(probe, reach=reach)
    alive = live([probe] if dossier is not None else [])
    return dossier is not None and serving and dossier.pk in alive


def change_on_participants_request(*, pseudonym: str) -> bool:
    """The participant asked for another casemanager: their open dossier goes to the least busy colleague
    serving the organisation, logged as the participant's request. False when there is no open dossier or
    no other casemanager (the dossier then stays where it is)."""
    if not pseudonym:
        return False
    with transaction.atomic(using=CASEFILES):
        dossier = (
            Dossier.objects.select_for_update()
            .filter(pseudonym_index=crypto.casefiles_index(pseudonym))
            .first()
        )
        if dossier is None or not dossier.is_open or dossier.organisation_id is None:
            return False
        other = least_busy_casemanager(dossier.organisation_id, other_than=dossier.casemanager_id)
        if other is None:
            return False
        # The new casemanager owes them a first contact ("They will contact you", the account page says):
        # the dossier waits for it on their dashboard, as a new help request does.
        previous = dossier.casemanager_id
        # Saved, not update()d: the day is sealed to the row.
        dossier.casemanager_id, dossier.awaiting_contact_since = other, timezone.localdate()
        dossier.save(update_fields=["casemanager_id", "awaiting_contact_since"])
        accesslog.record_participant_request(
            AccessLogEntry.Action.REASSIGN,
            dossier_number=dossier.number,
            detail=f"from staff member {previous} to staff member {other}",
        )
        # Inside the help-request batch, which every store joins: the e-mail commits with the move.
        tell_casemanager(dossier)
    return True
