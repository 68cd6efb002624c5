"""Ledger entries for tests, and statements run the way an operator with the database would run them:
around the application and, on PostgreSQL, around the notary's append-only triggers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connections

from notary import ledger
from notary.ledger import Fact
from notary.models import LedgerEntry
from preventicons.dbrouter import CASEFILES

MONDAY = dt.date(2026, 11, 2)
# The tables migration notary/0005 makes append-only.
TABLES = ("notary_ledgerentry", "notary_treehead", "notary_attestation")


def on_postgresql() -> bool:
    return connections[CASEFILES].vendor == "postgresql"


def facts(count: int, start: int = 0) -> list[Fact]:
    """``count`` session facts of one organisation, numbered from ``start`` (their sources differ)."""
    return [
        Fact(
            kind="session_held",
            source=f"session_held:test-{n}",
            week=MONDAY + dt.timedelta(weeks=n % 5),
            reference=f"TR-TEST-{n:04d}-0000",
            organisation_id=7,
        )
        for n in range(start, start + count)
    ]


def appended(count: int, start: int = 0) -> list[LedgerEntry]:
    return ledger.append_many(facts(count, start))


def raw(sql: str, params: list[Any] | None = None, *, around_triggers: bool = True) -> None:
    """A statement as someone with the database would run it, around the application (and its triggers)."""
    with connections[CASEFILES].cursor() as cursor:
        if around_triggers and on_postgresql():
            # Rolled back with the test's transaction, like everything else in it.
            for table in TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params or [])
