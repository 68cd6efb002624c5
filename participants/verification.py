"""Two-factor verification codes for participants: one code by e-mail and one by SMS, issued together.

Ours, not django-otp's (DESIGN.md "Traps"): a code is stored only as a keyed hash bound to its own row, lives
10 minutes, is used once, and wrong guesses are counted in the database under a row lock, so parallel guesses
all count. Budgets are per participant per hour and across purposes and resends: asking for new codes never
resets them. Opening the account asks for one code only, by SMS (issue_sms_code): the e-mailed link was the
other factor.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import logging
import math
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from participants import contact
from participants.models import CodeFailure, Participant, VerificationCode
from participants.references import hour_index, hour_indexes, lock_participant
from preventicons import messaging
from preventicons.crypto import keyed_hash, normalise_email

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
# The model's check constraint (code_at_most_five_failures) holds the same bound.
MAX_FAILURES_PER_CODE = 5
WINDOW = dt.timedelta(hours=1)
_CODE_SHAPE = re.compile(r"[0-9]{6}", re.ASCII)
CHANNELS = (VerificationCode.Channel.EMAIL, VerificationCode.Channel.SMS)


class VerifyStatus(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"
    EXPIRED = "expired"
    NONE = "none"


@dataclass(frozen=True)
class VerifyOutcome:
    """What a guess achieved. ``target`` is the new address the code proved, if it was sent to one."""

    status: VerifyStatus
    tries_left: int = 0
    target: str | None = None
    # With LOCKED: seconds until the hourly budget of wrong codes allows another try (0: ask for a new code).
    wait_seconds: int = 0

    @property
    def ok(self) -> bool:
        return self.status is VerifyStatus.OK


@dataclass(frozen=True)
class ProvenTargets:
    """Both factors of one round are verified; a target is None when the code went to the address on file."""

    email: str | None
    mobile: str | None


@dataclass(frozen=True)
class ChannelState:
    """What the codes page shows for one channel of the latest round."""

    status: VerifyStatus  # OK (verified), WRONG (open, possibly with failures), LOCKED, EXPIRED, NONE
    tries_left: int = 0
    # With LOCKED: seconds until the hourly budget of wrong codes allows another try (0: a new code will do).
    wait_seconds: int = 0


class TooManyCodes(Exception):
    """New codes are refused for now: the backoff or the hourly cap. ``wait_seconds`` says how long."""

    def __init__(self, wait_seconds: int) -> None:
        self.wait_seconds = wait_seconds
        super().__init__(f"new codes possible in {wait_seconds} s")


class MissingContact(Exception):
    """There is no address or number to send one of the two codes to."""


def codes_of(participant: Participant, *, now: dt.datetime | None = None) -> QuerySet[VerificationCode]:
    """The participant's codes made in the hour before ``now``: found by their hourly keyed hash only.

    Codes name nobody in clear (participants.references); older codes are worth nothing (the hourly budgets
    count the last hour, a code lives 10 minutes) and the nightly run purges them.
    """
    return VerificationCode.objects.filter(
        participant_index__in=hour_indexes(participant.pk, now or timezone.now())
    )


def _new_row(participant: Participant, **fields: object) -> VerificationCode:
    now = fields["created_at"]
    assert isinstance(now, dt.datetime)
    return VerificationCode(
        participant_ref=str(participant.pk), participant_index=hour_index(participant.pk, now), **fields
    )


def _code_hash(code_id: str, purpose: str, channel: str, code: str) -> str:
    # The row id is part of the domain: a database dump alone cannot test the 10**6 candidates offline
    # (the key is needed), and a hash copied to another row does not verify there.
    purpose_value = VerificationCode.Purpose(purpose).value
    channel_value = VerificationCode.Channel(channel).value
    domain = f"verification-code:{code_id}:{purpose_value}:{channel_value}"
    return keyed_hash("blind_index", domain, code)


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _rounds_in_window(participant: Participant, now: dt.datetime) -> list[dt.datetime]:
    # Both codes of a round share one created_at, so distinct creation times count rounds. The SMS codes that
    # open an invitation link are paced per link, not here (issue_sms_code), so entering one does not make
    # the enrolment codes that follow a minute later wait.
    link = VerificationCode.Purpose.OPEN_LINK
    codes = codes_of(participant, now=now).filter(created_at__gt=now - WINDOW)
    codes = codes.exclude(purpose=link)
    return list(codes.order_by("created_at").values_list("created_at", flat=True).distinct())


def _failure_times(participant: Participant, now: dt.datetime) -> list[dt.datetime]:
    """When each wrong code of the last hour was entered, oldest first (by the guess, not by its code)."""
    return list(
        CodeFailure.objects.filter(
            participant_index__in=hour_indexes(participant.pk, now), failed_at__gt=now - WINDOW
        )
        .order_by("failed_at")
        .values_list("failed_at", flat=True)
    )


def _failures_in_window(participant: Participant, now: dt.datetime) -> int:
    return len(_failure_times(participant, now))


def guesses_wait_seconds(participant: Participant, now: dt.datetime | None = None) -> int:
    """Seconds until this participant may enter a code again (0: now): the hourly budget of wrong codes
    (VERIFICATION_FAILURES_PER_HOUR in any 60 minutes, by when each was entered) frees a try only as the
    oldest of them leaves the hour."""
    now = now or timezone.now()
    times = _failure_times(participant, now)
    budget = settings.VERIFICATION_FAILURES_PER_HOUR
    if len(times) < budget:
        return 0
    ready_at = times[len(times) - budget] + WINDOW
    return max(1, math.ceil((ready_at - now).total_seconds()))


def _wait_seconds(participant: Participant, now: dt.datetime, purpose: str | None = None) -> int:
    rounds = _rounds_in_window(participant, now)
    if not rounds:
        return guesses_wait_seconds(participant, now)
    # The backoff grows with the rounds of this purpose (of any, without one): opening the account with an
    # SMS code does not hold up the codes for a change or a stop right after. The hourly cap counts them all.
    if purpose is None:
        paced = rounds
    else:
        paced = list(
            codes_of(participant, now=now)
            .filter(purpose=purpose, created_at__gt=now - WINDOW)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .distinct()
        )
    cap = settings.VERIFICATION_CODE_ROUNDS_PER_HOUR
    # No new code while the wrong-code budget is spent: it could not be entered anyway.
    ready_at = now + dt.timedelta(seconds=guesses_wait_seconds(participant, now))
    if paced:
        backoff = dt.timedelta(seconds=settings.VERIFICATION_RESEND_BASE_SECONDS * 2 ** (len(paced) - 1))
        ready_at = max(ready_at, paced[-1] + backoff)
    if len(rounds) >= cap:
        ready_at = max(ready_at, rounds[len(rounds) - cap] + WINDOW)
    return max(0, math.ceil((ready_at - now).total_seconds()))


def resend_wait_seconds(*, participant: Participant, purpose: str | None = None) -> int:
    """Seconds before this participant can be sent new codes (of this purpose, if given; 0: now)."""
    return _wait_seconds(participant, timezone.now(), purpose)


def _latest(participant: Participant, purpose: str, channel: str) -> VerificationCode | None:
    return codes_of(participant).filter(purpose=purpose, channel=channel).order_by("-created_at").first()


def _site_host() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def code_email_address(participant: Participant) -> str | None:
    """Where the e-mail factor of an account purpose (a correction, a stop) may go; None: nowhere.

    The participant's proven private address when they have one; the work address only when they chose it
    for their weekly messages (they accepted that the employer's IT may read it). Never a work address they
    did not choose: a code arriving there would tell the employer that this person takes part and is about
    to change something or stop. With None the round has only the SMS code, and the account session, opened
    by the e-mailed link and an SMS code, is the other factor (participants.account).
    """
    if participant.private_email:
        return participant.private_email
    if participant.weekly_channel == Participant.WeeklyChannel.WORK_EMAIL and participant.email:
        return participant.email
    return None


def _code_email_body() -> str:
    # One text for every purpose: whoever reads the mailbox (the employer's IT, for a work address) must not
    # learn from it what the code is for. The page the participant is on says that.
    return _(
        "Your code is %(code)s.\n\n"
        "Enter it on the page where you asked for it. The code is valid for %(minutes)d minutes and works "
        "once.\n\n"
        "Did you not ask for a code? Then you can ignore this message; nothing changes."
    )


def issue_codes(
    *,
    participant: Participant,
    purpose: str,
    email_to: str | None = None,
    sms_to: str | None = None,
    channels: tuple[str, ...] = CHANNELS,
) -> list[VerificationCode]:
    """Send a fresh code by e-mail and one by SMS, replacing older unverified codes of this purpose.

    Targets default to the number on file and, for e-mail, to code_email_address (never a work address the
    participant did not choose); a different target is kept sealed on the code, so it replaces the one on
    file only once proven. Every code e-mail reads the same whatever the purpose. ``channels`` narrows the
    round to some channels (all must be verified for ``proven_round``). Raises TooManyCodes while the backoff
    or hourly cap holds, MissingContact when a channel has nowhere to go.
    """
    purpose = VerificationCode.Purpose(purpose)
    now = timezone.now()
    with transaction.atomic():
        # One issuer at a time per participant, so two parallel requests cannot both pass the caps. Not
        # SELECT FOR UPDATE: it would stamp this transaction into the participant row (references.py).
        lock_participant(participant.pk)
        locked = Participant.objects.get(pk=participant.pk)
        if locked.status in (Participant.Status.DECLINED, Participant.Status.STOPPED):
            raise ValueError("no codes for a participant who declined or stopped")
        wait = _wait_seconds(locked, now, purpose)
        if wait:
            raise TooManyCodes(wait)

        destinations: dict[str, tuple[str, str | None]] = {}
        for channel, requested, on_file, default in (
            (VerificationCode.Channel.EMAIL, email_to, locked.email, code_email_address(locked)),
            (VerificationCode.Channel.SMS, sms_to, locked.mobile, locked.mobile),
        ):
            if channel not in channels:
                continue
            destination = requested or default
            if not destination:
                raise MissingContact(channel)
            if channel == VerificationCode.Channel.SMS and not contact.may_receive_codes(destination):
                # Codes go only to mobile numbers of the configured countries (settings.MOBILE_COUNTRIES).
                raise MissingContact(channel)
            if channel == VerificationCode.Channel.EMAIL:
                is_new = bool(requested) and normalise_email(requested or "") != normalise_email(
                    on_file or ""
                )
            else:
                is_new = bool(requested) and requested != on_file
            destinations[channel] = (destination, destination if is_new else None)

        codes_of(locked, now=now).filter(
            purpose=purpose, verified_at__isnull=True, expires_at__gt=now
        ).update(expires_at=now)

        expires_at = now + dt.timedelta(minutes=settings.VERIFICATION_CODE_MINUTES)
        minutes = settings.VERIFICATION_CODE_MINUTES
        issued = []
        for channel in CHANNELS:
            if channel not in destinations:
                continue
            destination, target = destinations[channel]
            code = _new_code()
            row = _new_row(
                locked,
                purpose=purpose,
                channel=channel,
                created_at=now,
                expires_at=expires_at,
                target=target,
            )
            row.code_hash = _code_hash(str(row.id), purpose, channel, code)
            row.save(force_insert=True)
            issued.append(row)
            if channel == VerificationCode.Channel.EMAIL:
                messaging.queue_email(
                    key=f"code:{row.id}:email",
                    to=destination,
                    subject=_("Your Preventicons code: %(code)s") % {"code": code},
                    body=_code_email_body() % {"code": code, "minutes": minutes},
                )
            else:
                # The last line lets a phone offer the code for this site only (origin-bound one-time codes).
                messaging.queue_sms(
                    key=f"code:{row.id}:sms",
                    to=destination,
                    body=_("Your Preventicons code is %(code)s (valid for %(minutes)d minutes).")
                    % {"code": code, "minutes": minutes}
                    + f"\n\n@{_site_host()} #{code}",
                )
    # No participant id in the log: its time would pair it with a tap in the proxy's log (issue #14).
    logger.info("verification codes issued: purpose %s", purpose)
    return issued


def _sms_code_text(code: str) -> str:
    minutes = settings.VERIFICATION_CODE_MINUTES
    # The last line lets a phone offer the code for this site only (origin-bound one-time codes).
    return (
        _("Your Preventicons code is %(code)s (valid for %(minutes)d minutes).")
        % {
            "code": code,
            "minutes": minutes,
        }
        + f"\n\n@{_site_host()} #{code}"
    )


def send_decoy_sms_code(*, to: str, key: str) -> None:
    """Text a code that is stored nowhere, in the words of a real one: for a link that opens nothing.

    The phone the employer supplied must receive the same texts whatever the person did (enrolment.
    request_link_code); the code opens nothing, since nothing is kept to check it against.
    """
    messaging.queue_sms(key=key, to=to, body=_sms_code_text(_new_code()))


def issue_sms_code(*, participant: Participant, purpose: str, to: str | None = None) -> VerificationCode:
    """Send a fresh code by SMS only (the other factor was proven otherwise), replacing older open ones.

    Under the same budgets as issue_codes (backoff, hourly cap), raising TooManyCodes. The SMS code that opens
    an invitation link (OPEN_LINK) is paced per link by its caller instead, goes to ``to`` (the number sealed
    on the link), also to someone who declined (they may change their mind), and raises MissingContact without
    a number. For any other purpose a participant without a
    mobile number gets a code row all the same, sent nowhere: the page that asks for it, and what a wrong
    guess answers, must not tell whether we hold a number (whoever opened their e-mailed link may not be
    them). Raises ValueError for someone who stopped (or, but for OPEN_LINK, declined).
    """
    purpose = VerificationCode.Purpose(purpose)
    opening = purpose == VerificationCode.Purpose.OPEN_LINK
    now = timezone.now()
    with transaction.atomic():
        lock_participant(participant.pk)
        locked = Participant.objects.get(pk=participant.pk)
        refused = [Participant.Status.STOPPED] + ([] if opening else [Participant.Status.DECLINED])
        if locked.status in refused:
            raise ValueError("no codes for a participant who stopped or declined")
        # The code that opens an invitation link goes to the number sealed on that link (``to``), and codes go
        # only to mobile numbers of the configured countries (settings.MOBILE_COUNTRIES).
        destination = (to if opening else None) or locked.mobile
        sendable = bool(destination) and contact.may_receive_codes(destination or "")
        if opening and not sendable:
            raise MissingContact(VerificationCode.Channel.SMS)
        # The code that opens an invitation link is paced per link, by its caller (participants/views/
        # enrolment.py), with the same backoff and hourly cap, and alike for a link that opens nothing: a
        # budget per person would let the second of two links pressed at once stay silent for someone still
        # invited and text for someone who stopped (whose links belong to nobody).
        wait = 0 if opening else _wait_seconds(locked, now, purpose)
        if wait:
            raise TooManyCodes(wait)
        codes_of(locked, now=now).filter(
            purpose=purpose, verified_at__isnull=True, expires_at__gt=now
        ).update(expires_at=now)
        minutes = settings.VERIFICATION_CODE_MINUTES
        code = _new_code()
        row = _new_row(
            locked,
            purpose=purpose,
            channel=VerificationCode.Channel.SMS,
            created_at=now,
            expires_at=now + dt.timedelta(minutes=minutes),
        )
        row.code_hash = _code_hash(str(row.id), purpose, VerificationCode.Channel.SMS, code)
        row.save(force_insert=True)
        if destination and sendable:
            messaging.queue_sms(key=f"code:{row.id}:sms", to=destination, body=_sms_code_text(code))
    logger.info("verification code issued by SMS: purpose %s", purpose)
    return row


def verify_code(*, participant: Participant, purpose: str, channel: str, code: str) -> VerifyOutcome:
    """Check a guess against the latest code of this purpose and channel; every wrong guess is counted."""
    now = timezone.now()
    guess = code.strip().replace(" ", "")
    with transaction.atomic():
        # Serialises all guesses of one participant, so the hourly budget cannot be raced either.
        lock_participant(participant.pk)
        row = (
            codes_of(participant, now=now)
            .select_for_update()
            .filter(purpose=purpose, channel=channel)
            .order_by("-created_at")
            .first()
        )
        if row is None or row.verified_at is not None:
            return VerifyOutcome(VerifyStatus.NONE)
        if row.expires_at <= now:
            return VerifyOutcome(VerifyStatus.EXPIRED)
        if row.failed_attempts >= MAX_FAILURES_PER_CODE:
            return VerifyOutcome(VerifyStatus.LOCKED)
        failures = _failures_in_window(participant, now)
        hourly = settings.VERIFICATION_FAILURES_PER_HOUR
        if failures >= hourly:
            return VerifyOutcome(VerifyStatus.LOCKED, wait_seconds=guesses_wait_seconds(participant, now))

        well_formed = bool(_CODE_SHAPE.fullmatch(guess))
        expected = _code_hash(str(row.id), purpose, channel, guess if well_formed else "")
        if hmac.compare_digest(expected, row.code_hash) and well_formed:
            VerificationCode.objects.filter(pk=row.pk, verified_at__isnull=True).update(verified_at=now)
            return VerifyOutcome(VerifyStatus.OK, target=row.target)

        VerificationCode.objects.filter(pk=row.pk).update(failed_attempts=F("failed_attempts") + 1)
        CodeFailure.objects.create(participant_index=hour_index(participant.pk, now), failed_at=now)
        row.refresh_from_db(fields=["failed_attempts"])
        tries_left = min(MAX_FAILURES_PER_CODE - row.failed_attempts, hourly - failures - 1)
    logger.info("wrong verification code: channel %s", channel)
    if hourly - failures - 1 <= 0:
        return VerifyOutcome(VerifyStatus.LOCKED, wait_seconds=guesses_wait_seconds(participant, now))
    if tries_left <= 0:
        return VerifyOutcome(VerifyStatus.LOCKED)
    return VerifyOutcome(VerifyStatus.WRONG, tries_left=tries_left)


def channel_states(*, participant: Participant, purpose: str) -> dict[str, ChannelState]:
    """The state of the latest code per channel, for the page that asks for them."""
    now = timezone.now()
    budget = settings.VERIFICATION_FAILURES_PER_HOUR - _failures_in_window(participant, now)
    states: dict[str, ChannelState] = {}
    for channel in CHANNELS:
        row = _latest(participant, purpose, channel)
        if row is None:
            states[channel] = ChannelState(VerifyStatus.NONE)
        elif row.verified_at is not None:
            states[channel] = ChannelState(VerifyStatus.OK)
        elif row.expires_at <= now:
            states[channel] = ChannelState(VerifyStatus.EXPIRED)
        elif budget <= 0:
            states[channel] = ChannelState(
                VerifyStatus.LOCKED, wait_seconds=guesses_wait_seconds(participant, now)
            )
        elif row.failed_attempts >= MAX_FAILURES_PER_CODE:
            states[channel] = ChannelState(VerifyStatus.LOCKED)
        else:
            tries = min(MAX_FAILURES_PER_CODE - row.failed_attempts, budget)
            states[channel] = ChannelState(VerifyStatus.WRONG, tries_left=tries)
    return states


def proven_targets(*, participant: Participant, purpose: str) -> ProvenTargets | None:
    """The targets of the latest round if both its codes are verified (within the hour), else None."""
    email_row = _latest(participant, purpose, VerificationCode.Channel.EMAIL)
    sms_row = _latest(participant, purpose, VerificationCode.Channel.SMS)
    if email_row is None or sms_row is None or email_row.created_at != sms_row.created_at:
        return None
    if email_row.verified_at is None or sms_row.verified_at is None:
        return None
    if email_row.created_at <= timezone.now() - WINDOW:
        return None
    return ProvenTargets(email=email_row.target, mobile=sms_row.target)


def pending_targets(*, participant: Participant, purpose: str) -> tuple[str | None, str | None]:
    """Where the latest round of codes went when not to the address on file: (e-mail, mobile).

    Only the latest round counts: a round may lack a channel, and an older round's target is no longer asked.
    """
    latest = codes_of(participant).filter(purpose=purpose).order_by("-created_at").first()
    if latest is None:
        return (None, None)
    rows = codes_of(participant).filter(purpose=purpose, created_at=latest.created_at)
    targets = {row.channel: row.target for row in rows}
    return (targets.get(VerificationCode.Channel.EMAIL), targets.get(VerificationCode.Channel.SMS))


def _round_marker(participant: Participant, purpose: str) -> str:
    # The id of one code of the latest round, whichever channels it had (a round may have no e-mail code:
    # participants.account._round_channels), so a redelivered resend task finds its round already issued.
    latest = codes_of(participant).filter(purpose=purpose).order_by("-created_at", "channel").first()
    return str(latest.pk) if latest else ""


def request_resend(*, participant: Participant, purpose: str) -> int:
    """Queue new codes to the latest round's targets, after commit; returns the wait (0: queued now)."""
    from participants.tasks import resend_codes

    wait = resend_wait_seconds(participant=participant, purpose=purpose)
    if wait:
        return wait
    after = _round_marker(participant, purpose)
    participant_id = str(participant.pk)
    transaction.on_commit(lambda: resend_codes.delay(participant_id, str(purpose), after))
    return 0


def resend_after(*, participant_id: str, purpose: str, after_code_id: str) -> bool:
    """Issue new codes unless the round after ``after_code_id`` was already issued; True when issued."""
    participant = Participant.objects.filter(pk=participant_id).first()
    if participant is None or participant.status in (Participant.Status.DECLINED, Participant.Status.STOPPED):
        return False
    if _round_marker(participant, purpose) != after_code_id:
        return False  # a redelivered task: its round exists already
    email_to, sms_to = pending_targets(participant=participant, purpose=purpose)
    # The same channels as the round it replaces: a round that spared the work mailbox keeps sparing it.
    channels = tuple(
        channel for channel in CHANNELS if channel in round_channels(participant=participant, purpose=purpose)
    )
    try:
        issue_codes(
            participant=participant,
            purpose=purpose,
            email_to=email_to,
            sms_to=sms_to,
            channels=channels or CHANNELS,
        )
    except (TooManyCodes, MissingContact):
        # MissingContact: the e-mail factor may no longer go anywhere (code_email_address); no new round.
        return False
    return True


def proven_round(*, participant: Participant, purpose: str) -> ProvenTargets | None:
    """The targets of the latest round, whichever channels it had, if all its codes are verified (within the
    hour), else None. A channel the round did not have has target None."""
    latest = codes_of(participant).filter(purpose=purpose).order_by("-created_at").first()
    if latest is None or latest.created_at <= timezone.now() - WINDOW:
        return None
    rows = list(codes_of(participant).filter(purpose=purpose, created_at=latest.created_at))
    if any(row.verified_at is None for row in rows):
        return None
    targets = {row.channel: row.target for row in rows}
    return ProvenTargets(
        email=targets.get(VerificationCode.Channel.EMAIL), mobile=targets.get(VerificationCode.Channel.SMS)
    )


def round_channels(*, participant: Participant, purpose: str) -> set[str]:
    """The channels of the latest round of this purpose (empty without one)."""
    latest = codes_of(participant).filter(purpose=purpose).order_by("-created_at").first()
    if latest is None:
        return set()
    return set(
        codes_of(participant)
        .filter(purpose=purpose, created_at=latest.created_at)
        .values_list("channel", flat=True)
    )


def verified_within_the_hour(*, participant: Participant, purpose: str) -> bool:
    """True when a code of this purpose was verified in the last hour (a factor proven in this visit)."""
    now = timezone.now()
    return codes_of(participant, now=now).filter(purpose=purpose, verified_at__gt=now - WINDOW).exists()
