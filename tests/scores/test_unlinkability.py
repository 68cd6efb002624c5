"""DESIGN.md's unlinkability rules, checked in the database: a submission touches only its score row."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client

from participants.models import Invitation, Organisation, Participant
from preventicons.crypto import hash_token, new_token
from scores.models import Score, WeeklyLink
from tests.scores.people import make_link, make_participant

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WEEK = dt.date(2026, 11, 16)
TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=AMSTERDAM)


def snapshot() -> dict[str, tuple[int, str]]:
    """Every table of the identity database: its row count and a digest of its whole content."""
    tables = connection.introspection.table_names()
    state = {}
    with connection.cursor() as cursor:
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cursor.execute(
                # Table names come from introspection, not from input.
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "  # noqa: S608
                f"FROM {quoted} t"
            )
            count, digest = cursor.fetchone()
            state[table] = (count, digest)
    return state


def dump_without(table_to_skip: str) -> str:
    """All text of every other table, to search for a value that must appear nowhere else."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table == table_to_skip:
                continue
            cursor.execute(
                f"SELECT coalesce(string_agg(t::text, '|'), '') FROM {connection.ops.quote_name(table)} t"  # noqa: S608
            )
            parts.append(cursor.fetchone()[0])
    return "\n".join(parts)


@pytest.fixture
def submitted(
    organisation: Organisation,
) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]], Score]:
    participant = make_participant(organisation)
    Invitation.objects.create(
        participant=participant,
        token_hash=hash_token(new_token()),
        expires_at=TUESDAY,
        used_at=TUESDAY - dt.timedelta(days=30),
    )
    _link, token = make_link(participant, week=WEEK)
    client = Client(enforce_csrf_checks=True)
    with time_machine.travel(TUESDAY, tick=False):
        assert client.get(f"/w/{token}/").status_code == 200
        before = snapshot()
        # The tap and the thanks page it leads to, as a browser makes them.
        response = client.post(f"/w/{token}/", {"value": "3"})
        assert response.status_code == 303
        assert client.get(response["Location"]).status_code == 200
        after = snapshot()
    return before, after, Score.objects.get()


@pytest.mark.django_db
def test_a_submission_changes_only_the_score_table(
    submitted: tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]], Score],
) -> None:
    before, after, _score = submitted

    changed = {table for table in before if before[table] != after[table]}

    assert set(before) == set(after)
    assert changed == {Score._meta.db_table}
    assert after[Score._meta.db_table][0] == before[Score._meta.db_table][0] + 1
    # In particular: no session row, no outbox row, no mark on the link or the participant.
    for table in (
        "django_session",
        "preventicons_outboundmessage",
        "scores_weeklylink",
        "participants_participant",
    ):
        assert before[table] == after[table], table


@pytest.mark.django_db
def test_the_score_row_shares_no_key_with_the_participant_invitation_or_link(
    submitted: tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]], Score],
) -> None:
    _before, _after, score = submitted
    participant_side = set()
    for link in WeeklyLink.objects.all():
        participant_side |= {str(link.pk), str(link.participant_id), link.token_hash}
    for invitation in Invitation.objects.all():
        participant_side |= {str(invitation.pk), invitation.token_hash}

    assert str(score.pk) not in participant_side
    assert str(score.pk) not in dump_without(Score._meta.db_table)
    # The score carries a per-week pseudonym, found nowhere else; P itself is in clear nowhere at all.
    assert score.pseudonym
    assert score.pseudonym not in dump_without(Score._meta.db_table)
    participant = Participant.objects.get()
    assert participant.pseudonym and participant.pseudonym not in dump_without("")
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Score._meta.db_table)
    referenced = {c["foreign_key"][0] for c in constraints.values() if c["foreign_key"]}
    assert referenced <= {"participants_organisation", "participants_department"}


@pytest.mark.django_db
def test_the_score_table_has_no_time_finer_than_the_week_and_a_random_key(
    submitted: tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]], Score],
) -> None:
    _before, _after, score = submitted
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
            [Score._meta.db_table],
        )
        columns = dict(cursor.fetchall())

    assert columns == {
        "id": "uuid",
        "week": "date",
        "value": "text",
        "organisation_id": "bigint",
        "department_id": "bigint",
        "pseudonym": "character varying",
    }
    assert not any("time" in data_type or "interval" in data_type for data_type in columns.values())
    assert uuid.UUID(str(score.pk)).version == 4
    assert score.week.weekday() == 0
