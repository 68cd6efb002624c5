"""The access log (issue 18, item 7; NEN 7513): chained, append-only on PostgreSQL, one chain under
concurrency, reviewed read-only in the admin."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.test import Client, RequestFactory
from django.urls import reverse

from casefiles import accesslog
from casefiles.models import AccessLogEntry
from participants.models import StaffUser
from preventicons import crypto
from preventicons.dbrouter import CASEFILES
from preventicons.roles import Role
from tests.conftest import ALL_DATABASES, login_verified, make_staff, run_on_embedded_default

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

DOSSIER = "D-ABCDEFGH"


def on_postgresql() -> bool:
    return connections[CASEFILES].vendor == "postgresql"


def three_entries(user: StaffUser) -> list[AccessLogEntry]:
    return [
        accesslog.record(action, user=user, dossier_number=DOSSIER)
        for action in ("view_dossier", "reveal_contact", "add_note")
    ]


def raw(sql: str, params: list[Any] | None = None, *, without_trigger: bool = False) -> None:
    """A statement as someone with database access would run it, around the application."""
    with connections[CASEFILES].cursor() as cursor:
        if without_trigger and on_postgresql():
            # Rolled back with the test's transaction, like everything else here.
            cursor.execute("ALTER TABLE casefiles_accesslogentry DISABLE TRIGGER USER")
        cursor.execute(sql, params or [])


# --- appending and verifying ------------------------------------------------------------------------------


def test_entries_link_into_one_chain_that_verifies(casemanager: StaffUser) -> None:
    first, second, third = three_entries(casemanager)

    assert [e.sequence for e in (first, second, third)] == [1, 2, 3]
    assert first.chain == crypto.access_log_link(accesslog.GENESIS, accesslog.canonical(first))
    assert third.chain == crypto.access_log_link(second.chain, accesslog.canonical(third))
    assert accesslog.verify_chain() is None
    assert accesslog.head() == third.chain


def test_an_entry_says_who_which_dossier_what_when_and_nothing_else(casemanager: StaffUser) -> None:
    entry = accesslog.record("reveal_contact", user=casemanager, dossier_number=DOSSIER)
    stored = AccessLogEntry.objects.get(pk=entry.pk)

    assert (stored.staff_user_id, stored.staff_username) == (casemanager.pk, "cm-anna")
    assert (stored.dossier_number, stored.action) == (DOSSIER, "reveal_contact")
    assert stored.at == entry.at and stored.client_address is None
    assert accesslog.canonical(stored) == accesslog.canonical(entry)  # what was signed reads back alike


def test_an_empty_log_has_an_empty_head_and_verifies() -> None:
    assert accesslog.head() == "" and accesslog.verify_chain() is None


@pytest.mark.parametrize(
    ("proxies", "expected"), [(0, "10.0.0.5"), (1, "203.0.113.7")], ids=["no proxy", "one proxy"]
)
def test_the_address_is_the_client_by_the_proxy_rules(
    casemanager: StaffUser, settings: Any, proxies: int, expected: str
) -> None:
    settings.PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7")

    entry = accesslog.record("view_scores", user=casemanager, dossier_number=DOSSIER, request=request)

    assert AccessLogEntry.objects.get(pk=entry.pk).client_address == expected
    assert accesslog.verify_chain() is None


@pytest.mark.parametrize(
    ("action", "number", "detail"),
    [("peek", DOSSIER, ""), ("view_dossier", "D-" + "X" * 30, ""), ("view_dossier", DOSSIER, "x" * 201)],
    ids=["unknown action", "overlong number", "overlong detail"],
)
def test_bad_input_writes_nothing(casemanager: StaffUser, action: str, number: str, detail: str) -> None:
    with pytest.raises((ValueError, ValidationError)):
        accesslog.record(action, user=casemanager, dossier_number=number, detail=detail)
    assert not AccessLogEntry.objects.exists()


def test_a_rolled_back_act_leaves_no_entry(casemanager: StaffUser) -> None:
    with pytest.raises(RuntimeError), transaction.atomic(using=CASEFILES):
        accesslog.record("close", user=casemanager, dossier_number=DOSSIER)
        raise RuntimeError("the act failed")
    assert not AccessLogEntry.objects.exists()


# --- tampering ------------------------------------------------------------------------------------------


def test_an_altered_row_breaks_the_chain_at_that_row(casemanager: StaffUser) -> None:
    three_entries(casemanager)
    raw("UPDATE casefiles_accesslogentry SET action = 'search' WHERE sequence = 2", without_trigger=True)

    broken = accesslog.verify_chain()

    assert broken is not None and broken.sequence == 2


def test_a_removed_row_breaks_the_chain_at_its_successor(casemanager: StaffUser) -> None:
    three_entries(casemanager)
    raw("DELETE FROM casefiles_accesslogentry WHERE sequence = 2", without_trigger=True)

    broken = accesslog.verify_chain()

    assert broken is not None and broken.sequence == 3


def test_a_row_relinked_without_the_key_breaks_the_chain(casemanager: StaffUser) -> None:
    first, second, _third = three_entries(casemanager)
    # Someone with the database but not the key changes a row and recomputes its link as best they can.
    second.detail = "nothing to see"
    import hashlib

    forged = hashlib.sha256(f"{first.chain}\x00{accesslog.canonical(second)}".encode()).hexdigest()
    raw(
        "UPDATE casefiles_accesslogentry SET detail = %s, chain = %s WHERE sequence = 2",
        ["nothing to see", forged],
        without_trigger=True,
    )

    broken = accesslog.verify_chain()

    assert broken is not None and broken.sequence == 2


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE casefiles_accesslogentry SET action = 'search'",
        "UPDATE casefiles_accesslogentry SET chain = chain",
        "DELETE FROM casefiles_accesslogentry",
        "DELETE FROM casefiles_accesslogentry WHERE sequence = 1",
        "TRUNCATE casefiles_accesslogentry",
    ],
)
def test_on_postgresql_the_database_refuses_to_change_or_remove_entries(
    casemanager: StaffUser, statement: str
) -> None:
    if not on_postgresql():
        pytest.skip("the trigger is PostgreSQL's; SQLite relies on the chain (test_access_log_on_sqlite)")
    entries = three_entries(casemanager)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using=CASEFILES):
        raw(statement)

    assert list(AccessLogEntry.objects.order_by("sequence")) == entries
    assert [e.action for e in AccessLogEntry.objects.order_by("sequence")] == [e.action for e in entries]
    assert accesslog.verify_chain() is None


def test_the_orm_cannot_delete_entries_either(casemanager: StaffUser) -> None:
    if not on_postgresql():
        pytest.skip("the trigger is PostgreSQL's")
    three_entries(casemanager)
    with pytest.raises(DatabaseError), transaction.atomic(using=CASEFILES):
        AccessLogEntry.objects.all().delete()
    assert AccessLogEntry.objects.count() == 3


def test_on_the_embedded_sqlite_default_record_and_verify_work_and_tampering_shows(tmp_path: Path) -> None:
    printed = run_on_embedded_default(str(Path(__file__).with_name("sqlite_access_log.py")), var_dir=tmp_path)
    seen = json.loads(printed.strip().splitlines()[-1])

    assert seen == {"vendor": "sqlite", "intact": True, "head_is_last": True, "broken_at": 2}


# --- concurrency ----------------------------------------------------------------------------------------


def waiting_lock_requests() -> int:
    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_an_append_waits_for_one_in_progress_instead_of_forking_the_chain() -> None:
    if not on_postgresql():
        pytest.skip("two connections appending side by side: PostgreSQL")
    user = make_staff("cm-parallel", Role.CASEMANAGER)
    first_recorded, errors = threading.Event(), []
    results: dict[str, AccessLogEntry] = {}

    def first() -> None:
        try:
            with transaction.atomic(using=CASEFILES):
                results["first"] = accesslog.record("view_dossier", user=user, dossier_number=DOSSIER)
                first_recorded.set()
                # Commit only once the second append is blocked behind this one (bounded: about 10 s).
                for _ in range(1000):
                    if waiting_lock_requests():
                        break
                    threading.Event().wait(0.01)
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_recorded.wait(10)
            results["second"] = accesslog.record("view_scores", user=user, dossier_number=DOSSIER)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not errors, errors
    assert (results["first"].sequence, results["second"].sequence) == (1, 2)
    assert accesslog.verify_chain() is None and accesslog.head() == results["second"].chain


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_two_threads_appending_in_bursts_keep_one_chain() -> None:
    user = make_staff("cm-burst", Role.CASEMANAGER)
    start, errors = threading.Barrier(2), []

    def append(action: str) -> None:
        try:
            start.wait(10)
            for _ in range(25):
                accesslog.record(action, user=user, dossier_number=DOSSIER)
        except (DatabaseError, IntegrityError, threading.BrokenBarrierError) as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(a,)) for a in ("view_dossier", "add_note")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors, errors
    assert list(AccessLogEntry.objects.order_by("sequence").values_list("sequence", flat=True)) == list(
        range(1, 51)
    )
    assert accesslog.verify_chain() is None


# --- the admin ------------------------------------------------------------------------------------------

LIST = "admin:casefiles_accesslogentry_changelist"


@pytest.fixture
def admin_client(platform_admin: StaffUser) -> Client:
    return login_verified(Client(), platform_admin)


def test_the_platform_admin_reviews_the_log_filtered_by_action_and_date(
    admin_client: Client, casemanager: StaffUser
) -> None:
    three_entries(casemanager)
    url = reverse(LIST)

    assert admin_client.get(url).status_code == 200
    filtered = admin_client.get(url, {"action__exact": "reveal_contact"})
    assert filtered.status_code == 200 and filtered.context["cl"].result_count == 1
    assert admin_client.get(url, {"at__gte": "2000-01-01", "at__lt": "2999-01-01"}).status_code == 200


@pytest.mark.parametrize(
    "lookup",
    [
        {"staff_username": "cm-anna"},
        {"dossier_number__startswith": "D-A"},
        {"chain__startswith": "0"},
        {"client_address": "10.0.0.5"},
        {"at__year": "2026"},
        {"action__startswith": "rev"},
    ],
)
def test_the_admin_refuses_any_lookup_it_does_not_declare(
    admin_client: Client, casemanager: StaffUser, lookup: dict[str, str]
) -> None:
    three_entries(casemanager)
    assert admin_client.get(reverse(LIST), lookup).status_code == 400


def test_the_admin_refuses_to_add_change_or_delete(admin_client: Client, casemanager: StaffUser) -> None:
    entry = accesslog.record("view_dossier", user=casemanager, dossier_number=DOSSIER)
    change = reverse("admin:casefiles_accesslogentry_change", args=[entry.pk])

    assert admin_client.get(reverse("admin:casefiles_accesslogentry_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:casefiles_accesslogentry_add"), {"action": "close"}).status_code
        == 403
    )
    assert admin_client.get(change).status_code == 200  # shown read only
    assert admin_client.post(change, {"action": "close"}).status_code == 403
    delete = reverse("admin:casefiles_accesslogentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = admin_client.post(reverse(LIST), {"action": "delete_selected", "_selected_action": [entry.pk]})
    assert bulk.status_code in (200, 302, 400)
    assert AccessLogEntry.objects.get(pk=entry.pk).action == "view_dossier"
    assert accesslog.verify_chain() is None


def test_other_staff_cannot_open_the_log(casemanager: StaffUser) -> None:
    client = login_verified(Client(), casemanager)
    assert client.get(reverse(LIST)).status_code == 403
