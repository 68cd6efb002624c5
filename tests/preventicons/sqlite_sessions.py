"""Run by test_sessions.py in a process of its own, on the embedded SQLite default: a participant session
saved through the configured engine, and what the database file shows of it, printed as JSON."""

from __future__ import annotations

import json
import sqlite3
import uuid
from importlib import import_module
from pathlib import Path

import django


def main() -> None:
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", database="default", interactive=False, verbosity=0)
    path = Path(connections["default"].settings_dict["NAME"])
    engine = import_module(settings.SESSION_ENGINE)
    participant_id = str(uuid.uuid4())
    store = engine.SessionStore()
    store["participant_id"] = participant_id
    store.save()
    other = engine.SessionStore()
    other.create()
    connections["default"].close()
    with sqlite3.connect(path) as database:
        (stored,) = database.execute(
            "SELECT session_data FROM django_session WHERE session_key = ?", [store.session_key]
        ).fetchone()
        database.execute(
            "UPDATE django_session SET session_data = ? WHERE session_key = ?", [stored, other.session_key]
        )
    print(
        json.dumps(
            {
                "vendor": connections["default"].vendor,
                "participant_id": participant_id,
                "stored": stored,
                "opened": engine.SessionStore(store.session_key).load(),
                "copied": engine.SessionStore(other.session_key).load(),
            }
        )
    )


if __name__ == "__main__":
    main()
