"""preventicons.vacuum: VACUUM FULL written again until it keeps no dead row version, as the sealing
migrations need (a clear value a sealing UPDATE replaced must not be copied into the new file)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from preventicons.vacuum import vacuum_full

TABLE = "preventicons_test_vacuum"
CLEAR = "clear-value-0123456789"


def _file_holds(value: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        cursor.execute("SELECT pg_relation_size(%s) / current_setting('block_size')::int", [TABLE])
        pages = cursor.fetchone()[0]
        found = b""
        for page in range(pages):
            cursor.execute("SELECT get_raw_page(%s, %s)", [TABLE, page])
            found += bytes(cursor.fetchone()[0])
    return value.encode() in found


@pytest.fixture
def replaced() -> Iterator[Any]:
    """A table whose one row's clear value an UPDATE replaced, while another session holds a snapshot taken
    before it: yields that session (close it to let its snapshot go)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's VACUUM FULL")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, value text)")  # nosec B608
        cursor.execute(f"INSERT INTO {TABLE} VALUES (1, %s)", [CLEAR])  # noqa: S608  # nosec B608
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = False
    other.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    other.execute("SELECT 1")  # a snapshot from before the UPDATE, and no lock on the table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET value = 'v1.sealed' WHERE id = 1")  # noqa: S608  # nosec B608
    try:
        yield other
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


@pytest.mark.django_db(transaction=True)
def test_the_table_is_written_again_once_the_snapshot_that_saw_the_clear_value_has_gone(
    replaced: Any,
) -> None:
    release = threading.Timer(1.0, replaced.close)
    release.start()
    try:
        assert vacuum_full(connection, TABLE) == 0
    finally:
        release.join()
    assert not _file_holds(CLEAR)


@pytest.mark.django_db(transaction=True)
def test_a_snapshot_held_past_the_wait_is_reported_and_the_clear_value_named_as_kept(
    replaced: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """What one plain VACUUM FULL did while a snapshot from before the UPDATE was held: it copied the old
    version. The helper sees it (VERBOSE), waits, and says so when the wait runs out."""
    with caplog.at_level(logging.WARNING, logger="preventicons.vacuum"):
        assert vacuum_full(connection, TABLE, wait_seconds=0.5) == 1
    assert _file_holds(CLEAR)
    assert f"VACUUM FULL {TABLE} kept 1 dead row versions" in caplog.text
    replaced.close()
    assert vacuum_full(connection, TABLE, wait_seconds=0) == 0
    assert not _file_holds(CLEAR)
