"""Participation ("took part this week"), derived only when a week closes, and coming back after a pause.

Submitting a score writes nothing on the participant's side (DESIGN.md, unlinkability rules). Instead the
week-close batch (scores.weekclose) hands over the set of pseudonyms that scored in a closed week, and this
module marks, for every active participant at once, whether they responded. After
``settings.INACTIVE_AFTER_WEEKS`` closed weeks in a row without a response a participant becomes inactive:
the weekly round sends them no links and their dossier is unavailable to casemanagers
(``participant_inactive``). They come back through their account page (``reactivate_participant``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from participants.models import ConsentRecord, Participant
from participants.signals import participant_inactive, participant_reactivated
from preventicons import crypto
from preventicons.dbrouter import ALIASES, DEFAULT

# Participants are read and updated in chunks: bounded memory, and IN-lists PostgreSQL plans well.
CHUNK = 5_000


@dataclass
class Participation:
    """What one closed week did to an organisation's active participants."""

    responded: int = 0
    missed: int = 0
    # Active participants who get no messages (paused, or no longer on the list) are neither.
    not_counted: int = 0
    became_inactive: list[str] = field(default_factory=list)  # participant ids, never pseudonyms
    # Pseudonyms with a score in the week that no participant holds any more: someone stopped while their
    # score was being recorded. The caller strips them (scores.weekclose); they are never logged.
    unheld: set[str] = field(default_factory=set, repr=False)


@contextlib.contextmanager
def every_store() -> Iterator[None]:
    """One transaction that every store joins; the identity store commits last."""
    # What a receiver writes in another store (casefiles marks the dossier) commits with this or not at all;
    # the identity store commits last, as in account.stop_participation.
    with contextlib.ExitStack() as stores:
        stores.enter_context(transaction.atomic(using=DEFAULT))
        for alias in ALIASES:
            if alias != DEFAULT:
                stores.enter_context(transaction.atomic(using=alias))
        yield


def _open_pseudonym(pk: uuid.UUID, sealed: str) -> str:
    # Opened from values_list rows rather than model instances: the same binding the field uses
    # (fields.EncryptedTextField.binding_for), at a fraction of the cost for 100,000 rows.
    column = Participant._meta.get_field("pseudonym")
    binding = crypto.Binding("pseudonym_link", Participant._meta.db_table, str(column.column), str(pk))
    return crypto.open_sealed(sealed, binding)


def inactive_after_weeks() -> int:
    return int(settings.INACTIVE_AFTER_WEEKS)


def record_participation(*, organisation_id: int, week: dt.date, responded: set[str]) -> Participation:
    """Mark each active participant of the organisation as having responded in ``week`` or not, once.

    ``responded`` holds the pseudonyms with a score in that week. Call exactly once per organisation and
    week, in order of weeks (scores.weekclose guarantees both through its ClosedWeek row): a second call
    would count a missed week twice. Whoever reaches ``INACTIVE_AFTER_WEEKS`` misses becomes inactive and
    ``participant_inactive`` is sent for them. Those of ``responded`` that no participant holds (active or
    inactive) come back as ``unheld``.
    """
    limit = inactive_after_weeks()
    outcome = Participation()
    responded_ids: list[uuid.UUID] = []
    missed_ids: list[uuid.UUID] = []
    reaching_limit: list[uuid.UUID] = []
    held: set[str] = set()
    # Everyone who holds a pseudonym: the active, counted below, and the inactive, who only hold theirs.
    rows = Participant.objects.filter(organisation_id=organisation_id, pseudonym__isnull=False).values_list(
        "pk", "status", "pseudonym", "is_listed", "messages_paused", "weeks_without_response"
    )
    with every_store():
        for pk, status, sealed, is_listed, paused, without in rows.iterator(chunk_size=CHUNK):
            # Nothing to open in a week without any score.
            opened = _open_pseudonym(pk, sealed) if responded and sealed else ""
            answered = opened in responded
            if answered:
                held.add(opened)
            if status != Participant.Status.ACTIVE:
                continue
            if answered:
                responded_ids.append(pk)
            elif is_listed and not paused:
                missed_ids.append(pk)
                if without + 1 >= limit:
                    reaching_limit.append(pk)
            else:
                # No link reached them: a week they could not answer says nothing about them.
                outcome.not_counted += 1
        for start in range(0, len(responded_ids), CHUNK):
            Participant.objects.filter(pk__in=responded_ids[start : start + CHUNK]).update(
                last_response_week=week, weeks_without_response=0
            )
        for start in range(0, len(missed_ids), CHUNK):
            Participant.objects.filter(pk__in=missed_ids[start : start + CHUNK]).update(
                weeks_without_response=F("weeks_without_response") + 1
            )
        outcome.responded, outcome.missed = len(responded_ids), len(missed_ids)
        outcome.unheld = responded - held
        # Few rows: locked and checked again, so a participant who stopped meanwhile is not made inactive.
        for participant in Participant.objects.select_for_update().filter(
            pk__in=reaching_limit, status=Participant.Status.ACTIVE
        ):
            pseudonym = participant.pseudonym
            participant.status = Participant.Status.INACTIVE
            participant.save(update_fields=["status"])
            outcome.became_inactive.append(str(participant.pk))
            if pseudonym:
                participant_inactive.send(
                    sender=Participant, pseudonym=pseudonym, organisation_id=participant.organisation_id
                )
    return outcome


def reactivate_participant(*, participant: Participant) -> bool:
    """An inactive participant is active again: weekly links from the next round, dossier available again.

    Returns False (changing nothing) when they were not inactive. Meant for the participant's own account
    page, after they opened it through their e-mailed link; ``participant_reactivated`` is sent with P.
    """
    with every_store():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.status != Participant.Status.INACTIVE:
            return False
        locked.status = Participant.Status.ACTIVE
        locked.weeks_without_response = 0
        locked.save(update_fields=["status", "weeks_without_response"])
        if locked.pseudonym:
            participant_reactivated.send(
                sender=Participant, pseudonym=locked.pseudonym, organisation_id=locked.organisation_id
            )
    participant.refresh_from_db()
    return True


def record_contact_consent(*, participant: Participant, text_version: str) -> ConsentRecord:
    """A dated record that the participant agreed to be contacted by a casemanager, under this text."""
    return ConsentRecord.objects.create(
        participant=participant,
        kind=ConsentRecord.Kind.CONTACT,
        text_version=text_version,
        recorded_at=timezone.now(),
    )
