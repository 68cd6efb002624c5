"""The participant's own account: see and export everything, correct, pause, and stop (crypto-shredding).

Every operation here acts for the participant whose session it is; the views check that session, which
opens only after both factors: the e-mailed link and then a fresh code by SMS (open_account_link,
confirm_account_code). Corrections and stopping are verified again by two factors (_round_channels says
which).

Nothing about a correction or a stop reaches a work address the participant did not choose for their weekly
messages: the employer reads that mailbox, and a code or a notice arriving there would tell it who takes part
and who is stopping (issue #14). Code e-mails name no purpose (verification.issue_codes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError

from participants import contact, queued, verification
from participants.exporting import export_sections
from participants.invitations import held_by_someone_else, listed_under_email, organisations_listing_email
from participants.models import (
    AccountLink,
    CodeFailure,
    ConsentRecord,
    Organisation,
    Participant,
    VerificationCode,
    batch_copies,
    hold_index_salts,
    index_salt,
)
from participants.references import hour_indexes
from preventicons import crypto, messaging, ratelimit
from preventicons.sessions import coarse_expiry

logger = logging.getLogger(__name__)

ACCOUNT_LINK_LIFETIME = dt.timedelta(minutes=30)
# Per hour (preventicons.ratelimit). Counted whether or not the address is known, so the limit tells nothing.
ACCOUNT_LINKS_PER_ADDRESS_PER_HOUR = 3
ACCOUNT_LINKS_PER_REQUESTER_PER_HOUR = 10
RATE_WINDOW_SECONDS = 3600
EXPORT_FORMAT = 1


CHANGE = VerificationCode.Purpose.CHANGE
STOP = VerificationCode.Purpose.STOP
NAME_MAX_LENGTH = 200


def participant_message_key_part(participant: Participant) -> str:
    """The part every outbox key about this participant contains: "<kind>:<participant uuid>:<detail>"."""
    return f":{participant.pk}:"


def _missing_contact() -> str:
    return _(
        "We need both an e-mail address and a mobile number to send you the two codes. Please add the "
        "missing one first."
    )


def _consented_version(participant: Participant) -> str:
    given = ConsentRecord.objects.of(participant.pk).opened(ConsentRecord.Kind.GIVEN)
    return given[-1].text_version if given else ""


@dataclass(frozen=True)
class Confirmation:
    """What entering the two codes achieved: done, or the codes that failed, or why it was refused."""

    done: bool
    failed: dict[str, verification.VerifyOutcome] = field(default_factory=dict)
    refusal: str = ""
    # What a proven correction changes, for the batch that applies it (participants.requestqueue).
    change: ProvenChange | None = None


@dataclass(frozen=True)
class ProvenChange:
    """A correction both codes proved: the new values (None: unchanged), waiting for the batch to apply."""

    name: str | None = None
    email: str | None = None
    mobile: str | None = None


def _round_channels(participant: Participant, *, new_email: str | None = None) -> tuple[str, ...]:
    """The channels of a correction's or a stop's codes: always SMS, and e-mail only where it may go.

    E-mail goes to a new address being proven, else to verification.code_email_address: the proven private
    address, or the work address only when the participant chose it for their weekly messages. A participant
    who chose SMS and has no private address gets the SMS code only. That is still two factors, and the least
    revealing choice: the account session this runs in opened only with the e-mailed account link and an SMS
    code (participants.session), so possession of the link stands in for the e-mail code, and the fresh SMS
    code proves the phone again. Asking them to add a private address first would block someone who wants to
    stop behind a chore; mailing the work address would tell the employer.
    """
    if new_email or verification.code_email_address(participant):
        return verification.CHANNELS
    return (VerificationCode.Channel.SMS,)


def asks_email_code(participant: Participant) -> bool:
    """Whether a stop (or a correction keeping the e-mail address) of theirs asks for an e-mail code too."""
    return VerificationCode.Channel.EMAIL in _round_channels(participant)


def _proven(participant: Participant, purpose: str) -> verification.ProvenTargets | None:
    """The targets of the latest round when all its codes are verified and it had every channel it needs.

    A round without an e-mail code counts only while the participant has nowhere an e-mail code may go: an
    SMS-only round issued before they added a private address (or chose the work address) no longer suffices.
    """
    proven = verification.proven_round(participant=participant, purpose=purpose)
    if proven is None:
        return None
    needed = set(_round_channels(participant))
    if not needed <= verification.round_channels(participant=participant, purpose=purpose):
        return None
    return proven


def _check_codes(
    participant: Participant, purpose: str, email_code: str, sms_code: str
) -> dict[str, verification.VerifyOutcome]:
    # A code verified on an earlier try stays verified: only the other one is asked for again.
    states = verification.channel_states(participant=participant, purpose=purpose)
    in_round = verification.round_channels(participant=participant, purpose=purpose)
    failed: dict[str, verification.VerifyOutcome] = {}
    for channel, guess in (
        (VerificationCode.Channel.EMAIL, email_code),
        (VerificationCode.Channel.SMS, sms_code),
    ):
        if channel not in in_round:
            continue
        if states[channel].status is verification.VerifyStatus.OK or not guess.strip():
            continue
        outcome = verification.verify_code(
            participant=participant, purpose=purpose, channel=channel, code=guess
        )
        if not outcome.ok:
            failed[channel] = outcome
    return failed


# --- corrections ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingChange:
    """A correction waiting for both codes.

    A new address or number waits sealed in its code's target (verification.issue_codes). A code has one
    target, so a new name waits sealed in ``sealed_name`` for the caller to keep (the session) and hand back
    to confirm_change: it is bound to this participant and opens nowhere else.
    """

    sealed_name: str | None
    email_to_new_address: bool
    sms_to_new_number: bool


def _pending_name_binding(participant: Participant) -> crypto.Binding:
    return crypto.Binding("field", "participants_participant", "pending_name", str(participant.pk))


def request_change(
    *, participant: Participant, name: str | None = None, email: str | None = None, mobile: str | None = None
) -> PendingChange:
    """Send both codes for a correction; nothing changes before confirm_change.

    A new address gets its code there (the SMS goes to the number on file); a new number gets its SMS there
    (the e-mail code, if any, goes where _round_channels allows: never to a work address the participant did
    not choose). Raises ValidationError (changing nothing, sending nothing) or verification.TooManyCodes.
    """
    errors: dict[str, list[str]] = {}
    new_name: str | None = None
    if name is not None:
        # The same checks as a name on the employer's list (participants.contact).
        try:
            new_name = contact.check_text(name, max_length=NAME_MAX_LENGTH)
        except contact.TextRefused as refused:
            errors.setdefault("name", []).append(contact.name_message(refused))
        else:
            if new_name == (participant.name or ""):
                new_name = None
    new_email: str | None = None
    if email is not None and email.strip():
        new_email = crypto.normalise_email(email)
        try:
            validate_email(new_email)
        except ValidationError:
            errors.setdefault("email", []).append(_("Enter a valid e-mail address."))
        else:
            if participant.email and new_email == crypto.normalise_email(participant.email):
                new_email = None
    new_mobile: str | None = None
    if mobile is not None and mobile.strip():
        # The one normaliser of the import and enrolment too (participants.contact).
        try:
            new_mobile = contact.normalise_mobile(mobile)
        except contact.MobileRefused as refused:
            errors.setdefault("mobile", []).append(contact.mobile_message(refused))
        else:
            if new_mobile == participant.mobile:
                new_mobile = None
    if errors:
        raise ValidationError(errors)
    if new_email and new_mobile:
        # One of the two codes must reach somewhere already proven to be theirs.
        raise ValidationError(
            _(
                "Please change your e-mail address and your mobile number one at a time: one of the two "
                "codes must go to what we already have."
            )
        )
    if not (new_name or new_email or new_mobile):
        raise ValidationError(_("Nothing to change: this is what we already have."))
    # The same words whoever holds the address, and whatever that colleague did: no hint at a colleague.
    email_taken, mobile_taken = held_by_someone_else(
        participant=participant, email=new_email, mobile=new_mobile
    )
    if email_taken:
        raise ValidationError({"email": [_("This e-mail address cannot be used. Please enter another one.")]})
    if mobile_taken:
        raise ValidationError({"mobile": [_("This mobile number cannot be used. Please enter another one.")]})
    try:
        verification.issue_codes(
            participant=participant,
            purpose=CHANGE,
            email_to=new_email,
            sms_to=new_mobile,
            channels=_round_channels(participant, new_email=new_email),
        )
    except verification.MissingContact:
        raise ValidationError(_missing_contact()) from None
    return PendingChange(
        sealed_name=crypto.seal(new_name, _pending_name_binding(participant)) if new_name else None,
        email_to_new_address=bool(new_email),
        sms_to_new_number=bool(new_mobile),
    )


def pending_change(*, participant: Participant, sealed_name: str | None) -> dict[str, str | None]:
    """What the latest correction request would change (for the page that asks for its codes)."""
    email, mobile = verification.pending_targets(participant=participant, purpose=CHANGE)
    name = None
    if sealed_name:
        try:
            name = crypto.open_sealed(sealed_name, _pending_name_binding(participant))
        except crypto.DecryptionError:
            name = None
    return {"name": name, "email": email, "mobile": mobile}


def prove_change(
    *, participant: Participant, email_code: str, sms_code: str, sealed_name: str | None = None
) -> Confirmation:
    """Check the codes; once the round is proven (_proven), the round is used up and the Confirmation carries
    the new values. Nothing on the participant changes here: participants.requestqueue.confirm_change queues
    them, and the next batch applies them (apply_change), so a correction is not written in the second of
    the person's tap (issue 14).
    """
    failed = _check_codes(participant, CHANGE, email_code, sms_code)
    proven = _proven(participant, CHANGE)
    if proven is None:
        return Confirmation(done=False, failed=failed)
    # A sealed name that does not open here was not made for this participant: it is ignored, not applied.
    new_name = pending_change(participant=participant, sealed_name=sealed_name)["name"]
    # Used up either way: a proven round must not apply a second time (a proven round holds for an hour).
    verification.codes_of(participant).filter(purpose=CHANGE).delete()
    if not (new_name or proven.email or proven.mobile):
        # The codes are right but what they were for is gone (the session that held the new name ended).
        return Confirmation(
            done=False, refusal=_("This request has expired. Please enter your change again.")
        )
    # Someone else of the organisation took the address or number since the request: said now, in the words
    # of the request's own check. The batch checks again (apply_change), for the minutes until it comes.
    if any(held_by_someone_else(participant=participant, email=proven.email, mobile=proven.mobile)):
        return Confirmation(
            done=False,
            refusal=_("This e-mail address or mobile number cannot be used. Please enter another one."),
        )
    return Confirmation(
        done=True, change=ProvenChange(name=new_name, email=proven.email, mobile=proven.mobile)
    )


def apply_change(*, participant: Participant, change: ProvenChange) -> bool:
    """Apply a proven correction (the batch, participants.requestqueue); the indexes are redone.

    Returns False, changing nothing, when they stopped in the meantime, or when someone else of the
    organisation took the address or number between the request and the batch: they are told so where they
    chose to hear from us. The notice of a change goes only to destinations they chose (_notify_change).
    """
    now = timezone.now()
    try:
        # A savepoint inside the batch: a refused change leaves the batch's other requests standing.
        with transaction.atomic():
            locked = Participant.to_act_on(participant.pk)
            if locked.status == Participant.Status.STOPPED:
                return False
            if _taken_by_someone_else(locked, change):
                # Checked before anything changes: inside a batch nothing is written until every row is, so
                # the unique index cannot refuse it here (it still would, outside one).
                raise IntegrityError("the address or number is another participant's")
            old_email, old_mobile = locked.email, locked.mobile
            locked.reseal()
            if change.name:
                locked.name = change.name
            if change.email:
                locked.set_email(change.email)
            if change.mobile:
                locked.set_mobile(change.mobile)
            locked.save()
            proven = verification.ProvenTargets(email=change.email, mobile=change.mobile)
            _notify_change(
                locked,
                old_email=old_email,
                old_mobile=old_mobile,
                proven=proven,
                renamed=bool(change.name),
                at=now,
            )
    except IntegrityError:
        _notify_refused_change(participant, at=now)
        return False
    participant.refresh_unless_batch_copy()
    return True


def apply_enrolment(*, participant: Participant, request: dict[str, Any]) -> bool:
    """Make an invited person a participant as they chose and proved at enrolment (the batch;
    participants.requestqueue.confirm_enrolment, enrolment.prove_enrolment); True if it did.

    A fresh pseudonym P (nothing about the invitation or the import leads to the scores), the weekly channel
    they chose, the name, address or number they corrected and proved, a private address they proved.
    False, changing nothing, when they are no longer only invited (a second enrolment, a stop) or when
    someone else of the organisation took a corrected address or number since: they are still invited and
    may join again through their link.
    """
    channel = Participant.WeeklyChannel(request["weekly_channel"])
    email, mobile = request.get("email") or None, request.get("mobile") or None
    with transaction.atomic():
        locked = Participant.to_act_on(participant.pk)
        if locked.status != Participant.Status.INVITED:
            return False
        if _taken_by_someone_else(locked, ProvenChange(email=email, mobile=mobile)):
            return False
        # Every sealed column sealed afresh, as every act of the batch leaves them (Participant.reseal).
        locked.reseal()
        if request.get("name"):
            locked.name = request["name"]
        if channel is Participant.WeeklyChannel.PRIVATE_EMAIL:
            locked.private_email = request["private_email"]
        elif email:
            locked.set_email(email)
        if mobile:
            locked.set_mobile(mobile)
        locked.weekly_channel = channel
        locked.status = Participant.Status.ACTIVE
        locked.pseudonym = crypto.new_pseudonym()
        locked.save()
    participant.refresh_unless_batch_copy()
    # No participant id: the log would name who joined, and when (issue #14).
    logger.info("participant enrolled")
    return True


def _taken_by_someone_else(participant: Participant, change: ProvenChange) -> bool:
    """Whether another participant of the organisation has the changed address or number as their index,
    in the database or in a copy a running batch changed (Participant.to_act_on)."""
    salt = index_salt(participant.organisation_id)
    wanted: dict[str, str] = {}
    if change.email:
        wanted["email_index"] = crypto.blind_index_email(change.email, salt)
    if change.mobile:
        wanted["mobile_index"] = crypto.blind_index_phone(contact.normalise_mobile(change.mobile), salt)
    # The copies of this organisation's rows only (an address is unique within one organisation, and two
    # organisations that never had a batch share the empty salt), read instead of their rows in the table:
    # those still hold what they held before the batch (a stop's erased address, a correction's old one).
    copies = [
        copy
        for copy in batch_copies()
        if copy.organisation_id == participant.organisation_id and copy.pk != participant.pk
    ]
    others = (
        Participant.objects.filter(organisation_id=participant.organisation_id)
        .exclude(pk=participant.pk)
        .exclude(pk__in=[copy.pk for copy in copies])
    )
    return any(
        others.filter(**{name: index}).exists() or any(getattr(copy, name) == index for copy in copies)
        for name, index in wanted.items()
    )


def _notify_refused_change(participant: Participant, *, at: dt.datetime) -> None:
    """Tell them, where they chose to hear from us, that their confirmed change could not be made."""
    # Read back, the batch's copy would lose what the batch's earlier acts of this person changed on it (a
    # pause), which only the copy holds until the batch writes it.
    participant.refresh_unless_batch_copy()
    key = f"change-refused:{participant.pk}:{at.strftime('%Y%m%dT%H%M%S%f')}"
    text = _(
        "Your change to your Preventicons details could not be made: the e-mail address or mobile number "
        "cannot be used. Please enter another one in your account."
    )
    _tell_where_chosen(
        participant,
        work_email=participant.email,
        email_key=f"{key}:email",
        subject=_("Your change"),
        body=text,
        sms_key=f"{key}:sms",
        sms_body=text,
    )


def _tell_where_chosen(
    participant: Participant,
    *,
    work_email: str | None,
    email_key: str,
    subject: str,
    body: str,
    sms_key: str,
    sms_body: str,
) -> None:
    """Queue a notice to the one destination the participant chose to hear from us at: ``work_email`` only
    when their weekly messages go to the work address, else their private address, else their mobile. A
    notice in a work mailbox they did not choose would tell the employer they take part."""
    if participant.weekly_channel == Participant.WeeklyChannel.WORK_EMAIL and work_email:
        messaging.queue_email(key=email_key, to=work_email, subject=subject, body=body)
    elif participant.private_email:
        messaging.queue_email(key=email_key, to=participant.private_email, subject=subject, body=body)
    elif participant.mobile:
        messaging.queue_sms(key=sms_key, to=participant.mobile, body=sms_body)


def _notify_change(
    participant: Participant,
    *,
    old_email: str | None,
    old_mobile: str | None,
    proven: verification.ProvenTargets,
    renamed: bool,
    at: dt.datetime,
) -> None:
    """Tell the participant, where they chose to hear from us, that their name, address or number changed.

    A takeover must not go unnoticed, so the old destination hears of it, but only one the participant chose:
    the old work address only when the weekly messages went there; a private address or the mobile number
    otherwise. A notice in a work mailbox they did not choose would tell the employer they take part.
    """
    stamp = at.strftime("%Y%m%dT%H%M%S%f")
    support = {"support": settings.SUPPORT_EMAIL}
    if renamed:
        # Whoever holds both factors can rename the account (the name is what a casemanager calls them by);
        # its person hears of it as of any other correction. The new name is not in the notice: a message
        # is read on a lock screen or in a shared mailbox, and the codes proved it was asked for. To the
        # address as it stood before this correction, like the e-mail notice below.
        _tell_where_chosen(
            participant,
            work_email=old_email,
            email_key=f"changed:{participant.pk}:{stamp}:name",
            subject=_("Your name for Preventicons was changed"),
            body=_(
                "The name on your Preventicons account was just changed, confirmed with codes.\n\n"
                "Was this not you? Write to us at once at %(support)s."
            )
            % support,
            sms_key=f"changed:{participant.pk}:{stamp}:name-sms",
            sms_body=_(
                "The name on your Preventicons account was just changed. "
                "Was this not you? Write to us at once at %(support)s."
            )
            % support,
        )
    if proven.email and old_email:
        # The old work address hears of it only when the weekly messages went there (_tell_where_chosen).
        _tell_where_chosen(
            participant,
            work_email=old_email,
            email_key=f"changed:{participant.pk}:{stamp}:email",
            subject=_("Your e-mail address for Preventicons was changed"),
            body=_(
                "The e-mail address of your Preventicons account was just changed, confirmed with codes.\n\n"
                "Was this not you? Write to us at once at %(support)s."
            )
            % support,
            sms_key=f"changed:{participant.pk}:{stamp}:email-sms",
            sms_body=_(
                "The e-mail address of your Preventicons account was just changed. "
                "Was this not you? Write to us at once at %(support)s."
            )
            % support,
        )
    if proven.mobile and old_mobile:
        # The old number received the codes all along: it is theirs, and the first to miss a takeover.
        messaging.queue_sms(
            key=f"changed:{participant.pk}:{stamp}:sms",
            to=old_mobile,
            body=_(
                "The mobile number of your Preventicons account was just changed. "
                "Was this not you? Write to us at once at %(support)s."
            )
            % support,
        )


# --- stopping ---------------------------------------------------------------------------------


def request_stop_codes(*, participant: Participant) -> None:
    """Send the codes for stopping: by SMS to the number on file, and by e-mail only where _round_channels
    allows (never to a work address the participant did not choose).

    Raises verification.TooManyCodes, or ValidationError when the number is missing.
    """
    try:
        verification.issue_codes(participant=participant, purpose=STOP, channels=_round_channels(participant))
    except verification.MissingContact:
        raise ValidationError(_missing_contact()) from None


def prove_stop(*, participant: Participant, email_code: str, sms_code: str) -> Confirmation:
    """Check the codes; once the round is proven (_proven: its SMS code, and its e-mail code wherever one may
    go) the round is used up and the stop may be queued (participants.requestqueue.confirm_stop): the next
    batch stops them (stop_participation), not the second of their last tap. A wrong or missing code stops
    nothing."""
    failed = _check_codes(participant, STOP, email_code, sms_code)
    if _proven(participant, STOP) is None:
        return Confirmation(done=False, failed=failed)
    verification.codes_of(participant).filter(purpose=STOP).delete()
    return Confirmation(done=True)


def stop_participation(*, participant: Participant) -> None:
    """Destroy their contact data, blind indexes and pseudonym link at once; their scores stay, unlinked.

    Call only after both factors were verified for the STOP purpose. Stopping a stopped participant
    changes nothing. Their dossier is not closed here: P is queued sealed (queued.queue_stop_closes),
    and the first request batch of a later day closes it with every other stop of the day, so the dossier's
    rewrite and its log entry do not sit next to this one (issue 14). Until then no casemanager can open it:
    they see individual data of active participants only.
    """
    # The identity store only: nothing of the stop is written in another store (the outbox is this one's).
    with transaction.atomic():
        # The organisation first, as an import takes it: an import that read this row before the stop would
        # otherwise write what it decided from that read (a name from the list) back onto the erased row.
        Organisation.objects.select_for_update(no_key=True).filter(pk=participant.organisation_id).first()
        locked = Participant.to_act_on(participant.pk)
        if locked.status == Participant.Status.STOPPED:
            participant.refresh_unless_batch_copy()
            return
        # Opened now for the last time: after this transaction nothing on the identity side can name P.
        pseudonym = locked.pseudonym
        consented_version = _consented_version(locked)
        # Only the keyed hashes the employer's list names them by stay, on the row, so a re-imported list
        # never invites them again and two dumps show no change in them (Participant.shredded).
        locked.shred()

        # Code messages are keyed by the code ("code:<code id>:email"), everything else by the participant.
        # Every code and link that names them, however old: they name them only sealed (references.py).
        code_ids = list(VerificationCode.objects.naming([locked.pk]).values_list("pk", flat=True))
        # Those that hold their address or number in clear go now. The deferred ones (the week's message)
        # hold only a link's reference and end at their claim, as a stand-in's does: ended here, in the
        # batch, they would name whose row the batch stopped (review 8).
        messaging.cancel_pending(
            keys_containing=[participant_message_key_part(locked), *(f"code:{pk}:" for pk in code_ids)],
            only_with_content=True,
        )
        # Codes may hold a new address sealed in their target; links and invitations would reopen the account.
        VerificationCode.objects.filter(pk__in=code_ids).delete()
        CodeFailure.objects.filter(participant_index__in=hour_indexes(locked.pk, timezone.now())).delete()
        # The invitation links keep naming the row, as everyone's do (review 5: links losing their
        # participant told a dump whose row stopped). They open nothing: the row's sealed status is stopped
        # (enrolment.link_state), and their SMS code goes to the number the employer supplied as a decoy.
        AccountLink.objects.naming([locked.pk]).delete()
        ConsentRecord.objects.add(
            locked.pk,
            kind=ConsentRecord.Kind.WITHDRAWN,
            text_version=consented_version,
            recorded_at=timezone.now(),
        )
        # Sealed and padded as every queued request: the one row left on the identity side that names P.
        queued.queue_stop_closes([pseudonym or ""])
    participant.refresh_unless_batch_copy()


# --- restriction and objection ----------------------------------------------------------------


def pause_messages(*, participant: Participant, paused: bool) -> bool:
    """Pause or resume every message to them, with a dated trace; returns False when nothing changed."""
    with transaction.atomic():
        locked = Participant.to_act_on(participant.pk)
        if locked.messages_paused == paused:
            participant.messages_paused = paused
            return False
        fields = locked.reseal()
        locked.messages_paused = paused
        locked.save(update_fields=fields)
        ConsentRecord.objects.add(
            locked.pk,
            kind=ConsentRecord.Kind.PAUSED if paused else ConsentRecord.Kind.RESUMED,
            text_version=_consented_version(locked),
            recorded_at=timezone.now(),
        )
        # What is queued but not yet sent (the week's message) does not go out either: its renderer finds
        # them paused when the sender claims it, and ends it as a stand-in's. Ended here, in the batch, it
        # would name whose row the batch paused (review 8).
    participant.messages_paused = paused
    return True


# --- access and portability -------------------------------------------------------------------


def consent_history(participant: Participant) -> list[dict[str, str]]:
    return [
        {
            "kind": record.kind,
            "text_version": record.text_version,
            "recorded_at": record.recorded_at.isoformat(),
        }
        for record in ConsentRecord.objects.of(participant.pk).opened()
    ]


def export_data(*, participant: Participant) -> dict[str, Any]:
    """Everything held about them, JSON-ready: contact data, status, consents, preferences, their scores."""
    participant = Participant.objects.select_related("organisation", "department").get(pk=participant.pk)
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now().isoformat(),
        "participant": {
            "id": str(participant.pk),
            "organisation": participant.organisation.name,
            "department": participant.department.name if participant.department else None,
            "status": participant.status,
            "is_listed": participant.is_listed,
            "name": participant.name,
            "email": participant.email,
            "mobile": participant.mobile,
        },
        "preferences": {
            "messages_paused": participant.messages_paused,
            "prefers_email": participant.prefers_email,
            "prefers_sms": participant.prefers_sms,
        },
        "consent_history": consent_history(participant),
    }
    # Higher apps add what they hold under P (scores: weekly values). The pseudonym itself is not exported:
    # a download on a shared work computer should not carry the key to the score rows.
    data.update(export_sections(participant.pseudonym))
    return data


# --- the one-time account link ----------------------------------------------------------------

# Who may open their account through an e-mailed link. A declined participant asked to be left alone.
# Inactive ones too: their account page is where they come back (participation.reactivate_participant).
ACCOUNT_STATUSES = (Participant.Status.INVITED, Participant.Status.ACTIVE, Participant.Status.INACTIVE)


# Where the address of a link request is sealed for its trip through the task queue.
_REQUEST_BINDING = ("field", "celery_task", "send_account_links")


def request_account_link(*, email: str, requester: str) -> bool:
    """Ask for a 30-minute single-use link to each account under this address; False when rate limited.

    The caller answers the same whether or not the address is known, and this does the same work either
    way: two rate-limit counters and one task, which carries the address sealed. Looking the address up and
    writing the link happen in the task (send_account_links), out of the requester's sight: how long the
    answer takes tells nobody whether someone declined, stopped or takes part. ``requester`` identifies the
    client (its IP address); only keyed hashes of it and of the address name the counters.
    """
    for budget, subject in (
        (ratelimit.Budget("account-link-requester", ACCOUNT_LINKS_PER_REQUESTER_PER_HOUR, 3600), requester),
        (
            ratelimit.Budget("account-link-address", ACCOUNT_LINKS_PER_ADDRESS_PER_HOUR, 3600),
            crypto.normalise_email(email),
        ),
    ):
        decision = ratelimit.spend(budget, subject)
        if decision.unavailable:
            # The limiter fails closed; in production the task queue is the same Redis, so nothing could go.
            raise AccountLinkUnavailable
        if not decision:
            return False
    from participants.tasks import send_account_links_task

    request_id = str(uuid.uuid4())
    sealed = crypto.seal(email, crypto.Binding(*_REQUEST_BINDING, request_id))
    try:
        # The e-mail goes out in the language the request was made in.
        send_account_links_task.delay(
            request_id, sealed, translation.get_language() or settings.LANGUAGE_CODE
        )
    except BrokerError as exc:
        raise AccountLinkUnavailable from exc
    return True


class AccountLinkUnavailable(Exception):
    """The task queue cannot take the request now; nothing was sent, the participant should try again."""


def open_link_request(*, request_id: str, sealed: str) -> str:
    """The address a link request carries through the task queue (request_account_link)."""
    return crypto.open_sealed(sealed, crypto.Binding(*_REQUEST_BINDING, request_id))


def send_account_links(*, request_id: str, email: str) -> int:
    """One link e-mail per organisation that knows this address, alike whatever the person did; how many.

    An organisation knows the address when one of its participants holds it now (any status that still has
    contact data) or when its list names it (invitations.organisations_listing_email: the address the
    employer listed someone under, whether they since moved to another address, or stopped, declined or were
    anonymised). A real link goes only to the address a participant holds now, and when the list names
    someone else under it, only to them (_link_owner). Whoever may open
    their account (ACCOUNT_STATUSES) gets a real link; everyone else the same e-mail with a decoy: a token
    of the same shape that is stored nowhere, so it names nobody and its pages answer like any link whose
    SMS code never comes. The employer that listed the address thus sees one identical e-mail whatever its
    colleague did. An address no organisation knows gets nothing: it was never listed, so its silence tells
    nothing about anyone.

    Idempotent: the e-mail's outbox key names the request and the organisation, so a redelivered or retried
    task finds its messages queued and writes neither a second link nor a second e-mail. The key names no
    participant: a stop does not cancel a pending link e-mail (its link row is deleted, so it arrives as a
    link that opens nothing, like a decoy).
    """
    address = crypto.normalise_email(email)
    now = timezone.now()
    queued = 0
    with transaction.atomic():
        # Each organisation's index under its own salt, held so that no request batch renews them between
        # this lookup and the links written from it.
        wanted = Q()
        for organisation_id, salt in hold_index_salts().items():
            wanted |= Q(organisation_id=organisation_id, email_index=crypto.blind_index_email(address, salt))
        holders = {
            participant.organisation_id: participant
            for participant in (Participant.objects.filter(wanted) if wanted else Participant.objects.none())
        }
        named = listed_under_email(address=address)
        for organisation_id in sorted(set(holders) | organisations_listing_email(address=address)):
            participant = _link_owner(address, holders.get(organisation_id), named.get(organisation_id))
            with transaction.atomic():
                token = crypto.new_token()
                if participant is not None and participant.status in ACCOUNT_STATUSES:
                    # Names them only sealed, dated to the quarter hour: often written right after a tap.
                    AccountLink.objects.create(
                        participant_ref=str(participant.pk),
                        token_hash=crypto.hash_token(token),
                        expires_at=coarse_expiry(now + ACCOUNT_LINK_LIFETIME),
                    )
                # Otherwise the token is a decoy: no row, no hash, nothing that could name the person.
                url = settings.SITE_URL + reverse("participants:account-link-open", kwargs={"token": token})
                if messaging.queue_email(
                    key=f"account-link:{request_id}:{organisation_id}",
                    # The typed address itself, for real and decoy alike (the same headers in the mailbox).
                    to=address,
                    subject=_("Your link to your Preventicons account"),
                    body=_(
                        "Open your Preventicons account with this link. "
                        "It works once, for %(minutes)d minutes:\n\n"
                        "%(url)s\n\n"
                        "Did you not ask for it? Then you can ignore this message; nothing has changed."
                    )
                    % {"url": url, "minutes": int(ACCOUNT_LINK_LIFETIME.total_seconds() // 60)},
                ):
                    queued += 1
                else:
                    # Sent for this request already: the link just made is rolled back with its savepoint.
                    transaction.set_rollback(True)
    return queued


def _link_owner(address: str, holder: Participant | None, named: Participant | None) -> Participant | None:
    """Whose account a link to this address opens, in one organisation: ``holder`` holds it now (its blind
    index), ``named`` is the row the list names under it now.

    When the list names someone else under the address, the mailbox is theirs now: the link is theirs, if they
    use it (an import stores a new row's address without its index while another participant still holds
    it). Going to the holder instead, the link showed the employer, who gave an old address to a stooge of
    its own and pressed the link's button, by the stooge's silent phone, that the address's former person had
    joined and kept it (review 11).
    """
    if named is None or (holder is not None and holder.pk == named.pk):
        return holder
    if named.email and crypto.normalise_email(named.email) == address:
        return named
    return None


ACCOUNT_TOKEN_LENGTH = 43  # crypto.new_token(): 32 bytes, URL-safe base64 without padding


def find_account_link(*, token: str) -> AccountLink | None:
    """The unused, unexpired link this token opens, for a participant who may use it; does not use it up."""
    if len(token) != ACCOUNT_TOKEN_LENGTH:
        return None
    link = AccountLink.objects.filter(
        token_hash=crypto.hash_token(token), used=False, expires_at__gt=timezone.now()
    ).first()
    if link is None or _account_holder(link) is None:
        return None
    return link


def _account_holder(link: AccountLink) -> Participant | None:
    # The participant is decided here, in Python, from the sealed reference: no query joins the link to them.
    participant = Participant.objects.filter(pk=link.participant_id).first()
    if participant is None or participant.status not in ACCOUNT_STATUSES:
        return None
    return participant


ACCOUNT = VerificationCode.Purpose.ACCOUNT


def open_account_link(*, link_id: str) -> Participant | None:
    """Use the link up and send the second factor, a fresh code by SMS; None when the link opens nothing.

    Called alike for every link (``link_id`` "" for a token that names no usable link): the caller answers
    the same whether a code went out or not, so the page after the link tells its opener nothing, and
    whether the link was real shows only on the phone on file. A code the person's own hourly budget
    refuses (verification.TooManyCodes) is not sent and not reported either: a refusal the opener could
    see would tell a real link from a decoy.
    """
    if not link_id:
        return None
    with transaction.atomic():
        participant = use_account_link(link_id=link_id)
        if participant is not None:
            with contextlib.suppress(verification.TooManyCodes), transaction.atomic():
                verification.issue_sms_code(participant=participant, purpose=ACCOUNT)
    return participant


def resend_account_code(*, participant: Participant) -> int:
    """A new SMS code for opening the account; returns the wait in seconds (0: sent)."""
    try:
        verification.issue_sms_code(participant=participant, purpose=ACCOUNT)
    except verification.TooManyCodes as exc:
        return exc.wait_seconds
    return 0


def confirm_account_code(*, participant: Participant, code: str) -> verification.VerifyOutcome:
    """Check the SMS code that opens the account; every wrong guess is counted (verification.verify_code)."""
    return verification.verify_code(
        participant=participant, purpose=ACCOUNT, channel=VerificationCode.Channel.SMS, code=code
    )


def use_account_link(*, link_id: str) -> Participant | None:
    """Use the link up and return its participant; None when it is used, expired or may no longer be used."""
    now = timezone.now()
    with transaction.atomic():
        link = (
            AccountLink.objects.select_for_update().filter(pk=link_id, used=False, expires_at__gt=now).first()
        )
        if link is None:
            return None
        link.used = True
        link.save(update_fields=["used"])
        return _account_holder(link)
