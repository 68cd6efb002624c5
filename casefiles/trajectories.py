"""Trajectories: a kind, a start, sessions (planned and held, each dated), an end, and a measured outcome.

Each change is logged (the access log's "changed a trajectory") in the transaction of the change itself.
A closed dossier is read only: nothing here changes its trajectories. The outcome is never typed: it is
measured from the participant's weekly scores around the trajectory (casefiles.outcome.measure_outcome).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from casefiles import accesslog, retention
from casefiles.models import AccessLogEntry, Dossier, Trajectory, TrajectorySession
from casefiles.outcome import Measured, Outcome, last_week_measured, measure_outcome, weeks_read
from participants.models import StaffUser
from preventicons import crypto
from preventicons.dbrouter import CASEFILES
from scores import queries as score_queries
from scores.weekclose import is_week_closed, monday_of, previous_week


class TrajectoryRefused(Exception):
    """The change cannot be made; the message says why, in the casemanager's words. Nothing was written."""


def kinds() -> list[tuple[str, str]]:
    return [(code, str(label)) for code, label in settings.TRAJECTORY_KINDS]


def kind_label(code: str) -> str:
    return dict(kinds()).get(code, code)


def _refuse_if_read_only(dossier: Dossier) -> None:
    if not dossier.is_open:
        raise TrajectoryRefused(_("This dossier is closed: it can no longer be changed."))


def _not_in_future(day: dt.date, what: str) -> None:
    if day > timezone.localdate():
        raise TrajectoryRefused(_("The %(what)s cannot be in the future.") % {"what": what})


def _log(dossier: Dossier, user: StaffUser, request: HttpRequest | None, detail: str) -> None:
    accesslog.record(
        AccessLogEntry.Action.CHANGE_TRAJECTORY,
        user=user,
        dossier_number=dossier.number,
        request=request,
        detail=detail,
    )


def start_trajectory(
    dossier: Dossier, *, kind: str, started_on: dt.date, user: StaffUser, request: HttpRequest | None = None
) -> Trajectory:
    _refuse_if_read_only(dossier)
    if kind not in dict(kinds()):
        raise TrajectoryRefused(_("Choose one of the kinds of trajectory offered."))
    _not_in_future(started_on, _("start date"))
    with transaction.atomic(using=CASEFILES):
        trajectory = Trajectory.objects.create(dossier=dossier, kind=kind, started_on=started_on)
        _log(dossier, user, request, f"started {kind}")
    return trajectory


def _check_held_on(trajectory: Trajectory, held_on: dt.date) -> None:
    _not_in_future(held_on, _("day the session was held"))
    if held_on < trajectory.started_on:
        raise TrajectoryRefused(_("A session cannot be held before the trajectory started."))


def add_session(
    trajectory: Trajectory,
    *,
    planned_on: dt.date,
    held_on: dt.date | None,
    user: StaffUser,
    request: HttpRequest | None = None,
) -> TrajectorySession:
    _refuse_if_read_only(trajectory.dossier)
    if trajectory.ended_on is not None:
        raise TrajectoryRefused(_("This trajectory has ended: add no more sessions to it."))
    if planned_on < trajectory.started_on:
        raise TrajectoryRefused(_("A session cannot be planned before the trajectory started."))
    if held_on is not None:
        _check_held_on(trajectory, held_on)
    with transaction.atomic(using=CASEFILES):
        session = TrajectorySession.objects.create(
            trajectory=trajectory, planned_on=planned_on, held_on=held_on
        )
        _log(trajectory.dossier, user, request, "added a session" + (" (held)" if held_on else ""))
    return session


def mark_held(
    session: TrajectorySession, *, held_on: dt.date, user: StaffUser, request: HttpRequest | None = None
) -> None:
    trajectory = session.trajectory
    _refuse_if_read_only(trajectory.dossier)
    _check_held_on(trajectory, held_on)
    with transaction.atomic(using=CASEFILES):
        # Only a session not yet held: a double click, or a second tab, changes nothing the second time.
        changed = TrajectorySession.objects.filter(pk=session.pk, held_on__isnull=True).update(
            held_on=held_on
        )
        if changed:
            _log(trajectory.dossier, user, request, "session held")
    session.refresh_from_db()


def end_trajectory(
    trajectory: Trajectory, *, ended_on: dt.date, user: StaffUser, request: HttpRequest | None = None
) -> None:
    _refuse_if_read_only(trajectory.dossier)
    _not_in_future(ended_on, _("end date"))
    if ended_on < trajectory.started_on:
        raise TrajectoryRefused(_("A trajectory cannot end before it started."))
    with transaction.atomic(using=CASEFILES):
        changed = Trajectory.objects.filter(pk=trajectory.pk, ended_on__isnull=True).update(ended_on=ended_on)
        if changed:
            _log(trajectory.dossier, user, request, f"ended {trajectory.kind}")
    trajectory.refresh_from_db()


@dataclass(frozen=True)
class TrajectoryView:
    trajectory: Trajectory
    kind_label: str
    sessions: list[TrajectorySession]
    held: int
    measured: Measured


def trajectories_of(dossier: Dossier, values: list[tuple[dt.date, int]]) -> list[TrajectoryView]:
    """The dossier's trajectories, newest first, each with its sessions and measured outcome."""
    found = dossier.trajectories.prefetch_related("sessions").order_by("-started_on", "pk")
    views = []
    for trajectory in found:
        sessions = sorted(
            trajectory.sessions.all(), key=lambda session: (session.planned_on, str(session.pk))
        )
        views.append(
            TrajectoryView(
                trajectory=trajectory,
                kind_label=kind_label(trajectory.kind),
                sessions=sessions,
                held=sum(1 for session in sessions if session.held_on is not None),
                measured=measure_outcome(
                    values, started_on=trajectory.started_on, ended_on=trajectory.ended_on
                ),
            )
        )
    return views


# --- What the notary's ledger records (notary.feed) -------------------------------------------------------


@dataclass(frozen=True)
class HeldSession:
    id: uuid.UUID
    held_on: dt.date


@dataclass(frozen=True)
class LedgerTrajectory:
    """One trajectory as the notary's ledger records it: no dossier number, no score, nothing typed."""

    id: uuid.UUID
    organisation_id: int
    kind: str
    started_on: dt.date
    ended_on: dt.date | None
    held: tuple[HeldSession, ...]


def for_ledger(*, today: dt.date | None = None) -> list[LedgerTrajectory]:
    """Every trajectory the ledger may still record, with its held sessions.

    Left out: a trajectory of a dossier with no organisation (the ledger names one with every trajectory
    fact), and one of a dossier past its unlink term (casefiles.retention), whose way back from the
    notary's reference retention destroys: recording it again would make a new one.
    """
    today = today or timezone.localdate()
    term_ended_by = retention.unlink_term_ended_by(today)
    found = (
        Trajectory.objects.filter(dossier__organisation_id__isnull=False)
        .select_related("dossier")
        .only(
            "pk",
            "kind",
            "started_on",
            "ended_on",
            "dossier__organisation_id",
            "dossier__is_open",
            "dossier__closed_on",
        )
        .prefetch_related("sessions")
        .order_by("pk")
    )
    recorded = []
    for trajectory in found:
        # Whether the dossier is closed, and since when, is sealed: decided here, not in the query.
        if trajectory.dossier.closed_by(term_ended_by):
            continue
        organisation_id = trajectory.dossier.organisation_id
        assert organisation_id is not None  # filtered above
        held = sorted(
            (
                HeldSession(id=session.pk, held_on=session.held_on)
                for session in trajectory.sessions.all()
                if session.held_on is not None
            ),
            key=lambda session: (session.held_on, str(session.id)),
        )
        recorded.append(
            LedgerTrajectory(
                id=trajectory.pk,
                organisation_id=organisation_id,
                kind=trajectory.kind,
                started_on=trajectory.started_on,
                ended_on=trajectory.ended_on,
                held=tuple(held),
            )
        )
    return recorded


def final_outcomes(
    trajectory_ids: Iterable[uuid.UUID], *, today: dt.date | None = None
) -> dict[uuid.UUID, Outcome]:
    """The measured outcome of each of these trajectories whose outcome can no longer change.

    Final once the trajectory has ended and the last week its outcome reads (casefiles.outcome) has ended
    and is closed for its organisation, so no score can join it any more. A stopped participant's dossier
    holds a random P (Dossier.forget_participant), which reaches no score: it is measured when anyone's
    would be and reads not measurable, so the outcome's arrival in the ledger does not tell who stopped.
    One without P (unlinked) is not measurable for good, but it too waits for that week to end. A
    trajectory still open, or inside its window, is left out: the caller asks again later.
    """
    ended_by = previous_week(today=today or timezone.localdate())
    outcomes: dict[uuid.UUID, Outcome] = {}
    found = (
        Trajectory.objects.filter(pk__in=list(trajectory_ids), ended_on__isnull=False)
        .select_related("dossier")
        .order_by("pk")
    )
    for trajectory in found:
        ended_on, dossier = trajectory.ended_on, trajectory.dossier
        assert ended_on is not None  # filtered above
        last = last_week_measured(ended_on)
        if last > ended_by:
            continue
        if not dossier.pseudonym:
            outcomes[trajectory.pk] = Outcome.NOT_MEASURABLE
            continue
        if dossier.organisation_id is None or not is_week_closed(
            organisation_id=dossier.organisation_id, week=last
        ):
            continue
        weeks = weeks_read(started_on=trajectory.started_on, ended_on=ended_on)
        values = [
            (dt.date.fromisoformat(row["week"]), row["value"])
            for row in score_queries.weekly_values_for(dossier.pseudonym, weeks=weeks)
        ]
        outcomes[trajectory.pk] = measure_outcome(
            values, started_on=trajectory.started_on, ended_on=ended_on
        ).outcome
    return outcomes


@dataclass(frozen=True)
class EndedTrajectory:
    """A trajectory that has ended, as its participant may sign it off (notary.signoffs): no dossier number,
    no dates finer than the week it ended."""

    id: uuid.UUID
    kind: str
    # The Monday of the week it ended.
    ended_week: dt.date
    # The dossier's organisation (an id into the identity store), None while the dossier has none.
    organisation_id: int | None


def ended_trajectories_for(pseudonym: str) -> list[EndedTrajectory]:
    """The ended trajectories of the dossier (open or closed) found by the participant's pseudonym P, the
    most recently ended first; none for an empty P or one without a dossier.

    A dossier unlinked by a stop or by retention can no longer be found by P, so its trajectories are no
    one's to sign off. The participant reads this about themselves: nothing is logged as a staff look.
    """
    if not pseudonym:
        return []
    found = (
        Trajectory.objects.filter(
            dossier__pseudonym_index=crypto.casefiles_index(pseudonym), ended_on__isnull=False
        )
        .order_by("-ended_on", "pk")
        .values_list("pk", "kind", "ended_on", "dossier__organisation_id")
    )
    ended = []
    for pk, kind, ended_on, organisation_id in found:
        assert ended_on is not None  # filtered above
        ended.append(
            EndedTrajectory(id=pk, kind=kind, ended_week=monday_of(ended_on), organisation_id=organisation_id)
        )
    return ended
