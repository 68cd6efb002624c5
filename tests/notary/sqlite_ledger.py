"""Run by test_ledger_integrity.py in a process of its own, on the embedded SQLite default: entries appended,
two heads signed, proofs and verify() run, then one entry altered and one removed straight in the database
file (SQLite has no append-only trigger), with what verify() names printed as JSON."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import django


def main() -> None:
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from notary import ledger
    from notary.ledger import Fact
    from preventicons.dbrouter import ALIASES

    for alias in ALIASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    monday = dt.date(2026, 11, 2)
    ledger.append_many(
        [
            Fact(kind="session_held", source=f"session_held:{n}", week=monday, reference="TR-A")
            for n in range(6)
        ]
    )
    old = ledger.sign_head()
    ledger.append_many(
        [
            Fact(kind="session_held", source=f"session_held:{n}", week=monday, reference="TR-B")
            for n in range(6, 9)
        ]
    )
    new = ledger.sign_head()
    intact = ledger.verify() == []
    proved = ledger.inclusion_proof(4, new.tree_size).holds(new.root_hash)
    consistent = ledger.consistency_proof(old.tree_size, new.tree_size).holds(old.root_hash, new.root_hash)
    path = Path(connections["casefiles"].settings_dict["NAME"])
    connections.close_all()
    with sqlite3.connect(path) as database:
        database.execute("UPDATE notary_ledgerentry SET reference = 'TR-C' WHERE sequence = 3")
        database.execute("DELETE FROM notary_ledgerentry WHERE sequence = 8")
    print(
        json.dumps(
            {
                "vendor": connections["casefiles"].vendor,
                "intact": intact,
                "proved": proved,
                "consistent": consistent,
                "named": [[p.flaw.value, p.sequence, p.tree_size] for p in ledger.verify()],
            }
        )
    )


if __name__ == "__main__":
    main()
