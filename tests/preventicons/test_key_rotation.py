"""Key rotation across the three stores: every value stays readable at every step, and nothing is lost."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections, transaction
from django.test import override_settings

from casefiles.models import Dossier, ProgressNote
from participants.models import Organisation, Participant
from preventicons import crypto, keys
from preventicons.fields import Sealed
from preventicons.keyrotation import (
    BatchDone,
    KeyRotationError,
    activate_key,
    add_key,
    key_usage,
    reencrypt,
    retire_key,
    values_under_key,
)
from tests.conftest import ALL_DATABASES
from tests.factories import ParticipantFactory

pytestmark = pytest.mark.integration


@pytest.fixture
def key_file(tmp_path: Path) -> Iterator[Path]:
    """The keys in force, moved to a key file the commands may edit; the inline test keys come back after."""
    path = tmp_path / "keys.json"
    keys.write_key_document(path, keys.read_key_document())
    try:
        with override_settings(PREVENTICONS_KEY_FILE=str(path), PREVENTICONS_KEYS=""):
            keys.reset_key_cache()
            yield path
    finally:
        keys.reset_key_cache()


def document(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def active(purpose: str) -> str:
    return keys.get_key_set().keyring(purpose).active


def make_participants(count: int) -> list[Participant]:
    organisation = Organisation.objects.create(name="Zorggroep Oost", sector="zorg")
    return [
        # Sealed values without blind indexes: this test counts and re-encrypts ciphertexts only.
        ParticipantFactory.create(
            organisation=organisation,
            name=f"Deelnemer {n}",
            email=f"deelnemer{n}@example.org",
            mobile=f"+316000000{n:02d}",
            pseudonym=crypto.new_pseudonym(),
            email_address=None,
            mobile_number=None,
        )
        for n in range(count)
    ]


# What the rotation reports of a note: every column but its subject is sealed.
NOTE_COLUMNS = [f"casefiles.ProgressNote.{name}" for name in ("kind", "written_on", "sequence", "text")]


def make_notes(count: int) -> list[ProgressNote]:
    return [
        ProgressNote.objects.create(
            subject=crypto.notes_subject(f"D-{n}"),
            kind="call",
            written_on=dt.date(2026, 11, 2),
            sequence=1,
            text=f"note {n}",
        )
        for n in range(count)
    ]


def stored_key_ids(alias: str, table: str, column: str) -> list[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY id")  # noqa: S608
        return [crypto.key_id_of(value) for (value,) in cursor.fetchall()]


def participant_key_ids() -> list[str]:
    return stored_key_ids("default", Participant._meta.db_table, "email")


def note_key_ids() -> list[str]:
    return stored_key_ids("notes", ProgressNote._meta.db_table, "text")


def assert_all_open(participants: list[Participant], notes: list[ProgressNote]) -> None:
    for participant in participants:
        fresh = Participant.objects.get(pk=participant.pk)
        assert (fresh.name, fresh.email, fresh.mobile) == (
            participant.name,
            participant.email,
            participant.mobile,
        )
        assert fresh.pseudonym == participant.pseudonym
    for note in notes:
        assert ProgressNote.objects.get(pk=note.pk).text == note.text


# --- The key file ---------------------------------------------------------------------------------


def test_add_puts_a_fresh_inactive_key_in_the_file(key_file: Path) -> None:
    before = document(key_file)

    new_id = add_key(purpose="field")

    after = document(key_file)
    assert after["field"]["active"] == before["field"]["active"]
    assert set(after["field"]["keys"]) == {*before["field"]["keys"], new_id}
    assert after["field"]["keys"][new_id] not in before["field"]["keys"].values()
    assert {k: v for k, v in after.items() if k != "field"} == {
        k: v for k, v in before.items() if k != "field"
    }
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert new_id in keys.get_key_set().keyring("field").keys  # the cache was reset


# The casefiles store: the activation is recorded in the notary's ledger (preventicons.signals.keys_rotated).
@pytest.mark.django_db(databases=["casefiles"])
def test_activate_makes_new_seals_use_the_key(key_file: Path) -> None:
    new_id = add_key(purpose="pseudonym_link")
    binding = crypto.Binding("pseudonym_link", "t", "c", "r")
    assert crypto.key_id_of(crypto.seal("P", binding)) != new_id

    assert activate_key(purpose="pseudonym_link", key_id=new_id) is True
    assert activate_key(purpose="pseudonym_link", key_id=new_id) is False

    assert document(key_file)["pseudonym_link"]["active"] == new_id
    assert crypto.key_id_of(crypto.seal("P", binding)) == new_id


def test_activating_an_unknown_key_is_refused_and_changes_nothing(key_file: Path) -> None:
    before = key_file.read_bytes()
    with pytest.raises(KeyRotationError, match="field has no key 'fld-nope'"):
        activate_key(purpose="field", key_id="fld-nope")
    assert key_file.read_bytes() == before


def test_a_keyed_hash_purpose_is_not_rotatable_here(key_file: Path) -> None:
    with pytest.raises(KeyRotationError, match="not a rotatable keyring"):
        add_key(purpose="blind_index")


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_retiring_the_active_key_is_refused(key_file: Path) -> None:
    with pytest.raises(KeyRotationError, match="is the active field key"):
        retire_key(purpose="field", key_id=active("field"))


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_retiring_an_unused_key_removes_it(key_file: Path) -> None:
    spare = add_key(purpose="casefiles_link")
    retire_key(purpose="casefiles_link", key_id=spare)
    assert spare not in document(key_file)["casefiles_link"]["keys"]


def test_concurrent_edits_of_the_key_file_lose_nothing(key_file: Path) -> None:
    added: list[str] = []

    def add() -> None:
        added.append(add_key(purpose="field"))

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(added) == 6
    assert set(added) <= set(document(key_file)["field"]["keys"])


def test_editing_inline_keys_is_refused_with_a_clear_message() -> None:
    with pytest.raises(KeyRotationError, match="PREVENTICONS_KEYS"):
        add_key(purpose="field")
    with pytest.raises(KeyRotationError, match="PREVENTICONS_KEYS"):
        activate_key(purpose="field", key_id=active("field"))
    with pytest.raises(KeyRotationError, match="PREVENTICONS_KEYS"):
        retire_key(purpose="field", key_id=active("field"))


# --- Re-encryption --------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_rotation_interrupted_midway_keeps_every_value_readable_and_resumes(key_file: Path) -> None:
    participants, notes = make_participants(5), make_notes(3)
    old_id = active("field")
    new_id = add_key(purpose="field")
    activate_key(purpose="field", key_id=new_id)
    batches: list[BatchDone] = []

    first = reencrypt(purposes=["field"], batch_size=2, max_batches=1, on_batch=batches.append)

    assert first.stopped_early and not first.is_complete
    # Two participants' eight sealed columns each (name, e-mail, mobile, status, pause, private e-mail,
    # participation, weekly channel: none is sealed too).
    assert [(b.model_label, b.batch, b.resealed) for b in batches] == [("participants.Participant", 1, 16)]
    assert participant_key_ids() != [old_id] * 5 and participant_key_ids() != [new_id] * 5
    assert sorted(participant_key_ids()) == sorted([new_id] * 2 + [old_id] * 3)
    assert note_key_ids() == [old_id] * 3
    assert_all_open(participants, notes)
    with pytest.raises(KeyRotationError, match=r"still sealed under .*casefiles.ProgressNote.text: 3"):
        retire_key(purpose="field", key_id=old_id)

    second = reencrypt(purposes=["field"], batch_size=2)

    assert second.is_complete and not second.unreadable
    assert second.resealed["participants.Participant.email"] == 3
    assert second.resealed["casefiles.ProgressNote.text"] == 3
    assert participant_key_ids() == [new_id] * 5 and note_key_ids() == [new_id] * 3
    assert values_under_key(purpose="field", key_id=old_id) == {}
    retire_key(purpose="field", key_id=old_id)
    assert old_id not in document(key_file)["field"]["keys"]
    assert_all_open(participants, notes)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_reencrypt_leaves_other_purposes_alone(key_file: Path) -> None:
    make_participants(2)
    link_id = active("pseudonym_link")
    activate_key(purpose="field", key_id=add_key(purpose="field"))

    reencrypt(purposes=["field"])

    assert stored_key_ids("default", Participant._meta.db_table, "pseudonym") == [link_id] * 2


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_reencrypt_covers_all_three_stores(key_file: Path) -> None:
    participants, notes = make_participants(3), make_notes(2)
    dossier = Dossier.objects.create(
        number="D-7", pseudonym=participants[0].pseudonym, opened_on=dt.date.today()
    )
    for purpose in keys.ENCRYPTION_PURPOSES:
        activate_key(purpose=purpose, key_id=add_key(purpose=purpose))

    report = reencrypt(batch_size=2)

    assert report.is_complete
    assert participant_key_ids() == [active("field")] * 3
    assert (
        stored_key_ids("default", Participant._meta.db_table, "pseudonym") == [active("pseudonym_link")] * 3
    )
    assert note_key_ids() == [active("field")] * 2
    assert stored_key_ids("casefiles", Dossier._meta.db_table, "pseudonym") == [active("casefiles_link")]
    assert Dossier.objects.get(pk=dossier.pk).pseudonym == participants[0].pseudonym
    assert_all_open(participants, notes)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_reencrypt_can_be_limited_to_one_store(key_file: Path) -> None:
    make_participants(2)
    make_notes(2)
    old_id = active("field")
    activate_key(purpose="field", key_id=add_key(purpose="field"))

    report = reencrypt(databases=["notes"])

    assert note_key_ids() == [active("field")] * 2
    assert participant_key_ids() == [old_id] * 2
    assert set(report.remaining) == set(NOTE_COLUMNS) and report.is_complete


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_reencrypt_names_an_unreadable_value_and_leaves_it_as_it_is(key_file: Path) -> None:
    notes = make_notes(3)
    old_id = active("field")
    garbage = f"{crypto.ciphertext_prefix(old_id)}{'A' * 40}"
    with connections["notes"].cursor() as cursor:
        sql = f"UPDATE {ProgressNote._meta.db_table} SET text = %s WHERE id = %s"  # noqa: S608
        cursor.execute(sql, [garbage, notes[1].pk])
    activate_key(purpose="field", key_id=add_key(purpose="field"))

    report = reencrypt(purposes=["field"], batch_size=1)

    assert report.unreadable == [f"casefiles.ProgressNote.text pk={notes[1].pk}"]
    assert report.remaining["casefiles.ProgressNote.text"] == 1 and not report.is_complete
    assert ProgressNote.objects.filter(text=Sealed(garbage)).count() == 1
    with pytest.raises(KeyRotationError, match="1 values are still sealed"):
        retire_key(purpose="field", key_id=old_id)


@pytest.mark.django_db(databases=["notes", "casefiles"], transaction=True)
def test_reencrypt_skips_a_row_locked_by_another_transaction_and_finishes_it_next_time(
    key_file: Path,
) -> None:
    # Transactional, in the notes store, and the casefiles store where the notary's ledger records the
    # activation: their flush afterwards removes no data other tests rely on.
    notes = make_notes(4)
    old_id = active("field")
    activate_key(purpose="field", key_id=add_key(purpose="field"))
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic(using="notes"):
                ProgressNote.objects.select_for_update().get(pk=notes[2].pk)
                locked.set()
                release.wait(timeout=60)
        finally:
            connections["notes"].close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=60)
        first = reencrypt(purposes=["field"], databases=["notes"], batch_size=2)
    finally:
        release.set()
        holder.join()

    assert first.remaining == dict.fromkeys(NOTE_COLUMNS, 1) and not first.is_complete
    by_pk = dict(zip(sorted(str(n.pk) for n in notes), note_key_ids(), strict=True))
    assert by_pk.pop(str(notes[2].pk)) == old_id
    assert set(by_pk.values()) == {active("field")}

    second = reencrypt(purposes=["field"], databases=["notes"], batch_size=2)

    assert second.is_complete and note_key_ids() == [active("field")] * 4
    assert [ProgressNote.objects.get(pk=n.pk).text for n in notes] == [n.text for n in notes]


# --- Status ---------------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_status_counts_values_per_purpose_and_key_and_names_unknown_key_ids(key_file: Path) -> None:
    participants = make_participants(2)
    make_notes(1)
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"UPDATE {Participant._meta.db_table} SET name = %s WHERE id = %s",  # noqa: S608
            ["v1.fld-ghost.AAAA", participants[0].pk],
        )

    usage = {(u.purpose, u.key_id): u for u in key_usage()}

    field_now = usage[("field", active("field"))]
    # Two participants' eight columns (five, and private e-mail, participation and weekly channel sealed
    # empty), one of them overwritten with the ghost, plus one note's four (kind, day, order, text).
    assert field_now.is_active and field_now.values == 15 + 4
    assert usage[("pseudonym_link", active("pseudonym_link"))].values == 2
    assert usage[("casefiles_link", active("casefiles_link"))].values == 0
    ghost = usage[("field", "fld-ghost")]
    assert (ghost.values, ghost.in_keyring, ghost.is_active) == (1, False, False)


# --- The command, end to end ----------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("rotate_keys", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_rotate_keys_command_end_to_end(key_file: Path) -> None:
    # Three participants with eight sealed columns each (name, e-mail, mobile, status, pause, and private
    # e-mail, participation and weekly channel sealed empty), two notes with
    # four each (kind, day, order, text).
    participants, notes = make_participants(3), make_notes(2)
    old_id = active("field")

    output = run("add", "--purpose", "field")
    (new_id,) = document(key_file)["field"]["keys"].keys() - {old_id}
    assert f"Added key {new_id}" in output and "restart every" in output
    assert active("field") == old_id

    output = run("activate", "--purpose", "field", "--key-id", new_id)
    assert f"{new_id} is now the active field key" in output
    output += run("status")
    assert f"field {old_id}: 32 values" in output and f"field {new_id}: 0 values (active)" in output

    output += run("reencrypt", "--purpose", "field", "--batch-size", "2", "--max-batches", "1")
    assert "participants.Participant [default]: batch 1, 16 values re-sealed" in output
    assert "Stopped early" in output
    with pytest.raises(CommandError, match="still sealed under"):
        run("retire", "--purpose", "field", "--key-id", old_id)

    output += run("reencrypt", "--purpose", "field", "--batch-size", "2")
    assert "casefiles.ProgressNote [notes]: batch 1, 8 values re-sealed" in output
    assert "participants.Participant.email: 1" in output
    assert "Every value is sealed under its active key." in output

    output += run("retire", "--purpose", "field", "--key-id", old_id)
    assert f"Retired {old_id}" in output
    output += run("status")
    assert f"field {new_id}: 32 values (active)" in output

    assert_all_open(participants, notes)
    doc = document(key_file)
    secrets = [k for ring in keys.ENCRYPTION_PURPOSES for k in doc[ring]["keys"].values()]
    secrets += [doc[purpose] for purpose in (*keys.HMAC_PURPOSES, keys.SIGNING_PURPOSE)]
    assert not [secret for secret in secrets if secret in output]


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_rotate_keys_command_fails_when_a_value_cannot_be_opened(key_file: Path) -> None:
    (note,) = make_notes(1)
    with connections["notes"].cursor() as cursor:
        # Shaped like a ciphertext (the column refuses anything else) but sealed under no key we hold.
        sql = f"UPDATE {ProgressNote._meta.db_table} SET text = 'v1.k0000000.AAAA' WHERE id = %s"  # noqa: S608
        cursor.execute(sql, [note.pk])

    with pytest.raises(CommandError, match="1 values could not be opened"):
        run("reencrypt")


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_rotate_keys_command_with_inline_keys_refuses_edits_but_reports(settings: Any) -> None:
    assert settings.PREVENTICONS_KEYS
    make_notes(1)
    for args in (
        ("add", "--purpose", "field"),
        ("activate", "--purpose", "field", "--key-id", active("field")),
        ("retire", "--purpose", "field", "--key-id", active("field")),
    ):
        with pytest.raises(
            CommandError, match=r"PREVENTICONS_KEYS \(inline\), which this command cannot edit"
        ):
            run(*args)

    assert f"field {active('field')}: 4 values (active)" in run("status")
    assert "Every value is sealed under its active key." in run("reencrypt")


def test_rotate_keys_command_rejects_a_keyed_hash_purpose() -> None:
    with pytest.raises(CommandError):
        run("add", "--purpose", "blind_index")
