"""The nightly anonymisation and retention run: what is no longer needed is destroyed, counted, and no more.

Each night (settings.CELERY_BEAT_SCHEDULE "anonymise-and-purge") this:

- anonymises, with the crypto-shredding that stopping does (``account.stop_participation``: contact data,
  blind indexes and the pseudonym link destroyed, the dossier closed and unlinked, scores kept unlinked):
  at once everyone who declined; everyone of an organisation whose contract ended
  ``ANONYMISE_AFTER_CONTRACT_END_DAYS`` days ago; whoever the employer no longer lists, after
  ``ANONYMISE_UNLISTED_AFTER_DAYS``; and inactive participants silent for ``ANONYMISE_INACTIVE_AFTER_DAYS``;
- purges verification codes past their hour, account links past expiry, invitation links
  ``EXPIRED_INVITATION_KEEP_DAYS`` after expiry, and help requests no batch took up within
  ``QUEUED_HELP_REQUEST_MAX_DAYS``;
- records what it did as counts on the day's ``AnonymisationRun`` row, never an id.

Idempotent: whoever it anonymised is stopped and matches no rule again, what it purged is gone, so a second
run the same night finds nothing and changes nothing, not even the summary.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from participants import account, verification
from participants.models import (
    AccountLink,
    AnonymisationRun,
    Invitation,
    Participant,
    QueuedHelpRequest,
    VerificationCode,
)

logger = logging.getLogger(__name__)

# Expired invitations are deleted in chunks: bounded IN-lists.
CHUNK = 2_000


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
    help_requests_purged: int = 0

    def any(self) -> bool:
        return any(asdict(self).values())


def _days(setting: str) -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, setting)))


def _not_stopped() -> QuerySet[Participant]:
    return Participant.objects.exclude(status=Participant.Status.STOPPED)


def declined() -> QuerySet[Participant]:
    """Everyone who declined: they asked to be left alone, so nothing of theirs waits for a grace period."""
    return Participant.objects.filter(status=Participant.Status.DECLINED)


def of_ended_contracts(*, today: dt.date) -> QuerySet[Participant]:
    """Everyone of an organisation whose contract (its last day: contract_end) ended the grace period ago."""
    last_day = today - _days("ANONYMISE_AFTER_CONTRACT_END_DAYS") - dt.timedelta(days=1)
    return _not_stopped().filter(organisation__contract_end__lte=last_day)


def unlisted(*, today: dt.date) -> QuerySet[Participant]:
    """Whoever the employer's list has no longer named for the whole grace period."""
    return _not_stopped().filter(
        is_listed=False, unlisted_on__lte=today - _days("ANONYMISE_UNLISTED_AFTER_DAYS")
    )


def inactive_too_long(*, today: dt.date) -> QuerySet[Participant]:
    """Inactive participants whose last sign of life lies the configured period back.

    Their last sign of life is the last week they responded in, or, for someone who never responded,
    their last consent record (enrolment, pause or resume), or nothing at all (then it is long ago).
    """
    cutoff = today - _days("ANONYMISE_INACTIVE_AFTER_DAYS")
    return (
        Participant.objects.filter(status=Participant.Status.INACTIVE)
        .annotate(last_consent=Max("consents__recorded_at"))
        .filter(
            Q(last_response_week__lte=cutoff)
            | Q(last_response_week__isnull=True, last_consent__lte=cutoff)
            | Q(last_response_week__isnull=True, last_consent__isnull=True)
        )
    )


def anonymise_participant(*, participant_id: uuid.UUID) -> bool:
    """Destroy their contact data, blind indexes and pseudonym link, as a stop does; False if already done.

    The same crypto-shredding as a participant's own stop (``account.stop_participation``), so the same
    receivers close and unlink their dossier and their scores stay, counted but belonging to nobody.
    """
    participant = Participant.objects.filter(pk=participant_id).first()
    if participant is None or participant.status == Participant.Status.STOPPED:
        return False
    account.stop_participation(participant=participant)
    return True


def _anonymise_all(candidates: QuerySet[Participant]) -> int:
    # Read when called: whoever an earlier rule of this run anonymised is stopped and no longer matches.
    return sum(
        anonymise_participant(participant_id=pk) for pk in list(candidates.values_list("pk", flat=True))
    )


def _purge_invitations(now: dt.datetime) -> int:
    # The newest invitation of someone still invited stays: it tells the reminders that they were invited
    # (participants.enrolment.send_enrolment_reminders), and its link can still ask for a new one.
    newest = Invitation.objects.filter(participant=OuterRef("participant")).order_by("-expires_at", "-pk")
    expired = Invitation.objects.filter(expires_at__lte=now - _days("EXPIRED_INVITATION_KEEP_DAYS")).annotate(
        newest=Subquery(newest.values("pk")[:1])
    )
    keep = Q(participant__status=Participant.Status.INVITED, pk=F("newest"))
    ids = list(expired.exclude(keep).values_list("pk", flat=True))
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
    counts.unlisted_anonymised = _anonymise_all(unlisted(today=today))
    counts.inactive_anonymised = _anonymise_all(inactive_too_long(today=today))
    with transaction.atomic():
        # A code's row also counts the rounds and failures of its hour (participants.verification): kept
        # until that hour is over, then worth nothing.
        counts.codes_purged = VerificationCode.objects.filter(
            expires_at__lte=now, created_at__lte=now - verification.WINDOW
        ).delete()[0]
        counts.account_links_purged = AccountLink.objects.filter(expires_at__lte=now).delete()[0]
        counts.invitations_purged = _purge_invitations(now)
        # Not taken up within days means the batch is failing: the count in the summary is the alarm.
        counts.help_requests_purged = QueuedHelpRequest.objects.filter(
            queued_on__lte=today - _days("QUEUED_HELP_REQUEST_MAX_DAYS")
        ).delete()[0]
        _record_summary(today, counts)
    if counts.help_requests_purged:
        logger.warning("retention: %d queued help requests were never taken up", counts.help_requests_purged)
    logger.info("retention run of %s: %s", today, counts)
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
