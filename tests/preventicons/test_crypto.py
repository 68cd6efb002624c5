"""Sealed fields and keyed hashes: what a DBA with a dump, or a careless query, can and cannot get."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import FieldError
from django.db import IntegrityError, connections, models, transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Cast, Concat
from django.test import override_settings
from django.test.utils import isolate_apps

from casefiles.models import ProgressNote
from participants.models import Organisation, Participant
from preventicons import crypto, keys
from preventicons.crypto import Binding, DecryptionError
from preventicons.fields import EncryptedTextField, Sealed, sealed_only
from tests.conftest import ALL_DATABASES
from tests.factories import ParticipantFactory

NAME, EMAIL, MOBILE = "Anna de Vries", "anna.devries@example.org", "+31612345678"


@pytest.fixture(autouse=True)
def restore_key_cache() -> Iterator[None]:
    """Tests here may load other key sets; the rest of the suite expects the inline test keys."""
    yield
    keys.reset_key_cache()


@pytest.fixture
def key_document() -> dict[str, Any]:
    """The document of the keys in force (the inline test keys), to derive variants from."""
    return keys.read_key_document()


def use_key_document(tmp_path: Path, doc: dict[str, Any]) -> Any:
    path = tmp_path / "keys.json"
    keys.write_key_document(path, doc)
    keys.reset_key_cache()
    return override_settings(PREVENTICONS_KEY_FILE=str(path), PREVENTICONS_KEYS="")


def make_participant(organisation: Organisation, **values: str) -> Participant:
    contact = {"name": NAME, "email": EMAIL, "mobile": MOBILE, "pseudonym": crypto.new_pseudonym()}
    contact.update(values)
    # Sealed values without blind indexes: the crypto tests read the stored ciphertexts.
    participant: Participant = ParticipantFactory.create(
        organisation=organisation, email_address=None, mobile_number=None, **contact
    )
    return participant


def raw_row(alias: str, table: str, columns: list[str], pk: Any) -> tuple[Any, ...]:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def raw_set(alias: str, table: str, column: str, value: str, pk: Any) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])  # noqa: S608


PARTICIPANTS = Participant._meta.db_table
NOTES = ProgressNote._meta.db_table
BINDING = Binding("field", "participants_participant", "email", "8d5e1c0a-0000-4000-8000-000000000001")


# --- Through the model field, on PostgreSQL --------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_participant_contact_data_round_trips_through_postgresql(organisation: Organisation) -> None:
    assert connections["default"].vendor == "postgresql"
    participant = make_participant(organisation)
    fresh = Participant.objects.get(pk=participant.pk)
    assert (fresh.name, fresh.email, fresh.mobile) == (NAME, EMAIL, MOBILE)
    assert fresh.pseudonym == participant.pseudonym


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_progress_note_text_round_trips_in_the_notes_database() -> None:
    assert connections["notes"].vendor == "postgresql"
    text = "Gesprek gehad over werkdruk; volgende week opnieuw."
    note = ProgressNote.objects.create(
        subject=crypto.notes_subject("D-1001"),
        kind="call",
        written_on=dt.date(2026, 11, 23),
        sequence=1,
        text=text,
    )
    assert ProgressNote.objects.using("notes").get(pk=note.pk).text == text
    (stored,) = raw_row("notes", NOTES, ["text"], note.pk)
    assert stored.startswith("v1.") and "werkdruk" not in stored


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_raw_columns_hold_no_plaintext(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    stored = raw_row("default", PARTICIPANTS, ["name", "email", "mobile", "pseudonym"], participant.pk)
    plaintexts = [
        NAME,
        EMAIL,
        MOBILE,
        str(participant.pseudonym),
        "Anna",
        "devries",
        "example.org",
        "612345678",
    ]
    for value in stored:
        assert value.startswith("v1.")
        for plaintext in plaintexts:
            assert plaintext.lower() not in value.lower()


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ciphertext_copied_to_another_row_does_not_open(organisation: Organisation) -> None:
    anna = make_participant(organisation)
    bram = make_participant(organisation, name="Bram", email="bram@example.org", mobile="+31687654321")
    (anna_email,) = raw_row("default", PARTICIPANTS, ["email"], anna.pk)
    raw_set("default", PARTICIPANTS, "email", anna_email, bram.pk)

    fresh = Participant.objects.get(pk=bram.pk)
    with pytest.raises(DecryptionError, match="copied from another row or column") as failure:
        _ = fresh.email
    assert anna_email.split(".")[2] not in str(failure.value)
    assert fresh.name == "Bram"  # the other columns of the row are untouched


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ciphertext_copied_to_another_column_does_not_open(organisation: Organisation) -> None:
    anna = make_participant(organisation)
    (anna_email,) = raw_row("default", PARTICIPANTS, ["email"], anna.pk)
    raw_set("default", PARTICIPANTS, "name", anna_email, anna.pk)

    with pytest.raises(DecryptionError):
        _ = Participant.objects.get(pk=anna.pk).name


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_tampered_ciphertext_in_the_database_does_not_open(organisation: Organisation) -> None:
    anna = make_participant(organisation)
    (stored,) = raw_row("default", PARTICIPANTS, ["email"], anna.pk)
    middle = len(stored) // 2
    tampered = stored[:middle] + ("A" if stored[middle] != "A" else "B") + stored[middle + 1 :]
    raw_set("default", PARTICIPANTS, "email", tampered, anna.pk)

    with pytest.raises(DecryptionError):
        _ = Participant.objects.get(pk=anna.pk).email


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_plaintext_update_is_refused_and_changes_nothing(organisation: Organisation) -> None:
    anna = make_participant(organisation)
    before = raw_row("default", PARTICIPANTS, ["email"], anna.pk)

    with pytest.raises(TypeError, match="plaintext cannot reach the database"), transaction.atomic():
        Participant.objects.filter(pk=anna.pk).update(email="new@example.org")
    assert raw_row("default", PARTICIPANTS, ["email"], anna.pk) == before


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_plaintext_bulk_update_is_refused_and_changes_nothing(organisation: Organisation) -> None:
    anna = make_participant(organisation)
    before = raw_row("default", PARTICIPANTS, ["email"], anna.pk)
    anna.email = "new@example.org"

    with pytest.raises(TypeError, match="plaintext cannot reach the database"), transaction.atomic():
        Participant.objects.bulk_update([anna], ["email"])
    assert raw_row("default", PARTICIPANTS, ["email"], anna.pk) == before


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize(
    "write",
    [
        # Paths the field cannot see: an expression in update(), and SQL written by hand.
        lambda pk: Participant.objects.filter(pk=pk).update(email=Value(EMAIL)),
        lambda pk: Participant.objects.filter(pk=pk).update(name=Concat(Value("Anna "), Value("de Vries"))),
        # Another column's plaintext (status was one, before it was sealed too).
        lambda pk: Participant.objects.filter(pk=pk).update(mobile=Cast(F("organisation_id"), TextField())),
        lambda pk: raw_set("default", PARTICIPANTS, "pseudonym", "3f2a9c0d1b7e4a6f8c5d2e1f0a9b8c7d", pk),
    ],
)
def test_the_database_refuses_plaintext_in_an_encrypted_column(
    organisation: Organisation, write: Callable[[uuid.UUID], object]
) -> None:
    anna = make_participant(organisation)
    columns = ["name", "email", "mobile", "pseudonym"]
    before = raw_row("default", PARTICIPANTS, columns, anna.pk)

    with pytest.raises(IntegrityError, match="_sealed"), transaction.atomic():
        write(anna.pk)

    assert raw_row("default", PARTICIPANTS, columns, anna.pk) == before


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_notes_database_refuses_plaintext_progress_notes() -> None:
    note = ProgressNote.objects.create(
        subject="s" * 64, kind="intake", written_on=dt.date.today(), sequence=1, text="ok"
    )

    with pytest.raises(IntegrityError, match="_sealed"), transaction.atomic(using="notes"):
        raw_set("notes", NOTES, "text", "Talked about the workload at the ward", note.pk)


def test_every_encrypted_column_has_its_database_check() -> None:
    # The system check (E013) that keeps it so: a model that forgets the constraint does not start.
    with isolate_apps("participants"):

        class Forgetful(models.Model):
            id = models.UUIDField(primary_key=True, default=uuid.uuid4)
            secret = EncryptedTextField(null=True)

            class Meta:
                app_label = "participants"

            def __str__(self) -> str:
                return "forgetful"

        class Careful(models.Model):
            id = models.UUIDField(primary_key=True, default=uuid.uuid4)
            secret = EncryptedTextField(null=True)

            class Meta:
                app_label = "participants"
                constraints = [*sealed_only("secret")]

            def __str__(self) -> str:
                return "careful"

        forgetful = [error.id for error in Forgetful._meta.get_field("secret").check()]
        careful = [error.id for error in Careful._meta.get_field("secret").check()]

    assert forgetful == ["preventicons.E013"]
    assert careful == []
    assert {
        str(constraint.name)
        for model in (Participant, ProgressNote)
        for constraint in model._meta.constraints
        if str(constraint.name).endswith("_sealed")
    } == {
        "participants_participant_name_sealed",
        "participants_participant_email_sealed",
        "participants_participant_mobile_sealed",
        "participants_participant_pseudonym_sealed",
        "participants_participant_private_email_sealed",
        "participants_participant_participation_sealed",
        "participants_participant_weekly_channel_sealed",
        "participants_participant_status_sealed",
        "participants_participant_messages_paused_sealed",
        "casefiles_progressnote_kind_sealed",
        "casefiles_progressnote_written_on_sealed",
        "casefiles_progressnote_sequence_sealed",
        "casefiles_progressnote_text_sealed",
    }


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_plaintext_never_reaches_a_query_through_a_lookup(organisation: Organisation) -> None:
    make_participant(organisation)
    with pytest.raises(TypeError):
        list(Participant.objects.filter(email=EMAIL))
    with pytest.raises(TypeError):
        list(Participant.objects.filter(email__in=[EMAIL]))
    with pytest.raises(TypeError):
        list(Participant.objects.filter(email__startswith="anna"))
    for lookup in ("icontains", "contains", "iexact", "regex", "endswith", "gt"):
        with pytest.raises(FieldError):
            list(Participant.objects.filter(**{f"email__{lookup}": "anna"}))
    with pytest.raises(FieldError):
        list(Participant.objects.filter(email__lower="anna"))


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ciphertext_lookups_by_sealed_value_and_key_prefix_work(organisation: Organisation) -> None:
    anna = make_participant(organisation)
    (stored,) = raw_row("default", PARTICIPANTS, ["email"], anna.pk)
    active = keys.get_key_set().keyring("field").active

    assert Participant.objects.get(email=Sealed(stored)).pk == anna.pk
    prefix = Sealed(crypto.ciphertext_prefix(active))
    assert list(Participant.objects.filter(email__startswith=prefix)) == [anna]
    assert not Participant.objects.filter(email__startswith=Sealed("v1.fld-none.")).exists()
    assert Participant.objects.filter(email__isnull=False).count() == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_saving_a_copy_with_an_unopened_value_is_refused(organisation: Organisation) -> None:
    loaded = Participant.objects.get(pk=make_participant(organisation).pk)
    loaded.pk = uuid.uuid4()
    loaded._state.adding = True
    loaded.email_index = loaded.mobile_index = None

    with pytest.raises(DecryptionError), transaction.atomic():
        loaded.save()
    assert Participant.objects.count() == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_saving_a_copy_with_opened_values_seals_them_for_the_new_row(organisation: Organisation) -> None:
    loaded = Participant.objects.get(pk=make_participant(organisation).pk)
    # Every sealed value opened, the empty ones of what the row does not hold too (none is sealed as well).
    _ = [
        getattr(loaded, field.name)
        for field in Participant._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
    loaded.pk = uuid.uuid4()
    loaded._state.adding = True
    # The copy's own keyed hashes (look-alikes, as the original's): a unique constraint holds a hash once.
    loaded.email_index = loaded.mobile_index = loaded.listed_email_hash = loaded.listed_mobile_hash = None
    loaded.save()

    assert Participant.objects.get(pk=loaded.pk).email == EMAIL


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_saving_an_unchanged_row_writes_its_ciphertext_back_as_it_was(organisation: Organisation) -> None:
    anna = make_participant(organisation)
    before = raw_row("default", PARTICIPANTS, ["name", "email"], anna.pk)
    loaded = Participant.objects.get(pk=anna.pk)
    loaded.status = Participant.Status.ACTIVE
    loaded.save()

    assert raw_row("default", PARTICIPANTS, ["name", "email"], anna.pk) == before


# --- seal / open_sealed -------------------------------------------------------------------------


def test_seal_and_open_round_trip_including_empty_and_non_ascii_text() -> None:
    for plaintext in ("", "x", "Zoë Çelik, 😊 ∑", "a" * 5000):
        assert crypto.open_sealed(crypto.seal(plaintext, BINDING), BINDING) == plaintext


@pytest.mark.parametrize(
    "elsewhere",
    [
        Binding("field", "participants_invitation", "email", BINDING.row),
        Binding("field", BINDING.table, "name", BINDING.row),
        Binding("field", BINDING.table, BINDING.column, "8d5e1c0a-0000-4000-8000-000000000002"),
    ],
    ids=["other table", "other column", "other row"],
)
def test_ciphertext_does_not_open_at_another_place(elsewhere: Binding) -> None:
    sealed = crypto.seal(EMAIL, BINDING)
    with pytest.raises(DecryptionError, match="does not open"):
        crypto.open_sealed(sealed, elsewhere)


def test_value_sealed_for_field_does_not_open_under_pseudonym_link() -> None:
    sealed = crypto.seal(EMAIL, BINDING)
    as_link = Binding("pseudonym_link", BINDING.table, BINDING.column, BINDING.row)
    with pytest.raises(DecryptionError, match="not in the pseudonym_link keyring"):
        crypto.open_sealed(sealed, as_link)


def test_value_sealed_for_field_does_not_open_under_pseudonym_link_even_with_the_same_key_id(
    tmp_path: Path, key_document: dict[str, Any]
) -> None:
    field_id = key_document["field"]["active"]
    key_document["pseudonym_link"] = {"active": field_id, "keys": {field_id: keys.new_key()}}
    with use_key_document(tmp_path, key_document):
        sealed = crypto.seal(EMAIL, BINDING)
        as_link = Binding("pseudonym_link", BINDING.table, BINDING.column, BINDING.row)
        with pytest.raises(DecryptionError, match="does not open"):
            crypto.open_sealed(sealed, as_link)


def test_unknown_key_id_is_named_in_the_error() -> None:
    sealed = crypto.seal(EMAIL, BINDING)
    _, _, body = sealed.split(".", 2)
    with pytest.raises(DecryptionError, match="key id 'fld-retired' is not in the field keyring"):
        crypto.open_sealed(f"v1.fld-retired.{body}", BINDING)


def flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: flip(s, len(s) // 2),
        lambda s: flip(s, len(s) - 2),
        lambda s: s[:-4],
        lambda s: s + "AAAA",
        lambda s: s[: len(s) // 2] + "!!!!" + s[len(s) // 2 :],
        lambda s: s[: len(s) // 2] + "\n\n\n\n" + s[len(s) // 2 :],
        lambda s: s + "==",
        lambda s: s.replace("v1.", "v2.", 1),
        lambda s: s.split(".", 2)[0] + "." + s.split(".", 2)[1] + ".AAAA",
        lambda s: "plain text",
    ],
    ids=[
        "flipped",
        "flipped tag",
        "truncated",
        "extended",
        "junk chars",
        "newlines",
        "padding",
        "version",
        "short",
        "plain",
    ],
)
def test_tampered_ciphertext_does_not_open(tamper: Any) -> None:
    sealed = crypto.seal(EMAIL, BINDING)
    with pytest.raises(DecryptionError):
        crypto.open_sealed(tamper(sealed), BINDING)


def test_ciphertext_in_another_base64_alphabet_does_not_open() -> None:
    # The same bytes in standard base64 ('+' and '/') would open with a lenient decoder.
    seals = (crypto.seal(EMAIL, BINDING).split(".", 2) for _ in range(200))
    version, key_id, body = next(parts for parts in seals if "-" in parts[2] or "_" in parts[2])
    other_alphabet = f"{version}.{key_id}.{body.replace('-', '+').replace('_', '/')}"
    with pytest.raises(DecryptionError, match="malformed"):
        crypto.open_sealed(other_alphabet, BINDING)


def test_ciphertext_carries_no_timestamp() -> None:
    first = crypto.seal(EMAIL, BINDING)
    second = crypto.seal(EMAIL, BINDING)
    with time_machine.travel(dt.datetime(2046, 1, 1, tzinfo=dt.UTC), tick=False):
        later = crypto.seal(EMAIL, BINDING)

    assert len({first, second, later}) == 3
    assert len(first) == len(second) == len(later)
    # Every byte is accounted for: format, key id, 12-byte nonce, the ciphertext (the text's bucket), tag.
    prefix = crypto.ciphertext_prefix(keys.get_key_set().keyring("field").active)
    body_bytes = crypto.NONCE_BYTES + 32 + crypto.TAG_BYTES
    assert first.startswith(prefix)
    assert len(first) == len(prefix) + len(base64.urlsafe_b64encode(b"\0" * body_bytes).rstrip(b"="))


@pytest.mark.parametrize(
    ("length", "bucket"),
    [
        (0, 32),
        (1, 32),
        (32, 32),
        (33, 64),
        (64, 64),
        (65, 128),
        (200, 256),
        (256, 256),
        (257, 512),
        (700, 768),
    ],
)
def test_plaintext_lengths_are_padded_to_buckets(length: int, bucket: int) -> None:
    assert crypto.padded_length(length) == bucket


def test_a_ciphertext_tells_only_the_bucket_of_the_texts_length() -> None:
    # Names and addresses of one department: the lengths that would fingerprint each person look alike.
    people = [
        "Jo",
        "Anna de Vries",
        "Mohammed El Amrani",
        "jo@zorg.nl",
        "anna.devries@example.org",
        "+31612345678",
    ]
    sealed = {crypto.seal(text, BINDING) for text in people}
    longer = crypto.seal("Maximiliaan van den Hoogenband-Vermeulen", BINDING)

    assert len({len(value) for value in sealed}) == 1
    assert len(longer) > len(sealed.pop())
    for text in [*people, "", "Zoë Ⅷ 𝄞 Ѐ"]:
        assert crypto.open_sealed(crypto.seal(text, BINDING), BINDING) == text


def test_a_value_sealed_before_padding_still_opens() -> None:
    ring = keys.get_key_set().keyring(BINDING.purpose)
    nonce = b"\x01" * crypto.NONCE_BYTES
    unpadded = AESGCM(ring.key(ring.active)).encrypt(nonce, EMAIL.encode(), BINDING.associated_data())
    body = base64.urlsafe_b64encode(nonce + unpadded).decode().rstrip("=")

    assert crypto.open_sealed(f"{crypto.ciphertext_prefix(ring.active)}{body}", BINDING) == EMAIL


def test_text_with_a_nul_character_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        crypto.seal("Anna\x00", BINDING)


def test_a_binding_part_containing_the_separator_is_refused() -> None:
    with pytest.raises(ValueError):
        Binding("field", "participants|participant", "email", BINDING.row)


# --- Blind indexes and keyed references -----------------------------------------------------------


def test_email_blind_index_ignores_case_and_surrounding_whitespace() -> None:
    index = crypto.blind_index_email(EMAIL)
    assert crypto.blind_index_email("  Anna.DeVries@Example.ORG\n") == index
    assert crypto.blind_index_email("anna.devries@example.com") != index
    assert len(index) == 64 and EMAIL not in index


@pytest.mark.parametrize(
    "not_e164",
    [
        "0612345678",
        "31612345678",
        "+31 6 12345678",
        "+31-612345678",
        "+",
        "+0612345678",
        "+1234567890123456",
        "+٣١٦١٢٣٤٥٦٧٨",
        "+³¹612345678",
        " +31612345678",
    ],
)
def test_phone_blind_index_takes_e164_only(not_e164: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        crypto.blind_index_phone(not_e164)


def test_phone_and_email_indexes_are_domain_separated() -> None:
    assert crypto.blind_index_phone(MOBILE) != crypto.keyed_hash("blind_index", "email", MOBILE)
    assert crypto.blind_index_phone(MOBILE) == crypto.blind_index_phone(MOBILE)


def test_blind_index_depends_on_the_key(tmp_path: Path) -> None:
    index = crypto.blind_index_email(EMAIL)
    with use_key_document(tmp_path, keys.generate_key_document()):
        assert crypto.blind_index_email(EMAIL) != index


def test_notes_subject_and_casefiles_index_are_keyed_apart() -> None:
    assert crypto.notes_subject("D-1001") == crypto.notes_subject("D-1001")
    assert crypto.notes_subject("D-1001") != crypto.casefiles_index("D-1001")
    assert crypto.notes_subject("D-1001") != crypto.notes_subject("D-1002")


def test_tokens_are_stored_as_hashes_and_compared_exactly() -> None:
    token = crypto.new_token()
    stored = crypto.hash_token(token)
    assert len(token) >= 43 and token not in stored
    assert crypto.tokens_match(token, stored)
    assert not crypto.tokens_match(token[:-1], stored)
    assert crypto.new_token() != token
