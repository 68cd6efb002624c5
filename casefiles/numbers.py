"""Dossier numbers: unguessable, read out over the phone, with a check character against typos.

A number is ``D-`` and nine characters from an alphabet without 0/O and 1/I/L: eight random ones (about
40 bits, carrying nothing about the person or the date) and a check character (Luhn mod 31, the
"Luhn mod N" algorithm). The check catches every single mistyped character and every swap of two
neighbours, so a typo never names another dossier: it names no dossier at all.

What people type is read leniently (lower case, spaces, dashes, without the ``D-``) and strictly
afterwards: ``parse`` gives the number in its one stored notation, or None.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PREFIX = "D-"
RANDOM_LENGTH = 8
# The stored notation: the prefix, the random part and the check character.
LENGTH = len(PREFIX) + RANDOM_LENGTH + 1
_TYPED_NOISE = re.compile(r"[\s\-_.]")


def check_character(body: str) -> str:
    """The Luhn mod N check character of ``body`` (characters of ALPHABET only)."""
    base = len(ALPHABET)
    total = 0
    factor = 2
    for char in reversed(body):
        addend = factor * ALPHABET.index(char)
        total += addend // base + addend % base
        factor = 1 if factor == 2 else 2
    return ALPHABET[(base - total % base) % base]


def is_valid_body(body: str) -> bool:
    """Whether ``body`` (random part plus check character) is well formed and its check holds."""
    if len(body) != RANDOM_LENGTH + 1 or any(char not in ALPHABET for char in body):
        return False
    return secrets.compare_digest(check_character(body[:-1]), body[-1])


def new_number() -> str:
    """A fresh number with its check character."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PREFIX + body + check_character(body)


def parse(typed: str) -> str | None:
    """The stored notation of a typed number, or None when it is not a valid number.

    A valid number need not exist: the caller looks it up like any other, so a well-formed stranger and a
    typo answer alike.
    """
    cleaned = _TYPED_NOISE.sub("", typed.upper())
    if cleaned.startswith("D") and len(cleaned) == RANDOM_LENGTH + 2:
        cleaned = cleaned[1:]
    if not is_valid_body(cleaned):
        return None
    return PREFIX + cleaned
