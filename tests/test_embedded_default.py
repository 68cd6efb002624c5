"""The embedded default (three SQLite files, no server) runs every job, as `make run` starts it.

On fresh SQLite files, in processes of their own: migrate, seed_demo (which itself lives through the demo
weeks with the real round, taps and week close), `run_weekly_round` for every demo organisation, and then
every beat job a week later: round, tap, help request and batch, code resend, invitations, week close and
the nightly run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from participants.management.demo import ORGANISATIONS
from preventicons.dbrouter import ALIASES
from tests.conftest import run_on_embedded_default

pytestmark = pytest.mark.integration


def test_every_job_runs_on_fresh_sqlite_files(tmp_path: Path) -> None:
    for alias in ALIASES:
        run_on_embedded_default(
            "manage.py", "migrate", f"--database={alias}", "--no-input", "-v0", var_dir=tmp_path
        )
    seeded = run_on_embedded_default("manage.py", "seed_demo", var_dir=tmp_path)
    assert "casefiles: 5 dossiers for demo-casemanager" in seeded
    assert "past weeks lived through" in seeded and re.search(r"/w/[A-Za-z0-9_-]{43}/", seeded)
    assert re.search(r"/i/[A-Za-z0-9_-]{43}/", seeded)

    organisations = json.loads(
        run_on_embedded_default(
            "manage.py",
            "shell",
            "--no-imports",
            "-c",
            "import json; from participants.models import Organisation; "
            "print(json.dumps(list(Organisation.objects.values_list('pk', flat=True))))",
            var_dir=tmp_path,
        )
    )
    assert len(organisations) == len(ORGANISATIONS)
    for organisation in organisations:
        week = run_on_embedded_default("manage.py", "run_weekly_round", str(organisation), var_dir=tmp_path)
        assert re.search(r"week \d{4}-\d\d-\d\d: 0 links", week), week  # seed_demo ran this week's round
        earlier = run_on_embedded_default(
            "manage.py", "run_weekly_round", str(organisation), "--week", "2026-01-05", var_dir=tmp_path
        )
        assert re.search(r"week 2026-01-05: [1-9]\d* links", earlier), earlier

    printed = json.loads(
        run_on_embedded_default(
            str(Path(__file__).parent / "scores" / "sqlite_every_job.py"), var_dir=tmp_path
        )
    )

    assert printed["round_links"] > 20 and printed["round_again"] == 0
    assert printed["round_links"] >= printed["reachable"] > 0
    assert printed["sent"] >= printed["reachable"]
    assert (printed["tap"], printed["tap_again"], printed["offer_help"]) == (True, False, True)
    assert (printed["help_taken_up"], printed["help_again"], printed["dossiers_added"]) == (1, 0, 1)
    assert printed["waiting_assigned"] == 0  # the demo casemanager serves the organisation: assigned at once
    assert (printed["dashboard"], printed["dossier_page"], printed["contact"]) == (200, 200, 200)
    assert printed["queued_note_shown"] is True
    assert (printed["notes_written"], printed["notes_again"]) == (2, 0)
    assert printed["link_code"] is True and (printed["resent"], printed["resent_again"]) == (True, False)
    assert printed["code_texts"] == 2
    assert (printed["enrolments"], printed["enrolled"]) == (1, True)
    assert printed["closed"] >= 2 and printed["closed_again"] == 0
    assert printed["closed_weeks"] is True and printed["frozen"] == len(organisations)
    assert printed["links_left"] == 0
    assert printed["nightly_runs"] == 1
    assert (printed["night_unlisted"], printed["dropped_stopped"], printed["salts_renewed"]) == (
        1,
        True,
        True,
    )
