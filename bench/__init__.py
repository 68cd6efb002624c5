"""Benchmarks that print their figures: ``make bench`` (or ``python -m bench``) runs every module here that
defines ``main()``; ``python -m bench.<module>`` runs one.

Benchmarks never touch a real installation: ``prepare()`` points Django at dedicated databases on the
PostgreSQL server named by ``DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432``), creates them
when missing, migrates them, and gives the process a throw-away key set. Each benchmark removes its rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# BENCH_DATABASE_PREFIX names them otherwise, so that several checkouts sharing one server (parallel
# branches, each with its own migrations) do not migrate each other's bench databases.
_PREFIX = os.environ.get("BENCH_DATABASE_PREFIX") or "preventicons_bench"
BENCH_DATABASES = {
    "DATABASE_URL": f"{_PREFIX}_identity",
    "NOTES_DATABASE_URL": f"{_PREFIX}_notes",
    "CASEFILES_DATABASE_URL": f"{_PREFIX}_casefiles",
}
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
# Rows deleted per statement when a benchmark removes its organisation (see bench_organisation).
CLEANUP_CHUNK = 5_000
_prepared = False


def server_url() -> str:
    """The PostgreSQL server to use, as a URL whose database part is replaced per bench database."""
    return os.environ.get("DATABASE_URL") or DEFAULT_SERVER


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _create_missing_databases(server: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_with_database(server, "postgres"), autocommit=True) as connection:
        for name in BENCH_DATABASES.values():
            found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not found:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def prepare() -> None:
    """Set Django up on the bench databases (created and migrated when needed), with throw-away keys."""
    global _prepared
    if _prepared:
        return
    from preventicons.keys import generate_key_document

    server = server_url()
    if urlsplit(server).scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"benchmarks run against PostgreSQL; DATABASE_URL is {urlsplit(server).scheme}://")
    _create_missing_databases(server)
    for variable, name in BENCH_DATABASES.items():
        os.environ[variable] = _with_database(server, name)
    os.environ["DJANGO_SETTINGS_MODULE"] = "preventicons.settings"
    os.environ["PREVENTICONS_ENV"] = "development"
    # A fresh key set per run: nothing a benchmark seals can be opened afterwards, and no key file is needed.
    os.environ["PREVENTICONS_KEYS"] = json.dumps(generate_key_document())

    import django
    from django.core.management import call_command

    django.setup()
    for alias in ("default", "notes", "casefiles"):
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    _prepared = True


@contextlib.contextmanager
def bench_organisation(label: str) -> Iterator[Any]:
    """An organisation of its own for one benchmark, with a signed agreement; everything under it goes after.

    Rows the benchmark makes elsewhere (outbox messages, staff users) are its own to remove.
    """
    import datetime as dt

    from django.db import models

    from participants.agreements import record_agreement
    from participants.models import Department, Organisation, Participant, ProcessingAgreement
    from scores.models import ClosedWeek, Score, WeeklyAggregate, WeeklyLink, WeeklyRound

    run = secrets.token_hex(4)
    organisation = Organisation.objects.create(name=f"Bench {label} {run}", sector="bench")
    try:
        record_agreement(
            organisation=organisation, signed_on=dt.date.today(), signer="Bench", document=run.encode()
        )
        yield organisation
    finally:
        # Children before parents: the foreign keys protect the organisation and its departments.
        under: list[tuple[type[models.Model], str]] = [
            (WeeklyAggregate, "organisation"),
            (ClosedWeek, "organisation"),
            (Score, "organisation"),
            (WeeklyRound, "organisation"),
            (WeeklyLink, "participant__organisation"),
            (Participant, "organisation"),
            (ProcessingAgreement, "organisation"),
            (Department, "organisation"),
        ]
        for model, path in under:
            # In chunks: a cascading delete lists every row's key as a parameter, and with server-side
            # binding PostgreSQL takes at most 65,535 parameters in one statement.
            rows = model._default_manager.filter(**{path: organisation})
            while keys := list(rows.values_list("pk", flat=True)[:CLEANUP_CHUNK]):
                model._default_manager.filter(pk__in=keys).delete()
        organisation.delete()
