"""Shared personas and helpers. Tests that touch the notes or casefiles stores ask for them explicitly:
``@pytest.mark.django_db(databases=["default", "casefiles", "notes"])``."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connections
from django.test import Client
from django.utils import translation
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from participants.models import Department, Organisation, Participant, ProcessingAgreement, StaffUser
from preventicons import messaging
from preventicons.roles import Role

pytest_plugins = ["tests.fakes.fixtures"]

ALL_DATABASES = ["default", "notes", "casefiles"]
STAFF_PASSWORD = "correct horse battery staple"
# Redis numbers its databases 0-15 unless configured otherwise.
REDIS_MAX_DATABASE = 15


@pytest.fixture
def english() -> Iterator[None]:
    """English outside requests too (e-mails, form errors), whose msgids the assertions read.

    A module that needs it throughout says ``pytestmark = pytest.mark.usefixtures("english")``.
    """
    with translation.override("en"):
        yield


@pytest.fixture
def empty_cache() -> Iterator[None]:
    """Rate-limit counters (Redis in the suite) start from nothing and leave nothing for the next test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def forget_provider_verdicts() -> Iterator[None]:
    """What a provider last did to a real message outlives a run in the cache (preventicons.messaging:
    _Verdicts), so that a run meeting no real message still knows; one test's failing provider must not
    hold back the messages with nobody to send to of the next."""
    cache.delete_many(messaging.provider_verdict_keys())
    yield
    cache.delete_many(messaging.provider_verdict_keys())


def worker_redis_url(url: str, worker: str | None) -> str:
    """``url`` with the Redis database of this pytest-xdist worker: the base database plus the worker's
    index (gw0 keeps the base, gw1 the next, ...); unchanged outside xdist."""
    if not worker:
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    database = base + int(worker.removeprefix("gw"))
    if database > REDIS_MAX_DATABASE:
        raise pytest.UsageError(
            f"pytest-xdist worker {worker} would use Redis database {database} ({url} plus its index): "
            f"Redis has databases 0-{REDIS_MAX_DATABASE}; use a lower base database or fewer workers"
        )
    return urlunsplit(parts._replace(path=f"/{database}"))


def flush_past_append_only_triggers() -> None:
    """A transactional test's flush (TRUNCATE of every table) passes the access log's trigger.

    On PostgreSQL the access log refuses TRUNCATE (casefiles migration 0006), so the flush after every
    transactional test that uses the casefiles store would fail. ``session_replication_role = replica``
    keeps ordinary triggers from firing; only a superuser may set it, as the test role is and the
    application's role must not be. ``SET LOCAL`` ends with the flush's own transaction.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush
    if getattr(original, "past_append_only_triggers", False):
        return

    def execute_sql_flush(self: DatabaseOperations, sql_list: list[str]) -> None:
        original(self, ["SET LOCAL session_replication_role = replica", *sql_list])

    execute_sql_flush.past_append_only_triggers = True  # type: ignore[attr-defined]
    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign,assignment]


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker gets its own Redis database, emptied before its first test.

    The workers of ``pytest -n N`` would otherwise share one database: one worker's ``cache.clear()``
    (FLUSHDB) would wipe the rate-limit counters another worker's test is counting. Subprocesses that a
    test starts (the Celery worker) read REDIS_URL from the environment, so it is set there too.
    """
    import redis
    from django.conf import settings
    from django.core.cache import caches

    flush_past_append_only_triggers()
    if not settings.REDIS_URL:
        return
    url = worker_redis_url(settings.REDIS_URL, os.environ.get("PYTEST_XDIST_WORKER"))
    if url != settings.REDIS_URL:
        os.environ["REDIS_URL"] = url
        settings.REDIS_URL = url
        settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": url}}
        # The cache handler reads CACHES once; nothing has used it yet, but make it read them again.
        caches.__dict__.pop("settings", None)
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Name the database and cache servers this run talks to, so a CI log shows which ones were used."""
    import sqlite3

    import redis
    from django.conf import settings
    from django.db import connections
    from pytest_django.plugin import blocking_manager_key

    lines = []
    for alias in connections:
        connection = connections[alias]
        where = connection.settings_dict["NAME"]
        if connection.vendor == "postgresql":
            # The maintenance database: the test databases do not exist yet when the header is printed.
            with config.stash[blocking_manager_key].unblock(), connection._nodb_cursor() as cursor:
                cursor.execute("SELECT version()")
                version = cursor.fetchone()[0].split(" on ")[0]
            where = f"{where} on {connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}"
        else:
            version = f"SQLite {sqlite3.sqlite_version}"
        lines.append(f"database {alias}: {version} ({where}, tests use test_ databases)")
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            info = client.info("server")
        finally:
            client.close()
        at = client.connection_pool.connection_kwargs
        lines.append(f"cache: Redis {info['redis_version']} ({at['host']}:{at['port']}/{at['db']})")
    else:
        lines.append("cache: local memory (REDIS_URL is not set)")
    return lines


def make_organisation(name: str, sector: str = "zorg", *, signed: bool = True) -> Organisation:
    organisation = Organisation.objects.create(name=name, sector=sector)
    for department in ("Finance", "Care", "IT"):
        Department.objects.create(organisation=organisation, name=department)
    if signed:
        ProcessingAgreement.objects.create(
            party=ProcessingAgreement.Party.ORGANISATION,
            organisation=organisation,
            signed_on=dt.date(2026, 1, 5),
            signer="Director of " + name,
            document_sha256=hashlib.sha256(name.encode()).hexdigest(),
        )
    return organisation


def make_staff(username: str, role: Role, organisation: Organisation | None = None) -> StaffUser:
    user = StaffUser.objects.create_user(
        username=username, password=STAFF_PASSWORD, organisation=organisation
    )
    # get_or_create: a transactional test's flush removes the groups the data migration made.
    user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    return user


def login_verified(client: Client, user: StaffUser) -> Client:
    """Log a staff user in as if they had passed both factors (password and TOTP)."""
    client.force_login(user)
    device = TOTPDevice.objects.get(user=user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def organisation(db: Any) -> Organisation:
    return make_organisation("Zorggroep Noord", "zorg")


@pytest.fixture
def other_organisation(db: Any) -> Organisation:
    return make_organisation("Bouwbedrijf Zuid", "bouw")


@pytest.fixture
def employer(organisation: Organisation) -> StaffUser:
    return make_staff("hr-noord", Role.EMPLOYER, organisation)


@pytest.fixture
def other_employer(other_organisation: Organisation) -> StaffUser:
    return make_staff("hr-zuid", Role.EMPLOYER, other_organisation)


@pytest.fixture
def casemanager(db: Any) -> StaffUser:
    return make_staff("cm-anna", Role.CASEMANAGER)


@pytest.fixture
def auditor(db: Any) -> StaffUser:
    return make_staff("garant", Role.AUDITOR)


@pytest.fixture
def platform_admin(db: Any) -> StaffUser:
    return make_staff("admin", Role.ADMIN)


# --- the embedded default (SQLite files, no servers), in a process of its own -------------------------------

BASE_DIR = Path(__file__).resolve().parent.parent


def embedded_default_environment(var_dir: Path) -> dict[str, str]:
    """This process's environment as `make run` would see it: SQLite files in ``var_dir``, the test keys."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "PREVENTICONS_", "CELERY_")) and not name.endswith("DATABASE_URL")
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="preventicons.settings",
        PREVENTICONS_VAR_DIR=str(var_dir),
        PREVENTICONS_KEYS=os.environ["PREVENTICONS_KEYS"],
        # Set but empty means unset, and keeps a developer's .env out of this run.
        DATABASE_URL="",
        NOTES_DATABASE_URL="",
        CASEFILES_DATABASE_URL="",
        REDIS_URL="",
        PYTHONPATH=str(BASE_DIR),
    )
    return environment


def run_on_embedded_default(*arguments: str, var_dir: Path) -> str:
    """Run ``python <arguments>`` on the embedded default in ``var_dir``; its output, failing on an error."""
    result = subprocess.run(
        [sys.executable, *arguments],
        cwd=BASE_DIR,
        env=embedded_default_environment(var_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def personas(organisation: Organisation) -> dict[str, Participant]:
    """One participant of each named persona (tests.factories.PERSONAS) in the organisation."""
    from tests.factories import PERSONAS, persona

    return {name: persona(name, organisation) for name in PERSONAS}


def at_once(*calls: Callable[[], object]) -> list[BaseException | None]:
    """Run the calls at once, each in its own thread on its own database connections; what each raised
    (None: nothing)."""
    barrier = threading.Barrier(len(calls))
    outcome: list[BaseException | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            call()
        except BaseException as error:  # reported to the test, which asserts on it
            outcome[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcome
