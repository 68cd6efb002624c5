"""Staff second factors that count once, whatever the parallelism, and re-authentication for changes.

What django-otp and two-factor give us, and why each is replaced here (read in their code, 1.7.5 / 1.18.1):
- two-factor's login form verifies against a device loaded *without* a row lock and saves ``last_t`` from a
  stale copy: two parallel logins with one TOTP code both pass.
- ``PhoneDevice`` accepts any code of the last six time steps and remembers none: one SMS code logs in as
  often as it is typed within three minutes.
- ``StaticDevice`` reads the backup code, then deletes it: two parallel logins both read it.
- The throttle counter is a read-modify-write in Python (parallel wrong codes are lost updates) and only
  ever delays; it never locks.

Guarantees of ``verify_second_factor``:
- A TOTP code is accepted at most once: the device row is locked (``SELECT ... FOR UPDATE``) and ``last_t``
  moves forward by compare-and-set, so only a time step later than the last accepted one passes.
- An SMS code likewise, through ``PhoneCodeUse.last_t`` per phone device.
- A backup code is consumed by one filtered ``DELETE`` that reports the rows it removed: the request whose
  statement removed the row gets in, any other finds nothing to delete.
- Every wrong code is one atomic increment of the user's failure count (and of django-otp's per-device
  count, so its admin columns tell the truth); at STAFF_SECOND_FACTOR_MAX_FAILURES the account locks for
  STAFF_SECOND_FACTOR_LOCK_MINUTES or until ``release_lock``. A locked account accepts no code at all.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from typing import Any

from django.conf import settings
from django.db import router, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from two_factor.plugins.phonenumber.models import PhoneDevice
from two_factor.utils import totp_digits

from preventicons.models import PhoneCodeUse, StaffLoginGuard

logger = logging.getLogger(__name__)

# Two-factor's PhoneDevice accepts the code of the current step and of the five before it (its drift range).
PHONE_CODE_STEPS_BACK = 5


class Verdict(enum.Enum):
    VERIFIED = "verified"
    WRONG = "wrong"
    LOCKED = "locked"


# --- the lock -----------------------------------------------------------------------------------


def locked_until(*, user: Any) -> dt.datetime | None:
    """When this staff user's lock ends, or None when the account is not locked now."""
    until = StaffLoginGuard.objects.filter(user_id=user.pk).values_list("locked_until", flat=True).first()
    if until is not None and until > timezone.now():
        return until
    return None


def failure_count(*, user: Any) -> int:
    """Wrong codes counted against this staff user since the last success, release or lock expiry."""
    return StaffLoginGuard.objects.filter(user_id=user.pk).values_list("failures", flat=True).first() or 0


def release_lock(*, user: Any, released_by: Any) -> None:
    """Unlock the account and forget its failures; a platform admin's act, logged with both ids."""
    StaffLoginGuard.objects.filter(user_id=user.pk).update(failures=0, locked_until=None)
    logger.warning("staff user %s: second-factor lock released by staff user %s", user.pk, released_by.pk)


def record_failure(*, user: Any, device: Device | None = None) -> None:
    """Count one wrong code (or wrong re-authentication password), atomically, and lock at the limit."""
    _ensure_guard(user_id=user.pk)
    # F(): the increment happens in the database, so parallel failures are never lost updates.
    StaffLoginGuard.objects.filter(user_id=user.pk).update(failures=F("failures") + 1)
    now = timezone.now()
    lock_ends = now + dt.timedelta(minutes=settings.STAFF_SECOND_FACTOR_LOCK_MINUTES)
    locked = StaffLoginGuard.objects.filter(
        user_id=user.pk, failures__gte=settings.STAFF_SECOND_FACTOR_MAX_FAILURES, locked_until__isnull=True
    ).update(locked_until=lock_ends)
    if locked:
        logger.warning("staff user %s: second factor locked after too many wrong codes", user.pk)
    if device is not None and hasattr(device, "throttling_failure_count"):
        type(device).objects.filter(pk=device.pk).update(
            throttling_failure_count=F("throttling_failure_count") + 1, throttling_failure_timestamp=now
        )


def _ensure_guard(*, user_id: int) -> None:
    # ON CONFLICT DO NOTHING: parallel first failures must not fail on the primary key.
    StaffLoginGuard.objects.bulk_create([StaffLoginGuard(user_id=user_id)], ignore_conflicts=True)


def _expire_lock(*, user_id: int) -> None:
    """A lock whose time is up is gone, and the failures that led to it with it."""
    StaffLoginGuard.objects.filter(user_id=user_id, locked_until__lte=timezone.now()).update(
        failures=0, locked_until=None
    )


def _record_success(*, user_id: int, device: Device) -> None:
    StaffLoginGuard.objects.filter(user_id=user_id).update(failures=0)
    fields: dict[str, Any] = {}
    if hasattr(device, "throttling_failure_count"):
        fields.update(throttling_failure_count=0, throttling_failure_timestamp=None)
    if hasattr(device, "last_used_at"):
        fields["last_used_at"] = timezone.now()
    if fields:
        type(device).objects.filter(pk=device.pk).update(**fields)


# --- verification -------------------------------------------------------------------------------


def verify_second_factor(*, user: Any, device: Device, token: str) -> Verdict:
    """Accept this code for this device of this user at most once, ever; count and lock on failure.

    Runs in its own transaction (a savepoint inside the caller's); the row locks it takes are held until the
    outermost transaction ends, so parallel attempts on one device queue up behind each other.
    """
    using = router.db_for_write(type(device))
    with transaction.atomic(using=using):
        # The device row first: a request that waited for it then sees the lock its predecessors set.
        locked_device = (
            type(device)
            .objects.select_for_update()
            .filter(pk=device.pk, user_id=user.pk, confirmed=True)
            .first()
        )
        _expire_lock(user_id=user.pk)
        if locked_until(user=user) is not None:
            # Still counted: a guesser learns nothing from a locked account, and the count says they tried.
            record_failure(user=user, device=locked_device)
            return Verdict.LOCKED
        if locked_device is not None and _consume(device=locked_device, token=str(token), using=using):
            _record_success(user_id=user.pk, device=locked_device)
            return Verdict.VERIFIED
        record_failure(user=user, device=locked_device)
        return Verdict.WRONG


def _consume(*, device: Device, token: str, using: str) -> bool:
    if isinstance(device, TOTPDevice):
        return _consume_totp(device=device, token=token)
    if isinstance(device, PhoneDevice):
        return _consume_phone_code(device=device, token=token)
    if isinstance(device, StaticDevice):
        return _consume_backup_code(device=device, token=token, using=using)
    # A device type nobody reviewed for single use does not log anyone in.
    return False


def _as_number(token: str) -> int | None:
    token = token.strip()
    if not token.isascii() or not token.isdigit() or len(token) > 10:
        return None
    return int(token)


def _consume_totp(*, device: TOTPDevice, token: str) -> bool:
    number = _as_number(token)
    if number is None:
        return False
    generator = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    generator.time = time.time()
    if not generator.verify(number, device.tolerance, device.last_t + 1):
        return False
    step = generator.t()
    # Compare-and-set: only a step later than the last accepted one moves last_t. Under the row lock this
    # cannot race; the condition keeps it single-use even where the lock is absent (SQLite, a missed lock).
    moved = TOTPDevice.objects.filter(pk=device.pk, last_t__lt=step).update(
        last_t=step, drift=generator.drift if getattr(settings, "OTP_TOTP_SYNC", True) else device.drift
    )
    return moved == 1


def _consume_phone_code(*, device: PhoneDevice, token: str) -> bool:
    number = _as_number(token)
    if number is None:
        return False
    PhoneCodeUse.objects.bulk_create([PhoneCodeUse(device_id=device.pk)], ignore_conflicts=True)
    last_t = PhoneCodeUse.objects.filter(device_id=device.pk).values_list("last_t", flat=True).get()
    now = time.time()
    matched = None
    for drift in range(-PHONE_CODE_STEPS_BACK, 1):
        generator = TOTP(device.bin_key, digits=totp_digits(), drift=drift)
        generator.time = now
        if generator.t() > last_t and generator.token() == number:
            matched = generator.t()
    if matched is None:
        return False
    moved = PhoneCodeUse.objects.filter(device_id=device.pk, last_t__lt=matched).update(last_t=matched)
    return moved == 1


def _consume_backup_code(*, device: StaticDevice, token: str, using: str) -> bool:
    # One DELETE decides: the request whose statement removed the row used the code; a parallel one waits
    # for that row, finds it gone and reports 0 rows. Never read-then-delete (django-otp's way).
    removed, _ = (
        StaticToken.objects.using(using).filter(device_id=device.pk, token=token.strip()[:16]).delete()
    )
    return removed >= 1


# --- re-authentication --------------------------------------------------------------------------

REAUTH_SESSION_KEY = "staff_reauthenticated"


def mark_reauthenticated(*, request: HttpRequest) -> None:
    """Remember in the session that its user just gave their password and a current code again."""
    request.session[REAUTH_SESSION_KEY] = {"user": request.user.pk, "at": int(time.time())}


def is_freshly_reauthenticated(*, request: HttpRequest) -> bool:
    """True within STAFF_REAUTH_SECONDS after this session's user re-authenticated."""
    mark = request.session.get(REAUTH_SESSION_KEY)
    if not isinstance(mark, dict) or mark.get("user") != request.user.pk:
        return False
    at = mark.get("at")
    return isinstance(at, int) and 0 <= time.time() - at <= settings.STAFF_REAUTH_SECONDS


def reauthenticate(*, request: HttpRequest, password: str, device: Device, token: str) -> Verdict:
    """Check the session user's password and a current code of their device; mark the session on success.

    A wrong password counts as a failure like a wrong code: a hijacked session must not guess either.
    The code is consumed like a login code, so re-authenticating spends it.
    """
    user = request.user
    if not user.check_password(password):
        if locked_until(user=user) is not None:
            return Verdict.LOCKED
        record_failure(user=user)
        return Verdict.WRONG
    verdict = verify_second_factor(user=user, device=device, token=token)
    if verdict is Verdict.VERIFIED:
        mark_reauthenticated(request=request)
    return verdict
