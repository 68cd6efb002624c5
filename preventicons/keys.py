"""Purpose-bound keys, loaded from a key file or the environment, never from a database.

Every purpose has its own random key, so a key that leaks for one job (say the blind index) opens nothing
else, and a value sealed for one purpose cannot be opened with another purpose's key.

The key set is JSON, read from ``PREVENTICONS_KEYS`` (the JSON itself, for container secrets) or from the
file named by ``PREVENTICONS_KEY_FILE``::

    {
      "format": 1,
      "field":           {"active": "fld-1", "keys": {"fld-1": "<base64 of 32 bytes>"}},
      "pseudonym_link":  {"active": "pl-1",  "keys": {"pl-1":  "..."}},
      "casefiles_link":  {"active": "cl-1",  "keys": {"cl-1":  "..."}},
      "blind_index":     "<base64 of 32 bytes>",
      "notes_subject":   "<base64 of 32 bytes>",
      "casefiles_index": "<base64 of 32 bytes>",
      "access_log":      "<base64 of 32 bytes>",
      "notary_signing":  "<base64 of the 32-byte Ed25519 private key>"
    }
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

# AES-GCM keyrings: several keys at once, one active, so keys rotate without downtime.
ENCRYPTION_PURPOSES = ("field", "pseudonym_link", "casefiles_link")
# HMAC keys: blind indexes, opaque references and the access log's running hash (casefiles/accesslog.py).
# Rotating one means recomputing from plaintext (for the access log: re-chaining it, which its anchors at
# the notary would then no longer confirm, so that key is not rotated).
HMAC_PURPOSES = ("blind_index", "notes_subject", "casefiles_index", "access_log")
SIGNING_PURPOSE = "notary_signing"
KEY_BYTES = 32
KEY_FORMAT = 1
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}", re.ASCII)


class KeyConfigurationError(Exception):
    """The key set is missing or malformed. Raised at start-up through a system check."""


@dataclass(frozen=True)
class Keyring:
    active: str
    keys: dict[str, bytes]

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyConfigurationError(f"key id {key_id!r} is not in the key set") from None


@dataclass(frozen=True)
class KeySet:
    keyrings: dict[str, Keyring]
    hmac_keys: dict[str, bytes]
    signing_key: Ed25519PrivateKey

    def keyring(self, purpose: str) -> Keyring:
        if purpose not in self.keyrings:
            raise KeyConfigurationError(f"unknown encryption purpose {purpose!r}")
        return self.keyrings[purpose]

    def hmac_key(self, purpose: str) -> bytes:
        if purpose not in self.hmac_keys:
            raise KeyConfigurationError(f"unknown keyed-hash purpose {purpose!r}")
        return self.hmac_keys[purpose]


def _decode_key(raw: Any, where: str) -> bytes:
    if not isinstance(raw, str):
        raise KeyConfigurationError(f"{where}: expected a base64 string")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigurationError(f"{where}: not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyConfigurationError(f"{where}: expected {KEY_BYTES} bytes, found {len(key)}")
    return key


def is_valid_key_id(value: Any) -> bool:
    """A key id travels in every ciphertext, split on '.': short, printable, no separators."""
    return isinstance(value, str) and bool(_KEY_ID.fullmatch(value))


def _shown_key_id(value: Any) -> str:
    # A malformed "key id" may well be a key pasted into the wrong place: never echo it.
    return repr(value) if is_valid_key_id(value) else "(a malformed key id, not shown)"


def parse_key_set(data: Any) -> KeySet:
    """Validate a decoded key document; every problem is a KeyConfigurationError naming the place."""
    if not isinstance(data, dict):
        raise KeyConfigurationError("the key set must be a JSON object")
    if isinstance(data.get("format"), bool) or data.get("format") != KEY_FORMAT:
        raise KeyConfigurationError(f'the key set must declare "format": {KEY_FORMAT}')
    keyrings: dict[str, Keyring] = {}
    # Where each secret sits, so a duplicate can be reported by place without showing the secret.
    places: dict[bytes, str] = {}

    def remember(secret: bytes, place: str) -> None:
        if secret in places:
            # A key copied into a second purpose would silently undo the separation between stores.
            raise KeyConfigurationError(
                f"{places[secret]} and {place} hold the same key; every key must differ"
            )
        places[secret] = place

    for purpose in ENCRYPTION_PURPOSES:
        ring = data.get(purpose)
        if not isinstance(ring, dict) or not isinstance(ring.get("keys"), dict) or not ring["keys"]:
            raise KeyConfigurationError(f"{purpose}: missing keyring (an object with 'active' and 'keys')")
        keys: dict[str, bytes] = {}
        for kid, raw in ring["keys"].items():
            if not is_valid_key_id(kid):
                raise KeyConfigurationError(
                    f"{purpose}: {_shown_key_id(kid)}; key ids are 1-32 letters, digits, '-' or '_'"
                )
            keys[kid] = _decode_key(raw, f"{purpose}.keys.{kid}")
            remember(keys[kid], f"{purpose}.keys.{kid}")
        active = ring.get("active")
        if not is_valid_key_id(active) or active not in keys:
            known = ", ".join(sorted(keys))
            raise KeyConfigurationError(
                f"{purpose}: active key {_shown_key_id(active)} is not among its keys ({known})"
            )
        keyrings[purpose] = Keyring(active=active, keys=keys)
    hmac_keys: dict[str, bytes] = {}
    for purpose in HMAC_PURPOSES:
        if purpose not in data:
            # A purpose added after the file was made (access_log): nothing uses a key for it yet.
            raise KeyConfigurationError(
                f"{purpose}: missing; add a fresh key with `python manage.py generate_keys --add-missing`"
            )
        hmac_keys[purpose] = _decode_key(data.get(purpose), purpose)
        remember(hmac_keys[purpose], purpose)
    signing_raw = _decode_key(data.get(SIGNING_PURPOSE), SIGNING_PURPOSE)
    remember(signing_raw, SIGNING_PURPOSE)
    return KeySet(
        keyrings=keyrings,
        hmac_keys=hmac_keys,
        signing_key=Ed25519PrivateKey.from_private_bytes(signing_raw),
    )


def read_key_document() -> dict[str, Any]:
    """The raw key document from the environment or the key file."""
    inline = getattr(settings, "PREVENTICONS_KEYS", "")
    if inline:
        source = "PREVENTICONS_KEYS"
        text = inline
    else:
        path = getattr(settings, "PREVENTICONS_KEY_FILE", "")
        if not path:
            raise KeyConfigurationError("no keys configured: set PREVENTICONS_KEY_FILE or PREVENTICONS_KEYS")
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyConfigurationError(
                f"key file {path} does not exist; create one with `python manage.py generate_keys`"
            ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyConfigurationError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise KeyConfigurationError(f"{source} must hold a JSON object")
    return data


@lru_cache(maxsize=1)
def get_key_set() -> KeySet:
    """The process-wide key set, loaded once and validated."""
    return parse_key_set(read_key_document())


def reset_key_cache() -> None:
    """Forget the loaded keys (after a rotation, and in tests)."""
    get_key_set.cache_clear()


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def new_key_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


KEY_ID_PREFIXES = {"field": "fld", "pseudonym_link": "pl", "casefiles_link": "cl"}


def generate_key_document() -> dict[str, Any]:
    """A fresh, complete key set."""
    doc: dict[str, Any] = {"format": KEY_FORMAT}
    for purpose in ENCRYPTION_PURPOSES:
        kid = new_key_id(KEY_ID_PREFIXES[purpose])
        doc[purpose] = {"active": kid, "keys": {kid: new_key()}}
    for purpose in HMAC_PURPOSES:
        doc[purpose] = new_key()
    doc[SIGNING_PURPOSE] = new_key()
    return doc


def add_missing_keyed_hash_keys(doc: dict[str, Any]) -> list[str]:
    """Give the document a fresh key for each keyed-hash purpose it lacks; the purposes added.

    Only purposes the document has no key for at all: nothing can have been hashed under them yet, so a
    fresh key loses nothing. A key that is present is never replaced, however malformed.
    """
    added = [purpose for purpose in HMAC_PURPOSES if purpose not in doc]
    for purpose in added:
        doc[purpose] = new_key()
    return added


def write_key_document(path: Path, doc: dict[str, Any], *, replace: bool = True) -> None:
    """Write atomically with owner-only permissions, so a crash never leaves half a key file.

    With ``replace=False`` an existing file is never overwritten, even by a writer racing this one.
    """
    parse_key_set(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(doc, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            # link() fails when the target exists, where a check-then-rename would race.
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    # The rename is durable only once the directory entry is on disk.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
