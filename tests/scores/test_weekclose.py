"""Closing a week: frozen sealed aggregates, participation derived in the batch, inactivity and coming back,
and the week's rows rewritten under new ids without departments."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import connections
from django.test import override_settings

from casefiles import assignment
from casefiles.models import Dossier
from participants import participation
from participants.account import stop_participation
from participants.models import Department, Organisation, Participant
from participants.participation import ParticipationState, participation_of, reactivate_participant
from preventicons import crypto, keyrotation, keys
from preventicons.fields import as_stored
from preventicons.models import OutboundMessage
from scores import queries, submission, tasks, weekclose
from scores.models import ClosedWeek, Score, WeeklyAggregate, WeeklyLink
from scores.sealing import week_pseudonym, week_pseudonyms
from tests.casefiles.world import close_stopped_dossiers
from tests.conftest import ALL_DATABASES, make_organisation, run_on_embedded_default
from tests.scores.people import make_link, make_participant

WEEK = dt.date(2026, 11, 9)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TODAY = dt.date(2026, 11, 23)  # a Monday: the weeks of 9 and 16 November have ended


def score(
    organisation: Organisation,
    *,
    value: int,
    department: Department | None,
    week: dt.date = WEEK,
    pseudonym: str | None = None,
) -> str:
    """A score as a submission leaves it, under the pseudonym P of an active participant of the department
    (one made for it unless given); returns P. Without a department: a participant who has none."""
    if pseudonym is None:
        author = Participant(
            organisation=organisation,
            department=department,
            status=Participant.Status.ACTIVE,
            pseudonym=crypto.new_pseudonym(),
        )
        author.save()
        pseudonym = author.pseudonym
    assert pseudonym
    submission.record_score(
        pseudonym=pseudonym,
        week=week,
        value=value,
        organisation_id=organisation.pk,
        department_id=department.pk if department else None,
    )
    return pseudonym


def figures(row: WeeklyAggregate) -> tuple[int, int, dict[int, int]]:
    opened = row.opened
    return opened.count, opened.total, opened.distribution


def all_aggregates() -> list[tuple]:
    """Every aggregate row as the database holds it: the grouping in clear, the figures sealed."""
    return list(
        WeeklyAggregate.objects.order_by("organisation_id", "department_id", "week").values_list(
            "organisation_id", "department_id", "week", "figures"
        )
    )


def opened_aggregates() -> list[tuple]:
    return [
        (row.organisation_id, row.department_id, row.week, *figures(row))
        for row in WeeklyAggregate.objects.order_by("organisation_id", "department_id", "week")
    ]


def raw_scores() -> list[tuple]:
    """The score table as a dump shows it, with each row's physical place and writing transaction."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT ctid::text, xmin::text, id, week, value, organisation_id, department, pseudonym "
            "FROM scores_score ORDER BY ctid"
        )
        return cursor.fetchall()


def close(organisation: Organisation, week: dt.date = WEEK) -> weekclose.WeekClosed:
    return weekclose.close_week(organisation_id=organisation.pk, week=week, today=TODAY)


# --- frozen aggregates ---------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_close_freezes_counts_sums_and_distributions_per_department_and_organisation(
    organisation: Organisation, other_organisation: Organisation
) -> None:
    care, finance, it = (
        Department.objects.get(organisation=organisation, name=n) for n in ("Care", "Finance", "IT")
    )
    for value in (1, 2, 2, 5):
        score(organisation, value=value, department=care)
    for value in (4, 4, 3):
        score(organisation, value=value, department=finance)
    score(organisation, value=3, department=None)  # a participant without department: organisation only
    score(organisation, value=5, department=care, week=WEEK + dt.timedelta(days=7))  # another week
    score(other_organisation, value=1, department=other_organisation.departments.first())

    result = close(organisation)

    assert result.closed and result.aggregates == 4
    rows = {
        row.department_id: row for row in WeeklyAggregate.objects.filter(organisation=organisation, week=WEEK)
    }
    # IT had no scores, and still has its row: a row only where somebody answered would tell who did.
    assert set(rows) == {care.pk, finance.pk, it.pk, None}
    assert figures(rows[it.pk]) == (0, 0, {1: 0, 2: 0, 3: 0, 4: 0, 5: 0})
    assert figures(rows[care.pk]) == (4, 10, {1: 1, 2: 2, 3: 0, 4: 0, 5: 1})
    assert figures(rows[finance.pk]) == (3, 11, {1: 0, 2: 0, 3: 1, 4: 2, 5: 0})
    assert figures(rows[None]) == (8, 24, {1: 1, 2: 2, 3: 2, 4: 2, 5: 1})
    assert not WeeklyAggregate.objects.filter(organisation=other_organisation).exists()
    # The public read the employer reports build on gives the same figures, opened.
    read = {
        (f.department_id, f.week): (f.count, f.total, f.distribution)
        for f in queries.frozen_figures(organisation_id=organisation.pk)
    }
    assert read == {(department, WEEK): figures(row) for department, row in rows.items()}
    assert queries.frozen_figures(organisation_id=organisation.pk, weeks=[WEEK + dt.timedelta(days=7)]) == []


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_groups_under_five_are_frozen_too(organisation: Organisation) -> None:
    care = Department.objects.get(organisation=organisation, name="Care")
    score(organisation, value=2, department=care)

    close(organisation)

    # Suppression is the reports' job when they read; the frozen figure must be complete.
    assert figures(WeeklyAggregate.objects.get(organisation=organisation, department=care))[0] == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_week_without_scores_freezes_empty_rows_for_the_organisation_and_every_department(
    organisation: Organisation,
) -> None:
    close(organisation)

    rows = WeeklyAggregate.objects.filter(organisation=organisation, week=WEEK)
    assert {row.department_id for row in rows} == {
        None,
        *Department.objects.filter(organisation=organisation).values_list("pk", flat=True),
    }
    assert [figures(row) for row in rows] == [(0, 0, {1: 0, 2: 0, 3: 0, 4: 0, 5: 0})] * 4


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_close_forgets_the_weekly_links_of_that_week_and_before_and_keeps_the_open_weeks(
    organisation: Organisation,
) -> None:
    # A link row names its participant and its week: kept, the links would list per participant every week
    # they were sent a message, so the gaps would show pauses and silences long after a stop.
    other = make_organisation("Elsewhere")
    person, stopped, elsewhere = (
        make_participant(organisation),
        make_participant(organisation),
        make_participant(other),
    )
    for participant in (person, stopped, elsewhere):
        for week in (WEEK - dt.timedelta(weeks=1), WEEK, WEEK + dt.timedelta(weeks=1)):
            make_link(participant, week=week)
    stop_participation(participant=stopped)

    close(organisation)

    remaining = set(WeeklyLink.objects.values_list("participant_id", "week"))
    open_week = WEEK + dt.timedelta(weeks=1)
    # The open week's links stay, the stopped person's too (their link answers like anyone's until it ends).
    assert {(p, w) for p, w in remaining if p in (person.pk, stopped.pk)} == {
        (person.pk, open_week),
        (stopped.pk, open_week),
    }
    # Another organisation's links wait for its own close.
    assert {w for p, w in remaining if p == elsewhere.pk} == {WEEK - dt.timedelta(weeks=1), WEEK, open_week}


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_closing_twice_changes_nothing(organisation: Organisation) -> None:
    care = Department.objects.get(organisation=organisation, name="Care")
    active = make_participant(organisation)
    score(organisation, value=4, department=care)
    close(organisation)
    before = all_aggregates()
    # A score slipping in after the close (the submission side refuses it; here written directly).
    score(organisation, value=1, department=care)

    second = close(organisation)

    assert not second.closed
    assert all_aggregates() == before
    active.refresh_from_db()
    assert participation_of(active).weeks_without_response == 1  # counted once, not twice
    assert ClosedWeek.objects.filter(organisation=organisation, week=WEEK).count() == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_stop_after_the_close_changes_no_score_row_and_no_past_figure(organisation: Organisation) -> None:
    leaver = make_participant(organisation)
    department = leaver.department
    for week in (WEEK, WEEK + dt.timedelta(days=7)):
        score(organisation, value=1, department=department, week=week, pseudonym=leaver.pseudonym)
        score(organisation, value=5, department=department, week=week)
    close(organisation, WEEK)
    close(organisation, WEEK + dt.timedelta(days=7))
    before = all_aggregates(), raw_scores()

    stop_participation(participant=leaver)

    # Not a tuple rewritten (same ctid, same xmin): nothing in the table dates or marks the stop.
    assert (all_aggregates(), raw_scores()) == before


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_week_that_has_not_ended_cannot_be_closed(organisation: Organisation) -> None:
    with pytest.raises(ValueError, match="not ended"):
        weekclose.close_week(organisation_id=organisation.pk, week=TODAY, today=TODAY)
    with pytest.raises(ValueError, match="Monday"):
        weekclose.close_week(organisation_id=organisation.pk, week=WEEK + dt.timedelta(days=1), today=TODAY)
    assert not WeeklyAggregate.objects.exists() and not ClosedWeek.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_beat_task_closes_ended_weeks_in_order_and_catches_up(organisation: Organisation) -> None:
    ClosedWeek.objects.create(organisation=organisation, week=WEEK - dt.timedelta(days=14))

    assert weekclose.weeks_to_close(organisation_id=organisation.pk, today=TODAY) == [
        WEEK - dt.timedelta(days=7),
        WEEK,
        WEEK + dt.timedelta(days=7),
    ]
    closed = weekclose.close_ended_weeks(today=TODAY)

    assert [r.week for r in closed if r.organisation_id == organisation.pk] == [
        WEEK - dt.timedelta(days=7),
        WEEK,
        WEEK + dt.timedelta(days=7),
    ]
    assert weekclose.close_ended_weeks(today=TODAY) == []


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_task_closes_last_week_once(organisation: Organisation) -> None:
    assert tasks.close_ended_weeks.delay().get() == 1
    assert tasks.close_ended_weeks.delay().get() == 0
    assert ClosedWeek.objects.get(organisation=organisation).week == weekclose.previous_week()


# --- participation --------------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_participation_marks_who_responded_and_counts_weeks_without_response(
    organisation: Organisation,
) -> None:
    responder = make_participant(organisation)
    silent = make_participant(organisation)
    paused = make_participant(organisation, messages_paused=True)
    unlisted = make_participant(organisation, is_listed=False)
    invited = make_participant(organisation, status=Participant.Status.INVITED)
    score(organisation, value=3, department=responder.department, pseudonym=responder.pseudonym)

    result = close(organisation)
    close(organisation, WEEK + dt.timedelta(days=7))

    assert (
        result.participation.responded,
        result.participation.missed,
        result.participation.not_counted,
    ) == (
        1,
        1,
        2,
    )
    for participant in (responder, silent, paused, unlisted, invited):
        participant.refresh_from_db()
    assert participation_of(responder) == ParticipationState(WEEK, 1)
    assert participation_of(silent) == ParticipationState(None, 2)
    # No link reached them: a week they could not answer is not held against them.
    assert participation_of(paused) == participation_of(unlisted) == ParticipationState(None, 0)
    assert invited.participation is None


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_close_freezes_how_many_were_sent_the_link_per_department_for_the_participation_bands(
    organisation: Organisation,
) -> None:
    responder = make_participant(organisation)
    make_participant(organisation)  # silent: sent the link, no answer
    make_participant(organisation, messages_paused=True)
    make_participant(organisation, is_listed=False)
    make_participant(organisation, status=Participant.Status.INVITED)
    score(organisation, value=3, department=responder.department, pseudonym=responder.pseudonym)

    close(organisation)

    invited = {
        row.department_id: row.opened.invited or 0 for row in WeeklyAggregate.objects.filter(week=WEEK)
    }
    # Only the responder and the silent one were sent a link: the paused, the unlisted and the not yet
    # enrolled were not, and they count in no band.
    assert invited[None] == 2
    assert sum(count for department, count in invited.items() if department is not None) == 2
    assert invited[responder.department_id] >= 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_response_resets_the_count(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    close(organisation, WEEK - dt.timedelta(days=7))
    score(organisation, value=4, department=None, pseudonym=participant.pseudonym)

    close(organisation, WEEK)

    participant.refresh_from_db()
    assert participation_of(participant) == ParticipationState(WEEK, 0)


def make_dossier(participant: Participant) -> Dossier:
    dossier = Dossier(
        number="D-TESTTEST",
        pseudonym_index=crypto.casefiles_index(participant.pseudonym or ""),
        opened_on=WEEK,
    )
    dossier.pseudonym = participant.pseudonym
    dossier.participant_ref = str(participant.pk)
    dossier.save()
    return dossier


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_four_weeks_without_response_make_a_participant_inactive_and_their_dossier_unavailable(
    organisation: Organisation, settings: object
) -> None:
    participant = make_participant(organisation)
    dossier = make_dossier(participant)
    weeks = [WEEK - dt.timedelta(days=7 * back) for back in (3, 2, 1, 0)]
    for week in weeks[:3]:
        close(organisation, week)
    participant.refresh_from_db()
    dossier.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE and assignment.live([dossier]) == {dossier.pk}

    result = close(organisation, weeks[3])

    participant.refresh_from_db()
    dossier.refresh_from_db()
    assert result.participation.became_inactive == [str(participant.pk)]
    assert participant.status == Participant.Status.INACTIVE
    assert participant.pseudonym  # inactive is not stopped: they can come back
    # Read live: the dossier is no longer within a casemanager's sight, and nothing was written to it.
    assert not assignment.live([dossier]) and dossier.is_open


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_inactive_after_weeks_is_a_setting(organisation: Organisation, settings: object) -> None:
    settings.INACTIVE_AFTER_WEEKS = 1  # type: ignore[attr-defined]
    participant = make_participant(organisation)

    close(organisation)

    participant.refresh_from_db()
    assert participant.status == Participant.Status.INACTIVE


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_an_inactive_participant_is_sent_no_weekly_link_in_the_next_round(
    organisation: Organisation, settings: object
) -> None:
    from scores import rounds

    settings.INACTIVE_AFTER_WEEKS = 1  # type: ignore[attr-defined]
    participant = make_participant(organisation)
    close(organisation)
    participant.refresh_from_db()
    assert participant.status == Participant.Status.INACTIVE

    colleague = make_participant(organisation)

    report = rounds.run_weekly_round(organisation=organisation, week=TODAY)

    assert (report.links, report.emails) == (2, 2)  # queued for both: the round does not know who takes part
    # Both have a link row and a queued message (neither may tell who is inactive); only the colleague's goes.
    links = dict(WeeklyLink.objects.filter(week=TODAY).values_list("participant_id", "pk"))
    assert set(links) == {participant.pk, colleague.pk}
    references = set(OutboundMessage.objects.values_list("reference", flat=True))
    assert {str(links[colleague.pk]), str(links[participant.pk])} <= references
    from participants.queries import taking_part

    assert taking_part(links) == {colleague.pk}  # whom the renderer sends to (render_weekly_message)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_reactivation_makes_them_active_and_their_dossier_available_again(
    organisation: Organisation, settings: object
) -> None:
    settings.INACTIVE_AFTER_WEEKS = 1  # type: ignore[attr-defined]
    participant = make_participant(organisation)
    dossier = make_dossier(participant)
    close(organisation)
    participant.refresh_from_db()

    assert reactivate_participant(participant=participant) is True
    assert reactivate_participant(participant=participant) is False

    dossier.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE
    assert participation_of(participant).weeks_without_response == 0
    assert assignment.live([dossier]) == {dossier.pk}
    # The next closed week counts from zero again.
    close(organisation, WEEK + dt.timedelta(days=7))
    participant.refresh_from_db()
    assert participant.status == Participant.Status.INACTIVE


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_only_an_inactive_participant_can_be_reactivated(organisation: Organisation) -> None:
    stopped = make_participant(organisation)
    stop_participation(participant=stopped)

    assert reactivate_participant(participant=stopped) is False
    stopped.refresh_from_db()
    assert stopped.status == Participant.Status.STOPPED


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_close_writes_no_pseudonym_on_the_participant_side(organisation: Organisation) -> None:
    participant = make_participant(organisation)
    score(organisation, value=2, department=None, pseudonym=participant.pseudonym)

    close(organisation)

    # The aggregates hold no pseudonym at all, and the participant row none of the score's.
    assert figures(WeeklyAggregate.objects.get(department=None))[0] == 1
    assert participant.pseudonym and participant.pseudonym not in str(all_aggregates())
    per_week = Score.objects.get().pseudonym
    assert per_week not in str(Participant.objects.filter(pk=participant.pk).values_list())


# --- a stop that races a submission --------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_score_recorded_while_its_author_stopped_loses_its_department_at_the_close_like_any_other(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaver = make_participant(organisation)
    department, pseudonym = leaver.department, leaver.pseudonym
    assert department and pseudonym
    colleague = score(organisation, value=4, department=department)
    _link, token = make_link(leaver, week=WEEK)
    found = submission.find_tap_link

    def stop_between_lookup_and_insert(*, token: str) -> submission.TapLink | None:
        link = found(token=token)
        stop_participation(participant=Participant.objects.get(pk=leaver.pk))
        return link

    monkeypatch.setattr(submission, "find_tap_link", stop_between_lookup_and_insert)
    with time_machine.travel(dt.datetime(2026, 11, 12, 20, 0, tzinfo=AMSTERDAM), tick=False):
        assert submission.submit_score(token=token, value=1).recorded

    result = close(organisation)

    # Nothing to strip by pseudonym: P is destroyed, so nobody can derive the row's per-week pseudonym, and
    # the row carries no department any more, like every closed row.
    assert result.closed
    assert list(Score.objects.values_list("department", flat=True)) == [None, None]
    assert figures(WeeklyAggregate.objects.get(department=department)) == (
        2,
        5,
        {1: 1, 2: 0, 3: 0, 4: 1, 5: 0},
    )
    assert queries.weekly_values_for(colleague) == [{"week": WEEK.isoformat(), "value": 4}]


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_after_the_close_participants_still_find_their_own_scores(organisation: Organisation) -> None:
    active = make_participant(organisation)
    resting = make_participant(organisation)
    Participant.objects.filter(pk=resting.pk).set_state(status=Participant.Status.INACTIVE)
    for author, value in ((active, 2), (resting, 4)):
        score(organisation, value=value, department=author.department, pseudonym=author.pseudonym)

    close(organisation)

    assert queries.weekly_values_for(active.pseudonym or "") == [{"week": WEEK.isoformat(), "value": 2}]
    assert queries.weekly_values_for(resting.pseudonym or "") == [{"week": WEEK.isoformat(), "value": 4}]


# --- no order or id that outlives the week ---------------------------------------------------------------


def stored_order(week: dt.date) -> list[tuple[uuid.UUID, str]]:
    """The week's score ids and pseudonyms in the order the table stores them, which a dump lists them in."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT id, pseudonym FROM scores_score WHERE week = %s ORDER BY ctid", [week])
        return [(row[0], row[1]) for row in cursor.fetchall()]


def values_by_pseudonym() -> dict[str, tuple[dt.date, int]]:
    return {row.pseudonym: (row.week, row.value) for row in Score.objects.all()}


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("vendor", ["postgresql", "portable"])
def test_the_close_rewrites_the_weeks_scores_under_new_ids_out_of_their_arrival_order(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch, vendor: str
) -> None:
    care = Department.objects.get(organisation=organisation, name="Care")
    for n in range(40):
        score(organisation, value=1 + n % 5, department=care)
    arrived = stored_order(WEEK)
    before = values_by_pseudonym()
    assert len(arrived) == 40  # what a dump shows of an open week: the order people answered in
    # The portable rewrite (the embedded SQLite default; tests/scores/test_weekclose_sqlite.py runs it on
    # SQLite itself) on the same table, where the stored order shows.
    monkeypatch.setattr(connections["default"], "vendor", vendor)

    close(organisation)

    after = stored_order(WEEK)
    # Not one id of the open week's dump is left to line it up with this one, nor its order (1 in 40!).
    ids_before, ids_after = {pk for pk, _ in arrived}, {pk for pk, _ in after}
    assert len(ids_after) == 40 and not ids_before & ids_after
    assert [p for _, p in after] != [p for _, p in arrived]
    assert sorted(p for _, p in after) == sorted(p for _, p in arrived)
    assert values_by_pseudonym() == before  # the same sealed values still open where they are
    assert not Score.objects.filter(department__isnull=False).exists()
    assert figures(WeeklyAggregate.objects.get(organisation=organisation, department=care))[0] == 40


# --- old row versions do not stay readable ----------------------------------------------------------------


def tuples_in_table_file(relation: str) -> list[bytes]:
    """Every tuple PostgreSQL still keeps in the relation's pages, live or dead, as raw bytes (pageinspect),
    as an operator with a copy of the data directory reads them."""
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        cursor.execute("SELECT pg_relation_size(%s) / current_setting('block_size')::int", [relation])
        pages = cursor.fetchone()[0]
        found: list[bytes] = []
        for page in range(pages):
            cursor.execute(
                "SELECT t_data FROM heap_page_items(get_raw_page(%s, %s)) WHERE t_data IS NOT NULL",
                [relation, page],
            )
            found.extend(bytes(row[0]) for row in cursor.fetchall())
        return found


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_the_close_vacuums_so_the_open_weeks_row_versions_are_gone_from_the_table_file(
    organisation: Organisation,
) -> None:
    care = Department.objects.get(organisation=organisation, name="Care")
    # Few rows: one page that never fills, so only VACUUM (not PostgreSQL's opportunistic page pruning)
    # removes the dead versions.
    for n in range(8):
        score(organisation, value=1 + n % 5, department=care)
    old_ids = [row[0] for row in stored_order(WEEK)]
    assert any(pk.bytes in data for pk in old_ids for data in tuples_in_table_file("scores_score"))

    close(organisation)  # commits, then vacuums

    kept = tuples_in_table_file("scores_score")
    assert len(kept) == 8
    assert not any(pk.bytes in data for pk in old_ids for data in kept)


def test_on_the_embedded_sqlite_default_the_close_rewrites_and_leaves_no_old_row_in_the_file(
    tmp_path: Path,
) -> None:
    printed = run_on_embedded_default(str(Path(__file__).with_name("sqlite_week_close.py")), var_dir=tmp_path)
    seen = json.loads(printed.strip().splitlines()[-1])

    assert seen["closed"] and seen["responded"] == 12
    before, after = seen["before"], seen["after"]
    assert all(department is not None for _id, _p, department in before)
    assert all(department is None for _id, _p, department in after)
    assert not {pk for pk, _p, _d in before} & {pk for pk, _p, _d in after}  # new ids
    assert [p for _id, p, _d in after] != [p for _id, p, _d in before]  # not in arrival order (1 in 12!)
    assert sorted(p for _id, p, _d in after) == sorted(p for _id, p, _d in before)
    assert [values[0]["value"] for values in seen["values"]] == [1 + n % 5 for n in range(12)]
    assert seen["participation"] == ["2026-11-09"] * 12  # the sealed participation, rewritten on SQLite
    # Those who did not answer: counted, not counted (paused), and one made inactive, on SQLite too.
    assert seen["silent"] == [["inactive", seen["limit"]], ["active", 0], ["active", 1]]
    assert seen["outcome"][:2] == [2, 1] and len(seen["outcome"][2]) == 1
    assert seen["figures"] == [[None, 12, 33], [after_department_of(seen), 12, 33]]
    # secure_delete: the deleted rows (and their index entries) are overwritten, not left in free space.
    content = Path(seen["file"]).read_bytes()
    assert not [pk for pk, _p, _d in before if pk.encode() in content]
    assert all(pk.encode() in content for pk, _p, _d in after)


def after_department_of(seen: dict[str, Any]) -> int:
    """The department id the frozen figures name (the only department of the run)."""
    return next(department for department, _count, _total in seen["figures"] if department is not None)


# --- key rotation ----------------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_key_rotation_reseals_scores_and_frozen_figures_where_they_live(
    organisation: Organisation, tmp_path: Path
) -> None:
    care = Department.objects.get(organisation=organisation, name="Care")
    authors = [score(organisation, value=value, department=care) for value in (2, 5)]
    close(organisation)
    path = tmp_path / "keys.json"
    keys.write_key_document(path, keys.read_key_document())
    try:
        with override_settings(PREVENTICONS_KEY_FILE=str(path), PREVENTICONS_KEYS=""):
            keys.reset_key_cache()
            old = keys.get_key_set().keyring("field").active
            keyrotation.activate_key(purpose="field", key_id=keyrotation.add_key(purpose="field"))

            report = keyrotation.reencrypt(purposes=["field"])

            assert report.is_complete and not report.unreadable
            assert report.resealed["scores.Score.value"] == 2
            assert (
                report.resealed["scores.WeeklyAggregate.figures"] == 4
            )  # the organisation and 3 departments
            assert keyrotation.values_under_key(purpose="field", key_id=old) == {}
            assert [queries.weekly_values_for(p)[0]["value"] for p in authors] == [2, 5]
            assert figures(WeeklyAggregate.objects.get(department=care)) == (
                2,
                7,
                {1: 0, 2: 1, 3: 0, 4: 0, 5: 1},
            )
    finally:
        keys.reset_key_cache()


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_role_that_cannot_vacuum_the_score_table_says_so_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # PostgreSQL's VACUUM by a role that does not own the table warns only to the client, and removes nothing.
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pv_w1_not_owner') "
            "THEN CREATE ROLE pv_w1_not_owner; END IF; END $$"
        )
        cursor.execute("SET ROLE pv_w1_not_owner")
    try:
        weekclose.vacuum_scores_after_commit()  # outside a transaction: at once
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute("RESET ROLE")

    assert "cannot VACUUM" in caplog.text


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_close_rewrites_every_participant_row_so_xmin_does_not_tell_who_is_active(
    organisation: Organisation,
) -> None:
    # The status is sealed; rewriting only the active rows would let a dump read it from xmin instead.
    people = [
        make_participant(organisation),
        make_participant(organisation, messages_paused=True),
        make_participant(organisation, status=Participant.Status.INVITED),
        make_participant(organisation, status=Participant.Status.DECLINED),
        make_participant(organisation, status=Participant.Status.INACTIVE),
    ]
    stop_participation(participant=make_participant(organisation))
    other = make_participant(make_organisation("Elders"))

    def xmins() -> dict[object, int]:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT id, xmin::text::bigint FROM participants_participant")
            return dict(cursor.fetchall())

    before = xmins()
    close(organisation)
    after = xmins()

    ours = [pk for pk in after if pk != other.pk]
    assert len(ours) == len(people) + 1
    assert all(after[pk] != before[pk] for pk in ours)
    assert len({after[pk] for pk in ours}) == 1  # one transaction for all of them
    assert after[other.pk] == before[other.pk]  # another organisation's close is another batch


def _in_a_transaction_of_its_own(job: Callable[[], object]) -> threading.Thread:
    """Start ``job`` in another thread, on connections (and so transactions) of its own."""

    def run() -> None:
        try:
            job()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_someone_who_stops_while_the_close_runs_stops_once_the_close_has_committed(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missed week from the limit; they stop while the close writes the states it counted.
    participant = make_participant(organisation)
    participant.participation = ParticipationState(
        weeks_without_response=settings.INACTIVE_AFTER_WEEKS - 1
    ).sealed_text()
    participant.save(update_fields=["participation"])
    dossier = make_dossier(participant)
    write = participation._write_states
    stopping: list[threading.Thread] = []

    def stop_meanwhile(rows: Any) -> None:
        stopping.append(
            _in_a_transaction_of_its_own(
                lambda: stop_participation(participant=Participant.objects.get(pk=participant.pk))
            )
        )
        stopping[0].join(timeout=1)
        # The stop takes the organisation's lock, as an import does: it waits for the close.
        assert stopping[0].is_alive()
        write(rows)

    monkeypatch.setattr(participation, "_write_states", stop_meanwhile)
    result = close(organisation)
    stopping[0].join(timeout=30)
    assert not stopping[0].is_alive()
    close_stopped_dossiers()  # the stop queued its dossier's close for the next day's request batch

    participant.refresh_from_db()
    dossier.refresh_from_db()
    assert result.participation.became_inactive == [str(participant.pk)]  # the close came first
    assert participant.status == Participant.Status.STOPPED  # and then the stop, whole
    assert participant.participation is None and participant.pseudonym is None
    assert not dossier.is_open


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_someone_who_comes_back_while_the_close_runs_keeps_the_state_their_return_gave_them(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read as inactive (their state written back as it was), they come back before the close writes: a
    # return takes no organisation lock, so it commits first, and the close must not undo it.
    participant = make_participant(organisation, status=Participant.Status.INACTIVE)
    participant.participation = ParticipationState(
        last_response_week=WEEK - dt.timedelta(weeks=5), weeks_without_response=4
    ).sealed_text()
    participant.save(update_fields=["participation"])
    write = participation._write_states

    def return_first(rows: Any) -> None:
        returning = _in_a_transaction_of_its_own(
            lambda: reactivate_participant(participant=Participant.objects.get(pk=participant.pk))
        )
        returning.join(timeout=30)
        assert not returning.is_alive(), "the return waited for the close"
        write(rows)

    monkeypatch.setattr(participation, "_write_states", return_first)
    result = close(organisation)

    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE
    assert result.participation.not_counted == 0 and result.participation.missed == 0  # read as inactive
    # The state the return wrote (no missed weeks), not the inactive one the close had read.
    assert participation_of(participant) == ParticipationState(WEEK - dt.timedelta(weeks=5), 0)


def test_the_batch_per_week_pseudonym_is_the_per_week_pseudonym() -> None:
    of_week = week_pseudonyms(WEEK)
    for pseudonym in (crypto.new_pseudonym(), crypto.new_pseudonym()):
        assert of_week(pseudonym) == week_pseudonym(pseudonym, WEEK)
        assert week_pseudonyms(WEEK + dt.timedelta(days=7))(pseudonym) != of_week(pseudonym)
    with pytest.raises(ValueError, match="needs the participant's pseudonym"):
        of_week("")


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_participant_pages_keep_room_so_the_close_rewrites_rows_in_place() -> None:
    # fillfactor 50 (participants 0021): each close's new row versions fit on their page (HOT updates),
    # instead of going to other pages and into all seven indexes. Performance, not privacy: every row is
    # rewritten either way.
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'participants_participant'")
        (options,) = cursor.fetchone()
    assert "fillfactor=50" in (options or [])


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_rewrite_that_fails_on_the_server_rolls_the_whole_close_back(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL the rewrite runs while the values are opened (pipeline mode): its error surfaces late,
    # but still inside the close's transaction.
    department = Department.objects.create(organisation=organisation, name="Zorg")
    score(organisation, value=4, department=department)
    participant = make_participant(organisation)
    before = raw_scores()

    def failing_rewrite(organisation_id: int, week: dt.date) -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1 / (SELECT count(*) - count(*) FROM scores_score)")

    monkeypatch.setattr(weekclose, "_rewrite", failing_rewrite)
    with pytest.raises(Exception, match="division by zero"):
        close(organisation)

    assert not ClosedWeek.objects.exists() and not WeeklyAggregate.objects.exists()
    assert raw_scores() == before
    assert participation_of(Participant.objects.get(pk=participant.pk)) == ParticipationState()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_two_dumps_around_a_close_do_not_tell_active_from_inactive(organisation: Organisation) -> None:
    # An operator with a dump before and after a close: every row's participation is sealed afresh, also
    # that of someone inactive, whose state the close leaves as it was.
    active = make_participant(organisation)
    inactive = make_participant(organisation, status=Participant.Status.INACTIVE)
    inactive.participation = ParticipationState(WEEK - dt.timedelta(days=35), 4).sealed_text()
    inactive.save(update_fields=["participation"])

    def stored() -> dict[uuid.UUID, str]:
        return dict(
            Participant.objects.filter(pk__in=[active.pk, inactive.pk]).values_list(
                "pk", as_stored("participation")
            )
        )

    before = stored()
    close(organisation)
    after = stored()

    assert all(after[pk] != before[pk] for pk in before)
    inactive.refresh_from_db()
    assert participation_of(inactive) == ParticipationState(WEEK - dt.timedelta(days=35), 4)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_catch_up_close_leaves_someone_made_inactive_the_week_before_as_they_are(
    organisation: Organisation, settings: object
) -> None:
    # The beat was down: two weeks close in one catch-up. They missed the first and answered the second;
    # the first week's close makes them inactive, and the second's must not count them as an active
    # participant who answered.
    settings.INACTIVE_AFTER_WEEKS = 1  # type: ignore[attr-defined]
    participant = make_participant(organisation)
    score(organisation, value=4, department=None, pseudonym=participant.pseudonym)
    close(organisation, WEEK - dt.timedelta(days=7))
    participant.refresh_from_db()
    assert participant.status == Participant.Status.INACTIVE
    before = participation_of(participant)

    result = close(organisation, WEEK)

    participant.refresh_from_db()
    assert participant.status == Participant.Status.INACTIVE
    assert participation_of(participant) == before
    assert result.participation.responded == 0


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_failure_inside_the_pipelined_close_rolls_all_of_it_back(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    participant = make_participant(organisation)
    score(organisation, value=4, department=None, pseudonym=participant.pseudonym)
    stored = Participant.objects.filter(pk=participant.pk).values_list(as_stored("participation"), flat=True)
    before = stored.get()
    opened = weekclose._opened

    def fail(*args: Any) -> Any:
        raise RuntimeError("the values could not be opened")

    monkeypatch.setattr(weekclose, "_opened", fail)
    with pytest.raises(RuntimeError):
        close(organisation)
    assert not ClosedWeek.objects.filter(organisation=organisation, week=WEEK).exists()
    assert stored.get() == before and Score.objects.filter(week=WEEK).count() == 1

    monkeypatch.setattr(weekclose, "_opened", opened)
    result = close(organisation)  # the same connection closes the week afterwards
    assert result.closed and result.participation.responded == 1
