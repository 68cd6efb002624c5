"""The notary's keys: the Ed25519 signing key from the key set, and keyed hashes derived from it.

The ledger needs two keyed hashes the database must not be able to recompute: an entry's seal (so an entry
rewritten with its leaf hash is still found) and the keyed name of a fact's source (so appending a fact
twice stores it once, without the ledger naming the trajectory or row it came from). Both keys are derived
from the signing key with HKDF, one ``info`` per use, so the key file needs no new entry and the signing
key itself only ever signs. The signing key is not rotated: attestations already issued name its
fingerprint, and the access log's anchors in the ledger would no longer verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from preventicons.keys import get_key_set

SEAL = b"preventicons notary: ledger entry seal"
SOURCE = b"preventicons notary: ledger fact source"


def signing_key() -> Ed25519PrivateKey:
    return get_key_set().signing_key


def public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


def public_key_bytes(key: Ed25519PublicKey | None = None) -> bytes:
    return (key or public_key()).public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey | None = None) -> str:
    """SHA-256 of the raw 32-byte public key, hex: how people compare keys by eye (the /verify/ page)."""
    return hashlib.sha256(public_key_bytes(key)).hexdigest()


def public_key_from_base64(text: str) -> Ed25519PublicKey:
    """A raw public key in base64; ValueError when it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as error:
        raise ValueError("not an Ed25519 public key in base64") from error


def sign(data: bytes) -> str:
    """The Ed25519 signature over ``data``, base64."""
    return base64.b64encode(signing_key().sign(data)).decode("ascii")


def signature_holds(data: bytes, signature: str, key: Ed25519PublicKey | None = None) -> bool:
    """Whether ``signature`` (base64) is the signature over exactly ``data`` by ``key`` (ours by default)."""
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        (key or public_key()).verify(raw, data)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


@lru_cache(maxsize=4)
def _derived(private: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(private)


def _derived_key(info: bytes) -> bytes:
    private = signing_key().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return _derived(private, info)


def seal_of(sequence: int, leaf_hash: str) -> str:
    """The entry's seal: HMAC(seal key, sequence, leaf hash), hex."""
    return hmac.new(_derived_key(SEAL), f"{sequence}\x00{leaf_hash}".encode(), hashlib.sha256).hexdigest()


def source_of(source: str) -> str:
    """The keyed name of a fact's source (e.g. ``"trajectory_opened:<uuid>"``), hex."""
    return hmac.new(_derived_key(SOURCE), source.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
