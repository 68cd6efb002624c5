"""Requests for contact with a casemanager, and pausing or resuming messages: queued sealed, done in batches.

A help request is asked from the thank-you page of a weekly link, seconds after a score was written. Were
its consent and dossier written then, their ``xmin`` would sit next to the score's and the dossier table
would list dossiers in the order people asked, which ties a score, a person and a dossier together
(issue 14, "no write that sits next to a score"). So asking writes one row here, sealed, and the batch
(``scores.wellbeing.take_up_help_requests``, every ``HELP_REQUEST_BATCH_MINUTES``) takes up every pending
request in one transaction, in random order, and deletes the rows in that same transaction.

Pausing and resuming messages from the account page go the same way (issue 14: "an account change, pause
or stop is not written in the same second as that person's tap"): the batch applies them through
``account.pause_messages``. A request for another casemanager goes the same way, and so do a stop and a
correction of one's details once both codes prove them (``confirm_stop``, ``confirm_change``), an
inactive participant's return (``queue_rejoin``) and an invited person's no (``confirm_decline``): the batch
stops them (``account.stop_participation``), applies the new values (``account.apply_change``), makes them
active again (``participation.reactivate_participant``) or declined (``enrolment.decline_participation``),
so the participant row is not rewritten in the minute of their last tap or click. Every kind shares one
table, padded to one length, and the kind is sealed too.

A stop's dossier close goes the same way (issue 14, "a stop still rewrites its dossier row when it
happens"): ``account.stop_participation`` (and the nightly anonymisation) queues P sealed here, in the stop's
transaction, instead of closing the dossier in it; the first batch of a later day hands P to the casefiles
app (``participant_stopped``), which closes the dossier and logs the close as the participant's. Held a
day, so a batch closes the dossiers of every stop of a day at once, with that day's help requests of the
night: the row's rewrite and the log entry tell the day of a stop, not its minute. Nothing else on the
identity side names P after the stop: the batch deletes the row in the transaction that closes the
dossier, and retention never purges it untaken (participants.retention). Until then the casemanager
cannot open the dossier or see it listed: they see individual data of active participants only
(casefiles.assignment.live).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections, router, transaction
from django.utils import timezone

from participants import account, enrolment, participation, rewrite
from participants.models import ConsentRecord, Invitation, Participant, QueuedRequest, hold_index_salts
from participants.queued import (
    CASEMANAGER,
    CHANGE,
    CHANGED_FIELDS,
    DECLINE,
    ENROLMENT,
    HELP,
    PAUSE,
    REJOIN,
    STOP,
    STOP_CLOSE,
    is_pending,
    opened,
    sealed,
)

# The acts that only move a participant from one status to another, each applied by its own function, which
# returns False (changing nothing) when the participant is no longer in the status it leaves.
_STATUS_CHANGES: dict[str, Callable[..., bool]] = {
    REJOIN: participation.reactivate_participant,
    DECLINE: enrolment.decline_participation,
}


@dataclass(frozen=True)
class AcceptedHelpRequest:
    """A request taken up for a participant still taking part: their consent is recorded."""

    pseudonym: str
    channel: str
    consent_version: str
    consented_on: dt.date
    # For the dossier only, which keeps it sealed: the casemanager reads the contact details live through it,
    # and a dossier is assigned to a casemanager serving the organisation.
    participant_id: uuid.UUID
    organisation_id: int


@dataclass(frozen=True)
class TakenUp:
    """What one batch did: the requests accepted (in random order) and how many it dropped."""

    accepted: list[AcceptedHelpRequest]
    # Asked by someone who stopped, or is no longer active, before the batch came: nothing is recorded.
    dropped: int
    # Pause or resume requests that changed something (a repeated one changes nothing).
    pauses_changed: int = 0
    # The pseudonyms P of active participants who asked for another casemanager, in random order.
    casemanager_changes: list[str] = field(default_factory=list)
    # Stops done, and corrections applied (a correction someone else's address overtook is dropped).
    stops: int = 0
    changes: int = 0
    # Inactive participants taking part again (a rejoin of someone not inactive any more is dropped).
    rejoins: int = 0
    # Invited people saying no (dropped when they enrolled after all before the batch).
    declines: int = 0
    # Invited people joining (dropped when someone else took a corrected address or number since).
    enrolments: int = 0
    # The pseudonyms P of participants who stopped on an earlier day, in random order: their dossiers close.
    stop_closes: list[str] = field(default_factory=list)


def _queue(request: dict[str, str | bool]) -> None:
    sealed(request).save(force_insert=True)


def queue_help_request(*, participant: Participant, channel: str, consent_version: str) -> None:
    """Queue the request, sealed: who asked, the channel and the consent version open only with the key.

    Writes this one row and nothing else; the caller has checked the channel and that they take part.
    """
    _queue(
        {
            "kind": HELP,
            "participant": str(participant.pk),
            "channel": channel,
            "consent_version": consent_version,
        }
    )


def queue_pause_change(*, participant: Participant, paused: bool) -> None:
    """Queue pausing (or resuming) all messages to them; the next batch applies it (account.pause_messages).

    A batch applies its requests in random order and keeps no time of day, so an earlier pending pause
    change of the same participant is replaced, never applied after this one: the last choice wins.
    """
    _replace_pending({"kind": PAUSE, "participant": str(participant.pk), "paused": paused})


def queue_rejoin(*, participant: Participant) -> None:
    """Queue an inactive participant's return; the next batch makes them active again.

    Asked from the account page; the batch applies it (participation.reactivate_participant). Asking twice
    before the batch leaves one request.
    """
    _replace_pending({"kind": REJOIN, "participant": str(participant.pk)})


def confirm_decline(*, invitation: Invitation) -> bool:
    """Check that this link may say no (enrolment.prove_decline) and queue the decline for the next batch.

    Raises enrolment.EnrolmentRefused, queueing nothing, without the link's SMS code. False, queueing
    nothing, when its person is no longer only invited. Saying no twice queues one decline.
    """
    if not enrolment.prove_decline(invitation=invitation):
        return False
    _replace_pending({"kind": DECLINE, "participant": str(invitation.invitee.pk)})
    return True


def confirm_enrolment(
    *,
    invitation: Invitation,
    weekly_channel: str = Participant.WeeklyChannel.SMS,
    with_codes: bool = False,
    expired_ok: bool = False,
    name: str | None = None,
) -> Participant:
    """Check that this link's person may join as they chose (enrolment.prove_enrolment) and queue it; the
    participant, as the table still holds them.

    The next batch makes them a participant (account.apply_enrolment) with everyone else's requests, and
    writes every row alike (participants.rewrite): their row is not written in the minute they join, which
    told whoever reads the database that it joined (issue 14). Raises enrolment.EnrolmentRefused, queueing
    nothing, as prove_enrolment does; a second enrolment before the batch is refused there.
    """
    with transaction.atomic(using=router.db_for_write(QueuedRequest)):
        # The queue first, as the batch takes it first (see _lock_the_queue).
        _lock_the_queue()
        # Then the organisation, shared, before the row is read: an import (which takes it FOR NO KEY
        # UPDATE) either wrote before this reads, or reads the queue after this commits, and so never writes
        # the list's contact data on a row whose joining waits (importing._update_fields).
        hold_index_salts([invitation.invitee.organisation_id])
        proven = enrolment.prove_enrolment(
            invitation=invitation,
            weekly_channel=weekly_channel,
            with_codes=with_codes,
            expired_ok=expired_ok,
            name=name,
        )
        _replace_pending({"kind": ENROLMENT, **proven.request()})
    return invitation.invitee


def enrolment_pending(participant: Participant) -> bool:
    """Whether this person's enrolment waits for the next batch (confirm_enrolment)."""
    return is_pending(ENROLMENT, participant.pk)


def queue_casemanager_change(*, participant: Participant) -> None:
    """Queue the request for another casemanager; the next batch hands their dossier to a colleague.

    Asking twice before the batch leaves one request: a second one replaces the first.
    """
    _replace_pending({"kind": CASEMANAGER, "participant": str(participant.pk)})


def confirm_stop(*, participant: Participant, email_code: str, sms_code: str) -> account.Confirmation:
    """Check the stop's codes (account.prove_stop) and, once proven, queue the stop for the next batch.

    The batch stops them (account.stop_participation) with everyone else's requests, in random order: a
    stop is not written in the second of their last tap (issue 14). Asking twice queues one stop.
    """
    with transaction.atomic(using=router.db_for_write(QueuedRequest)):
        _lock_the_queue()
        confirmation = account.prove_stop(participant=participant, email_code=email_code, sms_code=sms_code)
        if confirmation.done:
            _replace_pending({"kind": STOP, "participant": str(participant.pk)})
    return confirmation


def confirm_change(
    *, participant: Participant, email_code: str, sms_code: str, sealed_name: str | None = None
) -> account.Confirmation:
    """Check a correction's codes (account.prove_change) and, once proven, queue the new values.

    The next batch applies them (account.apply_change). A second correction before the batch is merged
    into the first, field by field, the later value winning: nothing proven is lost.
    """
    with transaction.atomic(using=router.db_for_write(QueuedRequest)):
        _lock_the_queue()
        confirmation = account.prove_change(
            participant=participant, email_code=email_code, sms_code=sms_code, sealed_name=sealed_name
        )
        change = confirmation.change
        if confirmation.done and change is not None:
            values = {name: getattr(change, name) for name in CHANGED_FIELDS}
            _replace_pending(
                {"kind": CHANGE, "participant": str(participant.pk)},
                merge={name: value for name, value in values.items() if value},
            )
    return confirmation


def _lock_the_queue() -> None:
    # The queue's rows first, as the batch takes them first (take_up_pending): proving a stop or a
    # correction deletes the round's codes, and a batch stopping that same person deletes their codes while
    # it holds the queue. Taken the other way round each waited for the other, and PostgreSQL aborted one
    # (tests/test_attacks_review5.py). Now the confirmation waits for a running batch, then goes on.
    list(QueuedRequest.objects.select_for_update().values_list("pk", flat=True))


def _replace_pending(request: dict[str, str | bool], *, merge: dict[str, str] | None = None) -> None:
    """Queue ``request`` in place of the same participant's pending request of the same kind, if any.

    With ``merge``, the earlier request's values are kept and ``merge``'s laid over them.
    """
    with transaction.atomic(using=router.db_for_write(QueuedRequest)):
        # The queue holds at most one batch interval of requests: opening them all is cheap.
        earlier = []
        values: dict[str, str] = {}
        for queued in QueuedRequest.objects.select_for_update():
            pending = opened(queued)
            if pending["kind"] == request["kind"] and pending.get("participant") == request["participant"]:
                earlier.append(queued.pk)
                values.update({name: pending[name] for name in CHANGED_FIELDS if pending.get(name)})
        QueuedRequest.objects.filter(pk__in=earlier).delete()
        _queue({**request, **values, **merge} if merge is not None else request)


def _record_contact_consent(participant: Participant, *, text_version: str, on: dt.date) -> None:
    # One dated record per participant, text and day: a second request that day, or a batch retried after
    # a crash between the stores' commits, finds it and adds nothing a dump could count.
    same_day = (
        ConsentRecord.objects.of(participant.pk).filter(recorded_at=on).opened(ConsentRecord.Kind.CONTACT)
    )
    if not any(record.text_version == text_version for record in same_day):
        ConsentRecord.objects.add(
            participant.pk,
            kind=ConsentRecord.Kind.CONTACT,
            text_version=text_version,
            recorded_at=on,
        )


def take_up_pending(*, today: dt.date | None = None) -> TakenUp:
    """Take up every queued request inside the caller's transaction; the queue is empty when it commits,
    but for the stops' closes queued ``today``, which the first batch of the next day takes up with the rest
    of that day's (a batch so carries the closes of every stop of one day at once, never of one alone).

    Must run inside a transaction that every store joins (preventicons.dbrouter.every_store), with
    the caller opening the dossiers of what is returned in that same transaction: the rows are deleted,
    and the consents recorded, only if it commits. The requests are handled, and the consent rows written,
    in random order (secrets.SystemRandom), so nothing stored follows the order in which people asked.
    A help request of someone no longer active, or without a pseudonym, records nothing; a pause change and
    a correction apply to anyone not stopped, a rejoin to someone still inactive, a decline to someone still
    only invited; a stop stops them and drops whatever else they asked in the batch. A stop's close is handed
    on with its P, whoever it was (``stop_closes``).
    """
    today = today or timezone.localdate()
    alias = router.db_for_write(QueuedRequest)
    if not connections[alias].in_atomic_block:
        raise RuntimeError("take_up_pending runs inside the batch's transaction (every_store)")
    # Locked: a second batch running at the same time waits, then finds the rows gone.
    pending = list(QueuedRequest.objects.select_for_update())
    secrets.SystemRandom().shuffle(pending)
    # Whoever stops in this batch gets nothing else of it: taken in random order, a help request (asked
    # after the stop was confirmed, through a weekly link that still works until now) would otherwise open
    # a dossier under their P and mail a casemanager, or a correction send its notice, before the stop.
    requests = [(queued, opened(queued)) for queued in pending]
    # Enrolments first (in their random order): whatever else a person asked in the batch (a pause, a
    # correction, a stop from the account page they opened right after joining) applies to the participant
    # they became, and a decline after joining is dropped.
    requests.sort(key=lambda request: request[1]["kind"] != ENROLMENT)
    if any(request["kind"] != STOP_CLOSE for _queued, request in requests):
        # Every organisation, in one order (as a stop, an import and the nightly anonymisation take theirs
        # first): a stop or anonymisation running now waits for the batch, or the batch for it, so nobody
        # stopped opens a dossier. Not the requesters' participant rows: a lock writes the batch's
        # transaction into a row's xmax, which would tell whoever reads the live database or its files
        # whose requests the batch took up (tests/test_attacks_consent.py). All of them, so the locks
        # tell nothing of whose organisation asked either. Not FOR UPDATE, which held every first tap until
        # the batch committed while a repeated tap (inserting nothing) answered at once: whoever holds a
        # weekly link learnt from one tap whether the week was answered (tests/test_attacks_review5.py).
        rewrite.hold_every_organisation()
    stopping = {request.get("participant") for _queued, request in requests if request["kind"] == STOP}
    accepted: list[AcceptedHelpRequest] = []
    dropped = 0
    pauses_changed = 0
    casemanager_changes: list[str] = []
    stops = changes = enrolments = 0
    status_changes: Counter[str] = Counter()
    stop_closes: list[str] = []
    taken: list[QueuedRequest] = []
    with rewrite.every_row_once() as acted:
        for queued, request in requests:
            if request["kind"] == STOP_CLOSE:
                # No participant row names P any more: it is handed on as it was queued.
                if queued.queued_on < today:
                    stop_closes.append(request["pseudonym"])
                    taken.append(queued)
                continue
            taken.append(queued)
            if request["kind"] != STOP and request.get("participant") in stopping:
                dropped += 1
                continue
            # Read, not locked (see above); the batch's copy once an act of this batch changed it, so what the
            # next request sees is what the acts before it did (participants.rewrite).
            participant = acted.get(request["participant"]) or (
                Participant.objects.filter(pk=uuid.UUID(request["participant"])).first()
            )
            if request["kind"] == ENROLMENT:
                joined = participant is not None and account.apply_enrolment(
                    participant=participant, request=request
                )
                if joined:
                    enrolments += 1
                else:
                    dropped += 1
                continue
            if request["kind"] == CASEMANAGER:
                if (
                    participant is None
                    or participant.status != Participant.Status.ACTIVE
                    or not participant.pseudonym
                ):
                    dropped += 1
                else:
                    casemanager_changes.append(participant.pseudonym)
                continue
            if request["kind"] == STOP:
                if participant is None or participant.status == Participant.Status.STOPPED:
                    dropped += 1
                else:
                    account.stop_participation(participant=participant)
                    stops += 1
                continue
            if request["kind"] == CHANGE:
                change = account.ProvenChange(**{name: request.get(name) for name in CHANGED_FIELDS})
                if participant is not None and account.apply_change(participant=participant, change=change):
                    changes += 1
                else:
                    dropped += 1
                continue
            if request["kind"] in _STATUS_CHANGES:
                # Each says itself whether it still applies (False: joined after all, or no longer inactive).
                if participant is not None and _STATUS_CHANGES[request["kind"]](participant=participant):
                    status_changes[request["kind"]] += 1
                else:
                    dropped += 1
                continue
            if request["kind"] == PAUSE:
                if participant is None or participant.status == Participant.Status.STOPPED:
                    dropped += 1
                else:
                    pauses_changed += account.pause_messages(
                        participant=participant, paused=bool(request["paused"])
                    )
                continue
            pseudonym = participant.pseudonym if participant is not None else None
            if participant is None or participant.status != Participant.Status.ACTIVE or not pseudonym:
                dropped += 1
                continue
            _record_contact_consent(participant, text_version=request["consent_version"], on=queued.queued_on)
            accepted.append(
                AcceptedHelpRequest(
                    pseudonym=pseudonym,
                    channel=request["channel"],
                    consent_version=request["consent_version"],
                    consented_on=queued.queued_on,
                    participant_id=participant.pk,
                    organisation_id=participant.organisation_id,
                )
            )
        if pauses_changed or stops or changes or status_changes or enrolments:
            # Every row of every organisation once, alike: which rows the acts changed, and how, is in no
            # xmin, ciphertext, index or dead row version (participants.rewrite).
            rewrite.rewrite_every_row(acted)
    QueuedRequest.objects.filter(pk__in=[queued.pk for queued in taken]).delete()
    return TakenUp(
        accepted=accepted,
        dropped=dropped,
        pauses_changed=pauses_changed,
        casemanager_changes=casemanager_changes,
        stops=stops,
        changes=changes,
        rejoins=status_changes[REJOIN],
        declines=status_changes[DECLINE],
        enrolments=enrolments,
        stop_closes=stop_closes,
    )
