"""Opening an invitation link, enrolment with two factors, and declining.

An invitation link is a 256-bit token of which only the hash is stored. Its first page is the same for
everyone (participants/views/enrolment.py); what the invitation leads to, and declining, come only after an
SMS code to the number the employer supplied for that link (``request_link_code``/``verify_link_code``), so
whoever reads a mailbox the employer supplied learns nothing from the link and cannot decline for someone, and
the phone the employer supplied receives the same texts whatever the person did. Enrolment then needs consent
to the current text and both codes (e-mail and SMS) of one round; only then is the enrolment queued
(prove_enrolment, participants.requestqueue.confirm_enrolment), and the next request batch makes the
participant active, with a fresh pseudonym and the weekly channel they chose, writing every row alike. The
invitation messages themselves follow one fixed schedule for everyone (participants/invitations.py).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from participants import contact, queued, verification
from participants.agreements import require_signed_agreement
from participants.invitations import held_by_someone_else
from participants.models import ConsentRecord, Invitation, Participant, VerificationCode
from participants.verification import issue_codes
from preventicons import messaging
from preventicons.crypto import (
    hash_token,
    new_token,
    normalise_email,
)

logger = logging.getLogger(__name__)

# The consent text lives in templates/participants/enrol/consent_text.html; change both together.
CONSENT_TEXT_VERSION = "2026-12"
ENROL = VerificationCode.Purpose.ENROL
OPEN_LINK = VerificationCode.Purpose.OPEN_LINK
WeeklyChannel = Participant.WeeklyChannel
# A name typed at enrolment: the same bound as the account's and the employer's list.
NAME_MAX_LENGTH = 200
TOKEN_LENGTH = 43  # crypto.new_token(): 32 bytes, URL-safe base64 without padding


class LinkState(enum.StrEnum):
    OPEN = "open"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    ENROLLED = "enrolled"
    DECLINED = "declined"
    STOPPED = "stopped"
    WITHDRAWN = "withdrawn"  # no longer on the employer's address list


class EnrolmentRefused(Exception):
    """Enrolment cannot be completed; the message says why in the participant's words."""


def invitation_days() -> dt.timedelta:
    return dt.timedelta(days=settings.INVITATION_DAYS)


def find_invitation(*, token: str) -> Invitation | None:
    """The invitation a token opens, or None; malformed, truncated and unknown tokens look alike."""
    if len(token) != TOKEN_LENGTH:
        return None
    return Invitation.objects.select_related("participant").filter(token_hash=hash_token(token)).first()


def link_state(invitation: Invitation) -> LinkState:
    """What opening this invitation can lead to now; a joining the request batch has yet to make is joined.

    Queued (requestqueue.confirm_enrolment), the row still reads invited until the batch: a no said through
    the link then was refused (prove_decline) under a page saying it was done, and the join pages were walked
    again up to a refusal at their end (review 10). The queue is opened for every link whatever its
    person did, before anything else is read, so no status takes longer than another.
    """
    joining = queued.is_pending(queued.ENROLMENT, invitation.participant_id)
    participant = invitation.participant
    if participant is None or participant.status == Participant.Status.STOPPED:
        return LinkState.STOPPED
    if participant.status == Participant.Status.DECLINED:
        return LinkState.DECLINED
    # Inactive people enrolled too (they come back from their account): their links are no new enrolment.
    if participant.status in (Participant.Status.ACTIVE, Participant.Status.INACTIVE) or joining:
        return LinkState.ENROLLED
    if not participant.is_listed:
        return LinkState.WITHDRAWN
    if invitation.expires_at <= timezone.now():
        return LinkState.EXPIRED
    return LinkState.OPEN


def may_go_on_expired(*, invitation: Invitation) -> bool:
    """For an expired link opened with the SMS code: whether its person may go on with it, writing nothing.

    The SMS code already proved the phone, and the e-mail code of the enrolment round will prove the address,
    so no new link has to travel through a mailbox, and none is made: a new link row naming the participant,
    expiring off the schedule's steps, would tell a dump whose invitation was taken up late, and when
    (tests/test_attacks_review5.py). False when the link is not (only) expired any more. Raises
    AgreementMissing without a signed processing agreement.
    """
    if link_state(invitation) != LinkState.EXPIRED:
        return False
    require_signed_agreement(invitation.invitee.organisation)
    return True


# --- the SMS code that opens a link ----------------------------------------------------------------


def texts_its_code(invitation: Invitation, *, now: dt.datetime | None = None) -> bool:
    """Whether asking for this link's SMS code sends one: for every link alike until its purge date.

    Up to EXPIRED_INVITATION_KEEP_DAYS after its expiry (until then an expired link still offers a new one),
    whatever the person did: the moment the phone falls silent must not depend on them either.
    """
    now = now or timezone.now()
    return now < invitation.expires_at + dt.timedelta(days=settings.EXPIRED_INVITATION_KEEP_DAYS)


def request_link_code(*, invitation: Invitation | None) -> bool:
    """Send the SMS code that opens this invitation to the number the employer supplied for it; True if sent.

    The number sealed on the link when it was sent, not the participant's current one: the employer supplied
    the phone, so what reaches it must not depend on what the person did since (joined, moved to a private
    number, declined, stopped). A link of someone who stopped (its row stopped, or from before review 5 no
    row): its text carries a code that is stored nowhere, in the same words, so the phone sees the same and
    nothing opens. The caller
    answers the same whatever this returns (views pace requests per link).
    """
    if invitation is None or not texts_its_code(invitation):
        return False
    participant = invitation.participant
    mobile = invitation.mobile or (participant.mobile if participant is not None else None)
    if not mobile:
        return False
    if not contact.may_receive_codes(mobile):
        return False  # a number of a country we do not send codes to (participants.contact)
    if participant is None or participant.status == Participant.Status.STOPPED:
        verification.send_decoy_sms_code(to=mobile, key=f"decoy:{invitation.pk}:{new_token()}")
        return True
    try:
        verification.issue_sms_code(participant=participant, purpose=OPEN_LINK, to=mobile)
    except verification.TooManyCodes:
        return False
    return True


def _require_link_code(participant: Participant) -> None:
    # The link alone is one factor, and the employer may read the mailbox it came to: whatever the link
    # leads to that changes something needs the SMS code to the number on file as well.
    if not verification.verified_within_the_hour(participant=participant, purpose=OPEN_LINK):
        raise EnrolmentRefused(_("Please open your invitation with the code from the text message first."))


def verify_link_code(*, invitation: Invitation | None, code: str) -> bool:
    """True when ``code`` is the SMS code that opens this invitation; every wrong guess is counted."""
    if invitation is None or invitation.participant is None:
        return False
    if invitation.participant.status == Participant.Status.STOPPED:
        return False  # its codes were decoys stored nowhere; nothing of a stopped row opens (link_state)
    outcome = verification.verify_code(
        participant=invitation.participant,
        purpose=OPEN_LINK,
        channel=VerificationCode.Channel.SMS,
        code=code,
    )
    return outcome.ok


def prove_decline(*, invitation: Invitation) -> bool:
    """Whether this link may say no for its person now: True when they are still only invited.

    Raises EnrolmentRefused, changing nothing, unless the link's SMS code was entered within the hour: a
    mailbox reader must not decline for someone. Writes nothing: the decline is queued
    (participants.requestqueue.confirm_decline) and the request batch makes it (decline_participation).
    """
    participant = invitation.invitee
    if participant.status != Participant.Status.INVITED:
        return False
    if queued.is_pending(queued.ENROLMENT, participant.pk):
        # They joined a moment ago; the batch makes it so (prove_enrolment).
        return False
    _require_link_code(participant)
    return True


def decline_participation(*, participant: Participant) -> bool:
    """Mark the participant declined and close their codes; True if changed. Only the request batch calls
    this, after prove_decline: the row is not rewritten in the minute they said no (issue 14), and someone
    who enrolled after all before the batch stays enrolled.

    The invitation schedule still runs to its end like everyone else's. Their contact data is erased by the
    nightly run, which keeps on the row the keyed hashes they were listed under (Participant.shredded), so
    a re-imported list never invites them again; the row answers the import as anyone's does.
    """
    with transaction.atomic():
        locked = Participant.to_act_on(participant.pk)
        if locked.status != Participant.Status.INVITED:
            return False
        fields = locked.reseal()
        locked.status = Participant.Status.DECLINED
        locked.save(update_fields=fields)
        now = timezone.now()
        # The links are not expired early: a declined person's links already open only the page that says
        # so (link_state), and their SMS codes must keep going out for as long as anyone's do.
        code_ids = list(VerificationCode.objects.naming([locked.pk]).values_list("pk", flat=True))
        VerificationCode.objects.filter(pk__in=code_ids, verified_at__isnull=True, expires_at__gt=now).update(
            expires_at=now
        )
        # Codes not yet sent do not go out. The invitation schedule's messages are keyed by the schedule, not
        # the participant, and still go out: the employer's mailbox must see what everyone's sees.
        messaging.cancel_pending(keys_containing=[f"code:{pk}:" for pk in code_ids])
    # No participant id: the log would name who declined, and when (issue #14).
    logger.info("invitation declined")
    return True


def has_consented(participant: Participant) -> bool:
    """True when the participant agreed to the current consent text."""
    given = ConsentRecord.objects.of(participant.pk).opened(ConsentRecord.Kind.GIVEN)
    # The text version is sealed: compared in Python.
    return any(record.text_version == CONSENT_TEXT_VERSION for record in given)


def record_consent(*, participant: Participant) -> ConsentRecord:
    """Record agreement to the current consent text (version and time); once per version."""
    with transaction.atomic():
        # The lock add() takes, held across the check too; not a row lock, which would stamp this transaction
        # into the participant row's xmax and pair it with the record (participants.models._lock_consents_of).
        ConsentRecord.objects.lock_for([participant.pk])
        existing = [
            record
            for record in ConsentRecord.objects.of(participant.pk).opened(ConsentRecord.Kind.GIVEN)
            if record.text_version == CONSENT_TEXT_VERSION
        ]
        if existing:
            return existing[0]
        return ConsentRecord.objects.add(
            participant.pk,
            kind=ConsentRecord.Kind.GIVEN,
            text_version=CONSENT_TEXT_VERSION,
            recorded_at=timezone.now(),
        )


def start_verification(
    *,
    participant: Participant,
    name: str,
    email: str | None = None,
    mobile: str | None = None,
    weekly_channel: str = WeeklyChannel.SMS,
    private_email: str | None = None,
) -> bool:
    """Check the corrected name, then send a code to each new address or number; True if any was sent.

    The link and its SMS code already proved the person behind the addresses on file, so those get no code:
    nothing about enrolling reaches the work mailbox the employer reads. A new address (a private one for the
    weekly messages, or a corrected one) or a new number is used only once its own code is entered. At most
    one of e-mail and mobile may differ from what is on file. Raises ValidationError or
    verification.TooManyCodes; sends nothing then.
    """
    weekly_channel = WeeklyChannel(weekly_channel)
    errors: dict[str, list[str]] = {}
    # The same rules as the employer's list and the account (participants.contact).
    name = name.strip()
    if name:
        try:
            name = contact.check_text(name, max_length=NAME_MAX_LENGTH)
        except contact.TextRefused as refused:
            errors.setdefault("name", []).append(contact.name_message(refused))
    mobile_refused = False
    if mobile and mobile.strip():
        try:
            mobile = contact.normalise_mobile(mobile)
        except contact.MobileRefused as refused:
            errors.setdefault("mobile", []).append(contact.mobile_message(refused))
            mobile, mobile_refused = None, True
    else:
        mobile = None
    if weekly_channel is WeeklyChannel.PRIVATE_EMAIL:
        _check_private_choice(participant=participant, private_email=private_email, email=email)
        email = private_email
    email = normalise_email(email) if email else None
    if email and participant.email and email == normalise_email(participant.email):
        email = None
    if mobile and mobile == participant.mobile:
        mobile = None
    if email is None and not participant.email:
        errors.setdefault("email", []).append(_("Enter your e-mail address."))
    if mobile is None and not participant.mobile and not mobile_refused:
        errors.setdefault("mobile", []).append(_("Enter your mobile number."))
    # A private address is no correction of the work address: with it, the number may be corrected too.
    correcting_work_email = bool(email) and weekly_channel is not WeeklyChannel.PRIVATE_EMAIL
    if correcting_work_email and mobile and participant.email and participant.mobile:
        errors.setdefault("__all__", []).append(
            _(
                "You can correct your e-mail address or your mobile number here, not both at once: one of "
                "the two codes must go to where we sent your invitation. You can correct the other one later "
                "in your account."
            )
        )
    # Held by a colleague now, listed for one, or left by one: the same refusal (held_by_someone_else).
    email_taken, mobile_taken = held_by_someone_else(participant=participant, email=email, mobile=mobile)
    if email_taken:
        errors.setdefault("email", []).append(
            _("This e-mail address cannot be used. Please enter another one.")
        )
    if mobile_taken:
        errors.setdefault("mobile", []).append(
            _("This mobile number cannot be used. Please enter another one.")
        )
    if errors:
        raise ValidationError(errors)
    channels = tuple(
        channel
        for channel, new in ((VerificationCode.Channel.EMAIL, email), (VerificationCode.Channel.SMS, mobile))
        if new
    )
    # The name is not written here (it would write the row in the minute its person enrols): the caller
    # keeps it for prove_enrolment, and the request batch writes it with the enrolment.
    if channels:
        issue_codes(participant=participant, purpose=ENROL, email_to=email, sms_to=mobile, channels=channels)
    return bool(channels)


def _check_private_choice(*, participant: Participant, private_email: str | None, email: str | None) -> None:
    errors: dict[str, list[str]] = {}
    if not private_email:
        errors["private_email"] = [_("Enter your private e-mail address.")]
    elif participant.email and normalise_email(private_email) == normalise_email(participant.email):
        errors["private_email"] = [
            _(
                "This is the work address your employer gave us. Enter a private address, or choose "
                "another way."
            )
        ]
    if email:
        errors.setdefault("__all__", []).append(
            _(
                "With a private e-mail address the code by e-mail goes there. You can correct your work "
                "address later in your account."
            )
        )
    if errors:
        raise ValidationError(errors)


@dataclass(frozen=True)
class ProvenEnrolment:
    """What an invited person chose and proved at enrolment, waiting for the request batch to make it so
    (participants.requestqueue.confirm_enrolment, account.apply_enrolment). None: unchanged."""

    participant: str
    weekly_channel: str
    name: str | None = None
    # A corrected work address and number, each proven by its own code.
    email: str | None = None
    mobile: str | None = None
    # A private address for the weekly messages, proven by its code.
    private_email: str | None = None

    def request(self) -> dict[str, str | bool]:
        """The values as the request queue holds them (participants.queued.sealed)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


def prove_enrolment(
    *,
    invitation: Invitation,
    weekly_channel: str = WeeklyChannel.SMS,
    with_codes: bool = False,
    expired_ok: bool = False,
    name: str | None = None,
) -> ProvenEnrolment:
    """Check that this link's person may join now as they chose; what the batch is to make so.

    Needs the link's SMS code, consent and (``with_codes``) the codes to the new addresses of the latest
    round. ``expired_ok``: the link expired, and its person chose to go on with it after its SMS code
    (may_go_on_expired). ``name``: the name as corrected on the details page (start_verification checked
    it). The weekly messages go only where ``weekly_channel`` says; a private address is taken only as
    proven by an e-mail code. Without ``with_codes`` nothing new is taken. Raises EnrolmentRefused when any
    of that is missing, or when they joined already (or their joining waits for the batch).

    Writes nothing: the participant row is not written in the minute its person joins (issue 14). The
    caller queues the result (participants.requestqueue.confirm_enrolment); the request batch makes them a
    participant, with a fresh pseudonym, when it writes every row (participants.rewrite).
    """
    weekly_channel = WeeklyChannel(weekly_channel)
    now = timezone.now()
    # Read, not locked: a lock would stamp this transaction into the row's xmax, and into the link's.
    participant = Participant.objects.get(pk=invitation.invitee.pk)
    invitation = Invitation.objects.get(pk=invitation.pk)
    joined = queued.is_pending(queued.ENROLMENT, participant.pk)
    if participant.status != Participant.Status.INVITED or joined:
        raise EnrolmentRefused(_("This invitation has already been used."))
    if invitation.expires_at <= now and not expired_ok:
        raise EnrolmentRefused(_("This invitation has expired."))
    if not has_consented(participant):
        raise EnrolmentRefused(_("Please read and accept the explanation first."))
    _require_link_code(participant)
    proven = (
        verification.proven_round(participant=participant, purpose=ENROL)
        if with_codes
        else verification.ProvenTargets(email=None, mobile=None)
    )
    if proven is None:
        raise EnrolmentRefused(_("Please enter the codes first."))
    if weekly_channel is WeeklyChannel.PRIVATE_EMAIL and not proven.email:
        raise EnrolmentRefused(_("Please choose again where the weekly messages should go."))
    private = weekly_channel is WeeklyChannel.PRIVATE_EMAIL
    email = None if private else proven.email
    # Held by a colleague now, listed for one, or left by one, as the details page checked when the codes
    # went out: the same refusal. The batch checks once more, against what its own acts changed.
    if any(held_by_someone_else(participant=participant, email=email, mobile=proven.mobile)):
        raise EnrolmentRefused(
            _("This e-mail address or mobile number cannot be used. Please enter another one.")
        )
    name = (name or "").strip()
    if name:
        try:
            name = contact.check_text(name, max_length=NAME_MAX_LENGTH)
        except contact.TextRefused as refused:
            raise EnrolmentRefused(contact.name_message(refused)) from None
    return ProvenEnrolment(
        participant=str(participant.pk),
        weekly_channel=weekly_channel.value,
        name=name if name and name != (participant.name or "") else None,
        email=email,
        mobile=proven.mobile,
        private_email=proven.email if private else None,
    )


def mask_email(email: str | None) -> str:
    """An address shown to whoever holds the link: enough to recognise, not to learn it."""
    if not email or "@" not in email:
        return ""
    local, _at, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def mask_mobile(mobile: str | None) -> str:
    if not mobile:
        return ""
    # A fixed number of dots: the length of the number is none of the link holder's business either.
    return "••••••" + mobile[-2:]


@dataclass(frozen=True)
class CodeDestinations:
    email: str
    mobile: str


def code_destinations(*, participant: Participant) -> CodeDestinations:
    """Where the latest enrolment codes went, masked, for the page that asks for them."""
    from participants.verification import pending_targets

    email_target, mobile_target = pending_targets(participant=participant, purpose=ENROL)
    return CodeDestinations(
        email=mask_email(email_target or participant.email),
        mobile=mask_mobile(mobile_target or participant.mobile),
    )
