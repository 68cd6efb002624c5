"""Which store holds which table (PostgreSQL and the SQLite default), and no relation crosses two stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connections, migrations, models
from django.db.migrations.state import ProjectState
from django.test.utils import isolate_apps

import preventicons.checks
from casefiles.models import Dossier, ProgressNote
from notary.models import LedgerEntry
from participants.models import Organisation, Participant
from preventicons.dbrouter import ALIASES, CASEFILES, DEFAULT, NOTES, CrossDatabaseRelation, StoreRouter
from preventicons.dbrouter import database_for_model as home_of
from tests.conftest import ALL_DATABASES, run_on_embedded_default

# Django's own bookkeeping, present in every store that has been migrated.
BOOKKEEPING = {"django_migrations"}

# The headline promises, written out so a change in the router cannot quietly move them.
IDENTITY_PREFIXES = (
    "participants_",
    "scores_",
    "auth_",
    "otp_",
    "two_factor_",
    "django_session",
    "django_admin_log",
    "django_content_type",
    "preventicons_",
)
CASEFILES_PREFIXES = ("casefiles_dossier", "notary_")
HEADLINE = {
    DEFAULT: {
        "participants_participant",
        "participants_organisation",
        "participants_staffuser",
        "scores_score",
        "auth_group",
        "auth_permission",
        "otp_totp_totpdevice",
        "otp_static_staticdevice",
        "two_factor_phonedevice",
        "django_session",
        "django_admin_log",
        "django_content_type",
    },
    NOTES: {"casefiles_progressnote"},
    CASEFILES: {"casefiles_dossier", "notary_ledgerentry"},
}


def expected_tables() -> dict[str, set[str]]:
    """Every installed model's table (many-to-many tables included), placed by the router's own rule."""
    expected: dict[str, set[str]] = {alias: set() for alias in ALIASES}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy:
            expected[home_of(model)].add(model._meta.db_table)
    return expected


def assert_each_store_holds_exactly_its_tables(found: dict[str, set[str]]) -> None:
    expected = expected_tables()
    for alias in ALIASES:
        assert HEADLINE[alias] <= found[alias], f"{alias} lacks {sorted(HEADLINE[alias] - found[alias])}"
    misplaced = {table for table in found[NOTES] | found[CASEFILES] if table.startswith(IDENTITY_PREFIXES)}
    misplaced |= {table for table in found[DEFAULT] | found[NOTES] if table.startswith(CASEFILES_PREFIXES)}
    misplaced |= {table for table in found[DEFAULT] if table.startswith("casefiles_")}
    misplaced |= {"casefiles_progressnote"} & (found[DEFAULT] | found[CASEFILES])
    # The notes store holds progress notes and nothing else.
    misplaced |= {table for table in found[NOTES] - BOOKKEEPING if not table.startswith("casefiles_")}
    assert misplaced == set()
    for alias in ALIASES:
        assert found[alias] - BOOKKEEPING == expected[alias], (
            f"{alias}: unexpected {sorted(found[alias] - BOOKKEEPING - expected[alias])}, "
            f"missing {sorted(expected[alias] - found[alias])}"
        )


def test_the_headline_tables_are_placed_by_the_router_as_promised() -> None:
    expected = expected_tables()
    for alias in ALIASES:
        assert HEADLINE[alias] <= expected[alias]
    for model in apps.get_models(include_auto_created=True):
        table = model._meta.db_table
        if table.startswith(IDENTITY_PREFIXES):
            assert home_of(model) == DEFAULT, model._meta.label
        elif table.startswith(CASEFILES_PREFIXES):
            assert home_of(model) == CASEFILES, model._meta.label


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_each_migrated_test_database_holds_exactly_its_tables() -> None:
    found = {alias: set(connections[alias].introspection.table_names()) for alias in ALIASES}
    assert_each_store_holds_exactly_its_tables(found)


def test_the_embedded_sqlite_default_places_every_table_in_its_own_file(tmp_path: Path) -> None:
    for alias in ALIASES:
        run_on_embedded_default(
            "manage.py", "migrate", f"--database={alias}", "--no-input", "-v0", var_dir=tmp_path
        )
    found = {}
    for alias in ALIASES:
        with sqlite3.connect(tmp_path / f"{alias}.sqlite3") as database:
            rows = database.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
        found[alias] = {name for (name,) in rows}
    assert_each_store_holds_exactly_its_tables(found)


# --- Relations across stores ------------------------------------------------------------------------


def test_the_router_refuses_to_relate_objects_from_different_stores() -> None:
    router = StoreRouter()
    participant = Participant(organisation_id=1)
    with pytest.raises(CrossDatabaseRelation, match=r"'casefiles'.*'default'"):
        router.allow_relation(Dossier(), participant)
    # Same app, two stores: a note may not point at its dossier either.
    with pytest.raises(CrossDatabaseRelation):
        router.allow_relation(ProgressNote(), Dossier())
    assert router.allow_relation(Dossier(), LedgerEntry()) is True
    assert router.allow_relation(participant, Organisation()) is True


def test_assigning_an_object_from_another_store_through_the_orm_raises() -> None:
    with isolate_apps("casefiles"):

        class StrayLink(models.Model):
            participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")

            class Meta:
                app_label = "casefiles"

            def __str__(self) -> str:
                return "stray link"

        with pytest.raises(CrossDatabaseRelation):
            StrayLink(participant=Participant(organisation_id=1))


def test_the_system_check_reports_a_foreign_key_across_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    assert preventicons.checks.check_no_relation_across_stores() == []
    with isolate_apps("casefiles") as isolated:

        class StrayLink(models.Model):
            participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")

            class Meta:
                app_label = "casefiles"

            def __str__(self) -> str:
                return "stray link"

        # The check walks the app registry; point it at the one that holds only the stray model.
        monkeypatch.setattr(preventicons.checks, "apps", isolated)
        errors = preventicons.checks.check_no_relation_across_stores()
    assert [(error.id, error.obj) for error in errors] == [("preventicons.E002", StrayLink)]
    assert "'casefiles'" in errors[0].msg and "participants.Participant" in errors[0].msg


# --- Data migrations on the split app ---------------------------------------------------------------


def test_a_data_migration_without_a_model_hint_on_the_split_app_is_allowed_nowhere() -> None:
    router = StoreRouter()
    assert [router.allow_migrate(alias, "casefiles") for alias in ALIASES] == [False, False, False]
    assert [router.allow_migrate(alias, "participants") for alias in ALIASES] == [True, False, False]
    assert [router.allow_migrate(alias, "notary") for alias in ALIASES] == [False, False, True]


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_run_python_on_the_split_app_runs_only_where_its_hint_points() -> None:
    ran: list[tuple[str, str]] = []

    def unhinted(apps_: object, schema_editor: object) -> None:
        ran.append(("unhinted", schema_editor.connection.alias))  # type: ignore[attr-defined]

    def hinted(apps_: object, schema_editor: object) -> None:
        ran.append(("hinted", schema_editor.connection.alias))  # type: ignore[attr-defined]

    state = ProjectState.from_apps(apps)
    operations = [
        migrations.RunPython(unhinted),
        migrations.RunPython(hinted, hints={"model_name": "progressnote"}),
    ]
    for alias in ALIASES:
        with connections[alias].schema_editor() as editor:
            for operation in operations:
                operation.database_forwards("casefiles", editor, state, state)
    assert ran == [("hinted", NOTES)]
