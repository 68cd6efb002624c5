"""Attack: someone with the casefiles store removes the ledger's last entries together with the signed heads
that cover them (and the attestations resting on them), around the append-only triggers, as an operator
would. What is left is a shorter ledger that is intact in itself; only a head named outside the ledger's
tables tells. Three such places: the copy of every head in the identity store (another database), the
head each issued attestation rests on, and the attestation file the employer holds (no database of ours).
The public /verify/ page holds an uploaded file's head against the ledger too: a signature that still holds
over a head the ledger lost is not valid there."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, transaction

from notary import attestations, checks, ledger
from notary.ledger import LedgerShrunk, Problem
from notary.models import Attestation, TreeHead
from participants.models import Organisation, StaffUser
from preventicons.dbrouter import DEFAULT
from preventicons.models import LogAnchor
from tests.conftest import ALL_DATABASES
from tests.notary.tampering import appended, on_postgresql, raw
from tests.notary.test_attestations import verify_on_page
from tests.notary.world import IN_Q3, Q3_END, Q3_START, engage, record_trajectory

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]


def truncate_casefiles_store(keep: int) -> None:
    """What the operator runs on the casefiles store: entries, heads and attestations past ``keep`` gone."""
    raw("DELETE FROM notary_ledgerentry WHERE sequence > %s", [keep])
    raw("DELETE FROM notary_treehead WHERE tree_size > %s", [keep])
    raw("DELETE FROM notary_attestation")


def clear_identity_copies() -> None:
    """The same on the identity store, around its trigger: only for showing what the attestation file adds."""
    with connections[DEFAULT].cursor() as cursor:
        if connections[DEFAULT].vendor == "postgresql":
            cursor.execute("ALTER TABLE preventicons_loganchor DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM preventicons_loganchor")


def named(problems: list[Problem]) -> list[tuple[str, int | None, str | None]]:
    return [(p.flaw, p.tree_size, p.named_in) for p in problems if p.flaw == ledger.Flaw.NAMED_HEAD_LOST]


def verify_ledger(*options: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("verify_ledger", *options, stdout=out)
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def test_every_signed_head_is_copied_to_the_identity_store() -> None:
    appended(4)
    first = ledger.sign_head()
    appended(3, start=4)
    second = ledger.sign_head()
    ledger.sign_head()  # nothing new: no second copy

    copies = list(LogAnchor.objects.order_by("tree_size").values_list("tree_size", "root_hash", "signature"))

    assert copies == [
        (first.tree_size, first.root_hash, first.signature),
        (second.tree_size, second.root_hash, second.signature),
    ]


def test_attack_removing_the_last_entries_with_their_heads_is_named_by_the_identity_stores_copy() -> None:
    appended(4)
    ledger.sign_head()
    appended(3, start=4)
    ledger.sign_head()
    truncate_casefiles_store(keep=4)
    assert list(TreeHead.objects.values_list("tree_size", flat=True)) == [4]

    problems = ledger.verify()
    printed, error = verify_ledger()

    assert named(problems) == [("named_head_lost", 7, "identity_store")]
    assert [(p.flaw, p.sequence, p.until) for p in problems if p.flaw == "removed"] == [("removed", 5, 7)]
    assert error is not None and error.returncode == 1
    assert "The ledger no longer holds the signed tree head at size 7 copied to the identity store" in printed
    # The auditor's privacy check (and so every attestation issued from now on) says so too.
    assert not checks.ledger_intact().passed
    with pytest.raises(LedgerShrunk):
        ledger.sign_head()


def test_attack_truncating_and_appending_other_entries_up_to_the_old_size_is_named() -> None:
    appended(4)
    ledger.sign_head()
    appended(3, start=4)
    ledger.sign_head()
    truncate_casefiles_store(keep=4)
    appended(3, start=100)  # other facts, the old size again: the size alone would pass
    ledger.sign_head()

    assert named(ledger.verify()) == [("named_head_lost", 7, "identity_store")]


def test_attack_a_copy_slipped_into_the_identity_store_is_named_never_trusted() -> None:
    appended(3)
    head = ledger.sign_head()
    LogAnchor.objects.create(
        log=ledger.ANCHOR_LOG,
        tree_size=9,
        root_hash="00" * 32,
        signed_at=head.signed_at,
        key_fingerprint=head.key_fingerprint,
        signature=head.signature,
    )

    problems = ledger.verify()

    assert [(p.flaw, p.tree_size) for p in problems] == [("copy_signature", 9)]


def test_heads_signed_before_the_copies_existed_are_copied_by_the_next_signing() -> None:
    appended(2)
    ledger.sign_head()
    appended(2, start=2)
    ledger.sign_head()
    clear_identity_copies()  # as before the upgrade

    ledger.sign_head()  # nothing new appended

    assert sorted(LogAnchor.objects.values_list("tree_size", flat=True)) == [2, 4]


def test_on_postgresql_the_identity_store_refuses_to_change_or_remove_a_copy() -> None:
    if not on_postgresql():
        pytest.skip("PostgreSQL's triggers")
    appended(2)
    ledger.sign_head()
    for statement in (
        "UPDATE preventicons_loganchor SET tree_size = 1",
        "DELETE FROM preventicons_loganchor",
        "TRUNCATE preventicons_loganchor",
    ):
        # A savepoint of its own: the refusal aborts only the statement.
        with (
            pytest.raises(Exception, match="append-only"),
            transaction.atomic(using=DEFAULT),
            connections[DEFAULT].cursor() as cursor,
        ):
            cursor.execute(statement)


# --- the attestations: in the casefiles store, and the employer's file ---


@pytest.fixture
def attestation_file(auditor: StaffUser, organisation: Organisation, tmp_path: Path) -> Path:
    """An attestation issued over a ledger of more than one head, as the employer downloaded it."""
    engage(auditor.pk, organisation.pk)
    record_trajectory(organisation.pk, opened=IN_Q3[0], completed=IN_Q3[3], outcome="not_improved")
    ledger.sign_head()
    appended(3, start=50)
    attestation, _new = attestations.issue(
        organisation_id=organisation.pk, period_start=Q3_START, period_end=Q3_END, auditor_id=auditor.pk
    )
    target = tmp_path / "attestation.json"
    target.write_bytes(attestations.file_of(attestation))
    return target


def attested_size(path: Path) -> int:
    statement: dict[str, Any] = attestations.verify_file(path.read_bytes()).statement or {}
    return int(statement["ledger"]["tree_size"])


def test_attack_an_issued_attestation_names_the_head_when_the_identity_copies_are_gone_too(
    attestation_file: Path,
) -> None:
    size = attested_size(attestation_file)
    kept = TreeHead.objects.order_by("tree_size").first()
    assert kept is not None and kept.tree_size < size
    # Entries and heads only: the attestation row stays, the identity store's copies are gone as well.
    raw("DELETE FROM notary_ledgerentry WHERE sequence > %s", [kept.tree_size])
    raw("DELETE FROM notary_treehead WHERE tree_size > %s", [kept.tree_size])
    clear_identity_copies()

    assert named(ledger.verify()) == [("named_head_lost", size, "attestation")]


def test_attack_the_employers_attestation_file_names_the_head_when_every_row_is_gone(
    attestation_file: Path,
) -> None:
    size = attested_size(attestation_file)
    kept = TreeHead.objects.order_by("tree_size").first()
    assert kept is not None
    truncate_casefiles_store(keep=kept.tree_size)
    clear_identity_copies()
    assert not Attestation.objects.exists()

    without_file, intact = verify_ledger()
    printed, error = verify_ledger("--attestation", str(attestation_file))

    assert intact is None and "ledger intact" in without_file  # what no database of ours still holds
    assert error is not None and error.returncode == 1
    assert (
        f"The ledger no longer holds the signed tree head at size {size} that an attestation rests" in printed
    )


def test_an_intact_ledger_verifies_with_the_attestation_file(attestation_file: Path) -> None:
    appended(2, start=80)
    ledger.sign_head()

    printed, error = verify_ledger("--attestation", str(attestation_file))

    assert error is None and "ledger intact" in printed


def test_a_changed_attestation_file_is_refused_not_skipped(attestation_file: Path) -> None:
    attestation_file.write_bytes(attestation_file.read_bytes().replace(b'"tree_size":', b'"tree_size": '))

    _printed, error = verify_ledger("--attestation", str(attestation_file))

    assert error is not None and "Not valid" in str(error)


# --- the public /verify/ page: the head an attestation rests on, not only its signature ---


def test_the_verify_page_finds_valid_an_attestation_whose_head_the_ledger_holds(
    attestation_file: Path,
) -> None:
    appended(2, start=80)  # the ledger grew since: it still holds the head
    ledger.sign_head()

    page = verify_on_page(attestation_file.read_bytes())

    assert "Valid: signed by Anoniem Garant" in page
    assert "Zorggroep Noord" in page


def test_a_lost_head_row_over_entries_still_there_verifies_as_verify_ledger_says(
    attestation_file: Path,
) -> None:
    size = attested_size(attestation_file)
    raw("DELETE FROM notary_treehead WHERE tree_size = %s", [size])

    page = verify_on_page(attestation_file.read_bytes())
    _printed, error = verify_ledger("--attestation", str(attestation_file))

    # The root over the first entries is the attested one: the ledger holds the head, the row or not.
    assert "Valid: signed by Anoniem Garant" in page
    assert error is None


HEAD_NOT_HELD = (
    "Not valid: the signature holds, but this notary's ledger does not hold the signed tree head of"
)


def test_attack_the_verify_page_refuses_an_attestation_whose_head_was_cut_from_the_ledger(
    attestation_file: Path,
) -> None:
    data = attestation_file.read_bytes()
    size = attested_size(attestation_file)
    kept = TreeHead.objects.order_by("tree_size").first()
    assert kept is not None and kept.tree_size < size
    truncate_casefiles_store(keep=kept.tree_size)
    assert attestations.verify_file(data).valid  # the signature alone still holds

    page = html.unescape(verify_on_page(data))

    # In words of its own, naming only what the file holds: nothing of the ledger as it stands now.
    reason = re.search(rf"{re.escape(HEAD_NOT_HELD)}[^.]*\.[^.]*\.", page)
    assert reason is not None
    assert reason.group(0) == (
        f"{HEAD_NOT_HELD} {size} entries that the attestation rests on. The ledger was cut back or rewritten "
        "after it was issued, or the attestation rests on another ledger."
    )
    assert "Valid: signed by" not in page
    assert "Zorggroep Noord" not in page  # not shown as if it were true


def test_attack_the_verify_page_refuses_an_attestation_whose_ledger_was_rewritten_to_its_size(
    attestation_file: Path,
) -> None:
    data = attestation_file.read_bytes()
    size = attested_size(attestation_file)
    kept = TreeHead.objects.order_by("tree_size").first()
    assert kept is not None
    truncate_casefiles_store(keep=kept.tree_size)
    appended(size - kept.tree_size, start=100)  # other facts up to the old size, under a new signed head
    assert ledger.sign_head().tree_size == size

    page = html.unescape(verify_on_page(data))

    assert f"{HEAD_NOT_HELD} {size} entries" in page
    assert "Zorggroep Noord" not in page
