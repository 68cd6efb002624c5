"""The ledger's benchmark (bench/ledger.py) runs end to end at a tiny size: appended in batches, a head signed
once however often asked, an inclusion and a consistency proof that hold, a ledger that verifies, and its
rows removed again (never a time: the suite's machine is no benchmark machine)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from bench.ledger import Sizes, run
from notary import ledger, merkle
from notary.models import LedgerEntry, TreeHead
from preventicons.dbrouter import CASEFILES
from tests.conftest import ALL_DATABASES
from tests.notary.tampering import appended, on_postgresql

TINY = Sizes(entries=45, batch=10)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_bench_appends_signs_proves_and_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    figures = run(TINY)

    assert (figures.appended, figures.tree_size, figures.second_head_size) == (45, 45, 55)
    assert 1 <= figures.proved_sequence <= 45
    # At most log2 of the size, rounded up: 6 hashes prove one of 45 leaves.
    assert figures.inclusion_hashes == len(merkle.inclusion_ranges(figures.proved_sequence - 1, 45)) <= 6
    assert figures.consistency_hashes == len(merkle.consistency_ranges(45, 55)) > 0
    assert figures.problems == 0
    assert figures.append_s > 0 and figures.verify_s > 0
    printed = capsys.readouterr().out
    assert "append 45 entries" in printed and "inclusion proof of entry" in printed
    assert "consistency proof 45 -> 55" in printed and "(0 problems)" in printed


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_bench_leaves_the_ledger_as_it_found_it(capsys: pytest.CaptureFixture[str]) -> None:
    appended(5)
    earlier = ledger.sign_head()

    figures = run(TINY)

    assert figures.tree_size == 50 and figures.proved_sequence > 5
    if on_postgresql():
        assert "bench entries and heads removed" in capsys.readouterr().out
        assert LedgerEntry.objects.count() == 5
        assert list(TreeHead.objects.all()) == [earlier]
        assert ledger.verify() == []
        # The triggers are back on afterwards.
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using=CASEFILES):
            LedgerEntry.objects.filter(sequence=1).delete()
