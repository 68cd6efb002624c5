"""The nightly anonymisation and retention run: what is no longer needed is destroyed, counted, and no more.

Each night (settings.CELERY_BEAT_SCHEDULE "anonymise-and-purge") this:

- anonymises, with the crypto-shredding of ``account.stop_participation`` done set-wise
  (``anonymise_participants``: contact data, blind indexes and the pseudonym link destroyed, the dossier
  queued to close, scores kept unlinked):
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
from dataclasses import asdict, dataclass, fields

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from participants import account, queued, verification
from participants.models import (
    AccountLink,
    AnonymisationRun,
    CodeFailure,
    ConsentEntry,
    ConsentRecord,
    Invitation,
    ListedEntry,
    Organisation,
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
# Participants stopped per transaction, and key parts per outbox cancellation.
ANONYMISE_PER_TRANSACTION = 1_000
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

    A stopped row is unlisted like anyone's (its listed hashes stay on it, review 4), so one the night left
    alone would be a stopper's among the rows a list dropped that day (tests/test_attacks_review7.py):
    anonymise_participants(unlisted=True) rewrites it alike. Not a status read: every such row is taken.
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

    With ``unlisted`` (the rows whose unlisting grace ends, retention.unlisted), a row already stopped is
    shredded again in the same transaction, its columns rewritten as an anonymised row's are, and every row
    taken leaves the rule (``unlisted_on`` cleared), so no later night takes it again: the rows this night
    rewrites are all those whose grace ended, whatever each person did.

    The same crypto-shredding, row for row (tests/participants/test_retention.py holds the two side by
    side): name, e-mail, mobile, blind indexes and the sealed pseudonym destroyed (look-alikes of the same
    length in their place, participants.models.Participant.shred), status stopped, the department kept;
    the keyed hashes the employer's list names them by kept on the row; their pending
    messages cancelled; their codes and account links deleted, their invitation links left naming the row
    and opening nothing (as a stop leaves them); a dated
    withdrawal recorded under the consent text they had agreed to; and each P queued sealed
    (queued.queue_stop_closes), so the first request batch of a later day closes their dossier and it
    leads to nobody; their scores stay, counted, nobody's.
    Set-wise, one transaction per chunk: a stop per person costs some twenty statements and a commit, which
    for 10,000 people would not fit in a night's minute.
    """
    stopped = 0
    for start in range(0, len(participant_ids), ANONYMISE_PER_TRANSACTION):
        with transaction.atomic():
            stopped += _stop_chunk(participant_ids[start : start + ANONYMISE_PER_TRANSACTION], unlisted)
    return stopped


def _stop_chunk(ids: list[uuid.UUID], unlisted: bool = False) -> int:
    # Their organisations first, in one order, as an import and a stop take them: an import that read these
    # rows before the night would otherwise write what it decided from them back onto the erased rows.
    organisation_ids = set(Participant.objects.filter(pk__in=ids).values_list("organisation_id", flat=True))
    list(Organisation.objects.select_for_update(no_key=True).filter(pk__in=organisation_ids).order_by("pk"))
    # Locked, as stop_participation locks its one row: a stop or a help batch running now waits for us.
    rows = list(
        Participant.objects.select_for_update()
        .filter(pk__in=ids)
        # Every column shred() replaces: the look-alikes take the length of what they replace.
        .only("pk", "organisation_id", *Participant.sealed_columns(), *Participant.shredded())
    )
    locked = [participant for participant in rows if participant.status != Participant.Status.STOPPED]
    # With ``unlisted`` the stopped among them are shredded again with the others, in one pass in the rows'
    # own order, so neither the columns, the transaction nor the new row versions' order tells them apart.
    rewritten = rows if unlisted else locked
    if not rewritten:
        return 0
    pks = [participant.pk for participant in locked]
    # Opened now for the last time: after this transaction nothing on the identity side can name P.
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
    # As a stop does: only the keyed hashes of the contacts the employer listed them under stay, on the row
    # (Participant.shredded), so a re-import meets them as before and the account-link form answers for them
    # as for anyone who stopped. "Anonymised" reads as "stopped" to the employer and to a dump.
    for participant in rewritten:
        # Row by row: the sealed status is bound to its row, so no single UPDATE can write it.
        participant.shred()
    if unlisted:
        # Every row taken leaves the rule, so no later night rewrites it again (anonymise_participants).
        Participant.objects.filter(pk__in=[participant.pk for participant in rows]).update(unlisted_on=None)
    if not locked:
        return 0
    code_ids = list(VerificationCode.objects.naming(pks).values_list("pk", flat=True))
    parts = [account.participant_message_key_part(p) for p in locked] + [f"code:{pk}:" for pk in code_ids]
    for start in range(0, len(parts), CANCEL_PARTS_PER_QUERY):
        messaging.cancel_pending(keys_containing=parts[start : start + CANCEL_PARTS_PER_QUERY])
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
    # As a stop does: their dossiers close in the first request batch of a later day, not in this transaction.
    queued.queue_stop_closes(pseudonyms)
    return len(pks)


def _anonymise_all(ids: list[uuid.UUID]) -> int:
    # Read when called: whoever an earlier rule of this run anonymised is stopped and no longer matches (and
    # anonymise_participants skips anyone already stopped).
    return anonymise_participants(participant_ids=ids)


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
    counts.declined_erased = _anonymise_all(declined())
    counts.contract_ended_anonymised = _anonymise_all(of_ended_contracts(today=today))
    counts.unlisted_anonymised = anonymise_participants(participant_ids=unlisted(today=today), unlisted=True)
    counts.inactive_anonymised = _anonymise_all(inactive_too_long(today=today))
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
