"""Closing a week: freeze its aggregates, derive who took part, and make the week's scores unlinkable.

A closed week is closed for good: its WeeklyAggregate rows are never recomputed, so nothing that happens
later (a stop, a department removed) changes a past figure, and ClosedWeek makes a second close (a doubled
beat, a retry after a crash) change nothing. The figures are computed here, from the opened values: the
database holds them sealed. Participation is derived here too, in the batch, from the scores as a whole,
never at the moment a score is submitted (DESIGN.md, unlinkability rules). Then the week's score rows lose
their department and are written again under new random ids in a random order, and the table is vacuumed.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.db import connections, router, transaction
from django.utils import timezone

from participants import queries
from participants.models import Department, Organisation, Participant
from participants.participation import CountedWeek, Participation, count_participation, participant_rows
from preventicons import crypto
from preventicons.dbrouter import every_store, pipelined
from preventicons.fields import as_stored
from scores.models import ClosedWeek, Figures, Score, WeeklyAggregate, WeeklyLink
from scores.sealing import department_of, week_pseudonyms

logger = logging.getLogger(__name__)

ONE_WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class WeekClosed:
    """What closing one organisation's week did; ``closed`` is False when it was already closed."""

    organisation_id: int
    week: dt.date
    closed: bool
    aggregates: int = 0
    participation: Participation = field(default_factory=Participation)


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def previous_week(*, today: dt.date | None = None) -> dt.date:
    """The Monday of the last ISO week that has ended (in the project's time zone)."""
    return monday_of(today or timezone.localdate()) - ONE_WEEK


def is_week_closed(*, organisation_id: int, week: dt.date) -> bool:
    """Whether this organisation's week is closed: no score may be added to it any more."""
    return ClosedWeek.objects.filter(organisation_id=organisation_id, week=week).exists()


@dataclass
class _OpenedWeek:
    """A week's scores opened in memory for the close: values by department."""

    values: dict[int | None, list[int]] = field(default_factory=dict)


def _count_and_rewrite(
    organisation_id: int, week: dt.date, rows: Sequence[tuple[str, object, str | None]]
) -> tuple[CountedWeek, _OpenedWeek]:
    """Count the week for every participant (writing their states), rewrite the week's scores (_rewrite),
    and open the scores read.

    None of the writes needs the opened values: the states are counted from the pseudonyms, which are in
    clear, and the rewrite keeps every value and pseudonym and drops only ids and departments, read
    before it. On PostgreSQL the statements go to the server as they are made (pipeline mode): it writes
    one chunk of states while the next is counted here, and rewrites the scores while their values are
    opened, the two cores working side by side instead of the one waiting for the other.
    """
    responded = {pseudonym for pseudonym, _value, _department in rows}
    of_week = week_pseudonyms(week)

    def answered(pseudonym: str) -> bool:
        return of_week(pseudonym) in responded

    people = participant_rows(organisation_id)

    def count_rewrite_open() -> tuple[CountedWeek, _OpenedWeek]:
        # The rewrite first, and the scores opened while the server carries it out: nothing is sent meanwhile.
        # Counted first, the chunks of states would wait behind the rewrite once the socket's buffers are
        # full, and so would the count.
        _rewrite(organisation_id, week)
        opened = _opened(rows, week)
        counted = count_participation(people, week=week, answered=answered if responded else None)
        # Last: nothing is computed for it, and the server deletes the links while the count's last chunks
        # are still on their way.
        _forget_links(organisation_id, week)
        return counted, opened

    # Leaving the block waits for every write, and raises the error of one that failed (the close then
    # rolls back).
    with pipelined(router.db_for_write(Score)):
        return count_rewrite_open()


def _opened(rows: Sequence[tuple[str, object, str | None]], week: dt.date) -> _OpenedWeek:
    # values_list and one ColumnCipher per column rather than model instances: the same binding as
    # SealedScoreValueField, at a fraction of the cost for 100,000 rows.
    opened = _OpenedWeek()
    table = Score._meta.db_table
    value_cipher = crypto.ColumnCipher("field", table, "value")
    department_cipher = crypto.ColumnCipher("field", table, "department")
    # natural_key_binding's row part: per-week pseudonym and week.
    row_suffix = "/" + week.isoformat()
    for pseudonym, sealed, sealed_department in rows:
        row = pseudonym + row_suffix
        # values_list gives what the column holds, the ciphertext (the attribute would be the opened int).
        value = int(value_cipher.open(str(sealed), row))
        department_id = None
        if sealed_department is not None:
            department_id = department_of(department_cipher.open(str(sealed_department), row))
        opened.values.setdefault(department_id, []).append(value)
    return opened


def _freeze(
    organisation_id: int, week: dt.date, opened: _OpenedWeek, *, invited: Mapping[int | None, int]
) -> list[WeeklyAggregate]:
    # Computed here, in Python: the database holds the values sealed and could not sum them. Scores without
    # a department (participants who have none) count towards the organisation and towards no department.
    everyone = [value for values in opened.values.values() for value in values]
    aggregates = [
        WeeklyAggregate(
            organisation_id=organisation_id,
            department=None,
            week=week,
            figures=Figures.of(
                everyone, invited=sum(invited.values()), listed=queries.listed_count(organisation_id)
            ).sealed_text(),
        )
    ]
    # A row for every department, also one where nobody answered: the grouping is in clear, and a row that
    # exists only when somebody answered would tell, for a department of one, whether that person did.
    # Only departments that still exist: a score's sealed department may name one removed since it was
    # tapped (no foreign key holds it), and its value then counts towards the organisation only.
    departments = set(Department.objects.filter(organisation_id=organisation_id).values_list("pk", flat=True))
    for department_id in sorted(departments):
        aggregates.append(
            WeeklyAggregate(
                organisation_id=organisation_id,
                department_id=department_id,
                week=week,
                figures=Figures.of(
                    opened.values.get(department_id, []), invited=invited.get(department_id, 0)
                ).sealed_text(),
            )
        )
    return WeeklyAggregate.objects.bulk_create(aggregates)


def close_week(
    *, organisation_id: int, week: dt.date, today: dt.date | None = None, vacuum: bool = True
) -> WeekClosed:
    """Freeze the organisation's aggregates for ``week``, count who took part and rewrite the week's scores
    without departments under new ids; a second call is a no-op.

    Every group is frozen, also those under 5 people: suppression is the reports' job when they read.
    With ``vacuum`` (the default) the score table is vacuumed once the close has committed (PostgreSQL), so
    the week's old row versions (old ids, departments, arrival order) do not stay readable; a caller closing
    many weeks passes False and calls ``vacuum_scores_after_commit()`` once. Refuses (ValueError) a week that
    is not a Monday or has not ended yet.
    """
    if week.weekday() != 0:
        raise ValueError(f"{week} is not the Monday of an ISO week")
    if week > previous_week(today=today):
        raise ValueError(f"the week of {week} has not ended yet")
    # Every store joins: whatever a participant_inactive receiver writes commits with the close, or not
    with every_store():
        # Closes of one organisation queue up here, so two runs cannot both find the week open.
        organisation = (
            Organisation.objects.select_for_update(no_key=True).only("pk", "sbi_code").get(pk=organisation_id)
        )
        if is_week_closed(organisation_id=organisation_id, week=week):
            return WeekClosed(organisation_id=organisation_id, week=week, closed=False)
        ClosedWeek.objects.create(
            organisation_id=organisation_id, week=week, division=(organisation.sbi_code or "")[:2]
        )
        # What is read here is what the rewrite moves: the week's links expired when it ended
        # (rounds.week_closes_at) and the beat closes half an hour later, so no score joins it meanwhile.
        # From here on only the opened values (frozen below) know which department a score came from.
        # The sealed columns read as the text they hold: their fields' converters would wrap each value.
        rows = list(
            Score.objects.filter(organisation_id=organisation_id, week=week).values_list(
                "pseudonym", as_stored("value"), as_stored("department")
            )
        )
        counted, opened = _count_and_rewrite(organisation_id, week, rows)
        participation = counted.make_inactive()
        aggregates = _freeze(organisation_id, week, opened, invited=participation.invited)
        if vacuum:
            vacuum_scores_after_commit()
    return WeekClosed(
        organisation_id=organisation_id,
        week=week,
        closed=True,
        aggregates=len(aggregates),
        participation=participation,
    )


def _rewrite(organisation_id: int, week: dt.date) -> None:
    """Rewrite the week's scores under new random ids, in a random order, without their department.

    A score row has no time finer than its week, but a table is stored, and dumped, in about the order its
    rows were inserted: the order of the week's submissions, a clock in all but name. Lined up against
    anything else that kept the order in which people answered (a proxy's access log, a message provider's
    delivery reports), it would tie scores to people; and with the ids kept, a dump of the open week would
    line up with every later dump. Once the week is closed no score joins it: its rows are written again
    from a shuffled list, each with a new id, and without the department, which the frozen aggregates now
    hold. The sealed values are bound to (per-week pseudonym, week), which the rewrite keeps, so nothing is
    re-sealed.
    """
    connection = connections[router.db_for_write(Score)]
    table = connection.ops.quote_name(Score._meta.db_table)
    if connection.vendor == "postgresql":
        # One statement: the rows leave and come back with new ids (gen_random_uuid, from pg_strong_random),
        # ordered by a strong random key.
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH moved AS (DELETE FROM {table} "  # noqa: S608  # nosec B608  # names from the model
                "WHERE organisation_id = %s AND week = %s RETURNING week, value, organisation_id, pseudonym) "
                f"INSERT INTO {table} (id, week, value, organisation_id, department, pseudonym) "
                "SELECT gen_random_uuid(), week, value, organisation_id, NULL, pseudonym "
                "FROM moved ORDER BY gen_random_uuid()",
                [organisation_id, week],
            )
        return
    rows = list(
        Score.objects.filter(organisation_id=organisation_id, week=week).values_list("value", "pseudonym")
    )
    secrets.SystemRandom().shuffle(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # SQLite keeps deleted content in its pages and free list until overwritten; secure_delete makes
            # it overwrite the old rows (and their index entries) with zeros instead. It stays on for this
            # connection, which costs a little on later deletes and leaks nothing. No VACUUM on SQLite: it
            # would rewrite the whole file at every close, and secure_delete already removes the old rows.
            cursor.execute("PRAGMA secure_delete = ON")
        cursor.execute(
            f"DELETE FROM {table} WHERE organisation_id = %s AND week = %s",  # noqa: S608  # nosec B608  # names from the model
            [organisation_id, week],
        )
        cursor.executemany(
            f"INSERT INTO {table} (id, week, value, organisation_id, department, pseudonym) "  # noqa: S608  # nosec B608  # names from the model
            "VALUES (%s, %s, %s, %s, NULL, %s)",
            [(uuid.uuid4().hex, week, sealed, organisation_id, pseudonym) for sealed, pseudonym in rows],
        )


def _forget_links(organisation_id: int, week: dt.date) -> None:
    """Delete the organisation's weekly links of this week and before: they answer like unknown links anyway.

    A link row names its participant and its week in clear. Kept, the links of every week would list, per
    participant row, each week they were sent a message (active, listed, not paused), so the gaps would show
    when someone paused or fell silent, long after a stop or the nightly anonymisation. Only the open week's
    link lives; a stop keeps it, because a stopped person's link must answer like anyone else's until then.
    """
    connection = connections[router.db_for_write(WeeklyLink)]
    links = connection.ops.quote_name(WeeklyLink._meta.db_table)
    participants = connection.ops.quote_name(Participant._meta.db_table)
    # One statement, whose count is not asked for: inside the close's pipeline, QuerySet.delete() would wait
    # for the server to finish everything sent before it, to read how many rows went.
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {links} WHERE week <= %s AND participant_id IN "  # noqa: S608  # nosec B608  # names from the models
            f"(SELECT id FROM {participants} WHERE organisation_id = %s)",
            [week, organisation_id],
        )


def vacuum_scores_after_commit() -> None:
    """VACUUM the score table once the current transaction has committed (at once outside one).

    PostgreSQL keeps a rewritten row's old version (old id, department, place in arrival order) readable
    in the table file until VACUUM removes it; VACUUM cannot run inside a transaction, hence after the
    commit. Inside a transaction that never commits (a test's) it never runs. Only the table's owner can
    VACUUM it (the role that ran the migrations): another role gets a warning in the log instead. On SQLite
    nothing is needed: the close deletes with secure_delete on (see _rewrite).
    """
    alias = router.db_for_write(Score)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return

    def vacuum() -> None:
        # The scores rewritten and the weekly links deleted (_forget_links) leave old row versions behind.
        for table in (Score._meta.db_table, WeeklyLink._meta.db_table):
            with connections[alias].cursor() as cursor:
                # VACUUM by a role that does not own the table only warns, to the client, and removes nothing.
                cursor.execute(
                    "SELECT pg_has_role(current_user, relowner, 'USAGE') "
                    "FROM pg_class WHERE oid = %s::regclass",
                    [table],
                )
                owned = cursor.fetchone()
                if not (owned and owned[0]):
                    logger.warning(
                        "week close: the database role does not own %s, so it cannot VACUUM it", table
                    )
                    continue
                cursor.execute(f"VACUUM {connections[alias].ops.quote_name(table)}")

    transaction.on_commit(vacuum, using=alias)


def weeks_to_close(*, organisation_id: int, today: dt.date | None = None) -> list[dt.date]:
    """Every ended week after the organisation's last closed one, oldest first (just last week at the start).

    Oldest first, without gaps: a beat that was down for a while catches up in order, so consecutive weeks
    without a response are counted in order.
    """
    last = previous_week(today=today)
    latest_closed = (
        ClosedWeek.objects.filter(organisation_id=organisation_id)
        .order_by("-week")
        .values_list("week", flat=True)
    ).first()
    first = latest_closed + ONE_WEEK if latest_closed else last
    weeks = []
    while first <= last:
        weeks.append(first)
        first += ONE_WEEK
    return weeks


def close_ended_weeks(*, today: dt.date | None = None) -> list[WeekClosed]:
    """Close every ended, still open week of every organisation, oldest first; idempotent."""
    closed = []
    for organisation_id in Organisation.objects.order_by("pk").values_list("pk", flat=True):
        for week in weeks_to_close(organisation_id=organisation_id, today=today):
            closed.append(close_week(organisation_id=organisation_id, week=week, today=today, vacuum=False))
    if any(result.closed for result in closed):
        # Once for all the weeks closed: each VACUUM scans the table's indexes.
        vacuum_scores_after_commit()
    return closed
