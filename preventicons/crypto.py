"""Sealing values, blind indexes, opaque references, pseudonyms and tokens.

Only the ``cryptography`` package's primitives (AES-GCM, HMAC-SHA256). Not Fernet: its token carries its
creation time in clear, which would tell anyone holding a dump when a participant enrolled or changed an
address. Our ciphertexts carry only a format version and a key id.

Nor their length: a ciphertext is as long as its plaintext, and the lengths of a name, an address and a
number together are close to a fingerprint. Whoever knows the staff list (the employer) could pick each
person's row out of a dump by them and read whether they take part. So the plaintext is padded with NUL
bytes to a bucket (at least 32 bytes, then 64, 128, 256 and multiples of 256) before it is sealed, and the
padding is cut off when it is opened. Text never holds NUL (PostgreSQL cannot store it), so the padding is
unambiguous, and values sealed before it was introduced open unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from preventicons.keys import get_key_set

FORMAT = "v1"
NONCE_BYTES = 12
TAG_BYTES = 16
PAD_BUCKETS = (32, 64, 128, 256)
_BODY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
# E.164: a '+', a country code that does not start with 0, at most 15 ASCII digits in all.
_E164 = re.compile(r"\+[1-9][0-9]{1,14}", re.ASCII)


class DecryptionError(Exception):
    """A ciphertext could not be opened. Never answered with the ciphertext instead."""


@dataclass(frozen=True)
class Binding:
    """Where a ciphertext lives; it goes in as associated data, so a copy elsewhere fails to open."""

    purpose: str
    table: str
    column: str
    row: str

    def __post_init__(self) -> None:
        # The parts are joined with '|': a part containing it could make two places share associated data.
        for part in (self.purpose, self.table, self.column, self.row):
            if not part or "|" in part:
                raise ValueError(
                    f"binding parts must be non-empty and free of '|': {self.table}.{self.column}"
                )

    def associated_data(self) -> bytes:
        return "|".join(("preventicons", FORMAT, self.purpose, self.table, self.column, self.row)).encode()


def key_id_of(ciphertext: str) -> str:
    """The key id a ciphertext was sealed under (for rotation)."""
    parts = ciphertext.split(".", 2)
    if len(parts) != 3 or parts[0] != FORMAT:
        raise DecryptionError("not a Preventicons ciphertext")
    return parts[1]


def ciphertext_prefix(key_id: str) -> str:
    """What every ciphertext sealed under this key id starts with (for prefix queries)."""
    return f"{FORMAT}.{key_id}."


def _decode_body(body: str) -> bytes | None:
    # urlsafe_b64decode silently drops characters outside the alphabet, so "AB!CD" would open like "ABCD":
    # accept only the one canonical encoding that seal() writes.
    if not _BODY.fullmatch(body):
        return None
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != body:
        return None
    return raw


def padded_length(length: int) -> int:
    """The bucket a plaintext of ``length`` bytes is padded to: 32, 64, 128, 256, then multiples of 256."""
    for bucket in PAD_BUCKETS:
        if length <= bucket:
            return bucket
    return -(-length // PAD_BUCKETS[-1]) * PAD_BUCKETS[-1]


def _padded(plaintext: str, pad_to: int) -> bytes:
    data = plaintext.encode("utf-8")
    if b"\x00" in data:
        raise ValueError("sealed text cannot hold NUL characters")
    return data + b"\x00" * (padded_length(max(len(data), pad_to)) - len(data))


def sealed_length(ciphertext: str) -> int:
    """The padded plaintext length a ciphertext holds (its bucket), read from its length alone, no key.

    What a dump tells of it; a look-alike sealed with ``pad_to`` of this reads the same.
    """
    parts = ciphertext.split(".", 2)
    raw = _decode_body(parts[2]) if len(parts) == 3 and parts[0] == FORMAT else None
    if raw is None or len(raw) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("not a Preventicons ciphertext")
    return len(raw) - NONCE_BYTES - TAG_BYTES


def seal(plaintext: str, binding: Binding, *, pad_to: int = 0) -> str:
    """Encrypt under the active key of the binding's purpose, padded so the length tells only a bucket.

    ``pad_to``: at least this bucket, so a column whose values differ in length (an empty placeholder, a
    long address) seals every value to one length (fields.EncryptedTextField's ``pad_to``).
    """
    data = _padded(plaintext, pad_to)
    ring = get_key_set().keyring(binding.purpose)
    nonce = secrets.token_bytes(NONCE_BYTES)
    key = ring.key(ring.active)
    sealed = AESGCM(key).encrypt(nonce, data, binding.associated_data())
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
    return f"{FORMAT}.{ring.active}.{body}"


def open_sealed(ciphertext: str, binding: Binding) -> str:
    """Decrypt, or raise DecryptionError: wrong key, wrong place, tampering or an unknown key id."""
    key_id = key_id_of(ciphertext)
    ring = get_key_set().keyring(binding.purpose)
    if key_id not in ring.keys:
        raise DecryptionError(
            f"{binding.table}.{binding.column}: key id {key_id!r} is not in the {binding.purpose} keyring"
        )
    raw = _decode_body(ciphertext.split(".", 2)[2])
    if raw is None:
        raise DecryptionError(f"{binding.table}.{binding.column}: malformed ciphertext")
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(f"{binding.table}.{binding.column}: truncated ciphertext")
    aead = AESGCM(ring.key(key_id))
    try:
        plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], binding.associated_data())
    except InvalidTag:
        raise DecryptionError(
            f"{binding.table}.{binding.column}: ciphertext does not open with key {key_id!r} "
            "at this place (wrong key, copied from another row or column, or tampered with)"
        ) from None
    return plain.rstrip(b"\x00").decode("utf-8")


_NONCES_PER_DRAW = 4096
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
# The last character of an unpadded base64 body of length 4n+2 (4n+3) carries 4 (2) unused low bits; the
# one canonical encoding has them zero: these are the characters whose value is a multiple of 16 (of 4).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
# The padding a body of length 4k + tail needs (tail 1 is never valid).
_PADDING = (b"", b"", b"==", b"=")


def _decode_canonical_body(body: str) -> bytes | None:
    """What _decode_body returns, for the same input (tested so), at about half the cost.

    _decode_body checks that the body is canonical by encoding the bytes again; here the check is on the
    length and the unused bits of the last character, which is what that comparison comes to.
    """
    if not _BODY.fullmatch(body):
        return None
    tail = len(body) % 4
    if tail == 1 or (tail and body[-1] not in _CANONICAL_LAST[tail]):
        return None
    # Only alphabet characters (checked above) and the padding they need: a2b_base64 cannot fail on that.
    return binascii.a2b_base64(body.encode("ascii").translate(_FROM_URLSAFE) + _PADDING[tail])


class ColumnCipher:
    """Seals and opens many values of one column, for batch jobs: ``seal`` and ``open_sealed`` for each row.

    The same ciphertexts, bindings and checks as those two functions (a value sealed by one opens with the
    other); only the work that is the same for every row of a column is done once: reading the keyring,
    the AES-GCM objects per key id and the associated data up to the row. The week close opens and seals
    several values for each of 100,000 participants, where that work was most of the cost. The keys are
    read when it is made: make one per batch, not one per process, so a rotation is seen by the next batch.
    """

    def __init__(self, purpose: str, table: str, column: str, *, pad_to: int = 0) -> None:
        self._pad_to = pad_to
        # Validates the fixed parts the way every Binding does.
        self._place = Binding(purpose, table, column, "-")
        self._ring = get_key_set().keyring(purpose)
        self._aeads = {key_id: AESGCM(key) for key_id, key in self._ring.keys.items()}
        self._prefix = self._place.associated_data()[:-1]
        self._where = f"{table}.{column}"
        self._nonces = memoryview(b"")

    def _nonce(self) -> bytes:
        # Nonces drawn from the OS a few thousand at a time: the same random bytes as one secrets.token_bytes
        # call each, without a system call per value (a tenth of the week close's time). Each slice is used
        # once, and the pool dies with this short-lived object.
        if not self._nonces:
            self._nonces = memoryview(secrets.token_bytes(NONCE_BYTES * _NONCES_PER_DRAW))
        nonce, self._nonces = self._nonces[:NONCE_BYTES], self._nonces[NONCE_BYTES:]
        return bytes(nonce)

    def _associated_data(self, row: str) -> bytes:
        if not row or "|" in row:
            # The same rule as Binding's, for the one part that varies.
            raise ValueError(
                f"binding parts must be non-empty and free of '|': {self._place.table}.{self._place.column}"
            )
        return self._prefix + row.encode()

    def seal(self, plaintext: str, row: str, *, pad_to: int | None = None) -> str:
        """crypto.seal(plaintext, Binding(purpose, table, column, row), pad_to=the cipher's or the given)."""
        data = _padded(plaintext, self._pad_to if pad_to is None else pad_to)
        nonce = self._nonce()
        sealed = self._aeads[self._ring.active].encrypt(nonce, data, self._associated_data(row))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{FORMAT}.{self._ring.active}.{body}"

    def open(self, ciphertext: str, row: str) -> str:
        """crypto.open_sealed(ciphertext, Binding(purpose, table, column, row)): DecryptionError alike.

        _associated_data and _decode_canonical_body written out here, the same checks in the same order: a
        week close opens 400,000 values, and the two calls each were a tenth of its opening.
        """
        if not row or "|" in row:
            self._associated_data(row)  # raises, with the binding's message
        # key_id_of's checks, with the body from the same split.
        parts = ciphertext.split(".", 2)
        if len(parts) != 3 or parts[0] != FORMAT:
            raise DecryptionError("not a Preventicons ciphertext")
        key_id, body = parts[1], parts[2]
        aead = self._aeads.get(key_id)
        if aead is None:
            raise DecryptionError(
                f"{self._where}: key id {key_id!r} is not in the {self._place.purpose} keyring"
            )
        tail = len(body) % 4
        if not _BODY.fullmatch(body) or tail == 1 or (tail and body[-1] not in _CANONICAL_LAST[tail]):
            raise DecryptionError(f"{self._where}: malformed ciphertext")
        raw = binascii.a2b_base64(body.encode("ascii").translate(_FROM_URLSAFE) + _PADDING[tail])
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError(f"{self._where}: truncated ciphertext")
        try:
            plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._prefix + row.encode())
        except InvalidTag:
            raise DecryptionError(
                f"{self._where}: ciphertext does not open with key {key_id!r} "
                "at this place (wrong key, copied from another row or column, or tampered with)"
            ) from None
        return plain.rstrip(b"\x00").decode("utf-8")


def keyed_hash(purpose: str, kind: str, value: str) -> str:
    """HMAC-SHA256 under a purpose's key, domain-separated by kind; hex."""
    key = get_key_set().hmac_key(purpose)
    return hmac.new(key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()


def keyed_hasher(purpose: str, kind: str) -> Callable[[str], str]:
    """keyed_hash(purpose, kind, value) as a function of value, for batches: the HMAC state is made once."""
    start = hmac.new(get_key_set().hmac_key(purpose), f"{kind}\x00".encode(), hashlib.sha256)

    def hashed(value: str) -> str:
        # HMAC is a stream: the prefix fed once and copied gives the same digest as feeding it every time.
        state = start.copy()
        state.update(value.encode())
        return state.hexdigest()

    return hashed


def normalise_email(value: str) -> str:
    return value.strip().lower()


def blind_index_email(email: str, salt: str = "") -> str:
    """Exact-match index of an e-mail address, so the same address is found without storing it.

    ``salt`` is the organisation's current index salt (participants.models.Organisation.index_salt): every
    request batch that applies a participant's act draws a new one and rewrites every index under it, so an
    index that changes tells a dump nothing (participants.rewrite). The empty salt is the one organisations
    start with, and gives the indexes made before salts existed.
    """
    return blind_index_hasher("email", salt)(normalise_email(email))


def blind_index_phone(e164: str, salt: str = "") -> str:
    """Exact-match index of a mobile number already normalised to E.164; ``salt`` as for e-mail."""
    # str.isdigit() would also pass "+³¹" or Arabic-Indic digits: the same number could get two indexes.
    if not _E164.fullmatch(e164):
        raise ValueError("phone numbers are indexed in E.164 form only")
    return blind_index_hasher("phone", salt)(e164)


def blind_index_hasher(kind: str, salt: str = "") -> Callable[[str], str]:
    """The blind index of one ``kind`` ("email" or "phone") under ``salt``, as a function of a value already
    in the form the index takes (an address normalised, a number in E.164): for batches, the HMAC's key set
    up once. The one place that says how the salt enters the index."""
    if kind not in ("email", "phone"):
        raise ValueError(f"no blind index of kind {kind!r}")
    return keyed_hasher("blind_index", f"{kind}:{salt}" if salt else kind)


def new_pseudonym() -> str:
    """A random pseudonym P: 128 bits, carries nothing about the person."""
    return secrets.token_hex(16)


def notes_subject(dossier_number: str) -> str:
    """The dossier's own reference under the notes key: what the note queue (sealed) groups a dossier's
    queued notes by. No note row in the notes store holds it (``note_subject``)."""
    return keyed_hash("notes_subject", "dossier", dossier_number)


def note_subject(dossier_number: str, sequence: int) -> str:
    """The opaque reference of one progress note: the dossier's number and the note's place in its order,
    under the notes key. Every note has its own, so no two rows of the notes store share one."""
    return keyed_hash("notes_subject", "note", f"{dossier_number}\x00{sequence}")


def casefiles_index(pseudonym: str) -> str:
    """The keyed index that finds a dossier from a pseudonym, and nothing else."""
    return keyed_hash("casefiles_index", "pseudonym", pseudonym)


def access_log_link(previous: str, canonical_row: str) -> str:
    """The access log's running hash: HMAC(access-log key, previous link, row), so no row can be altered,
    removed or inserted without breaking every later link, and nobody without the key can forge one."""
    return keyed_hash("access_log", "chain", f"{previous}\x00{canonical_row}")


TOKEN_BYTES = 32
# A link token is 24 random bytes and an 8-byte tag: a keyed MAC of those bytes. 192 random bits are far
# beyond guessing; the tag lets a page tell a token we made from one we never made without a lookup.
_TOKEN_RANDOM_BYTES = 24
_TOKEN_TAG_BYTES = TOKEN_BYTES - _TOKEN_RANDOM_BYTES
_TOKEN_TAG_KIND = b"link-token-tag"


def _token_tag(random_part: bytes) -> bytes:
    key = get_key_set().hmac_key("blind_index")
    return hmac.digest(key, _TOKEN_TAG_KIND + b"\x00" + random_part, "sha256")[:_TOKEN_TAG_BYTES]


def new_token() -> str:
    """A link token: 192 random bits and their keyed tag, 43 URL-safe characters (see is_issued_token)."""
    random_part = secrets.token_bytes(_TOKEN_RANDOM_BYTES)
    return base64.urlsafe_b64encode(random_part + _token_tag(random_part)).decode("ascii").rstrip("=")


def is_issued_token(token: str) -> bool:
    """Whether new_token() made this token (under our key), whether or not anything still uses it.

    The rate limit on token pages counts only tokens we never made (preventicons.ratelimit): a link we
    sent is never refused, and whether its row still exists (someone stopped, a decoy) cannot change how
    the limit answers, so the limit tells nobody anything about the person behind a link.
    """
    raw = _decode_body(token) if len(token) == 43 else None
    if raw is None or len(raw) != TOKEN_BYTES:
        return False
    return hmac.compare_digest(_token_tag(raw[:_TOKEN_RANDOM_BYTES]), raw[_TOKEN_RANDOM_BYTES:])


def hash_token(token: str) -> str:
    """What the database keeps of a token. A plain hash suffices: the token has 256 bits of entropy."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)
