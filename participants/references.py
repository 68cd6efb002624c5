"""How rows written right after a tap name their participant: sealed, or by a keyed hash that changes hourly.

A participant who taps a smiley often goes on from the thanks page: asks for their account link, opens it,
enters a code. Those rows land in the transactions right after the score's, so ordering the tables by
``xmin`` (or by row order) lines each score up with the next such row. If that row carried the participant
id in clear, it would name the author of the score (issue #14, F7). So account links and verification codes
name nobody in clear:

- the participant id is sealed to the row (AES-GCM, bound to table, column and row id), read by the
  application only;
- where codes must be found by participant (the hourly budgets, the latest round), a keyed hash of the
  participant id and the clock hour the code was made in (``hour_index``): it repeats only within that hour,
  so rows of different hours, or the codes of an enrolment and those after a tap weeks later, cannot be
  gathered into one person's rows by a dump;
- and writing them locks no participant row: ``SELECT ... FOR UPDATE`` stamps the locking transaction's id
  into the row's ``xmax``, which would pair the participant row with the code written in that transaction.
  An advisory lock (``lock_participant``) serialises the same work and leaves nothing in any row.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import connections, router

from participants.models import Participant
from preventicons import crypto

HOUR = dt.timedelta(hours=1)
# Under the identity store's keyed-hash key, with labels of their own (keyed_hash puts the label first), so
# no value here can equal a blind index or a per-week pseudonym.
_INDEX_PURPOSE = "blind_index"
_INDEX_LABEL = "code-participant-hour"
_LOCK_LABEL = "participant-lock"


def _hour(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // int(HOUR.total_seconds())


def hour_index(participant_id: uuid.UUID | str, moment: dt.datetime) -> str:
    """The keyed hash that finds a participant's codes made in the clock hour of ``moment``."""
    return crypto.keyed_hash(_INDEX_PURPOSE, _INDEX_LABEL, f"{participant_id}:{_hour(moment)}")


def hour_indexes(participant_id: uuid.UUID | str, now: dt.datetime) -> list[str]:
    """The hashes of every code made in the hour before ``now``: its clock hour and the one before."""
    return [hour_index(participant_id, now), hour_index(participant_id, now - HOUR)]


def lock_participant(participant_id: uuid.UUID | str) -> None:
    """Serialise work on one participant until the transaction ends, without writing to their row.

    On PostgreSQL a transaction-level advisory lock on a keyed 63-bit number (nothing stored, gone at commit).
    Elsewhere (SQLite) writers are serialised by the database itself and SELECT FOR UPDATE is a no-op anyway.
    Call inside transaction.atomic().
    """
    connection = connections[router.db_for_write(Participant)]
    if connection.vendor != "postgresql":
        return
    digest = crypto.keyed_hash(_INDEX_PURPOSE, _LOCK_LABEL, str(participant_id))
    key = int(digest[:16], 16) & 0x7FFF_FFFF_FFFF_FFFF
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
