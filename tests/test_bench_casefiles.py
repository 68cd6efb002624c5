"""The casemanager pages' benchmark (bench/casefiles.py) runs end to end at a tiny size: the real help-request
flow, a verified staff session, both pages answering 200 and their queries counted on every store."""

from __future__ import annotations

import pytest

from bench.casefiles import PageFigures, Sizes, nearest_rank, run
from casefiles.models import Dossier
from participants.models import Organisation, StaffUser
from preventicons.dbrouter import ALIASES
from tests.conftest import ALL_DATABASES

TINY = Sizes(dossiers=4, recent_weeks=4, history_weeks=12, long_notes=3, note_every=2, warmups=1, requests=3)


def test_the_nearest_rank_percentile() -> None:
    values = [float(n) for n in range(10, 0, -1)]
    assert nearest_rank(values, 0.9) == 9.0
    assert nearest_rank(values, 1.0) == 10.0
    assert nearest_rank([7.0], 0.9) == 7.0


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_bench_measures_both_pages_and_removes_what_it_built(capsys: pytest.CaptureFixture[str]) -> None:
    figures = run(TINY)

    assert [figure.label for figure in figures] == [
        "dashboard, 4 dossiers",
        "dossier, 12 weeks, 3 notes",
    ]
    for figure in figures:
        assert isinstance(figure, PageFigures)
        assert len(figure.timings_ms) == TINY.requests
        assert 0 < figure.median_ms <= figure.p90_ms <= figure.max_ms
        assert set(figure.queries) == set(ALIASES)
        assert figure.queries["casefiles"] > 0 and figure.queries["notes"] > 0
    printed = capsys.readouterr().out
    assert "under 100 ms: " in printed and "queries: default" in printed
    assert "4 in all" in printed
    # Gone again: the organisation, its dossiers and the casemanager (the access log stays: append-only).
    assert not Organisation.objects.filter(name__startswith="Bench casefiles").exists()
    assert not Dossier.objects.exists()
    assert not StaffUser.objects.filter(username__startswith="bench-cm-").exists()
