"""Adversary (operator: dumps of the identity database over many weeks, no key file): consent records.

Since participants 0020 a consent record named its participant only by a keyed index and its kind only
sealed. But all of one person's records shared that index, so a dump counted rows per index: one row is
someone who only enrolled, more are someone who also paused, asked for help or stopped, and the days of the
extra rows said when. The text version was in clear too, and the contact consent has a text of its own
("2026-12-contact"), so it named the help requests outright. Closed (participants 0025, 0026): each record
has an index of its own (a keyed hash of the participant id and the record's number among theirs), unique
in the table, and its text version sealed; writing one locks no participant row. What a dump still shows:
how many records the whole table has, and on which days (the enrolments, stops and the help batch's days),
but not whose, nor which of them belong together.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from typing import Any

import pytest
from django.db import close_old_connections, connections, transaction
from django.db.migrations.executor import MigrationExecutor

from casefiles.models import Dossier
from participants import account, enrolment
from participants.models import ConsentRecord, Organisation, Participant
from preventicons import crypto
from scores import wellbeing
from tests.conftest import ALL_DATABASES
from tests.scores.people import make_participant

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES)]


def _dump(table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Every column of every row, as a dump lists them (no key file)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY ctid")  # noqa: S608 (a constant of this module)
        return [column.name for column in cursor.description], cursor.fetchall()


def _enrolled_helped_and_stopped(organisation: Organisation) -> tuple[Participant, Participant]:
    """Anna enrolled, asked for help (taken up by the batch) and stopped; Bram only enrolled."""
    anna, bram = make_participant(organisation), make_participant(organisation)
    for person in (anna, bram):
        enrolment.record_consent(participant=person)
    wellbeing.request_help(
        participant=anna, channel="phone", consent_text_version=wellbeing.CONTACT_CONSENT_VERSION
    )
    wellbeing.take_up_help_requests()
    account.stop_participation(participant=Participant.objects.get(pk=anna.pk))
    return anna, bram


def test_a_dump_of_the_consent_records_cannot_tell_who_did_more_than_enrol(
    organisation: Organisation,
) -> None:
    anna, bram = _enrolled_helped_and_stopped(organisation)

    columns, rows = _dump("participants_consentrecord")
    assert len(rows) == 3 + 1
    # Counting rows per index: every index once, so Anna's three records read like three people's one.
    per_index = Counter(row[columns.index("participant_index")] for row in rows)
    assert set(per_index.values()) == {1}, "an index gathers one person's records"
    # No column but the day repeats a value: nothing else gathers rows (the kind and version ciphertexts
    # are sealed with a fresh nonce each).
    for name in columns:
        if name != "recorded_at":
            assert len({row[columns.index(name)] for row in rows}) == len(rows), name
    # The text version does not tell the help request's record apart: sealed, one length for all.
    day = columns.index("recorded_at")  # "2026-12-03" holds "2026-12" too
    cells = {str(value) for row in rows for at, value in enumerate(row) if at != day}
    for clear in (wellbeing.CONTACT_CONSENT_VERSION, enrolment.CONSENT_TEXT_VERSION):
        assert not any(clear in cell for cell in cells), f"a consent row holds {clear!r} in clear"
    versions = [str(row[columns.index("text_version")]) for row in rows]
    assert len({len(version) for version in versions}) == 1
    # Neither index is computable from what the dump holds about the participants.
    ids = {str(anna.pk), str(bram.pk), anna.pk.hex, bram.pk.hex}
    assert not cells & ids

    # The application still finds each person's records, in order, for their account and export.
    assert [entry["kind"] for entry in account.consent_history(anna)] == ["given", "contact", "withdrawn"]
    assert [entry["kind"] for entry in account.consent_history(bram)] == ["given"]
    assert ConsentRecord.objects.of(anna.pk).count() == 3


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_recording_consent_locks_no_participant_row(organisation: Organisation) -> None:
    """A row lock stamps the locking transaction into the participant row's xmax, beside the consent row's
    xmin: a live database would pair the two, and so name the record's person."""
    person = make_participant(organisation)
    Participant.objects.filter(pk=person.pk).update(is_listed=True)  # a fresh row version, xmax 0

    enrolment.record_consent(participant=person)

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT xmax::text FROM participants_participant WHERE id = %s", [person.pk])
        assert cursor.fetchone() == ("0",)


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_two_writers_for_one_person_at_once_each_get_a_number_of_their_own(
    organisation: Organisation,
) -> None:
    """The second writer waits for the first (an advisory lock), then takes the next number: neither fails on
    the unique index, and neither locks the participant row."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("SQLite serialises writers itself")
    person = make_participant(organisation)
    first_written, second_started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                ConsentRecord.objects.add(
                    person.pk, kind="paused", text_version="v1", recorded_at=dt.date.today()
                )
                first_written.set()
                second_started.wait(5)
                # Long enough for the second writer to reach the lock and wait there.
                threading.Event().wait(0.5)
        except BaseException as error:
            errors.append(error)
        finally:
            close_old_connections()
            connections.close_all()

    def second() -> None:
        try:
            first_written.wait(5)
            second_started.set()
            ConsentRecord.objects.add(
                person.pk, kind="resumed", text_version="v1", recorded_at=dt.date.today()
            )
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors, errors
    assert sorted(ConsentRecord.objects.values_list("participant_index", flat=True)) == sorted(
        ConsentRecord.index_for(person.pk, n) for n in (0, 1)
    )
    assert {r.kind for r in ConsentRecord.objects.of(person.pk)} == {"paused", "resumed"}


# --- participants 0025 and 0026: the old indexes and clear versions leave the table file ------------------


def _migrate(targets: list[tuple[str, str]] | None = None) -> MigrationExecutor:
    executor = MigrationExecutor(connections["default"])
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


def _table_and_index_files(table: str) -> bytes:
    """Every page of the table and of its indexes, live and dead row versions alike, as an operator with the
    data directory (or pageinspect) reads them."""
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass", [table]
        )
        relations = [table, *(row[0] for row in cursor.fetchall())]
        found = b""
        for relation in relations:
            cursor.execute("SELECT pg_relation_size(%s) / current_setting('block_size')::int", [relation])
            for page in range(cursor.fetchone()[0]):
                cursor.execute("SELECT get_raw_page(%s, %s)", [relation, page])
                found += bytes(cursor.fetchone()[0])
    return found


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_after_participants_0026_no_consent_record_keeps_its_shared_index_or_clear_version(
    organisation: Organisation,
) -> None:
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's table files")
    before = [("participants", "0024_vacuum_full_consents_and_participants")]
    executor = _migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        person = old.get_model("participants", "Participant")(organisation_id=organisation.pk)
        person.status, person.messages_paused = "active", False
        person.save(using="default")
        shared = crypto.keyed_hash("blind_index", "consent-participant", str(person.pk))
        record = old.get_model("participants", "ConsentRecord")
        for kind, version, day in (
            ("given", "2026-12", dt.date(2026, 10, 1)),
            ("contact", "2026-12-contact", dt.date(2026, 10, 8)),
            ("withdrawn", "2026-12", dt.date(2026, 10, 15)),
        ):
            record.objects.using("default").create(
                participant_index=shared, kind=kind, text_version=version, recorded_at=day
            )
        # A record whose participant row is gone: nobody can find it, and it no longer gathers with others.
        for _ in range(2):
            record.objects.using("default").create(
                participant_index="f" * 64,
                kind="given",
                text_version="2026-12",
                recorded_at=dt.date(2026, 10, 1),
            )
        # Another session holds a snapshot from before 0025 for a while (an autovacuum ANALYZE does, for a
        # moment): VACUUM FULL would copy the dead versions that snapshot may still see, so 0026 waits.
        other = connections["default"].get_new_connection(connections["default"].get_connection_params())
        other.autocommit = False
        other.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        other.execute("SELECT 1")  # a snapshot, and no lock on the table VACUUM FULL would wait for
        release = threading.Timer(3.0, other.close)
        release.start()
        try:
            _migrate()
        finally:
            release.join()

        files = _table_and_index_files("participants_consentrecord")
        assert shared.encode() not in files, "the shared index is still in the table file"
        assert ("f" * 64).encode() not in files
        assert b"2026-12" not in files, "a clear text version is still in the table file"
        stored = list(ConsentRecord.objects.values_list("participant_index", flat=True))
        assert len(set(stored)) == len(stored) == 5
        history = account.consent_history(Participant.objects.get(pk=person.pk))
        assert [(e["kind"], e["text_version"], e["recorded_at"]) for e in history] == [
            ("given", "2026-12", "2026-10-01"),
            ("contact", "2026-12-contact", "2026-10-08"),
            ("withdrawn", "2026-12", "2026-10-15"),
        ]
    finally:
        _migrate()


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_participants_0025_reverses_to_one_index_per_participant(organisation: Organisation) -> None:
    person = make_participant(organisation)
    for kind in ("given", "paused"):
        ConsentRecord.objects.add(
            person.pk, kind=kind, text_version="2026-12", recorded_at=dt.date(2026, 10, 1)
        )
    before = [("participants", "0024_vacuum_full_consents_and_participants")]
    try:
        executor = _migrate(before)
        old = executor.loader.project_state(before).apps.get_model("participants", "ConsentRecord")
        shared = crypto.keyed_hash("blind_index", "consent-participant", str(person.pk))
        assert sorted(old.objects.values_list("participant_index", "text_version")) == [
            (shared, "2026-12"),
            (shared, "2026-12"),
        ]
    finally:
        _migrate()
    assert {r.kind for r in ConsentRecord.objects.of(person.pk)} == {"given", "paused"}


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_the_request_batch_leaves_no_mark_on_the_participant_rows_it_handled(
    organisation: Organisation,
) -> None:
    """The batch that takes up help requests locked each requester's participant row (``SELECT ... FOR
    UPDATE``, against a stop at the same time), so its ``xmax`` was the batch's transaction, which is also the
    ``xmin`` of the consent records the batch wrote: whoever reads the live database or its files (not a
    pg_dump, which holds no system columns) saw whose help requests it took up. It locks every organisation
    instead (participants.requestqueue.take_up_pending). A pause, correction, rejoin or stop still rewrites
    its own row in the batch (README "Known limits": a batch tells who acted, not what)."""
    anna, bram = make_participant(organisation), make_participant(organisation)
    Participant.objects.filter(pk__in=[anna.pk, bram.pk]).update(is_listed=True)  # fresh versions, xmax 0
    wellbeing.request_help(
        participant=anna, channel="phone", consent_text_version=wellbeing.CONTACT_CONSENT_VERSION
    )
    wellbeing.take_up_help_requests()

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT DISTINCT xmin::text FROM participants_consentrecord")
        batch = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT xmin::text, xmax::text FROM participants_participant WHERE id IN (%s, %s)",
            [anna.pk, bram.pk],
        )
        stamps = {stamp for row in cursor.fetchall() for stamp in row}
    assert len(batch) == 1
    assert not stamps & batch, "a participant row carries the batch's transaction"


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_stop_committing_while_the_batch_runs_opens_no_dossier(organisation: Organisation) -> None:
    """Without the participant row lock, the batch still waits for a stop (or the nightly anonymisation)
    that holds the organisation: it then reads the person stopped and drops their help request, so no
    dossier opens under the P of someone who just left, and no casemanager is mailed about them."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("SQLite serialises writers itself")
    anna = make_participant(organisation)
    wellbeing.request_help(
        participant=anna, channel="phone", consent_text_version=wellbeing.CONTACT_CONSENT_VERSION
    )
    organisation_locked, batch_waits = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    batches: list[wellbeing.HelpBatch] = []

    def stop() -> None:
        try:
            with transaction.atomic():
                # As stop_participation and the anonymisation begin: the organisation first.
                Organisation.objects.select_for_update().get(pk=organisation.pk)
                organisation_locked.set()
                batch_waits.wait(20)
                account.stop_participation(participant=Participant.objects.get(pk=anna.pk))
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    def batch() -> None:
        try:
            organisation_locked.wait(20)
            batches.append(wellbeing.take_up_help_requests())
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=stop), threading.Thread(target=batch)]
    for thread in threads:
        thread.start()
    organisation_locked.wait(20)
    # The batch has reached a lock and waits there (or, without the organisation lock, it is done already).
    with connections["default"].cursor() as cursor:
        for _ in range(200):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] or batches:
                break
            threading.Event().wait(0.05)
    batch_waits.set()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert (batches[0].taken_up, batches[0].dropped) == (0, 1)
    assert not Dossier.objects.exists()
