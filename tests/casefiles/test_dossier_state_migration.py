"""Migration 0011: every dossier's open-or-closed and closing day are sealed to its row, of one length."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from casefiles.models import Dossier
from preventicons import crypto
from preventicons.dbrouter import CASEFILES
from tests.conftest import ALL_DATABASES

BEFORE = [("casefiles", "0010_progress_note_kind_day_and_order_sealed")]
AFTER = [("casefiles", "0011_dossier_open_and_closing_day_sealed")]
CLOSED_ON = dt.date(2026, 10, 1)


def _columns() -> list[tuple[Any, ...]]:
    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT number, is_open, closed_on FROM casefiles_dossier ORDER BY number")
        return cursor.fetchall()


def _migrate(targets: list[tuple[str, str]] | None = None) -> None:
    executor = MigrationExecutor(connections[CASEFILES])
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_the_migration_seals_open_and_closed_dossiers_alike_and_unseals_them_when_reversed() -> None:
    executor = MigrationExecutor(connections[CASEFILES])
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps.get_model("casefiles", "Dossier")
        old.objects.using(CASEFILES).create(number="D-OPEN", opened_on=CLOSED_ON, is_open=True)
        old.objects.using(CASEFILES).create(
            number="D-SHUT", opened_on=CLOSED_ON, is_open=False, closed_on=CLOSED_ON
        )
        _migrate(AFTER)

        states = {
            d.number: (d.is_open, d.closed_on) for d in Dossier.objects.only("number", "is_open", "closed_on")
        }
        assert states == {"D-OPEN": (True, None), "D-SHUT": (False, CLOSED_ON)}
        rows = _columns()
        for column in (1, 2):
            values = [row[column] for row in rows]
            assert all(str(value).startswith(f"{crypto.FORMAT}.") for value in values), values
            assert len({len(value) for value in values}) == 1, values

        _migrate(BEFORE)
        assert _columns() == [("D-OPEN", True, None), ("D-SHUT", False, CLOSED_ON)]
    finally:
        _migrate()
