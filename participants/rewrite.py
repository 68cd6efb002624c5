"""Every participant row written once, alike, by a request batch that applies anyone's act (issue 14), and
by a night that anonymises anyone (participants.retention._one_pass, which uses the same pass for the rows
its rules erase).

The request batch (participants.requestqueue.take_up_pending) applies enrolments, pauses, rejoins,
corrections, declines and stops. Written row by row, they told whoever reads the live database or its files
which rows were acted on in that batch: their ``xmin``, their changed ciphertexts, a correction's or a stop's
changed blind indexes, even the dead row versions an act leaves. So inside the batch an act changes the
batch's one copy of its row (``Participant.to_act_on``) and writes nothing; then ``rewrite_every_row`` writes
every row of every organisation exactly once, in one statement per chunk, in random order:

* every sealed column sealed afresh (a new nonce, the same length), with the acts' new values where a
  person acted and as it was everywhere else;
* every blind index recomputed under a new index salt per organisation (Organisation.index_salt, drawn
  here): a real index becomes the index of the same address under the new salt, a look-alike (no index: the
  address is someone else's, or was erased by a stop) becomes a new look-alike. So every row's indexes
  change, whether its person corrected an address, stopped, or did nothing;
* the listed hashes, the department and the rest as they are (a stop leaves them, Participant.shredded).

Two dumps around the batch then differ in the same columns of every row, every row carries the batch's
``xmin``, and every row has one dead version: nothing tells whose act it was. The batch holds every
organisation (FOR NO KEY UPDATE) while it does this, and everything that writes a participant row or a
blind index takes its organisation first (the import, the week close, the nightly anonymisation: FOR NO KEY
UPDATE; an enrolment and the account-link lookup: FOR SHARE through ``hold_index_salts``), so nothing is
written between this read and this write, and no index is computed under a salt that is no longer current.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

from django.db import connections, router
from django.db.models import TextField
from django.db.models.functions import Cast

from participants.models import _BATCH_ROWS, Organisation, Participant
from preventicons import crypto
from preventicons.fields import EncryptedTextField, look_alike_hash

# Rows read and written at a time: bounded memory, and well below the parameters a statement takes.
CHUNK = 5_000


@contextmanager
def every_row_once() -> Iterator[dict[str, Participant]]:
    """Inside: every act changes the batch's copy of its row (Participant.to_act_on), and saves nothing.

    The caller writes them, with every other row, through ``rewrite_every_row`` before leaving.
    """
    rows: dict[str, Participant] = {}
    token = _BATCH_ROWS.set(rows)
    try:
        yield rows
    finally:
        _BATCH_ROWS.reset(token)


@functools.cache
def _sealed_fields() -> tuple[EncryptedTextField, ...]:
    return tuple(
        field for field in Participant._meta.concrete_fields if isinstance(field, EncryptedTextField)
    )


def _cipher(field: EncryptedTextField) -> crypto.ColumnCipher:
    table = Participant._meta.db_table
    return crypto.ColumnCipher(field.purpose, table, str(field.column), pad_to=field.pad_to)


def hold_every_organisation() -> None:
    """Hold every organisation (FOR NO KEY UPDATE, in pk order) until the caller's transaction ends.

    What a pass that ends in ``rewrite_every_row`` takes first: every writer of a participant row or a blind
    index takes its organisation before it writes, so none writes between the pass's reads and its write.
    In one order, as everyone takes them, so two passes wait for each other instead of deadlocking. FOR NO
    KEY UPDATE: it excludes the other writers, but not the FOR KEY SHARE a score insert's foreign key check
    takes, so no tap waits (tests/test_attacks_review5.py).
    """
    list(Organisation.objects.select_for_update(no_key=True).order_by("pk").values_list("pk", flat=True))


def rewrite_every_row(acted: dict[str, Participant], *, leaving_unlisted: Collection[str] = ()) -> int:
    """Write every participant row once, under a new index salt per organisation; how many rows.

    ``acted``: the pass's copies of the rows its acts changed (every_row_once), written with their new
    values. ``leaving_unlisted``: the ids (as text) of rows whose ``unlisted_on`` is cleared in the same write
    (the nightly anonymisation's unlisting rule, participants.retention); every other row keeps its own.
    Inside the pass's transaction, with every organisation held by it. Raises RuntimeError,
    so that the batch rolls back whole, when a row changed or went between the read and the write (which
    the organisation locks rule out).
    """
    connection = connections[router.db_for_write(Participant)]
    if not connection.in_atomic_block:
        raise RuntimeError("rewrite_every_row runs inside the request batch's transaction")
    fields = _sealed_fields()
    ciphers = {field.attname: _cipher(field) for field in fields}
    written = 0
    # Held here too, not only by the batch's first lock: an organisation made since then (its first import
    # running now) is waited for, or its rows would be read before the import commits them and keep their
    # indexes under the salt this replaces (review 8).
    organisations = Organisation.objects.select_for_update(no_key=True).order_by("pk")
    for organisation_id, old_salt in list(organisations.values_list("pk", "index_salt")):
        new_salt = secrets.token_hex(16)
        indexes = _Indexes(old_salt, new_salt)
        ids = _ids_of(organisation_id)
        # A random order (by a random key each, as the request queue's own shuffle is its own business).
        ids.sort(key=lambda _pk: secrets.token_bytes(8))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            rows = [
                _rewritten(row, acted.get(row[0]), ciphers, indexes, row[0] in leaving_unlisted)
                for row in _read(chunk)
            ]
            # In the chunk's random order: the rows' new versions lie in no order an act could show in.
            order = {pk: place for place, pk in enumerate(chunk)}
            rows.sort(key=lambda row: order[row[0]])
            written += _write(rows)
        Organisation.objects.filter(pk=organisation_id).update(index_salt=new_salt)
    return written


def _ids_of(organisation_id: int) -> list[str]:
    query = Participant.objects.filter(organisation_id=organisation_id)
    if connections[query.db].vendor == "postgresql":
        return list(query.values_list(Cast("pk", TextField()), flat=True))
    return [str(pk) for pk in query.values_list("pk", flat=True)]


# A row as read: id as text, every sealed column's ciphertext (in _sealed_fields' order), both blind indexes,
# and the day it was unlisted (ISO, or empty for none).
_Read = tuple[str, ...]


def _read(ids: list[str]) -> list[_Read]:
    names = [field.attname for field in _sealed_fields()]
    query = Participant.objects.filter(pk__in=[uuid.UUID(pk) for pk in ids])
    return [
        (str(pk), *(str(value) for value in values), unlisted_on.isoformat() if unlisted_on else "")
        for pk, *values, unlisted_on in query.values_list(
            "pk", *names, "email_index", "mobile_index", "unlisted_on"
        )
    ]


def _rewritten(
    row: _Read,
    copy: Participant | None,
    ciphers: dict[str, crypto.ColumnCipher],
    indexes: _Indexes,
    leaves_unlisted: bool,
) -> tuple[str, ...]:
    """The row's new values: (id, every sealed column, email_index, mobile_index, unlisted_on)."""
    pk, *sealed = row[:-3]
    email_index, mobile_index, unlisted_on = row[-3:]
    fields = _sealed_fields()
    values: list[str] = []
    if copy is not None:
        # The act's copy: its fields seal it as its save() would have (a look-alike a stop left is fresh).
        for field in fields:
            values.append(str(field.pre_save(copy, add=False)))
        email, mobile = copy.email, copy.mobile
        email_index, mobile_index = copy.email_index or "", copy.mobile_index or ""
    else:
        opened: dict[str, str] = {}
        for field, ciphertext in zip(fields, sealed, strict=True):
            cipher = ciphers[field.attname]
            text = cipher.open(ciphertext, pk)
            opened[field.attname] = text
            # At the length it had: a look-alike of a long value stays as long as the value was.
            values.append(cipher.seal(text, pk, pad_to=_sealed_length(ciphertext)))
        email = opened["email"] or None
        mobile = opened["mobile"] or None
    return (
        pk,
        *values,
        indexes.renewed("email", email_index, crypto.normalise_email(email) if email else None),
        indexes.renewed("phone", mobile_index, mobile),
        "" if leaves_unlisted else unlisted_on,
    )


def _sealed_length(ciphertext: str) -> int:
    """crypto.sealed_length of a ciphertext that just opened, from its length alone (no base64 decoding):
    the body is unpadded base64 of nonce, padded plaintext and tag."""
    body = ciphertext.rsplit(".", 1)[1]
    return len(body) * 3 // 4 - crypto.NONCE_BYTES - crypto.TAG_BYTES


class _Indexes:
    """The blind indexes of one organisation under its old and its new salt, as crypto.blind_index_email
    and blind_index_phone compute them, with each HMAC's key set up once (keyed_hasher)."""

    def __init__(self, old_salt: str, new_salt: str) -> None:
        self._hashers: dict[tuple[str, str], Callable[[str], str]] = {
            (kind, age): crypto.blind_index_hasher(kind, salt)
            for kind in ("email", "phone")
            for age, salt in (("old", old_salt), ("new", new_salt))
        }

    def renewed(self, kind: str, index: str, value: str | None) -> str:
        """The index of ``value`` under the new salt if ``index`` is its index under the old one; else a new
        look-alike (the row holds no index: its address is someone else's, or was erased). ``value`` as
        the index takes it (an address normalised, a number in E.164)."""
        if value and index and index == self._hashers[kind, "old"](value):
            return self._hashers[kind, "new"](value)
        return look_alike_hash()


def _write(rows: list[tuple[str, ...]]) -> int:
    if not rows:
        return 0
    connection = connections[router.db_for_write(Participant)]
    table = connection.ops.quote_name(Participant._meta.db_table)
    columns = [str(field.column) for field in _sealed_fields()]
    columns += ["email_index", "mobile_index", "unlisted_on"]
    assignments = ", ".join(f"{connection.ops.quote_name(name)} = v.c{n}" for n, name in enumerate(columns))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Each column joined by commas, which no id, ciphertext or hash holds (checked), and split on the
            # server: psycopg's array dumping cost more than the sealing (participants.participation does
            # the same).
            joined = [",".join(column) for column in zip(*rows, strict=True)]
            if any(column.count(",") != len(rows) - 1 for column in joined):
                raise ValueError("a participant id, ciphertext or hash holds a comma")
            names = ", ".join(f"c{n}" for n in range(len(columns)))
            unnest = ", ".join(
                ["string_to_array(%s, ',')::uuid[]"]
                + ["string_to_array(%s, ',')"] * (len(columns) - 1)
                # The day unlisted: empty is NULL.
                + ["string_to_array(%s, ',', '')::date[]"]
            )
            # Joined by hashing the ids, the table is scanned and its rows written in the order they lay in,
            # which keeps what that order tells (the rows an enrolment moved to the end) past every batch
            # (review 8). A nested loop driven by the ids writes them in the chunk's random order; the
            # planner's settings only for this statement.
            cursor.execute("SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')")
            saved = cursor.fetchone()
            cursor.execute(
                "SELECT set_config('enable_hashjoin', 'off', true), "
                "set_config('enable_mergejoin', 'off', true)"
            )
            cursor.execute(
                f"UPDATE {table} AS p SET {assignments} "  # noqa: S608  # nosec B608  # names from the model
                f"FROM unnest({unnest}) AS v(id, {names}) WHERE p.id = v.id",
                joined,
            )
            count = cursor.rowcount
            cursor.execute(
                "SELECT set_config('enable_hashjoin', %s, true), set_config('enable_mergejoin', %s, true)",
                saved,
            )
        else:
            plain = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in columns)
            count = 0
            for pk, *values, unlisted_on in rows:
                cursor.execute(
                    f"UPDATE {table} SET {plain} WHERE id = %s",  # noqa: S608  # nosec B608  # names from the model
                    [*values, unlisted_on or None, uuid.UUID(pk).hex],
                )
                count += cursor.rowcount
    if count != len(rows):
        raise RuntimeError("a participant row changed or went while the request batch rewrote every row")
    return count
