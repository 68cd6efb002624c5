"""A database session engine whose rows name nobody to whoever reads the session table without the key file.

Django's own database engine signs ``session_data`` but does not encrypt it: base64 (perhaps zlib) JSON that
an operator decodes in one line. It holds ``participant_id`` and ``participant_seen_at`` of every open
participant account and ``_auth_user_id`` of every staff login, so a dump says who was active when, right
beside the scores written at that time (DESIGN.md "Who we defend against", attacker 2). Here every row is
sealed with the project's field encryption (AES-GCM, padded to a length bucket), bound to the session table,
its column and a hash of the row's session key: a row copied to another key, or altered, does not open.

A row that does not open is treated exactly like an unknown or expired session: the request gets a new,
empty session (and a new key once it saves), never an error page. That covers tampering, a row copied to
another key, rows written by Django's signed engine before this one was deployed, and rows sealed under a
field key that has since been retired: sessions live minutes to hours, so rotation does not re-encrypt them;
once the old key leaves the keyring, whoever was logged in under it simply logs in again.

``expire_date`` is kept, because Django's lookups and ``clear_expired`` need it, but coarsened: it is rounded
up to the next EXPIRY_GRAIN. Left exact, it is the second of each session's last save (plus a known age), so
it would date every participant's visit to the second. The exact expiry travels sealed inside the row and is
what decides: a session is over at the same moment as before, and the rounding only lets a dead row wait a
little longer for the cleaning job.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone

from preventicons.crypto import Binding, DecryptionError, hash_token, open_sealed, seal

if TYPE_CHECKING:
    from django.contrib.sessions.base_session import AbstractBaseSession

logger = logging.getLogger(__name__)

# As coarse as the batches that take up help requests and account changes (issue 14): a session row then
# dates a visit no finer than anything else in the database does. Longer costs nothing but dead rows that
# wait a little longer to be cleared: the sealed exact expiry decides.
EXPIRY_GRAIN = dt.timedelta(minutes=15)

# Inside the sealed payload: the session's own data and its exact expiry (epoch seconds).
_DATA = "data"
_EXPIRES = "expires"


def session_binding(session_key: str) -> Binding:
    """Where a session's data lives: its table, column and (hashed) key, so a copy elsewhere does not open."""
    return Binding(
        purpose="field", table="django_session", column="session_data", row=hash_token(session_key)
    )


def coarse_expiry(expiry: dt.datetime) -> dt.datetime:
    """``expiry`` rounded up to the next EXPIRY_GRAIN: never earlier, so no live session is lost by it."""
    grain = int(EXPIRY_GRAIN.total_seconds())
    epoch = expiry.timestamp()
    rounded = -(-int(epoch) // grain) * grain
    if rounded < epoch:  # a fraction of a second past a boundary
        rounded += grain
    return dt.datetime.fromtimestamp(rounded, tz=dt.UTC)


class SessionStore(DatabaseSessionStore):
    """Django's database sessions, sealed; a row that does not open is a new, empty session."""

    def seal_row(self, data: dict[str, Any], *, session_key: str, expiry: dt.datetime) -> AbstractBaseSession:
        """The row to store: data and exact expiry sealed to this key, the expiry column coarsened."""
        payload = {_DATA: data, _EXPIRES: expiry.timestamp()}
        plaintext = self.serializer().dumps(payload).decode("latin-1")
        row = self.model(
            session_key=session_key,
            session_data=seal(plaintext, session_binding(session_key)),
            expire_date=coarse_expiry(expiry),
        )
        return row

    def open_row(self, row: AbstractBaseSession) -> dict[str, Any]:
        """The session data of a stored row, or {} (and no session key) when it does not open or is over."""
        try:
            plaintext = open_sealed(row.session_data, session_binding(row.session_key))
            payload = self.serializer().loads(plaintext.encode("latin-1"))
        except (DecryptionError, ValueError):
            # No key, no data in the log: that a session did not open is all an operator needs to see.
            logger.warning(
                "a stored session did not open (tampered with, copied from another key, written before "
                "sessions were sealed, or sealed under a retired key); it starts again empty"
            )
            payload = None
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get(_DATA), dict)
            or not isinstance(payload.get(_EXPIRES), int | float)
            or payload[_EXPIRES] <= timezone.now().timestamp()
        ):
            # As Django does for an unknown or expired key: the next save makes a fresh one.
            self._session_key = None
            return {}
        data: dict[str, Any] = payload[_DATA]
        return data

    def _row_key(self) -> str:
        """This session's key: save() and create() always give it one before they build the row."""
        key = self.session_key
        if key is None:
            raise RuntimeError("a session row is built only once save() has given the session a key")
        return key

    def load(self) -> dict[str, Any]:
        # Django's lookup: the row only while the (coarse) column says it may still be live.
        row = self.model.objects.filter(session_key=self.session_key, expire_date__gt=timezone.now()).first()
        if row is None:
            self._session_key = None
            return {}
        return self.open_row(row)

    async def aload(self) -> dict[str, Any]:
        row = await self.model.objects.filter(
            session_key=self.session_key, expire_date__gt=timezone.now()
        ).afirst()
        if row is None:
            self._session_key = None
            return {}
        return self.open_row(row)

    def create_model_instance(self, data: dict[str, Any]) -> AbstractBaseSession:
        return self.seal_row(data, session_key=self._row_key(), expiry=self.get_expiry_date())

    async def acreate_model_instance(self, data: dict[str, Any]) -> AbstractBaseSession:
        return self.seal_row(data, session_key=self._row_key(), expiry=await self.aget_expiry_date())
