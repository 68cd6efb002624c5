"""What an operator sees of our queries in PostgreSQL's statistics views: placeholders, never the values.

The operator reads pg_stat_activity (and pg_stat_statements, statement logs) on the live server. With
psycopg's default client-side binding every statement arrives with its values inlined; the product binds on
the server (DATABASES OPTIONS server_side_binding), so the query text holds $1, $2 and the values travel
apart. The second test shows the first one can fail: with client-side binding the literal is there.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper

from preventicons.models import OutboundMessage

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statistics views")


def _activity_of(pid: int) -> str:
    """The query text pg_stat_activity shows for backend ``pid``, read from a connection of its own."""
    params = connection.get_connection_params()
    conninfo = {
        key: params[key]
        for key in ("dbname", "user", "password", "host", "port")
        if params.get(key) is not None
    }
    with psycopg.connect(**conninfo, autocommit=True) as observer:
        row = observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None, "the first connection's backend is not in pg_stat_activity"
    return str(row[0])


def _distinctive() -> str:
    return "needle" + secrets.token_hex(12)


@pytest.fixture
def client_side_connection() -> Iterator[DatabaseWrapper]:
    """A second Django connection to the same database, binding on the client as psycopg does by default."""
    settings_dict: dict[str, Any] = {**connection.settings_dict}
    options = {**settings_dict["OPTIONS"], "server_side_binding": False}
    options.pop("pool", None)
    options.pop("prepare_threshold", None)
    settings_dict["OPTIONS"] = options
    wrapper = DatabaseWrapper(settings_dict, alias="client_side_binding")
    yield wrapper
    wrapper.close()


@pytest.mark.django_db
def test_pg_stat_activity_shows_placeholders_not_the_values_of_an_orm_query() -> None:
    literal = _distinctive()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()

    assert not OutboundMessage.objects.filter(key_hash=literal).exists()

    shown = _activity_of(pid)
    assert "preventicons_outboundmessage" in shown  # it is the ORM's query we are looking at
    assert literal not in shown
    assert "$1" in shown


@pytest.mark.django_db
def test_with_client_side_binding_the_value_is_in_pg_stat_activity(
    client_side_connection: DatabaseWrapper,
) -> None:
    literal = _distinctive()
    sql, params = OutboundMessage.objects.filter(key_hash=literal).values("id").query.sql_with_params()
    with client_side_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
        cursor.execute(sql, params)

    assert literal in _activity_of(pid)


@pytest.mark.django_db
def test_the_tap_lookup_written_by_hand_shows_a_placeholder_not_the_token_hash() -> None:
    # scores.submission.find_tap_link is one statement written out (issue #17), run three times per tap:
    # it must bind on the server like the ORM's queries, or pg_stat_activity shows the token's hash.
    from preventicons.crypto import hash_token, new_token
    from scores.submission import find_tap_link

    token = new_token()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()

    for _ in range(8):  # past DB_PREPARE_THRESHOLD as well: the prepared statement shows the same text
        assert find_tap_link(token=token) is None
        shown = _activity_of(pid)
        assert "scores_weeklylink" in shown
        assert hash_token(token) not in shown and token not in shown
        assert "$1" in shown
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%scores_weeklylink%%'"
        )
        (prepared,) = cursor.fetchone()
    assert prepared == 1  # the loop did reach the prepared statement


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return int(pid)


@pytest.mark.django_db
def test_the_week_closes_writes_written_by_hand_show_placeholders_not_their_values() -> None:
    # The close's two statements written out (issue #17): the states' UPDATE carries every participant's id
    # and sealed participation, joined by commas, and the rewrite names the organisation and week. Both must
    # bind on the server, or pg_stat_activity (and pg_stat_statements) show them.
    from participants.participation import _write_states
    from scores.weekclose import _rewrite

    pid = _backend_pid()
    sealed, status = _distinctive(), _distinctive()
    _write_states([(str(uuid.uuid4()), sealed, status)])  # matches no row: only the statement is looked at
    shown = _activity_of(pid)
    assert "participants_participant" in shown and "string_to_array" in shown
    assert sealed not in shown and status not in shown and "$1" in shown

    _rewrite(987_654_321, dt.date(2031, 7, 14))
    shown = _activity_of(pid)
    assert "scores_score" in shown and "gen_random_uuid" in shown
    assert "987654321" not in shown and "2031-07-14" not in shown and "$1" in shown


@pytest.mark.django_db
def test_the_rounds_insert_written_by_hand_shows_placeholders_not_the_token_hashes() -> None:
    from scores import rounds
    from tests.conftest import make_organisation
    from tests.scores.people import make_participant

    participant = make_participant(make_organisation("Binding"))
    pid = _backend_pid()
    token_hash = _distinctive()
    batch = rounds._Batch(
        last=None,
        fresh=True,
        link_ids=[str(uuid.uuid4())],
        participant_ids=[str(participant.pk)],
        token_hashes=[token_hash],
        messages=[],
        emails=0,
        sms=0,
    )
    rounds._write(batch, week=dt.date(2031, 7, 14), expires_at=rounds.week_closes_at(dt.date(2031, 7, 14)))
    shown = _activity_of(pid)
    assert "scores_weeklylink" in shown and "string_to_array" in shown
    assert token_hash not in shown and "2031-07-14" not in shown and "$1" in shown


@pytest.mark.django_db
@pytest.mark.parametrize("write", [True, False], ids=["recorded", "refused"])
def test_the_taps_insert_written_by_hand_shows_placeholders_not_its_values(write: bool) -> None:
    # scores.submission.record_score: one statement written out for a recorded tap and a refused one (which
    # sends it to insert nothing); neither may show the per-week pseudonym or the organisation in
    # pg_stat_activity, and the flush setting it carries is part of the text, not a value.
    from scores.sealing import week_pseudonym
    from scores.submission import record_score
    from tests.conftest import make_organisation

    organisation = make_organisation("Binding tap")
    pseudonym = _distinctive()
    week = dt.date(2031, 7, 14)
    pid = _backend_pid()
    for _ in range(8):  # past DB_PREPARE_THRESHOLD as well
        record_score(
            pseudonym=pseudonym,
            week=week,
            value=3,
            organisation_id=organisation.pk,
            department_id=None,
            write=write,
        )
        shown = _activity_of(pid)
        assert "scores_score" in shown and "synchronous_commit" in shown and "$1" in shown
        assert week_pseudonym(pseudonym, week) not in shown and "2031-07-14" not in shown
