"""Run by test_access_log.py in a process of its own, on the embedded SQLite default: entries recorded and
verified, then one altered straight in the database file, with what verify_chain says printed as JSON."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import django


def main() -> None:
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from casefiles import accesslog
    from participants.models import StaffUser
    from preventicons.dbrouter import ALIASES

    for alias in ALIASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    user = StaffUser.objects.create_user(username="cm-embedded", password="x" * 20)
    for action in ("view_dossier", "reveal_contact", "add_note"):
        accesslog.record(action, user=user, dossier_number="D-ABCDEFGH")
    intact = accesslog.verify_chain()
    head = accesslog.head()
    path = Path(connections["casefiles"].settings_dict["NAME"])
    connections.close_all()
    with sqlite3.connect(path) as database:
        database.execute("UPDATE casefiles_accesslogentry SET action = 'search' WHERE sequence = 2")
    broken = accesslog.verify_chain()
    print(
        json.dumps(
            {
                "vendor": connections["casefiles"].vendor,
                "intact": intact is None,
                "head_is_last": head == accesslog.head(),
                "broken_at": None if broken is None else broken.sequence,
            }
        )
    )


if __name__ == "__main__":
    main()
