"""``manage.py verify_ledger`` and the nightly head-signing job (issue 20, item 1)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import django
import pytest
from celery.schedules import crontab
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connections

from notary import ledger, signing
from notary.models import TreeHead
from notary.tasks import sign_tree_head
from tests.conftest import ALL_DATABASES
from tests.notary.tampering import appended, raw

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]


def verify_ledger() -> str:
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    return out.getvalue()


def test_an_intact_ledger_is_reported_with_its_last_head() -> None:
    appended(12)
    ledger.sign_head()
    appended(3, start=12)

    printed = verify_ledger()

    assert printed.strip() == (
        f"ledger intact: 15 entries, last signed head at size 12 (fingerprint {signing.fingerprint()})"
    )


def test_an_empty_ledger_is_intact_without_a_head() -> None:
    assert verify_ledger().strip() == "ledger intact: 0 entries, no signed head yet"


def test_each_problem_is_printed_and_the_exit_status_is_one() -> None:
    appended(6)
    ledger.sign_head()
    raw("UPDATE notary_ledgerentry SET facts = '{\"x\": 1}' WHERE sequence = 2")
    raw("DELETE FROM notary_ledgerentry WHERE sequence = 5")
    out = io.StringIO()

    with pytest.raises(CommandError, match="3 problem") as raised:
        call_command("verify_ledger", stdout=out)

    assert raised.value.returncode == 1
    assert out.getvalue().splitlines() == [
        "Entry 2 was changed: it no longer matches its leaf hash.",
        "Entry 5 is missing: it was removed.",
        "The signed tree head at size 6 no longer matches the entries up to that size.",
    ]


def test_from_the_command_line_a_problem_is_exit_status_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A command run from the command line closes the connections when done; the test's transaction (and its
    # rows) live on one of them.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    # Nor set Django up again: that would configure logging anew, binding its handlers to this test's
    # captured stderr, which is closed after it, and every later test that logs would fail on it.
    monkeypatch.setattr(django, "setup", lambda *args, **kwargs: None)
    appended(3)
    ManagementUtility(["manage.py", "verify_ledger"]).execute()  # intact: returns, status 0
    raw("DELETE FROM notary_ledgerentry WHERE sequence = 2")

    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "verify_ledger"]).execute()

    assert exited.value.code == 1
    printed = capsys.readouterr()
    assert "ledger intact: 3 entries" in printed.out and "Entry 2 is missing" in printed.out
    assert "ledger not intact: 1 problem" in printed.err


def test_the_task_signs_a_head_once_however_often_it_runs() -> None:
    appended(4)

    assert sign_tree_head() == 4
    assert sign_tree_head() == 4
    assert list(TreeHead.objects.values_list("tree_size", flat=True)) == [4]
    appended(1, start=4)
    assert sign_tree_head() == 5
    assert ledger.verify() == []


def test_the_head_is_signed_nightly_after_retention_and_the_feed(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["sign-ledger-tree-head"]
    schedule = entry["schedule"]

    assert entry["task"] == "notary.tasks.sign_tree_head"
    assert isinstance(schedule, crontab)
    assert (schedule.hour, schedule.minute) == ({3}, {40})
    assert settings.CELERY_TIMEZONE == "Europe/Amsterdam"
    retention = settings.CELERY_BEAT_SCHEDULE["anonymise-and-purge"]["schedule"]
    assert dt.time(next(iter(retention.hour)), next(iter(retention.minute))) < dt.time(3, 40)
