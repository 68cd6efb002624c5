"""The one rate limiter: every budget of the platform (links, codes, messages) is counted here, alike.

A ``Budget`` allows ``limit`` events per subject in any ``window_seconds``, optionally with a growing pause
between events (``backoff_seconds``: after the n-th event of the window, the next waits backoff * 2**(n-1)).
``spend`` counts one event and says whether it may happen; ``wait`` says how long before one could, without
counting anything.

How it counts: the window is cut into ``BUCKETS`` buckets, one cache counter each; an event increments the
current bucket and then reads the window's buckets in one round trip. The count covers the window plus at
most one bucket, so "at most ``limit`` in any window" holds exactly (a refusal may come up to one bucket
early), and parallel requests can neither overshoot nor undershoot: the current bucket's INCR answers
each event with its own place in line.
A refused event is taken back unless the budget says refusals count (``count_refused``: a scanner that
keeps trying stays locked out). The pause, when the budget has one, is claimed with an atomic add, so two
parallel requests cannot both pass it.

Subjects (a client address, a staff user id, a link) reach the cache only as keyed hashes: the cache
holds no address, no id.

**When the cache (Redis) cannot be reached, every budget is refused: the limiter fails closed.** Nothing
that matters to a participant waits on it: a link we made never consults a budget (preventicons.linktokens),
so weekly smileys, invitations and account links keep opening, and the codes' guess budgets live in the
database. What a budget guards either costs money or lands in someone's inbox (text messages, e-mails),
or is a stranger's guessing; failing open would hand all of that to whoever can make Redis unreachable
for a moment, and in production the same Redis is the task queue, so a message could not leave anyway.
The caller tells the user the truth ("not sent, try again in a few minutes"), and a warning is logged.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis.exceptions import RedisError

from preventicons.clients import client_address
from preventicons.crypto import keyed_hash

logger = logging.getLogger(__name__)

BUCKETS = 60
# What a cache backend raises when its server is away: redis-py's errors, a socket's OSError.
_UNREACHABLE = (RedisError, OSError)
KEY_PREFIX = "preventicons:rl"


@dataclass(frozen=True)
class Budget:
    """At most ``limit`` events per subject in any ``window_seconds`` (and a pause between them, if any)."""

    name: str
    limit: int
    window_seconds: int
    backoff_seconds: float = 0
    count_refused: bool = False

    @property
    def bucket_seconds(self) -> int:
        return max(1, math.ceil(self.window_seconds / BUCKETS))


@dataclass(frozen=True)
class Decision:
    """Whether the event may happen; if not, the seconds until one may, and whether the store was away."""

    allowed: bool
    retry_after: int = 0
    unavailable: bool = False

    def __bool__(self) -> bool:
        return self.allowed


# Seconds a caller tells the user to wait when the store is away: a guess, but an honest one.
UNAVAILABLE_RETRY_SECONDS = 300


def _base(budget: Budget, subject: str) -> str:
    return f"{KEY_PREFIX}:{budget.name}:{keyed_hash('blind_index', f'rate-limit:{budget.name}', subject)}"


def _bucket_keys(base: str, budget: Budget, now: float) -> tuple[int, list[str]]:
    current = int(now // budget.bucket_seconds)
    # The current bucket first, then back over the whole window (one bucket more than the window holds).
    return current, [f"{base}:{current - age}" for age in range(BUCKETS + 1)]


def _retry_after(budget: Budget, current: int, counts: list[int], now: float, *, room_for: int) -> int:
    """Seconds until the window holds at most ``limit - room_for`` events, as old buckets leave it."""
    total = sum(counts)
    ready_at = now
    for age in range(BUCKETS, -1, -1):
        if total <= budget.limit - room_for:
            break
        total -= counts[age]
        # The bucket of this age leaves the counted span when the current bucket index passes it by BUCKETS.
        ready_at = (current - age + BUCKETS + 1) * budget.bucket_seconds
    return max(1, math.ceil(ready_at - now))


def _unavailable(budget: Budget, exc: BaseException) -> Decision:
    logger.warning("rate limit store unreachable (%s): %s refused", type(exc).__name__, budget.name)
    return Decision(False, retry_after=UNAVAILABLE_RETRY_SECONDS, unavailable=True)


def _pause_key(base: str) -> str:
    return f"{base}:pause"


def _pause_left(base: str, now: float) -> int:
    until = cache.get(_pause_key(base))
    return max(0, math.ceil(float(until) - now)) if until else 0


def _take_back(key: str) -> None:
    # The bucket was made moments ago; gone already (evicted), there is nothing to take back.
    with contextlib.suppress(ValueError):
        cache.decr(key)


def spend(budget: Budget, subject: str) -> Decision:
    """Count one event of this subject against the budget; a refused event is not counted (but see
    ``count_refused``). Fails closed (see the module)."""
    now = time.time()
    base = _base(budget, subject)
    current, keys = _bucket_keys(base, budget, now)
    timeout = budget.window_seconds + 2 * budget.bucket_seconds
    try:
        if budget.backoff_seconds:
            left = _pause_left(base, now)
            if left:
                return Decision(False, retry_after=left)
        cache.add(keys[0], 0, timeout=timeout)
        try:
            # INCR's answer orders parallel events: the k-th of this bucket sees k, whatever the others do.
            mine = int(cache.incr(keys[0]))
        except ValueError:
            # Evicted between add and incr (a full cache): this event opens the bucket again.
            cache.add(keys[0], 1, timeout=timeout)
            mine = 1
        found = cache.get_many(keys[1:])
        counts = [mine] + [int(found.get(key, 0)) for key in keys[1:]]
        if sum(counts) > budget.limit:
            if not budget.count_refused:
                _take_back(keys[0])
                counts[0] -= 1
            return Decision(False, retry_after=_retry_after(budget, current, counts, now, room_for=1))
        if budget.backoff_seconds:
            pause = budget.backoff_seconds * 2 ** (sum(counts) - 1)
            # Claimed atomically: of two parallel events past the check above, one gets the pause.
            if not cache.add(_pause_key(base), now + pause, timeout=math.ceil(pause) + 1):
                left = _pause_left(base, now)
                if left:
                    _take_back(keys[0])
                    return Decision(False, retry_after=left)
                # A pause that is over but whose key has not expired yet (the store's clock rounds up).
                cache.set(_pause_key(base), now + pause, timeout=math.ceil(pause) + 1)
    except _UNREACHABLE as exc:
        return _unavailable(budget, exc)
    return Decision(True)


def wait(budget: Budget, subject: str) -> Decision:
    """Whether an event could happen now, counting nothing; when not, how long until it could."""
    now = time.time()
    base = _base(budget, subject)
    current, keys = _bucket_keys(base, budget, now)
    try:
        left = _pause_left(base, now) if budget.backoff_seconds else 0
        found = cache.get_many(keys)
    except _UNREACHABLE as exc:
        return _unavailable(budget, exc)
    counts = [int(found.get(key, 0)) for key in keys]
    if sum(counts) + 1 > budget.limit:
        left = max(left, _retry_after(budget, current, counts, now, room_for=1))
    return Decision(left == 0, retry_after=left)


# --- the budgets shared by several apps ------------------------------------------------------------------


def unknown_links_budget() -> Budget:
    """Links we never made, per client address, on every token page alike (settings.UNKNOWN_LINKS_PER_HOUR).

    Refusals count: a scanner that keeps guessing stays refused until it stops for a while.
    """
    return Budget("unknown-link", settings.UNKNOWN_LINKS_PER_HOUR, 3600, count_refused=True)


def count_unknown_link(request: HttpRequest) -> Decision:
    """Count one link we never made, opened by this request's client; refused once over the budget.

    Pages call this only for a token that is not ours (crypto.is_issued_token, or no open weekly link): a
    link we made opens whatever this client did before, and is never counted.
    """
    return spend(unknown_links_budget(), client_address(request))


def staff_sms_budget() -> Budget:
    """Text messages one staff user can cause per hour (settings.STAFF_SMS_PER_HOUR)."""
    return Budget("staff-sms", settings.STAFF_SMS_PER_HOUR, 3600)
