"""DESIGN.md's unlinkability rules, checked in the database as an operator reads it: a submission touches
only its score row, and weekly dumps over four closed weeks tell nobody who answered when, or what."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client

from participants.models import Department, Invitation, Organisation, Participant
from preventicons import crypto
from preventicons.crypto import DecryptionError, hash_token, new_token
from scores import queries, submission, weekclose
from scores.models import Figures, Score, WeeklyAggregate, WeeklyLink
from scores.sealing import week_pseudonym
from tests.conftest import ALL_DATABASES
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
        "department": "text",
        "pseudonym": "character varying",
    }
    assert not any("time" in data_type or "interval" in data_type for data_type in columns.values())
    assert uuid.UUID(str(score.pk)).version == 4
    assert score.week.weekday() == 0


# --- four closed weeks, dumped as an operator would -------------------------------------------------------

FOUR_WEEKS = [dt.date(2026, 10, 26), dt.date(2026, 11, 2), dt.date(2026, 11, 9), dt.date(2026, 11, 16)]
# Who answers which week (indexes into the eligible participants), mixed across departments, and never
# everyone or no one: the dump must not tell these sets apart from any other.
ANSWERS = [{0, 1, 4, 6, 8}, {1, 2, 3, 7}, {0, 3, 5, 6, 8}, {2, 4, 7}]


def raw_dump(table: str, order: str) -> list[dict[str, Any]]:
    """A table as a dump reads it: every column (and the row's place and writing transaction), as text."""
    with connection.cursor() as cursor:
        cursor.execute(
            # Table names come from introspection or this file, never from input.
            f"SELECT ctid::text AS ctid, xmin::text AS xmin, t.* FROM {connection.ops.quote_name(table)} t "  # noqa: S608
            f"ORDER BY {order}"
        )
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def dump_identity_store() -> dict[str, list[dict[str, Any]]]:
    """Every table of the identity store, by physical order and by id (where there is one)."""
    dumped = {}
    for table in connection.introspection.table_names():
        dumped[table] = raw_dump(table, "ctid")
        with connection.cursor() as cursor:
            columns = {c.name for c in connection.introspection.get_table_description(cursor, table)}
        if "id" in columns:
            dumped[f"{table} by id"] = raw_dump(table, "id")
    return dumped


def _key(value: Any) -> Any:
    # Two ciphertexts are always different; what a dump can compare between them is their length.
    if isinstance(value, str) and value.startswith("v1."):
        return ("sealed", len(value))
    return value


def columns_telling_apart(rows: list[dict[str, Any]], group: set[str]) -> list[str]:
    """The columns whose values separate the rows of ``group`` (by id) from the other rows exactly."""
    telling = []
    for column in rows[0]:
        if column in ("ctid", "xmin", "id"):
            continue
        keys = [_key(row[column]) for row in rows]
        if len(set(map(repr, keys))) == len(rows):
            continue  # an identifier: every row differs, it groups nothing
        inside = {repr(_key(row[column])) for row in rows if str(row["id"]) in group}
        outside = {repr(_key(row[column])) for row in rows if str(row["id"]) not in group}
        if not inside & outside:
            telling.append(column)
    return telling


@pytest.fixture
def four_closed_weeks(organisation: Organisation) -> dict[str, Any]:
    """Nine participants over three departments (and a paused and an unlisted one) answer through their
    weekly links for four weeks, each closed after it ends; the identity store is dumped before and after
    every close."""
    departments = list(Department.objects.filter(organisation=organisation).order_by("name"))
    eligible = []
    for n in range(9):
        participant = make_participant(organisation)
        participant.department = departments[n % 3]
        participant.save(update_fields=["department"])
        eligible.append(participant)
    others = [
        make_participant(organisation, messages_paused=True),
        make_participant(organisation, is_listed=False),
    ]
    expected: dict[str, list[dict[str, Any]]] = {str(p.pk): [] for p in eligible}
    dumps: list[tuple[str, dict[str, list[dict[str, Any]]]]] = []
    for week, answering in zip(FOUR_WEEKS, ANSWERS, strict=True):
        links = {index: make_link(participant, week=week)[1] for index, participant in enumerate(eligible)}
        with time_machine.travel(dt.datetime.combine(week, dt.time(12), AMSTERDAM) + dt.timedelta(days=2)):
            for index in sorted(answering):
                value = 1 + (index + week.toordinal()) % 5
                assert submission.submit_score(token=links[index], value=value).recorded
                expected[str(eligible[index].pk)].append({"week": week.isoformat(), "value": value})
        dumps.append((f"open {week}", dump_identity_store()))
        result = weekclose.close_week(
            organisation_id=organisation.pk, week=week, today=week + dt.timedelta(days=7)
        )
        assert result.closed and result.participation.responded == len(answering)
        dumps.append((f"closed {week}", dump_identity_store()))
    return {"eligible": eligible, "others": others, "expected": expected, "dumps": dumps}


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_four_weekly_dumps_hold_no_pseudonym_that_repeats_across_weeks(
    four_closed_weeks: dict[str, Any],
) -> None:
    for _label, dump in four_closed_weeks["dumps"]:
        weeks_of: dict[str, set[Any]] = {}
        for row in dump["scores_score"]:
            weeks_of.setdefault(row["pseudonym"], set()).add(row["week"])
        assert all(len(weeks) == 1 for weeks in weeks_of.values())
    # Nor across dumps: a per-week pseudonym seen in one week's dump never shows up under another week.
    seen: dict[str, set[Any]] = {}
    for _label, dump in four_closed_weeks["dumps"]:
        for row in dump["scores_score"]:
            seen.setdefault(row["pseudonym"], set()).add(row["week"])
    assert all(len(weeks) == 1 for weeks in seen.values())
    participants = {str(p.pk) for p in four_closed_weeks["eligible"]}
    final = four_closed_weeks["dumps"][-1][1]
    assert not {row["pseudonym"] for row in final["scores_score"]} & participants


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_no_id_or_department_of_an_open_week_survives_its_close(four_closed_weeks: dict[str, Any]) -> None:
    dumps = four_closed_weeks["dumps"]
    for position in range(0, len(dumps), 2):
        _open_label, open_dump = dumps[position]
        open_ids = {
            row["id"] for row in open_dump["scores_score"] if row["week"] == FOUR_WEEKS[position // 2]
        }
        assert open_ids
        # While the week is open every row has its department, sealed: ciphertext of one length for all.
        open_departments = [
            row["department"] for row in open_dump["scores_score"] if row["week"] == FOUR_WEEKS[position // 2]
        ]
        assert all(str(value).startswith("v1.") for value in open_departments)
        assert len({len(str(value)) for value in open_departments}) == 1
        for _label, later in dumps[position + 1 :]:
            assert not open_ids & {row["id"] for row in later["scores_score"]}
    final = dumps[-1][1]
    assert [row["department"] for row in final["scores_score"]] == [None] * len(final["scores_score"])


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_score_values_and_frozen_figures_are_ciphertext_of_one_length(
    four_closed_weeks: dict[str, Any],
) -> None:
    final = four_closed_weeks["dumps"][-1][1]
    # A closed week's score has no department at all (test_no_id_or_department_of_an_open_week_survives...).
    grouping = {"ctid", "xmin", "id", "week", "organisation_id", "department_id", "department", "pseudonym"}
    for table in ("scores_score", "scores_weeklyaggregate"):
        rows = final[table]
        assert rows
        for column in set(rows[0]) - grouping:
            values = [row[column] for row in rows]
            # No plain number anywhere: not a digit 1-5, not a count.
            assert all(isinstance(v, str) and v.startswith("v1.") for v in values), (table, column)
            assert len({len(v) for v in values}) == 1, (table, column)  # a length says nothing either
    sealed_participation = [
        row["participation"] for row in final["participants_participant"] if row["participation"]
    ]
    assert len(sealed_participation) == 11 and len({len(v) for v in sealed_participation}) == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_no_participant_column_or_rewrite_tells_who_answered_a_week(
    four_closed_weeks: dict[str, Any],
) -> None:
    eligible = four_closed_weeks["eligible"]
    ids = {str(participant.pk) for participant in eligible}
    dumps = four_closed_weeks["dumps"]
    for week_index, answering in enumerate(ANSWERS):
        answered = {str(eligible[index].pk) for index in answering}
        before, after = dumps[2 * week_index][1], dumps[2 * week_index + 1][1]
        # The operator knows who got a link (status, list and pause are in clear); among them, no column
        # (not even a ciphertext's length) separates those who answered from those who did not ...
        rows = [row for row in after["participants_participant"] if str(row["id"]) in ids]
        assert columns_telling_apart(rows, answered) == [], FOUR_WEEKS[week_index]
        # ... nor does which rows the close rewrote: every active participant's row, in one transaction.
        old = {str(row["id"]): row for row in before["participants_participant"]}
        changed = {str(row["id"]) for row in after["participants_participant"] if row != old[str(row["id"])]}
        assert changed == ids | {str(p.pk) for p in four_closed_weeks["others"]}
        assert (
            len({row["xmin"] for row in after["participants_participant"] if str(row["id"]) in changed}) == 1
        )
    # Nothing that reads as participation is left in clear.
    columns = set(dumps[-1][1]["participants_participant"][0])
    assert not {"last_response_week", "weeks_without_response"} & columns


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_weekly_values_for_gathers_a_participants_weeks_and_nothing_of_anyone_else(
    four_closed_weeks: dict[str, Any],
) -> None:
    for participant in four_closed_weeks["eligible"]:
        assert (
            queries.weekly_values_for(participant.pseudonym)
            == four_closed_weeks["expected"][str(participant.pk)]
        )
    for participant in four_closed_weeks["others"]:
        assert queries.weekly_values_for(participant.pseudonym) == []
    assert queries.weekly_values_for(crypto.new_pseudonym()) == []
    # A caller that needs only some weeks derives only theirs.
    first = four_closed_weeks["eligible"][0]
    assert queries.weekly_values_for(first.pseudonym, weeks=FOUR_WEEKS[2:]) == [
        row
        for row in four_closed_weeks["expected"][str(first.pk)]
        if row["week"] >= FOUR_WEEKS[2].isoformat()
    ]


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_sealed_value_or_figure_copied_to_another_row_does_not_open(
    four_closed_weeks: dict[str, Any],
) -> None:
    first, second = four_closed_weeks["eligible"][1:3]  # both answered the second week (ANSWERS[1])
    week = FOUR_WEEKS[1]
    own = {p: week_pseudonym(p.pseudonym, week) for p in (first, second)}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE scores_score SET value = (SELECT value FROM scores_score WHERE pseudonym = %s) "
            "WHERE pseudonym = %s",
            [own[second], own[first]],
        )
        assert cursor.rowcount == 1
    with pytest.raises(DecryptionError):
        queries.weekly_values_for(first.pseudonym)
    organisation_id = first.organisation_id
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE scores_weeklyaggregate SET figures = (SELECT figures FROM scores_weeklyaggregate "
            "WHERE organisation_id = %s AND week = %s AND department_id IS NULL) "
            "WHERE organisation_id = %s AND week = %s AND department_id IS NULL",
            [organisation_id, FOUR_WEEKS[0], organisation_id, FOUR_WEEKS[1]],
        )
        assert cursor.rowcount == 1
    with pytest.raises(DecryptionError):
        queries.frozen_figures(organisation_id=organisation_id, weeks=[FOUR_WEEKS[1]])


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_frozen_figures_add_up_and_a_second_close_changes_nothing(
    four_closed_weeks: dict[str, Any],
) -> None:
    organisation_id = four_closed_weeks["eligible"][0].organisation_id
    figures = queries.frozen_figures(organisation_id=organisation_id)
    for week, answering in zip(FOUR_WEEKS, ANSWERS, strict=True):
        of_week = [f for f in figures if f.week == week]
        whole = next(f for f in of_week if f.department_id is None)
        assert whole.count == len(answering) == sum(whole.distribution.values())
        assert whole.total == sum(value * n for value, n in whole.distribution.items())
        departments = [f for f in of_week if f.department_id is not None]
        assert sum(f.count for f in departments) == whole.count
        assert all(f.count == sum(f.distribution.values()) for f in departments)
    # Which frozen rows exist tells nothing either: every department has one every week, answered or not.
    grouping = {(f.week, f.department_id) for f in figures}
    every = {None, *(p.department_id for p in four_closed_weeks["eligible"])}
    assert grouping == {(week, department) for week in FOUR_WEEKS for department in every}
    before = {table: raw_dump(table, "ctid") for table in ("scores_score", "scores_weeklyaggregate")}

    again = weekclose.close_week(
        organisation_id=organisation_id, week=FOUR_WEEKS[-1], today=dt.date(2026, 11, 23)
    )

    assert not again.closed
    assert {table: raw_dump(table, "ctid") for table in before} == before  # not a tuple rewritten


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_close_does_not_write_the_weeks_scores_back_in_the_order_they_arrived(
    organisation: Organisation,
) -> None:
    """The open week's rows lie in the order people tapped; were the close to write them back in that order
    (new ids, but the same physical order), a dump ORDER BY ctid of a closed week would still line them up
    against a proxy's log or the provider's delivery times."""
    week = FOUR_WEEKS[0]
    people = [make_participant(organisation) for _ in range(30)]
    with time_machine.travel(dt.datetime.combine(week, dt.time(12), AMSTERDAM) + dt.timedelta(days=2)):
        for person in people:
            _link, token = make_link(person, week=week)
            assert submission.submit_score(token=token, value=3).recorded
    # The open week's physical order, as a dump shows it: about the order of the taps (a row may fill the
    # space a dead one left, so not exactly).
    before = [row["pseudonym"] for row in raw_dump("scores_score", "ctid")]
    assert sorted(before) == sorted(week_pseudonym(person.pseudonym or "", week) for person in people)

    weekclose.close_week(organisation_id=organisation.pk, week=week, today=week + dt.timedelta(days=7))

    after = [row["pseudonym"] for row in raw_dump("scores_score", "ctid")]
    assert sorted(after) == sorted(before)
    # Written back in the old order, most neighbours stay neighbours (a few runs move to free space elsewhere
    # in the table); shuffled, about one pair of 29 does by chance, and ten or more with a chance below 1e-6.
    kept_neighbours = set(itertools.pairwise(before)) & set(itertools.pairwise(after))
    assert len(kept_neighbours) < 10, len(kept_neighbours)


@pytest.mark.django_db
def test_the_frozen_figures_of_a_small_and_a_large_group_seal_to_one_length(
    organisation: Organisation,
) -> None:
    """Only the fixed width keeps a large group's figures from sealing into a longer bucket than a small
    group's: the dump would tell a department's size (and an empty week) from the ciphertext's length."""
    department = Department.objects.filter(organisation=organisation).order_by("name").first()
    large = Figures.of([1, 2, 3, 4, 5] * 20000, invited=123456, listed=654321)
    small = Figures.of([], invited=0)
    WeeklyAggregate.objects.create(
        organisation=organisation, department=None, week=FOUR_WEEKS[0], figures=large.sealed_text()
    )
    WeeklyAggregate.objects.create(
        organisation=organisation, department=department, week=FOUR_WEEKS[0], figures=small.sealed_text()
    )

    sealed = [row["figures"] for row in raw_dump("scores_weeklyaggregate", "ctid")]

    assert len(sealed) == 2 and all(str(value).startswith("v1.") for value in sealed)
    assert len({len(str(value)) for value in sealed}) == 1


def test_a_participation_state_seals_to_one_length_whatever_it_holds() -> None:
    """Never answered, answered last week, or silent for very long: one plaintext width, so one ciphertext
    length in the dump (the crypto's buckets alone would put a long silence in a longer one)."""
    from participants.participation import ParticipationState

    states = [
        ParticipationState(),
        ParticipationState(last_response_week=FOUR_WEEKS[0], weeks_without_response=0),
        ParticipationState(last_response_week=None, weeks_without_response=99999),
    ]
    assert len({len(state.sealed_text()) for state in states}) == 1
