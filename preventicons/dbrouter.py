"""Sends every model to the one database it lives in, and refuses anything that would join two of them.

``default`` holds identity and pseudonymous scores, ``notes`` the anonymous progress notes, ``casefiles`` the
dossiers and the notary ledger. A dump of one of them must link nothing to another: a foreign key or a
query across aliases is an error, never a silent fall-back to ``default``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.db import connections, transaction
from django.db.models import Model

DEFAULT = "default"
NOTES = "notes"
CASEFILES = "casefiles"
ALIASES = (DEFAULT, NOTES, CASEFILES)

# Whole apps that live outside ``default``.
APP_DATABASES: dict[str, str] = {
    "casefiles": CASEFILES,
    "notary": CASEFILES,
}
# Single models that live elsewhere than their app (lower-case "app_label.model_name").
MODEL_DATABASES: dict[str, str] = {
    "casefiles.progressnote": NOTES,
}


class CrossDatabaseRelation(Exception):
    """Two objects from different stores were about to be related."""


def database_for(app_label: str, model_name: str | None = None) -> str:
    """The alias a model lives in (or, without a model name, the app's home alias)."""
    if model_name is not None:
        found = MODEL_DATABASES.get(f"{app_label}.{model_name.lower()}")
        if found:
            return found
    return APP_DATABASES.get(app_label, DEFAULT)


def database_for_model(model: type[Model] | Model) -> str:
    meta = model._meta
    return database_for(meta.app_label, meta.model_name)


def app_is_split(app_label: str) -> bool:
    """True when an app has models in more than one database (casefiles: dossiers and notes)."""
    return any(key.split(".", 1)[0] == app_label for key in MODEL_DATABASES)


class StoreRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        return database_for_model(model)

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return database_for_model(model)

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        first, second = database_for_model(obj1), database_for_model(obj2)
        if first != second:
            raise CrossDatabaseRelation(
                f"{obj1._meta.label} lives in {first!r} and {obj2._meta.label} in {second!r}: "
                "the stores are kept unjoinable; link them through a keyed reference instead"
            )
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        if model_name is None and "model" in hints:
            model_name = hints["model"]._meta.model_name
        if model_name is None:
            # A data migration without a model hint runs only where its whole app lives.
            if app_is_split(app_label):
                return False
            return db == database_for(app_label)
        return db == database_for(app_label, model_name)


def models_in(alias: str) -> list[type[Model]]:
    """Every installed model that lives in the given alias."""
    return [model for model in apps.get_models() if database_for_model(model) == alias]


@contextlib.contextmanager
def every_store() -> Iterator[None]:
    """One transaction that every store joins; the identity store commits last.

    What a receiver writes in another store (casefiles closes or marks the dossier) commits with the
    identity-side change or not at all: if anything inside raises, every store rolls back. One window
    remains, because two databases cannot commit as one: on leaving, the other stores commit first and the
    identity store last. Should that last commit fail, the other stores have already committed; callers
    keep their receivers idempotent so that running the operation again completes it. This order errs
    towards forgetting (a dossier closed while its participant is not yet stopped); the reverse could leave
    a dossier open under a pseudonym nobody can name any more. Closing the window would take two-phase
    commit (PREPARE TRANSACTION) and a recovery process across the servers.
    """
    with contextlib.ExitStack() as stores:
        stores.enter_context(transaction.atomic(using=DEFAULT))
        for alias in ALIASES:
            if alias != DEFAULT:
                stores.enter_context(transaction.atomic(using=alias))
        yield


@contextlib.contextmanager
def pipelined(alias: str) -> Iterator[None]:
    """On PostgreSQL, the block's statements in pipeline mode: each goes to the server at once and the block
    waits for their results on leaving, where the error of one that failed is raised as Django's (an
    IntegrityError is django.db.IntegrityError, as outside the block). Elsewhere the block runs as it is.

    The batch jobs (the week close, the weekly round) compute the next statement while the server carries
    out the last one. Nothing inside may read a result it needs, or the block waits there instead.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield
