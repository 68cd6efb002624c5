"""The fixed invitation schedule, and recognising people who left when a list is imported again.

What the employer can observe in the mailboxes and phones it supplied must not depend on what a person did.
So every listed person gets one fixed run of messages, started once by the employer's "send invitations":
the invitation, then ``settings.INVITATION_REMINDERS`` reminders, each ``INVITATION_REMINDER_INTERVAL_DAYS``
later at the same time of day, only on weekdays, with the same words for everyone. It runs to the end
whether the person joins, declines, stops or stays silent; only the employer taking them off the list (which
it knows) or a missing processing agreement ends it early. After it, nothing more goes to an address the
employer supplied unless the participant chose it for the weekly messages.

Each message carries a fresh invitation link, which keeps the number the employer supplied, sealed, for its
SMS code. For someone who stopped the link still names their row, as every link names its row (so the table
does not tell who stopped), but the row is stopped: it opens the same neutral first page as any other
(participants/views/enrolment.py), its code goes to the same phone, and nothing opens after it.

Every participant carries keyed hashes of the address and number the employer lists them under
(``listed_hashes``), apart from the contacts they use now. Someone who stopped or declined keeps those two
hashes on their row (Participant.shredded), so a re-imported list meets them exactly as it would meet them
still on the list: they are not invited again, and no answer or count changes. Until review 4 they were
moved into a separate record (``DepartedContact``); records written then are still read.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import router, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError

from participants.agreements import AgreementMissing, require_signed_agreement
from participants.models import (
    DepartedContact,
    FormerListedContact,
    Invitation,
    InvitationSchedule,
    Organisation,
    Participant,
    hold_index_salts,
)
from preventicons import messaging
from preventicons.crypto import (
    blind_index_email,
    blind_index_phone,
    hash_token,
    keyed_hash,
    new_token,
    normalise_email,
)

logger = logging.getLogger(__name__)

WEEKEND = (5, 6)  # Saturday and Sunday, by date.weekday()
BATCH = 500


# --- when ------------------------------------------------------------------------------------------------


def _at(day: dt.date, time: dt.time) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, time))


def first_slot(*, now: dt.datetime) -> dt.datetime:
    """When an invitation started at ``now`` goes out: now on a weekday within the sending hours, else the
    start of the next weekday's sending hours (Europe/Amsterdam). Never at a weekend or at night."""
    local = timezone.localtime(now)
    start = dt.time(hour=settings.INVITATION_SEND_FROM_HOUR)
    until = dt.time(hour=settings.INVITATION_SEND_UNTIL_HOUR)
    if local.weekday() not in WEEKEND and start <= local.time() < until:
        return now
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    while day.weekday() in WEEKEND:
        day += dt.timedelta(days=1)
    return _at(day, start)


def following_slot(due_at: dt.datetime) -> dt.datetime:
    """The next step's moment: the interval later, same local time of day (so the same weekday)."""
    local = timezone.localtime(due_at)
    day = local.date() + dt.timedelta(days=settings.INVITATION_REMINDER_INTERVAL_DAYS)
    while day.weekday() in WEEKEND:  # only with an interval that is not a whole number of weeks
        day += dt.timedelta(days=1)
    return _at(day, local.time().replace(tzinfo=None))


def last_step() -> int:
    """The number of the last message of a schedule (0 is the invitation)."""
    return int(settings.INVITATION_REMINDERS)


# --- starting schedules ------------------------------------------------------------------------------------


def send_invitations(*, organisation: Organisation, by: Any = None) -> int:
    """Start the fixed schedule for every listed person whose schedule never started; the number started.

    Exactly the people new to the list: whoever was invited before (whatever they did since) and whoever
    a re-import recognised as having left is never started again. A second run starts nothing.
    Raises AgreementMissing, starting nothing, when the processing agreement is not recorded.
    """
    require_signed_agreement(organisation)
    now = timezone.now()
    due_at = first_slot(now=now)
    started = 0
    with transaction.atomic():
        # The organisation first, as every writer of a participant row takes it (participants.rewrite): a
        # request batch or a night that writes every row, in random order, holds every organisation from its
        # start, so this waits for it instead of holding rows it needs while it holds rows this needs (a
        # deadlock that aborted one of them, review 9).
        Organisation.objects.select_for_update(no_key=True).filter(pk=organisation.pk).first()
        # Locked, so two parallel runs cannot both start the same person.
        # The status is sealed: whoever is still invited is decided in Python, below.
        candidates = Participant.objects.select_for_update().filter(
            organisation=organisation, is_listed=True, was_invited=False
        )
        schedules = []
        ids = []
        for participant in candidates.order_by("pk"):
            if participant.status != Participant.Status.INVITED:
                continue
            # A copy of the addresses the employer supplied, sealed to the schedule's own row.
            schedules.append(
                InvitationSchedule(
                    id=uuid.uuid4(),
                    organisation=organisation,
                    participant=participant,
                    email=participant.email,
                    mobile=participant.mobile,
                    next_due_at=due_at,
                )
            )
            ids.append(participant.pk)
        InvitationSchedule.objects.bulk_create(schedules, batch_size=BATCH)
        for start in range(0, len(ids), BATCH):
            started += Participant.objects.filter(pk__in=ids[start : start + BATCH]).update(was_invited=True)
    logger.info(
        "invitation schedules started: %d for organisation %s by staff %s",
        started,
        organisation.pk,
        getattr(by, "pk", "-"),
    )
    if started and due_at <= now:
        transaction.on_commit(_hurry)
    return started


def _hurry() -> None:
    from participants.tasks import send_due_invitations

    try:
        send_due_invitations.delay()
    except BrokerError:
        # Only a nudge: the beat sends what is due anyway.
        logger.warning("could not hurry the invitation schedule; the beat will send it")


# --- sending what is due -------------------------------------------------------------------------------


@dataclass
class ScheduleReport:
    sent: int = 0  # schedule steps whose messages were queued
    ended: int = 0  # schedules finished or ended (taken off the list)
    skipped: int = 0  # steps left waiting: no agreement


def _texts(step: int, context: dict[str, str]) -> tuple[str, str, str]:
    """Subject, e-mail body and SMS of a step: the same words for everyone, only the links differ."""
    subject = (
        _("Your invitation to the weekly wellbeing check-in")
        if step == 0
        else _("Reminder: your invitation to the weekly wellbeing check-in")
    )
    body = _(
        "Your employer offers you Preventicons: once a week you tap a smiley to say how you are "
        "doing. Taking part is voluntary. Your employer never learns whether you take part, what you "
        "answer or whether you ask for help.\n\n"
        "Join here (the link works until %(until)s):\n%(join)s\n\n"
        "Do you not want to take part? Say so here:\n%(decline)s"
    )
    if step:
        body = (
            _(
                "A reminder of our invitation. Everyone on your employer's list receives the same reminders, "
                "whether they replied or not: if you already did, you can ignore this message."
            )
            + "\n\n"
            + body
        )
    sms = _(
        "Preventicons, offered by your employer: a weekly smiley, anonymous towards your employer. "
        "Join: %(join)s Not interested: %(decline)s"
    )
    return subject, body % context, sms % context


def _link_for(schedule: InvitationSchedule, now: dt.datetime) -> tuple[str, dt.datetime]:
    """A fresh token opening the participant's invitation; for someone who stopped, one opening nothing."""
    token = new_token()
    expires_at = now + dt.timedelta(days=settings.INVITATION_DAYS)
    # For someone who stopped too, naming their (stopped) row as everyone's link names theirs: a link
    # without a participant told a dump whose row had stopped (review 5). It opens nothing
    # (enrolment.link_state), and its SMS code goes to the number the employer supplied as every link's
    # does (enrolment.request_link_code).
    Invitation.objects.create(
        participant=schedule.participant,
        token_hash=hash_token(token),
        expires_at=expires_at,
        mobile=schedule.mobile,
    )
    return token, expires_at


def _send_step(schedule: InvitationSchedule, now: dt.datetime) -> None:
    token, expires_at = _link_for(schedule, now)
    join = settings.SITE_URL + reverse("participants:invitation", kwargs={"token": token})
    decline = settings.SITE_URL + reverse("participants:invitation-decline", kwargs={"token": token})
    until = timezone.localtime(expires_at).date().strftime("%d-%m-%Y")
    subject, body, sms = _texts(schedule.next_step, {"join": join, "decline": decline, "until": until})
    # Keys name the schedule and the step, never the participant: a stop or decline, which cancels what is
    # queued under the participant's id, must not cancel these.
    key = f"invite:{schedule.pk}:{schedule.next_step}"
    if schedule.email:
        messaging.queue_email(key=f"{key}:email", to=schedule.email, subject=subject, body=body)
    if schedule.mobile:
        messaging.queue_sms(key=f"{key}:sms", to=schedule.mobile, body=sms)


def send_due_invitations(*, now: dt.datetime | None = None) -> ScheduleReport:
    """Queue every schedule step that is due, once; nothing at a weekend (the steps wait for Monday).

    Idempotent: each step's messages have unique outbox keys and the step advances in the same transaction,
    so a second or retried run sends nothing twice.
    """
    now = now or timezone.now()
    report = ScheduleReport()
    if timezone.localtime(now).weekday() in WEEKEND:
        return report
    blocked: set[int] = set()
    while True:
        with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
            due = list(
                InvitationSchedule.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("participant", "organisation")
                .filter(next_due_at__lte=now)
                .exclude(organisation_id__in=blocked)
                .order_by("next_due_at", "pk")[:BATCH]
            )
            if not due:
                break
            for schedule in due:
                try:
                    require_signed_agreement(schedule.organisation)
                except AgreementMissing:
                    blocked.add(schedule.organisation_id)
                    report.skipped += 1
                    continue
                participant = schedule.participant
                if (
                    participant is not None
                    and not participant.is_listed
                    and not _listed_as_departed(schedule, participant)
                ):
                    # The employer took them off its list: it knows, so ending here tells it nothing.
                    schedule.delete()
                    report.ended += 1
                    continue
                _send_step(schedule, now)
                report.sent += 1
                if schedule.next_step >= last_step():
                    # The last message is queued: the sealed copy of the addresses goes with the row.
                    schedule.delete()
                    report.ended += 1
                else:
                    schedule.next_step += 1
                    # After a pause of the beat the rest of the run shifts by whole intervals, for everyone
                    # alike, rather than sending two messages at once.
                    next_due_at = following_slot(schedule.next_due_at)
                    while next_due_at <= now:
                        next_due_at = following_slot(next_due_at)
                    schedule.next_due_at = next_due_at
                    schedule.save(update_fields=["next_step", "next_due_at"])
    if report.sent or report.ended or report.skipped:
        logger.info(
            "invitation schedule: %d steps sent, %d schedules ended, %d waiting for an agreement",
            report.sent,
            report.ended,
            report.skipped,
        )
    return report


# --- how the employer lists people, and people who left -----------------------------------------------

# The domain labels predate the listed hashes (they first named only departed people's hashes); they stay,
# so the hashes stored before remain valid.
_LISTED_EMAIL = "departed-email"
_LISTED_MOBILE = "departed-mobile"


def listed_hashes(
    *, organisation_id: int, email: str | None, mobile: str | None
) -> tuple[str | None, str | None]:
    """The keyed hashes of an address and a number as an organisation lists them: (e-mail, mobile).

    Under the blind_index key with their own domain labels and the organisation in them, so they equal no
    blind index (a dump cannot join them to a participant's current contacts) nor another organisation's.
    """
    email_hash = (
        keyed_hash("blind_index", f"{_LISTED_EMAIL}:{organisation_id}", normalise_email(email))
        if email
        else None
    )
    mobile_hash = keyed_hash("blind_index", f"{_LISTED_MOBILE}:{organisation_id}", mobile) if mobile else None
    return email_hash, mobile_hash


def departed_hashes(*, organisation_id: int, email: str | None, mobile: str | None) -> set[str]:
    """listed_hashes as a set (those that exist), for lookups that only ask "was this ever listed"."""
    return {
        value for value in listed_hashes(organisation_id=organisation_id, email=email, mobile=mobile) if value
    }


def held_by_someone_else(
    *, participant: Participant, email: str | None = None, mobile: str | None = None
) -> tuple[bool, bool]:
    """Whether another person of the organisation holds this address, and this number: (e-mail, mobile).

    Held as the contact they use now, as the one the employer lists them under, or as someone who left: one
    answer for all three, so a participant who tries a colleague's work address or number (an employer's
    staff take part too) learns nothing from the refusal about what that colleague did, and no code goes to
    a colleague's mailbox or phone.
    """
    if not (email or mobile):
        return False, False
    organisation_id = participant.organisation_id
    with transaction.atomic(using=router.db_for_write(Organisation)):
        # Held while the indexes are looked up (review 8): read, then looked up with nothing held, a request
        # batch renewing the salt in between left the lookup under a salt no row has any more, and a
        # colleague's address passed as free. A batch running now is waited for.
        salt = hold_index_salts([organisation_id])[organisation_id]
        return _held_under(participant, organisation_id, salt, email=email, mobile=mobile)


def _held_under(
    participant: Participant, organisation_id: int, salt: str, *, email: str | None, mobile: str | None
) -> tuple[bool, bool]:
    """held_by_someone_else's answer, with the organisation's index salt held by the caller."""
    others = Participant.objects.filter(organisation_id=organisation_id).exclude(pk=participant.pk)
    departed = DepartedContact.objects.filter(organisation_id=organisation_id)
    # A contact a list gave up for someone (FormerListedContact) is refused like a listed one, whatever that
    # person did: else only a colleague who joined and kept it as their own would still hold it (review 11).
    former = FormerListedContact.objects.filter(organisation_id=organisation_id)
    email_hash, mobile_hash = listed_hashes(organisation_id=organisation_id, email=email, mobile=mobile)
    email_taken = bool(email) and (
        others.filter(
            Q(email_index=blind_index_email(email or "", salt)) | Q(listed_email_hash=email_hash)
        ).exists()
        or departed.filter(email_hash=email_hash).exists()
        or former.filter(listed_hash=email_hash).exists()
    )
    mobile_taken = bool(mobile) and (
        others.filter(
            Q(mobile_index=blind_index_phone(mobile or "", salt)) | Q(listed_mobile_hash=mobile_hash)
        ).exists()
        or departed.filter(mobile_hash=mobile_hash).exists()
        or former.filter(listed_hash=mobile_hash).exists()
    )
    return email_taken, mobile_taken


def departed_owners(*, organisation_id: int, hashes: set[str]) -> list[DepartedContact]:
    """The departed people of this organisation whom any of these listed hashes (e-mail or mobile) names."""
    found: dict[Any, DepartedContact] = {}
    values = sorted(hashes)
    for start in range(0, len(values), BATCH):
        chunk = values[start : start + BATCH]
        for record in DepartedContact.objects.filter(organisation_id=organisation_id).filter(
            Q(email_hash__in=chunk) | Q(mobile_hash__in=chunk)
        ):
            found[record.pk] = record
    return list(found.values())


def known_departed(*, organisation_id: int, hashes: set[str]) -> set[str]:
    """Which of these hashes belong to someone who left this organisation."""
    found: set[str] = set()
    for record in departed_owners(organisation_id=organisation_id, hashes=hashes):
        found.update(value for value in (record.email_hash, record.mobile_hash) if value in hashes)
    return found


def _listed_email_hashes(address: str) -> dict[str, int]:
    """The hash each organisation would list this address under, and whose it is."""
    by_hash: dict[str, int] = {}
    for organisation_id in Organisation.objects.values_list("pk", flat=True):
        email_hash, _mobile = listed_hashes(organisation_id=organisation_id, email=address, mobile=None)
        if email_hash:
            by_hash[email_hash] = organisation_id
    return by_hash


def organisations_listing_email(*, address: str) -> set[int]:
    """The organisations that list this e-mail address: for a participant (whatever they did since, whatever
    address they use now) or as someone who left, now or before a later list moved them to another address
    (FormerListedContact). A hash names nobody, only "this list holds it"."""
    by_hash = _listed_email_hashes(address)
    values = sorted(by_hash)
    found: set[str] = set()
    for start in range(0, len(values), BATCH):
        chunk = values[start : start + BATCH]
        for values_found in (
            DepartedContact.objects.filter(email_hash__in=chunk).values_list("email_hash", flat=True),
            FormerListedContact.objects.filter(listed_hash__in=chunk).values_list("listed_hash", flat=True),
            Participant.objects.filter(listed_email_hash__in=chunk).values_list(
                "listed_email_hash", flat=True
            ),
        ):
            found.update(value for value in values_found if value)
    return {by_hash[value] for value in found if value in by_hash}


def listed_under_email(*, address: str) -> dict[int, Participant]:
    """Per organisation, the participant row its list names under this e-mail address now (any status)."""
    by_hash = _listed_email_hashes(address)
    values = sorted(by_hash)
    found: dict[int, Participant] = {}
    for start in range(0, len(values), BATCH):
        for participant in Participant.objects.filter(listed_email_hash__in=values[start : start + BATCH]):
            if by_hash.get(participant.listed_email_hash or "") == participant.organisation_id:
                found[participant.organisation_id] = participant
    return found


def _listed_as_departed(schedule: InvitationSchedule, participant: Participant) -> bool:
    """Whether this row stopped before review 4 and a DepartedContact names the addresses its schedule holds.

    Such a row holds look-alike listed hashes, so a full list that still names its person matches nobody to
    it and unlists it: the list's answer for them is their record, and so is their schedule's end (by the
    hashes of the addresses it holds, end_schedules_not_listed). Ended by the row's listing, their reminders
    stopped while the list named them, which the employer reads in the mailbox it supplied
    (tests/test_attacks_review7.py). Anyone else, a row stopped since included, ends by the row's listing.
    The status is sealed: decided here, in Python.
    """
    if participant.status != Participant.Status.STOPPED:
        return False
    own = departed_hashes(
        organisation_id=schedule.organisation_id, email=schedule.email, mobile=schedule.mobile
    )
    return bool(own and known_departed(organisation_id=schedule.organisation_id, hashes=own))


def end_schedules_not_listed(*, organisation_id: int, listed_hashes: set[str]) -> int:
    """After a full list: end the schedules of people who left before review 4 and whom it no longer names.

    Whoever else is off the list ends at their next step (``is_listed``), someone who stopped since too: their
    row keeps its listed hashes, so the import unlists it as it unlists anyone's. Ended here, in the import's
    transaction, their schedule would name their row as a stopper's to whoever reads the dead tuples
    (tests/test_attacks_review7.py). Someone who left before review 4 is matched by their DepartedContact,
    never by their row, so their schedule is matched on the hashes of the addresses it holds, as then.
    """
    ended = 0
    schedules = InvitationSchedule.objects.filter(organisation_id=organisation_id).select_related(
        "participant"
    )
    for schedule in schedules:
        if schedule.participant is not None and not _listed_as_departed(schedule, schedule.participant):
            continue
        own = departed_hashes(organisation_id=organisation_id, email=schedule.email, mobile=schedule.mobile)
        if not own & listed_hashes:
            schedule.delete()
            ended += 1
    return ended
