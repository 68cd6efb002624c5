"""Opening a weekly link and recording its smiley, by the unlinkability rules (DESIGN.md).

A submission inserts one score row and writes nothing else (its value sealed, under a per-week pseudonym:
scores/sealing.py): not on the link, not on the participant, no
session, no outbox row, no log line about who. A mark on the participant's side at the moment a score row
appears would let anyone holding a database dump (or its write-ahead log) pair the two; "took part this
week" is derived in a batch when the week closes (scores.weekclose), when all of the week's scores exist.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import uuid
from dataclasses import dataclass

from django.db import connections, router
from django.utils import timezone

from participants import queries
from preventicons import crypto
from preventicons.crypto import hash_token
from preventicons.fields import column_of
from scores.models import Score, WeeklyLink
from scores.sealing import department_text, natural_key_binding, score_value_text, week_pseudonym

TOKEN_LENGTH = 43  # crypto.new_token(): 32 bytes, URL-safe base64 without padding
VALUES = range(1, 6)


class LinkState(enum.StrEnum):
    OPEN = "open"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    STOPPED = "stopped"


class SubmissionRefused(Exception):
    """The link cannot take a score (any more); ``state`` says why. Nothing was written."""

    def __init__(self, state: LinkState) -> None:
        self.state = state
        super().__init__(state.value)


@dataclass(frozen=True)
class Submission:
    """The outcome: ``recorded`` is False when the week's score was already in (a double tap, two tabs)."""

    recorded: bool
    week: dt.date
    pseudonym: str


@dataclass(frozen=True)
class TapLink:
    """A weekly link and its holder as one statement reads them for the tap's three requests."""

    week: dt.date
    expires_at: dt.datetime
    holder: queries.LinkHolder


def find_weekly_link(*, token: str) -> WeeklyLink | None:
    """The weekly link a token opens, with its participant, or None (the help page needs the whole person).

    Malformed, truncated and unknown tokens look alike. The smiley page, its POST and the thanks read the
    cheaper find_tap_link instead.
    """
    if len(token) != TOKEN_LENGTH:
        return None
    # token_hash is unique: a plain slice, not first(), which would add an ORDER BY the query does not need.
    found = (
        WeeklyLink.objects.select_related("participant")
        .only("week", "expires_at", *queries.link_holder_columns("participant"))
        .filter(token_hash=hash_token(token))[:1]
    )
    return next(iter(found), None)


@functools.cache
def _tap_lookup_sql(vendor: str) -> str:
    # Written out once per process: the ORM would compile the same statement anew on every request (about
    # three times the SQL's own cost, measured in issue #17), and the same text on every request is what
    # lets psycopg prepare it on the server after DB_PREPARE_THRESHOLD runs on a connection.
    quote = connections[router.db_for_read(WeeklyLink)].ops.quote_name

    def column(name: str) -> str:
        return f"l.{quote(column_of(WeeklyLink, name))}"

    return (
        f"SELECT {column('week')}, {column('expires_at')}, "  # noqa: S608  # nosec B608  # names from the models
        f"{queries.LinkHolder.select_columns('p', quote)} "
        f"FROM {quote(WeeklyLink._meta.db_table)} l JOIN {quote(queries.participant_table())} p "
        f"ON p.{quote('id')} = {column('participant')} WHERE {column('token_hash')} = %s"
    )


def find_tap_link(*, token: str) -> TapLink | None:
    """The weekly link a token opens and its holder, in one statement, or None; like find_weekly_link.

    The one lookup of the smiley page, its POST and the thanks: the same statement text every time.
    """
    if len(token) != TOKEN_LENGTH:
        return None
    connection = connections[router.db_for_read(WeeklyLink)]
    with connection.cursor() as cursor:
        cursor.execute(_tap_lookup_sql(connection.vendor), [hash_token(token)])
        row = cursor.fetchone()
    if row is None:
        return None
    week, expires_at, *holder = row
    on_sqlite = connection.vendor == "sqlite"
    if on_sqlite:
        # SQLite's adapters hand back a date or its ISO text, and a timestamp in UTC without a zone.
        week = week if isinstance(week, dt.date) else dt.date.fromisoformat(week)
        if isinstance(expires_at, str):
            expires_at = dt.datetime.fromisoformat(expires_at)
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=dt.UTC)
    holder_row = queries.LinkHolder.from_row(tuple(holder), on_sqlite=on_sqlite)
    return TapLink(week=week, expires_at=expires_at, holder=holder_row)


def link_state(link: TapLink | None, *, now: dt.datetime | None = None) -> LinkState:
    """What this link can still do."""
    if link is None:
        return LinkState.UNKNOWN
    if not link.holder.may_use_weekly_link():
        return LinkState.STOPPED
    if link.expires_at <= (now or timezone.now()):
        return LinkState.EXPIRED
    return LinkState.OPEN


def submit_score(*, token: str, value: int, now: dt.datetime | None = None) -> Submission:
    """Record the week's score of the link this token opens, once; a second submission changes nothing.

    Raises ValueError for a value outside 1-5 and SubmissionRefused when the link is unknown or not open
    (at ``now``, default the present: the demo taps its past weeks' links in their own week); nothing is
    written then.
    """
    return submit_to(find_tap_link(token=token), value=value, now=now)


def submit_to(link: TapLink | None, *, value: int, now: dt.datetime | None = None) -> Submission:
    """submit_score for a link already looked up (the POST looks it up once for all it decides)."""
    if value not in VALUES:
        raise ValueError("a score is a whole number from 1 to 5")
    state = link_state(link, now=now)
    if link is None or state != LinkState.OPEN:
        if link is not None and state == LinkState.STOPPED:
            # Thanked like a repeated tap, so it costs what a repeated tap costs: the same sealing and the
            # same statement, which inserts nothing. Whoever holds the link may tap it as often as they like;
            # a refused tap that skipped both answered measurably sooner than an active person's repeat.
            record_score(
                pseudonym=crypto.new_token(),
                week=link.week,
                value=value,
                organisation_id=link.holder.organisation_id,
                department_id=link.holder.department_id,
                write=False,
            )
        raise SubmissionRefused(state)
    holder = link.holder
    pseudonym = holder.pseudonym
    assert pseudonym
    # The only write of a submission (see the module docstring): no used_at on the link, nothing on the
    # participant, and no lock on either (SELECT ... FOR SHARE marks the row it locks). One statement: a
    # concurrent second submission waits on the unique index and then inserts nothing, so one score is kept.
    inserted = record_score(
        pseudonym=pseudonym,
        week=link.week,
        value=value,
        organisation_id=holder.organisation_id,
        department_id=holder.department_id,
    )
    return Submission(recorded=inserted, week=link.week, pseudonym=pseudonym)


def record_score(
    *,
    pseudonym: str,
    week: dt.date,
    value: int,
    organisation_id: int,
    department_id: int | None,
    write: bool = True,
) -> bool:
    """Insert the score of the holder of P for ``week`` under its per-week pseudonym, value sealed, once.

    Returns whether this call added the row (False: the week already had their score, nothing changed).
    The one write of a submission; the demo, the benchmarks and tests that need score rows use it too, so
    every row is stored the one way. Raises ValueError for a value outside 1-5. ``write=False`` does all
    the same work and sends the same statement, which then inserts nothing (a refused tap, submit_to).

    On PostgreSQL the row's commit does not wait for the write-ahead log to reach the disk
    (``synchronous_commit = off`` for this one transaction, set in the statement itself). Waiting for that
    flush made a first tap take about a millisecond longer than a repeated one, which inserts nothing and
    has nothing to flush (measured: bench/tap_timing.py): whoever holds a link could tell from one tap
    whether the week was already answered. It was also the limit of the Monday peak (README, "Capacity").
    The price: a crash of the database server (not of the app) may lose the last moments of taps (at most
    three times ``wal_writer_delay``, 0.6 s by default), which their participants saw thanked; it never
    corrupts anything, and every other write keeps its durable commit.
    """
    text = score_value_text(value)
    per_week = week_pseudonym(pseudonym, week)
    # Bound to where it lives: table, column and the row's natural key (scores/sealing.py says why not the
    # id), exactly as SealedScoreValueField.binding_for computes it.
    table_name = Score._meta.db_table
    sealed = crypto.seal(
        text, natural_key_binding("field", table_name, "value", [per_week, week.isoformat()])
    )
    # The department sealed too, bound the same way (scores.models.Score.department says why).
    sealed_department = crypto.seal(
        department_text(department_id),
        natural_key_binding("field", table_name, "department", [per_week, week.isoformat()]),
    )
    # INSERT ... ON CONFLICT DO NOTHING RETURNING (PostgreSQL, SQLite from 3.35): one round trip instead of
    # BEGIN, SAVEPOINT, INSERT, RELEASE, COMMIT, and it tells whether this call added the row.
    using = router.db_for_write(Score)
    connection = connections[using]
    table = connection.ops.quote_name(Score._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            _insert_score_sql(connection.vendor, table),
            [
                uuid.uuid4().hex if connection.vendor == "sqlite" else uuid.uuid4(),
                week,
                sealed,
                organisation_id,
                sealed_department,
                per_week,
                write,
            ],
        )
        return cursor.fetchone() is not None


@functools.cache
def _insert_score_sql(vendor: str, table: str) -> str:
    # INSERT ... SELECT ... WHERE: the one statement text for a write and a refused tap's non-write (the
    # WHERE also keeps SQLite from reading ON CONFLICT as a join's ON). RETURNING runs before the commit, so
    # set_config(..., true) turns the flush wait off for this statement's own transaction only.
    flush = ", set_config('synchronous_commit', 'off', true)" if vendor == "postgresql" else ""
    return (
        f"INSERT INTO {table} (id, week, value, organisation_id, department, pseudonym) "  # nosec B608  # names from the model
        f"SELECT %s, %s, %s, %s, %s, %s WHERE %s ON CONFLICT DO NOTHING RETURNING id{flush}"
    )
