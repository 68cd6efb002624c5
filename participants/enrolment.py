"""Invitations, enrolment with two factors, declining and reminders.

An invitation link is a 256-bit token of which only the hash is stored. Enrolment needs consent to the
current text and both codes (e-mail and SMS) of one round; only then is the participant active and given a
fresh pseudonym. Nothing is sent to a participant who declined, stopped, paused messages or left the list.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from participants.agreements import require_signed_agreement
from participants.models import ConsentRecord, Invitation, Organisation, Participant, VerificationCode
from participants.verification import issue_codes, proven_targets
from preventicons import messaging
from preventicons.crypto import (
    blind_index_email,
    blind_index_phone,
    hash_token,
    new_pseudonym,
    new_token,
    normalise_email,
)

logger = logging.getLogger(__name__)

# The consent text lives in templates/participants/enrol/consent_text.html; change both together.
CONSENT_TEXT_VERSION = "2026-11"
ENROL = VerificationCode.Purpose.ENROL
TOKEN_LENGTH = 43  # crypto.new_token(): 32 bytes, URL-safe base64 without padding


class LinkState(enum.StrEnum):
    OPEN = "open"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    ENROLLED = "enrolled"
    DECLINED = "declined"
    STOPPED = "stopped"
    WITHDRAWN = "withdrawn"  # no longer on the employer's address list


class NewLink(enum.StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"
    NOT_POSSIBLE = "not_possible"


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
    """What opening this invitation can lead to now."""
    participant = invitation.participant
    if participant.status == Participant.Status.STOPPED:
        return LinkState.STOPPED
    if participant.status == Participant.Status.DECLINED:
        return LinkState.DECLINED
    if participant.status == Participant.Status.ACTIVE or invitation.used_at is not None:
        return LinkState.ENROLLED
    if not participant.is_listed:
        return LinkState.WITHDRAWN
    if invitation.expires_at <= timezone.now():
        return LinkState.EXPIRED
    return LinkState.OPEN


def _may_message(participant: Participant) -> bool:
    return (
        participant.status == Participant.Status.INVITED
        and participant.is_listed
        and not participant.messages_paused
    )


def _queue_invitation(participant: Participant, *, key: str | None, reminder: bool, now: dt.datetime) -> bool:
    """Create an invitation and queue it; rolled back (nothing kept) when every message key was used.

    Keys name the participant and the invitation (or the week), never an address: without ``key`` it is
    "invite:<participant>:<invitation>".
    """
    with transaction.atomic():
        token = new_token()
        invitation = Invitation.objects.create(
            participant=participant, token_hash=hash_token(token), expires_at=now + invitation_days()
        )
        key = key or f"invite:{participant.pk}:{invitation.pk}"
        join = settings.SITE_URL + reverse("participants:invitation", kwargs={"token": token})
        decline = settings.SITE_URL + reverse("participants:invitation-decline", kwargs={"token": token})
        until = timezone.localtime(invitation.expires_at).date().strftime("%d-%m-%Y")
        context: dict[str, Any] = {"join": join, "decline": decline, "until": until}
        queued = False
        if participant.email:
            subject = (
                _("Reminder: your invitation to the weekly wellbeing check-in")
                if reminder
                else _("Your invitation to the weekly wellbeing check-in")
            )
            body = _(
                "Your employer offers you Preventicons: once a week you tap a smiley to say how you are "
                "doing. Taking part is voluntary. Your employer never learns whether you take part, what you "
                "answer or whether you ask for help.\n\n"
                "Join here (the link works until %(until)s):\n%(join)s\n\n"
                "Do you not want to take part? Then we will not send you anything again:\n%(decline)s"
            )
            if reminder:
                body = _("A reminder: you have not replied to our invitation yet.") + "\n\n" + body
            queued |= messaging.queue_email(
                key=f"{key}:email", to=participant.email, subject=subject, body=body % context
            )
        if participant.mobile:
            sms = _(
                "Preventicons, offered by your employer: a weekly smiley, anonymous towards your employer. "
                "Join: %(join)s Not interested: %(decline)s"
            )
            queued |= messaging.queue_sms(key=f"{key}:sms", to=participant.mobile, body=sms % context)
        if not queued:
            transaction.set_rollback(True)
        return queued


def _invited_and_reachable(organisation: Organisation) -> QuerySet[Participant]:
    """Invited participants we may write to, locked for the caller's transaction."""
    return Participant.objects.select_for_update().filter(
        organisation=organisation, status=Participant.Status.INVITED, is_listed=True, messages_paused=False
    )


def send_invitations(*, organisation: Organisation, by: Any = None) -> int:
    """Invite every listed, invited participant without a live invitation; a second run sends nothing twice.

    Raises AgreementMissing, sending nothing, when the organisation's processing agreement is not recorded.
    """
    require_signed_agreement(organisation)
    now = timezone.now()
    sent = 0
    with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
        # Locked, so two parallel runs cannot both see "no live invitation" for the same person.
        candidates = _invited_and_reachable(organisation).order_by("pk")
        for participant in candidates:
            if participant.invitations.filter(used_at__isnull=True, expires_at__gt=now).exists():
                continue
            if _queue_invitation(participant, key=None, reminder=False, now=now):
                sent += 1
    logger.info(
        "invitations sent: %d for organisation %s by staff %s", sent, organisation.pk, getattr(by, "pk", "-")
    )
    return sent


def send_enrolment_reminders(*, organisation: Organisation, week: dt.date) -> int:
    """Remind, with a fresh link, each invited participant who neither joined nor declined: once per week."""
    require_signed_agreement(organisation)
    now = timezone.now()
    sent = 0
    with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
        candidates = (
            _invited_and_reachable(organisation)
            # Only those invited before: a first invitation is send_invitations' job.
            .filter(Exists(Invitation.objects.filter(participant=OuterRef("pk"))))
            .order_by("pk")
        )
        for participant in candidates:
            # The week in the key makes a second run of the same week a no-op, whatever else changed.
            key = f"remind:{participant.pk}:{week.isoformat()}"
            if _queue_invitation(participant, key=key, reminder=True, now=now):
                sent += 1
    logger.info("enrolment reminders sent: %d for organisation %s, week %s", sent, organisation.pk, week)
    return sent


def send_new_link(*, invitation: Invitation) -> NewLink:
    """For an expired link: a fresh one, only to the address and number on file, once per expired link."""
    now = timezone.now()
    with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
        participant = Participant.objects.select_for_update().get(pk=invitation.participant_id)
        invitation = Invitation.objects.select_related("participant").get(pk=invitation.pk)
        if link_state(invitation) != LinkState.EXPIRED or not _may_message(participant):
            return NewLink.NOT_POSSIBLE
        if not (participant.email or participant.mobile):
            return NewLink.NOT_POSSIBLE
        require_signed_agreement(participant.organisation)
        key = f"relink:{participant.pk}:{invitation.pk}"
        if _queue_invitation(participant, key=key, reminder=False, now=now):
            return NewLink.SENT
    return NewLink.ALREADY_SENT


def decline_invitation(*, invitation: Invitation) -> bool:
    """Mark the participant declined and close their links; from now on nothing is sent. True if changed."""
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=invitation.participant_id)
        if participant.status != Participant.Status.INVITED:
            return False
        participant.status = Participant.Status.DECLINED
        participant.save(update_fields=["status"])
        now = timezone.now()
        participant.invitations.filter(used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
        participant.codes.filter(verified_at__isnull=True, expires_at__gt=now).update(expires_at=now)
        # What is queued but not yet sent (an invitation, a reminder, a code) does not go out either.
        code_ids = participant.codes.values_list("pk", flat=True)
        messaging.cancel_pending(keys_containing=[f":{participant.pk}:", *(f"code:{pk}:" for pk in code_ids)])
    logger.info("invitation declined: participant %s", participant.pk)
    return True


def has_consented(participant: Participant) -> bool:
    """True when the participant agreed to the current consent text."""
    return participant.consents.filter(
        kind=ConsentRecord.Kind.GIVEN, text_version=CONSENT_TEXT_VERSION
    ).exists()


def record_consent(*, participant: Participant) -> ConsentRecord:
    """Record agreement to the current consent text (version and time); once per version."""
    with transaction.atomic():
        Participant.objects.select_for_update().filter(pk=participant.pk).first()
        existing = participant.consents.filter(
            kind=ConsentRecord.Kind.GIVEN, text_version=CONSENT_TEXT_VERSION
        ).first()
        if existing is not None:
            return existing
        return ConsentRecord.objects.create(
            participant=participant,
            kind=ConsentRecord.Kind.GIVEN,
            text_version=CONSENT_TEXT_VERSION,
            recorded_at=timezone.now(),
        )


def start_verification(
    *, participant: Participant, name: str, email: str | None = None, mobile: str | None = None
) -> None:
    """Take the corrected name, then send both codes: to a corrected address or number if given.

    At most one of e-mail and mobile may differ from what is on file: the invitation reached the person
    through at least one of them, and that one must still prove it is them. Raises ValidationError or
    verification.TooManyCodes; sends nothing then.
    """
    email = normalise_email(email) if email else None
    if email and participant.email and email == normalise_email(participant.email):
        email = None
    if mobile and mobile == participant.mobile:
        mobile = None
    errors: dict[str, list[str]] = {}
    if email is None and not participant.email:
        errors.setdefault("email", []).append(_("Enter your e-mail address."))
    if mobile is None and not participant.mobile:
        errors.setdefault("mobile", []).append(_("Enter your mobile number."))
    if email and mobile and participant.email and participant.mobile:
        errors.setdefault("__all__", []).append(
            _(
                "You can correct your e-mail address or your mobile number here, not both at once: one of "
                "the two codes must go to where we sent your invitation. You can correct the other one later "
                "in your account."
            )
        )
    others = Participant.objects.filter(organisation=participant.organisation).exclude(pk=participant.pk)
    if email and others.filter(email_index=blind_index_email(email)).exists():
        errors.setdefault("email", []).append(
            _("This e-mail address cannot be used. Please enter another one.")
        )
    if mobile and others.filter(mobile_index=blind_index_phone(mobile)).exists():
        errors.setdefault("mobile", []).append(
            _("This mobile number cannot be used. Please enter another one.")
        )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        name = name.strip()
        if name and name != (participant.name or ""):
            participant.name = name
            participant.save(update_fields=["name"])
        issue_codes(participant=participant, purpose=ENROL, email_to=email, sms_to=mobile)


def complete_enrolment(*, invitation: Invitation) -> Participant:
    """Activate the participant once consent and both codes are in: fresh pseudonym, link used.

    Raises EnrolmentRefused, changing nothing, when any of that is missing.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            participant = Participant.objects.select_for_update().get(pk=invitation.participant_id)
            invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
            if participant.status != Participant.Status.INVITED or invitation.used_at is not None:
                raise EnrolmentRefused(_("This invitation has already been used."))
            if invitation.expires_at <= now:
                raise EnrolmentRefused(_("This invitation has expired."))
            if not has_consented(participant):
                raise EnrolmentRefused(_("Please read and accept the explanation first."))
            proven = proven_targets(participant=participant, purpose=ENROL)
            if proven is None:
                raise EnrolmentRefused(_("Please enter both codes first."))
            if proven.email:
                participant.email = proven.email
                participant.email_index = blind_index_email(proven.email)
            if proven.mobile:
                participant.mobile = proven.mobile
                participant.mobile_index = blind_index_phone(proven.mobile)
            participant.status = Participant.Status.ACTIVE
            # A fresh P at enrolment: nothing about the invitation or import leads to the scores.
            participant.pseudonym = new_pseudonym()
            participant.save()
            invitation.used_at = now
            invitation.save(update_fields=["used_at"])
            participant.invitations.filter(used_at__isnull=True).exclude(pk=invitation.pk).update(
                expires_at=now
            )
    except IntegrityError:
        raise EnrolmentRefused(
            _("This e-mail address or mobile number cannot be used. Please enter another one.")
        ) from None
    logger.info("participant enrolled: %s", participant.pk)
    return participant


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
