"""crypto.ColumnCipher and keyed_hasher, the batch paths: the same ciphertexts and refusals as seal,
open_sealed and keyed_hash, one value at a time."""

from __future__ import annotations

import base64
import itertools
import secrets
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from preventicons import crypto, keys
from preventicons.crypto import Binding, ColumnCipher, DecryptionError

BINDING = Binding("field", "participants_participant", "email", "8d5e1c0a-0000-4000-8000-000000000001")
EMAIL = "anna.devries@example.org"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture(autouse=True)
def restore_key_cache() -> Iterator[None]:
    yield
    keys.reset_key_cache()


def cipher_for(binding: Binding) -> ColumnCipher:
    return ColumnCipher(binding.purpose, binding.table, binding.column)


def open_with_cipher(ciphertext: str, binding: Binding) -> str:
    return cipher_for(binding).open(ciphertext, binding.row)


OPENERS = pytest.mark.parametrize("opener", [crypto.open_sealed, open_with_cipher], ids=["one", "batch"])


def test_what_one_seals_the_other_opens() -> None:
    cipher = cipher_for(BINDING)
    for plaintext in ("", "x", "Zoë Çelik, 😊 ∑", "a" * 5000):
        assert crypto.open_sealed(cipher.seal(plaintext, BINDING.row), BINDING) == plaintext
        assert cipher.open(crypto.seal(plaintext, BINDING), BINDING.row) == plaintext
        # Padded to the same bucket: a batch's ciphertexts look like any other.
        assert len(cipher.seal(plaintext, BINDING.row)) == len(crypto.seal(plaintext, BINDING))


@pytest.mark.parametrize(
    "elsewhere",
    [
        Binding("field", "participants_invitation", "email", BINDING.row),
        Binding("field", BINDING.table, "name", BINDING.row),
        Binding("field", BINDING.table, BINDING.column, "8d5e1c0a-0000-4000-8000-000000000002"),
    ],
    ids=["other table", "other column", "other row"],
)
def test_a_batch_ciphertext_does_not_open_at_another_place(elsewhere: Binding) -> None:
    sealed = cipher_for(BINDING).seal(EMAIL, BINDING.row)
    with pytest.raises(DecryptionError, match="does not open"):
        crypto.open_sealed(sealed, elsewhere)
    with pytest.raises(DecryptionError, match="does not open"):
        open_with_cipher(sealed, elsewhere)


def test_a_value_of_another_purpose_does_not_open() -> None:
    sealed = crypto.seal(EMAIL, BINDING)
    with pytest.raises(DecryptionError, match="not in the pseudonym_link keyring"):
        ColumnCipher("pseudonym_link", BINDING.table, BINDING.column).open(sealed, BINDING.row)


@pytest.mark.parametrize("row", ["", "a|b"])
def test_a_row_that_binding_refuses_the_batch_refuses(row: str) -> None:
    cipher = cipher_for(BINDING)
    with pytest.raises(ValueError, match="binding parts"):
        cipher.seal(EMAIL, row)
    with pytest.raises(ValueError, match="binding parts"):
        cipher.open(crypto.seal(EMAIL, BINDING), row)


def flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


TAMPERINGS: list[Callable[[str], str]] = [
    lambda s: flip(s, len(s) // 2),
    lambda s: flip(s, len(s) - 2),
    lambda s: s[:-4],
    lambda s: s[:-1],
    lambda s: s + "AAAA",
    lambda s: s + "A",
    lambda s: s[: len(s) // 2] + "!!!!" + s[len(s) // 2 :],
    lambda s: s + "==",
    lambda s: s.replace("v1.", "v2.", 1),
    lambda s: s.split(".", 2)[0] + "." + s.split(".", 2)[1] + ".AAAA",
    lambda s: s.split(".", 2)[0] + ".fld-retired." + s.split(".", 2)[2],
    lambda s: "plain text",
]


@OPENERS
@pytest.mark.parametrize("tamper", TAMPERINGS)
def test_a_tampered_ciphertext_does_not_open_in_a_batch_either(
    opener: Callable[[str, Binding], str], tamper: Callable[[str], str]
) -> None:
    with pytest.raises(DecryptionError):
        opener(tamper(crypto.seal(EMAIL, BINDING)), BINDING)


@OPENERS
def test_a_body_in_another_base64_alphabet_does_not_open(opener: Callable[[str, Binding], str]) -> None:
    seals = (crypto.seal(EMAIL, BINDING).split(".", 2) for _ in range(200))
    version, key_id, body = next(parts for parts in seals if "-" in parts[2] or "_" in parts[2])
    with pytest.raises(DecryptionError, match="malformed"):
        opener(f"{version}.{key_id}.{body.replace('-', '+').replace('_', '/')}", BINDING)


@OPENERS
@pytest.mark.parametrize(("plaintext", "unused_bits"), [("x" * 40, (1, 2)), ("x" * 600, (1, 2, 4, 8))])
def test_a_body_with_its_unused_bits_set_does_not_open(
    opener: Callable[[str, Binding], str], plaintext: str, unused_bits: tuple[int, ...]
) -> None:
    # Bodies of 4n+3 (4n+2) characters: the last one carries 2 (4) bits that are not data. A lenient decoder
    # would open the same bytes under another last character; only the canonical one opens.
    for _ in range(20):
        version, key_id, body = crypto.seal(plaintext, BINDING).split(".", 2)
        assert len(body) % 4 == (3 if len(unused_bits) == 2 else 2)
        last = ALPHABET.index(body[-1])
        for bit in unused_bits:
            other = body[:-1] + ALPHABET[last ^ bit]
            with pytest.raises(DecryptionError, match="malformed"):
                opener(f"{version}.{key_id}.{other}", BINDING)


def test_the_batch_decoder_accepts_exactly_what_the_one_at_a_time_decoder_accepts() -> None:
    # Every body of up to three characters, and each last character after longer ones.
    for length in (1, 2, 3):
        for characters in itertools.product(ALPHABET, repeat=length):
            body = "".join(characters)
            assert crypto._decode_canonical_body(body) == crypto._decode_body(body), body
    for length in range(4, 12):
        start = base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()[: length - 1]
        for last in ALPHABET + "=+/.!é":
            body = start + last
            assert crypto._decode_canonical_body(body) == crypto._decode_body(body), body


@given(st.text(alphabet=ALPHABET + "=+/.!é \n", max_size=60))
def test_the_batch_decoder_agrees_on_any_text(body: str) -> None:
    assert crypto._decode_canonical_body(body) == crypto._decode_body(body)


def test_every_value_a_batch_seals_has_a_nonce_of_its_own() -> None:
    cipher = cipher_for(BINDING)
    # Across more than one draw of nonces from the OS.
    count = 2 * crypto._NONCES_PER_DRAW + 10
    nonces = {
        base64.urlsafe_b64decode(cipher.seal("1", BINDING.row).split(".", 2)[2] + "==")[: crypto.NONCE_BYTES]
        for _ in range(count)
    }
    assert len(nonces) == count


def test_keyed_hasher_gives_keyed_hash() -> None:
    hashed = crypto.keyed_hasher("blind_index", "email")
    for value in ("", "anna.devries@example.org", "Zoë"):
        assert hashed(value) == crypto.keyed_hash("blind_index", "email", value)
    assert hashed("x") != crypto.keyed_hasher("blind_index", "phone")("x")
    assert hashed("x") != crypto.keyed_hasher("notes_subject", "email")("x")
