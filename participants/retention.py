"""The nightly anonymisation and retention run: what is no longer needed is destroyed, counted, and no more.

Each night (settings.CELERY_BEAT_SCHEDULE "anonymise-and-purge") this:

- anonymises, with the crypto-shredding of ``account.stop_participation`` done set-wise
  (``anonymise_participants``: contact data, blind indexes and the pseudonym link destroyed, the dossier
  queued to close, scores kept unlinked), every rule in one pass that ends by writing every participant
  row once, alike, when any rule changed one (``_one_pass``, participants.rewrite):
  at once everyone who declined; everyone of an organisation whose contract ended
  ``ANONYMISE_AFTER_CONTRACT_END_DAYS`` days ago; whoever the employer no longer lists, after
  ``ANONYMISE_UNLISTED_AFTER_DAYS``; and inactive participants silent for ``ANONYMISE_INACTIVE_AFTER_DAYS``;
- purges verification codes past their hour, account links past expiry, invitation links
  ``EXPIRED_INVITATION_KEEP_DAYS`` after expiry, and queued help requests and requests for another
  casemanager no batch took up within ``QUEUED_REQUEST_MAX_DAYS``; what the participant was told is done
  (a proven stop or correction, a pause or resume) and a stop's dossier close are kept until a batch takes
  them up, and warned of (``queued.waits_for_the_batch``);
- records what it did as counts on the day's ``AnonymisationRun`` row, never an id.

Idempotent: whoever it anonymised is stopped and matches no rule again (a row whose unlisting grace ended
leaves that rule, stopped before or not, see ``unlisted``), what it purged is gone, so a second run the same
night finds nothing and changes nothing, not even the summary.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

from django.conf import settings
from django.db import router, transaction
from django.db.models import F
from django.utils import timezone

from participants import account, queued, rewrite, verification
from participants.models import (
    AccountLink,
    AnonymisationRun,
    CodeFailure,
    ConsentEntry,
    ConsentRecord,
    FormerListedContact,
    Invitation,
    ListedEntry,
    Participant,
    ParticipantQuerySet,
    QueuedRequest,
    VerificationCode,
)
from participants.participation import participation_of
from participants.references import hour_indexes
from preventicons import messaging

logger = logging.getLogger(__name__)

# Expired invitations are deleted in chunks: bounded IN-lists.
CHUNK = 2_000
# Participants stopped per chunk of the night's pass (bounded IN lists); key parts per outbox cancellation.
ANONYMISE_PER_CHUNK = 1_000
CANCEL_PARTS_PER_QUERY = 200


@dataclass
class RetentionCounts:
    """What one run did. Counts only: the summary must not name anyone, not even by a row id."""

    declined_erased: int = 0
    contract_ended_anonymised: int = 0
    unlisted_anonymised: int = 0
    inactive_anonymised: int = 0
    codes_purged: int = 0
    invitations_purged: int = 0
    account_links_purged: int = 0
    queued_requests_purged: int = 0

    def any(self) -> bool:
        return any(asdict(self).values())


def _days(setting: str) -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, setting)))


def _not_stopped(candidates: ParticipantQuerySet) -> list[uuid.UUID]:
    # The status is sealed (participants.models): opened and decided here, in Python, never in SQL.
    return [pk for pk, status, _paused in candidates.states() if status != Participant.Status.STOPPED]


def declined() -> list[uuid.UUID]:
    """Everyone who declined: they asked to be left alone, so nothing of theirs waits for a grace period."""
    return Participant.objects.all().ids_with_status(Participant.Status.DECLINED)


def _contract_grace_end(today: dt.date) -> dt.date:
    """The latest contract_end whose grace period is over today."""
    return today - _days("ANONYMISE_AFTER_CONTRACT_END_DAYS") - dt.timedelta(days=1)


def of_ended_contracts(*, today: dt.date) -> list[uuid.UUID]:
    """Everyone of an organisation whose contract (its last day: contract_end) ended the grace period ago."""
    return _not_stopped(
        Participant.objects.filter(organisation__contract_end__lte=_contract_grace_end(today))
    )


def unlisted(*, today: dt.date) -> list[uuid.UUID]:
    """Whoever the employer's list has no longer named for the whole grace period, stopped or not.

    A stopped row is unlisted like anyone's (its listed hashes stay on it, review 4), so a night that left
    it alone would tell a stopper's among the rows a list dropped that day (tests/test_attacks_review7.py):
    every such row is taken, leaves the rule (its ``unlisted_on`` cleared), and the night's pass rewrites
    it with every other row. Not a status read.
    """
    return list(
        Participant.objects.filter(
            is_listed=False, unlisted_on__lte=today - _days("ANONYMISE_UNLISTED_AFTER_DAYS")
        ).values_list("pk", flat=True)
    )


def inactive_too_long(*, today: dt.date) -> list[uuid.UUID]:
    """Inactive participants whose last sign of life lies the configured period back.

    Their last sign of life is the last week they responded in, or, for someone who never responded,
    their last consent record (enrolment, pause or resume), or nothing at all (then it is long ago). The
    status and the last response week are sealed (participants.participation), so they are opened here.
    """
    cutoff = today - _days("ANONYMISE_INACTIVE_AFTER_DAYS")
    inactive = Participant.objects.all().ids_with_status(Participant.Status.INACTIVE)
    due = []
    for start in range(0, len(inactive), CHUNK):
        chunk = inactive[start : start + CHUNK]
        # Consent records name their participant only by a keyed index of their own, one per record
        # (participants.models.ConsentRecord): the walk finds them, the latest day is taken here.
        owner = ConsentRecord.objects.owners(chunk)
        last_consent: dict[uuid.UUID | str, dt.date] = {}
        for index, day in ConsentRecord.objects.filter(participant_index__in=list(owner)).values_list(
            "participant_index", "recorded_at"
        ):
            last_consent[owner[index]] = max(day, last_consent.get(owner[index], day))
        for participant in Participant.objects.filter(pk__in=chunk).iterator(chunk_size=2000):
            last_response = participation_of(participant).last_response_week
            last_sign = last_response or last_consent.get(participant.pk)
            if last_sign is None or last_sign <= cutoff:
                due.append(participant.pk)
    # Ids, not a queryset over them: an IN list of every inactive person could exceed the 65,535
    # parameters a statement takes with server-side binding; anonymise_participants works in chunks.
    return due


def anonymise_participants(*, participant_ids: list[uuid.UUID], unlisted: bool = False) -> int:
    """Stop these participants as ``account.stop_participation`` stops one; how many were not stopped yet.

    One pass of its own (``_one_pass``): every participant row of every organisation is rewritten once
    with theirs. With ``unlisted`` (the rows whose unlisting grace ends, retention.unlisted), every row
    taken, stopped before or not, leaves the rule (``unlisted_on`` cleared), so no later night takes it
    again.
    """
    with _one_pass() as night:
        return night.anonymise(participant_ids, unlisted=unlisted)


class _Night:
    """One pass of the night's anonymisation: whom its rules stopped (the pass's copies of their rows,
    participants.rewrite) and which rows leave the unlisting rule; written at the end of the pass."""

    def __init__(self, acted: dict[str, Participant]) -> None:
        self.acted = acted
        self.leaving_unlisted: set[str] = set()

    def anonymise(self, ids: list[uuid.UUID], *, unlisted: bool = False) -> int:
        """Stop whoever of ``ids`` is not stopped yet, in this pass; how many."""
        if unlisted:
            self.leaving_unlisted.update(str(pk) for pk in ids)
        stopped = 0
        for start in range(0, len(ids), ANONYMISE_PER_CHUNK):
            stopped += self._stop_chunk(ids[start : start + ANONYMISE_PER_CHUNK])
        return stopped

    def _not_stopped(self, ids: list[uuid.UUID]) -> list[uuid.UUID]:
        # A row a rule of this pass stopped already is a copy here (the table still holds it as it was);
        # every other row's status is opened from the table.
        fresh = [pk for pk in ids if str(pk) not in self.acted]
        return _not_stopped(Participant.objects.filter(pk__in=fresh))

    def _stop_chunk(self, ids: list[uuid.UUID]) -> int:
        locked = Participant.to_act_on_each(self._not_stopped(ids))
        if not locked:
            return 0
        pks = [participant.pk for participant in locked]
        # Opened now for the last time: after this pass nothing on the identity side can name P.
        pseudonyms = [participant.pseudonym or "" for participant in locked]
        consented: dict[uuid.UUID | str, str] = {}
        owner = ConsentRecord.objects.owners(pks)
        indexes = list(owner)
        given: list[ConsentRecord] = []
        for start in range(0, len(indexes), CANCEL_PARTS_PER_QUERY):
            given.extend(
                ConsentRecord.objects.filter(
                    participant_index__in=indexes[start : start + CANCEL_PARTS_PER_QUERY]
                ).opened(ConsentRecord.Kind.GIVEN)
            )
        # In the order opened() gives, across the queries: one person's records may come from several.
        for record in sorted(given, key=lambda record: (record.recorded_at, str(record.pk))):
            consented[owner[record.participant_index]] = record.text_version  # the latest wins
        # As a stop does: only the keyed hashes of the contacts the employer listed them under stay, on the
        # row (Participant.shredded), so a re-import meets them as before and the account-link form answers
        # for them as for anyone who stopped. "Anonymised" reads as "stopped" to the employer and to a dump.
        for participant in locked:
            # The pass's copy: written with every other row at the end of the pass (participants.rewrite).
            participant.shred()
        code_ids = list(VerificationCode.objects.naming(pks).values_list("pk", flat=True))
        parts = [account.participant_message_key_part(p) for p in locked] + [f"code:{pk}:" for pk in code_ids]
        # As a stop does: only those that hold an address or number in clear go now. The deferred ones (the
        # week's message, a link's reference only, and the link names its row) end at their claim, as a
        # stand-in's does: ended here, in the night, they named whose rows it erased (review 9).
        for start in range(0, len(parts), CANCEL_PARTS_PER_QUERY):
            messaging.cancel_pending(
                keys_containing=parts[start : start + CANCEL_PARTS_PER_QUERY], only_with_content=True
            )
        VerificationCode.objects.filter(pk__in=code_ids).delete()
        now = timezone.now()
        CodeFailure.objects.filter(
            participant_index__in=[index for pk in pks for index in hour_indexes(pk, now)]
        ).delete()
        # As a stop does: the invitation links keep naming the row (which is stopped now), and open nothing.
        AccountLink.objects.naming(pks).delete()
        today = timezone.localdate()
        ConsentRecord.objects.add_each(
            ConsentEntry(pk, ConsentRecord.Kind.WITHDRAWN, consented.get(pk, ""), today) for pk in pks
        )
        # As a stop does: their dossiers close in the first request batch of a later day, not in this pass.
        queued.queue_stop_closes(pseudonyms)
        return len(pks)


@contextmanager
def _one_pass() -> Iterator[_Night]:
    """One transaction, holding every organisation, in which the night's rules stop whom they take; if any
    rule changed a row, it ends by writing every participant row of every organisation once, alike
    (participants.rewrite), as a request batch with an act does.

    Written one by one, the rows the night erased told two dumps around it whom: the day's decliners, the
    inactive whose time ran out, the rows of an ended contract that had not stopped yet (review 7). Now
    every row changes in the same columns, carries the night's ``xmin`` and leaves one dead version, and
    every blind index is renewed under a new salt: nothing tells whose row the night erased. A night with
    nothing to do writes no row.
    """
    with transaction.atomic(using=router.db_for_write(Participant)):
        # First, in one order, as a request batch, an import and a week close take theirs: a stop, a batch
        # or an import running now waits for the night, or the night for it; and no row or index is written
        # between this pass's reads and its write.
        rewrite.hold_every_organisation()
        with rewrite.every_row_once() as acted:
            night = _Night(acted)
            yield night
            if acted or night.leaving_unlisted:
                rewrite.rewrite_every_row(acted, leaving_unlisted=night.leaving_unlisted)


def _purge_invitations(now: dt.datetime) -> int:
    # Every link past its keep period goes, whatever its person did. The newest link of someone still invited
    # used to stay, so the rows left with a link were those who never took part (review 5); and past this
    # period a link texts no code (enrolment.texts_its_code), so it could not ask for a new one anyway.
    expired = Invitation.objects.filter(expires_at__lte=now - _days("EXPIRED_INVITATION_KEEP_DAYS"))
    ids = list(expired.values_list("pk", flat=True))
    purged = 0
    for start in range(0, len(ids), CHUNK):
        purged += Invitation.objects.filter(pk__in=ids[start : start + CHUNK]).delete()[0]
    return purged


def run_retention(*, today: dt.date | None = None) -> RetentionCounts:
    """Anonymise and purge what is due today, then add the counts to today's summary; safe to run twice."""
    now = timezone.now()
    today = today or timezone.localdate(now)
    counts = RetentionCounts()
    # In this order, so someone matching several rules is counted once, under the strongest reason.
    with _one_pass() as night:
        # Read inside the pass, each after the one before: whoever an earlier rule stopped is skipped by the
        # later ones (night.anonymise), so someone matching several is counted once, under the first.
        counts.declined_erased = night.anonymise(declined())
        counts.contract_ended_anonymised = night.anonymise(of_ended_contracts(today=today))
        counts.unlisted_anonymised = night.anonymise(unlisted(today=today), unlisted=True)
        counts.inactive_anonymised = night.anonymise(inactive_too_long(today=today))
    with transaction.atomic():
        # A code's row also counts the rounds and failures of its hour (participants.verification): kept
        # until that hour is over, then worth nothing.
        counts.codes_purged = VerificationCode.objects.filter(
            expires_at__lte=now, created_at__lte=now - verification.WINDOW
        ).delete()[0]
        # A wrong code counts against the hourly budget for an hour after it was entered, then for nothing.
        CodeFailure.objects.filter(failed_at__lte=now - verification.WINDOW).delete()
        counts.account_links_purged = AccountLink.objects.filter(expires_at__lte=now).delete()[0]
        counts.invitations_purged = _purge_invitations(now)
        # The employer's last list (keyed hashes, for the import's preview) goes with the ended contract.
        ListedEntry.objects.filter(organisation__contract_end__lte=_contract_grace_end(today)).delete()
        FormerListedContact.objects.filter(
            organisation__contract_end__lte=_contract_grace_end(today)
        ).delete()
        # Not taken up within days means the batch is failing: the count in the summary is the alarm. A stop's
        # close is never purged untaken: it is the only way left to the dossier of someone who stopped, which
        # would otherwise stay open under a P nobody can name. Nor is what its person was told is done within
        # minutes: a proven stop (purged, it would keep their contact data and their messages), a proven
        # correction (perhaps their new number after the old one went to someone else) or a pause (a
        # restriction they asked for). They all wait for the batch, however late; only stale help requests
        # and requests for another casemanager go.
        stale = [
            row
            for row in QueuedRequest.objects.filter(queued_on__lte=today - _days("QUEUED_REQUEST_MAX_DAYS"))
        ]
        waiting = sum(1 for row in stale if queued.waits_for_the_batch(row))
        counts.queued_requests_purged = QueuedRequest.objects.filter(
            pk__in=[row.pk for row in stale if not queued.waits_for_the_batch(row)]
        ).delete()[0]
        _record_summary(today, counts)
    if counts.queued_requests_purged:
        logger.warning("retention: %d queued requests were never taken up", counts.queued_requests_purged)
    if waiting:
        logger.warning(
            "retention: %d participants' acts or stops' dossier closes still wait for the batch",
            waiting,
        )
    logger.info(
        "retention: anonymised %d declined, %d of ended contracts, %d unlisted, %d inactive; "
        "purged %d codes, %d invitations, %d account links, %d queued requests",
        counts.declined_erased,
        counts.contract_ended_anonymised,
        counts.unlisted_anonymised,
        counts.inactive_anonymised,
        counts.codes_purged,
        counts.invitations_purged,
        counts.account_links_purged,
        counts.queued_requests_purged,
    )
    return counts


def _record_summary(today: dt.date, counts: RetentionCounts) -> None:
    # The first run of the day records its counts, zeros too (the run happened); a later run adds its own,
    # and one with nothing to do writes nothing, so a second run the same night leaves the summary as it was.
    run, created = AnonymisationRun.objects.select_for_update().get_or_create(
        run_on=today, defaults=asdict(counts)
    )
    if not created and counts.any():
        AnonymisationRun.objects.filter(pk=run.pk).update(
            **{name: F(name) + value for name, value in asdict(counts).items()}
        )


def nightly_summaries(*, before: dt.date) -> dict[dt.date, RetentionCounts]:
    """The summary of every night before ``before``, by night: what the notary's ledger records. A night's
    row still grows while a later run that same day adds to it, hence only nights that have passed."""
    names = [field.name for field in fields(RetentionCounts)]
    return {
        run_on: RetentionCounts(**dict(zip(names, counts, strict=True)))
        for run_on, *counts in AnonymisationRun.objects.filter(run_on__lt=before)
        .order_by("run_on")
        .values_list("run_on", *names)
    }
