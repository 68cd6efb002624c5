"""Dossier numbers: unguessable, read out over the phone, with a check character against typos.

A number is ``D-`` and nine characters from an alphabet without 0/O and 1/I/L: eight random ones (about
40 bits, carrying nothing about the person or the date) and a check character (a weighted sum mod 31,
see ``check_character``). The check catches every single mistyped character and every swap of two
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


# The weights of the nine characters (random part, then the check): 1 to 9. 31 is prime, so every weight
# and every difference of neighbouring weights is invertible mod 31.
_CHECK_WEIGHT = RANDOM_LENGTH + 1
_INVERSE_OF_CHECK_WEIGHT = pow(_CHECK_WEIGHT, -1, len(ALPHABET))


def _weighted(characters: str) -> int:
    return sum(weight * ALPHABET.index(char) for weight, char in enumerate(characters, start=1))


def check_character(body: str) -> str:
    """The character that makes the weighted sum of body and check 0 mod 31 (ISO 7064 style, prime base).

    Changing one character changes the sum by its weight (1-9) times a difference under 31: never 0 mod 31.
    Swapping two neighbours changes it by the difference of their weights (1) times theirs: never 0 either.
    So every single mistyped character and every swap of neighbours, the check character included, fails.
    """
    base = len(ALPHABET)
    return ALPHABET[(-_weighted(body) * _INVERSE_OF_CHECK_WEIGHT) % base]


def is_valid_body(body: str) -> bool:
    """Whether ``body`` (random part plus check character) is well formed and its check holds."""
    if len(body) != RANDOM_LENGTH + 1 or any(char not in ALPHABET for char in body):
        return False
    return _weighted(body) % len(ALPHABET) == 0


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
