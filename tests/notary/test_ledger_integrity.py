"""The ledger's integrity (issue 20, item 1): the Merkle root and its signed heads, inclusion and consistency
proofs, the append-only tables, and verify() naming every entry or head that was changed, removed or
slipped in, by someone who got around the triggers the way an operator with the database would."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from pathlib import Path

import pytest
from django.db import DatabaseError, connections, transaction

from notary import ledger, merkle, signing
from notary.ledger import Flaw, Problem
from notary.models import Attestation, LedgerEntry, TreeHead
from preventicons.dbrouter import CASEFILES
from tests.conftest import ALL_DATABASES, run_on_embedded_default
from tests.notary.tampering import MONDAY, TABLES, appended, facts, on_postgresql, raw

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]


def flaws(problems: list[Problem]) -> list[tuple[str, int | None]]:
    return [
        (problem.flaw.value, problem.tree_size if problem.sequence is None else problem.sequence)
        for problem in problems
    ]


# --- the tree and its heads -----------------------------------------------------------------------------


def test_the_root_is_the_merkle_tree_hash_of_the_leaf_hashes_in_sequence_order() -> None:
    entries = appended(11)
    leaves = [bytes.fromhex(entry.leaf_hash) for entry in entries]

    assert ledger.tree_root() == merkle.tree_hash(leaves)
    assert ledger.tree_root(6) == merkle.tree_hash(leaves[:6])
    assert ledger.tree_root(0) == hashlib.sha256(b"").digest()
    with pytest.raises(ValueError):
        ledger.tree_root(12)


def test_a_signed_head_names_size_root_and_key_and_its_signature_holds() -> None:
    appended(5)

    head = ledger.sign_head()

    assert (head.tree_size, head.root_hash) == (5, ledger.tree_root().hex())
    assert head.key_fingerprint == signing.fingerprint()
    assert ledger.head_holds(head)
    assert ledger.latest_head() == head
    signed = json.loads(ledger.head_bytes(head))
    assert signed[1:3] == [5, head.root_hash] and signed[3].startswith(str(head.signed_at.year))


def test_signing_again_without_new_entries_returns_the_same_head() -> None:
    appended(3)
    first = ledger.sign_head()

    assert ledger.sign_head() == first
    assert TreeHead.objects.count() == 1
    appended(2, start=3)
    second = ledger.sign_head()
    assert second.tree_size == 5 and ledger.latest_head() == second and TreeHead.objects.count() == 2


def test_an_empty_ledger_signs_the_empty_tree() -> None:
    head = ledger.sign_head()
    assert (head.tree_size, head.root_hash) == (0, hashlib.sha256(b"").hexdigest())
    assert ledger.verify() == []


@pytest.mark.parametrize("field", ["tree_size", "root_hash", "signed_at", "signature", "key_fingerprint"])
def test_a_head_with_any_field_changed_does_not_hold(field: str) -> None:
    appended(4)
    head = ledger.sign_head()
    changed = {
        "tree_size": 3,
        "root_hash": "0" * 64,
        "signed_at": head.signed_at + dt.timedelta(seconds=1),
        "signature": signing.sign(b"something else"),
        "key_fingerprint": "f" * 64,
    }
    setattr(head, field, changed[field])

    assert not ledger.head_holds(head)


def test_no_new_head_over_a_ledger_shorter_than_its_last_head() -> None:
    appended(4)
    ledger.sign_head()
    raw("DELETE FROM notary_ledgerentry WHERE sequence = 4")

    with pytest.raises(ledger.LedgerShrunk):
        ledger.sign_head()


# --- proofs ---------------------------------------------------------------------------------------------


def test_every_entry_is_proved_in_every_signed_head_that_covers_it() -> None:
    entries = appended(7)
    small = ledger.sign_head()
    entries += appended(6, start=7)
    large = ledger.sign_head()

    for head in (small, large):
        for entry in entries[: head.tree_size]:
            proof = ledger.inclusion_proof(entry.sequence, head.tree_size)
            assert proof.leaf_hash == entry.leaf_hash
            assert proof.holds(head.root_hash), (entry.sequence, head.tree_size)


def test_an_inclusion_proof_fails_against_another_head_or_when_altered() -> None:
    appended(9)
    small = ledger.sign_head()
    appended(4, start=9)
    large = ledger.sign_head()
    proof = ledger.inclusion_proof(3, small.tree_size)

    assert proof.holds(small.root_hash)
    assert not proof.holds(large.root_hash)
    assert not ledger.inclusion_proof(3, large.tree_size).holds(small.root_hash)
    other_leaf = LedgerEntry.objects.get(sequence=4).leaf_hash
    assert not ledger.InclusionProof(3, small.tree_size, other_leaf, proof.path).holds(small.root_hash)
    assert not ledger.InclusionProof(4, small.tree_size, proof.leaf_hash, proof.path).holds(small.root_hash)
    assert not ledger.InclusionProof(3, 8, proof.leaf_hash, proof.path).holds(small.root_hash)
    assert not ledger.InclusionProof(3, 9, "zz", proof.path).holds(small.root_hash)


def test_inclusion_proofs_out_of_range_are_refused() -> None:
    appended(3)
    for sequence, size in ((0, 3), (4, 3), (3, 2), (1, 4)):
        with pytest.raises(ValueError):
            ledger.inclusion_proof(sequence, size)


def test_consistency_between_two_heads_holds() -> None:
    appended(6)
    old = ledger.sign_head()
    appended(9, start=6)
    new = ledger.sign_head()

    proof = ledger.consistency_proof(old.tree_size, new.tree_size)

    assert proof.holds(old.root_hash, new.root_hash)
    assert not proof.holds(new.root_hash, old.root_hash)
    assert ledger.consistency_proof(new.tree_size, new.tree_size).holds(new.root_hash, new.root_hash)


def test_consistency_between_two_heads_fails_after_a_rewrite() -> None:
    appended(6)
    old = ledger.sign_head()
    # Someone with the database rewrites entry 2 with a matching leaf hash; the next head is signed over it.
    entry = LedgerEntry.objects.get(sequence=2)
    entry.facts = {"forged": True}
    raw(
        "UPDATE notary_ledgerentry SET facts = %s, leaf_hash = %s WHERE sequence = 2",
        [json.dumps(entry.facts), ledger.leaf_hash(ledger.canonical(entry)).hex()],
    )
    appended(3, start=6)
    new = ledger.sign_head()

    proof = ledger.consistency_proof(old.tree_size, new.tree_size)

    assert not proof.holds(old.root_hash, new.root_hash)
    assert (Flaw.HEADS_INCONSISTENT, 9, 6) in [(p.flaw, p.tree_size, p.old_size) for p in ledger.verify()]


# --- verify() names what was changed, removed or slipped in ---------------------------------------------


def test_an_intact_ledger_with_heads_verifies() -> None:
    appended(10)
    ledger.sign_head()
    appended(7, start=10)
    ledger.sign_head()
    appended(2, start=17)

    check = ledger.check_ledger()

    assert check.intact and check.problems == [] and ledger.verify() == []
    assert check.entries == 19 and check.last_head is not None and check.last_head.tree_size == 17


def test_verify_reads_the_ledger_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "READ_CHUNK", 3)
    appended(10)
    ledger.sign_head()
    raw("UPDATE notary_ledgerentry SET week = '2026-11-09' WHERE sequence = 8")

    assert flaws(ledger.verify()) == [("changed", 8), ("head_mismatch", 10)]


def test_a_changed_entry_is_named() -> None:
    appended(8)
    ledger.sign_head()
    raw('UPDATE notary_ledgerentry SET facts = \'{"outcome": "improved"}\' WHERE sequence = 5')

    problems = ledger.verify()

    assert flaws(problems) == [("changed", 5), ("head_mismatch", 8)]
    assert str(problems[0]) == "Entry 5 was changed: it no longer matches its leaf hash."


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("UPDATE notary_ledgerentry SET reference = 'TR-OTHR-0000-0000' WHERE sequence = 3", 3),
        ("UPDATE notary_ledgerentry SET organisation_id = 8 WHERE sequence = 3", 3),
        ("UPDATE notary_ledgerentry SET kind = 'signed_off' WHERE sequence = 3", 3),
        ("UPDATE notary_ledgerentry SET sequence = 99 WHERE sequence = 3", 99),
    ],
    ids=["reference", "organisation", "kind", "sequence"],
)
def test_any_column_the_leaf_hash_covers_is_named_when_changed(statement: str, named: int) -> None:
    appended(4)
    raw(statement)

    assert ("changed", named) in flaws(ledger.verify())


def test_an_entry_rewritten_with_its_leaf_hash_is_named_by_its_seal() -> None:
    appended(6)
    head = ledger.sign_head()
    entry = LedgerEntry.objects.get(sequence=4)
    entry.reference = "TR-ELSE-0000-0000"
    raw(
        "UPDATE notary_ledgerentry SET reference = %s, leaf_hash = %s WHERE sequence = 4",
        [entry.reference, ledger.leaf_hash(ledger.canonical(entry)).hex()],
    )

    problems = ledger.verify()

    assert flaws(problems) == [("rewritten", 4), ("head_mismatch", head.tree_size)]
    assert "Entry 4 does not carry its seal" in problems[0].sentence


def test_a_removed_entry_is_named() -> None:
    appended(7)
    ledger.sign_head()
    raw("DELETE FROM notary_ledgerentry WHERE sequence IN (3, 4)")

    problems = ledger.verify()

    assert flaws(problems) == [("removed", 3), ("head_mismatch", 7)]
    assert problems[0].until == 4
    assert problems[0].sentence == "Entries 3 to 4 are missing: they were removed."


def test_removing_the_last_entries_is_named_against_the_last_head() -> None:
    appended(7)
    ledger.sign_head()
    raw("DELETE FROM notary_ledgerentry WHERE sequence = 7")

    problems = ledger.verify()

    assert flaws(problems) == [("removed", 7), ("head_mismatch", 7)]
    assert problems[0].sentence == "Entry 7 is missing: it was removed."


def test_a_forged_entry_slipped_in_is_named() -> None:
    appended(5)
    ledger.sign_head()
    forged = LedgerEntry(
        sequence=6, kind="trajectory_completed", reference="TR-FAKE-0000-0000", organisation_id=7,
        week=MONDAY, facts={"outcome": "improved", "sessions_held": 4}, source="f" * 64,
    )  # fmt: skip
    forged.leaf_hash = ledger.leaf_hash(ledger.canonical(forged)).hex()
    forged.seal = hashlib.sha256(
        forged.leaf_hash.encode()
    ).hexdigest()  # a guess: the key is not in the database
    raw(
        "INSERT INTO notary_ledgerentry (sequence, kind, reference, organisation_id, week, facts, source, "
        "leaf_hash, seal) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [6, forged.kind, forged.reference, 7, MONDAY, json.dumps(forged.facts), forged.source,
         forged.leaf_hash, forged.seal],
    )  # fmt: skip

    assert flaws(ledger.verify()) == [("rewritten", 6)]


def test_an_entry_numbered_out_of_place_is_named() -> None:
    appended(3)
    copy = LedgerEntry.objects.get(sequence=2)
    raw(
        "INSERT INTO notary_ledgerentry (sequence, kind, reference, organisation_id, week, facts, source, "
        "leaf_hash, seal) VALUES (0, %s, %s, %s, %s, %s, %s, %s, %s)",
        [copy.kind, copy.reference, copy.organisation_id, copy.week, json.dumps(copy.facts), "0" * 64,
         copy.leaf_hash, copy.seal],
    )  # fmt: skip

    problems = ledger.verify()

    assert flaws(problems) == [("out_of_place", 0)]
    assert problems[0].sentence == "An entry numbered 0 stands where entry 1 belongs."


def test_a_changed_head_is_named() -> None:
    appended(4)
    ledger.sign_head()
    appended(4, start=4)
    ledger.sign_head()
    raw("UPDATE notary_treehead SET root_hash = %s WHERE tree_size = 4", ["ab" * 32])

    problems = ledger.verify()

    assert flaws(problems) == [("head_signature", 4), ("head_mismatch", 4), ("heads_inconsistent", 8)]
    assert problems[0].sentence == "The signature of the tree head at size 4 does not hold."
    assert problems[2].old_size == 4


def test_a_head_with_a_forged_signature_is_named() -> None:
    appended(4)
    ledger.sign_head()
    raw("UPDATE notary_treehead SET signature = %s", [signing.sign(b"another document")])

    assert flaws(ledger.verify()) == [("head_signature", 4)]


# --- the database refuses ---------------------------------------------------------------------------------


def _attestation() -> Attestation:
    return Attestation.objects.create(
        organisation_id=7,
        period_start=MONDAY,
        period_end=MONDAY + dt.timedelta(days=30),
        document="{}",
        signature="x",
        issued_by_id=1,
        issued_on=MONDAY,
    )


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize(
    "statement",
    ["UPDATE {table} SET id = id", "DELETE FROM {table}", "TRUNCATE {table}"],
    ids=["update", "delete", "truncate"],
)
def test_on_postgresql_the_database_refuses_to_change_or_remove_notary_rows(
    table: str, statement: str
) -> None:
    if not on_postgresql():
        pytest.skip("the triggers are PostgreSQL's; SQLite relies on the seals and signed heads")
    appended(3)
    ledger.sign_head()
    _attestation()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using=CASEFILES):
        raw(statement.format(table=table), around_triggers=False)

    assert (LedgerEntry.objects.count(), TreeHead.objects.count(), Attestation.objects.count()) == (3, 1, 1)
    assert ledger.verify() == []


def test_the_orm_cannot_delete_or_update_entries_either() -> None:
    if not on_postgresql():
        pytest.skip("the triggers are PostgreSQL's")
    appended(2)
    with pytest.raises(DatabaseError), transaction.atomic(using=CASEFILES):
        LedgerEntry.objects.all().delete()
    with pytest.raises(DatabaseError), transaction.atomic(using=CASEFILES):
        LedgerEntry.objects.filter(sequence=1).update(reference="TR-X")
    assert LedgerEntry.objects.count() == 2 and ledger.verify() == []


def test_appending_still_works_under_the_triggers() -> None:
    first = ledger.append(facts(1)[0])
    again = ledger.append(facts(1)[0])

    assert first is not None and first.sequence == 1 and again is None
    assert ledger.verify() == []


def test_on_the_embedded_sqlite_default_the_ledger_signs_proves_and_names_tampering(tmp_path: Path) -> None:
    printed = run_on_embedded_default(str(Path(__file__).with_name("sqlite_ledger.py")), var_dir=tmp_path)
    seen = json.loads(printed.strip().splitlines()[-1])

    assert seen == {
        "vendor": "sqlite",
        "intact": True,
        "proved": True,
        "consistent": True,
        "named": [
            ["changed", 3, None],
            ["removed", 8, None],
            ["head_mismatch", None, 6],
            ["head_mismatch", None, 9],
            ["heads_inconsistent", None, 9],
        ],
    }


# --- concurrency ----------------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_two_signers_at_once_sign_one_head() -> None:
    if not on_postgresql():
        pytest.skip("two connections side by side: PostgreSQL")
    appended(20)
    start, errors, heads = threading.Barrier(2), [], []

    def sign() -> None:
        try:
            start.wait(10)
            heads.append(ledger.sign_head())
        except (DatabaseError, threading.BrokenBarrierError) as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sign) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors, errors
    assert [head.pk for head in heads] == [heads[0].pk] * 2
    assert list(TreeHead.objects.values_list("tree_size", flat=True)) == [20]
    assert ledger.verify() == []
