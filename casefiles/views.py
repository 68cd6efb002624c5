"""The casemanager's pages under /dossiers/: the dashboard, the dossier, and what is done on it.

Thin: casefiles.assignment decides what may be opened, casefiles.dashboard, notes, trajectories and
operations do the work, and every look at individual data is written to the access log.

A dossier is found by its number among the dossiers within the casemanager's reach only, with the same
queries whatever the number: another casemanager's, a stopped or inactive participant's, a
closed-and-unlinked one, a number that does not exist and one with a wrong check character all answer the
same 404, before anything is opened.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from casefiles import (
    accesslog,
    assignment,
    chart,
    dashboard,
    numbers,
    operations,
    outcome,
    trajectories,
    workdays,
)
from casefiles import notes as casenotes
from casefiles.forms import CloseForm, EndForm, HeldForm, NoteForm, SearchForm, SessionForm, TrajectoryForm
from casefiles.models import AccessLogEntry, Dossier, Trajectory, TrajectorySession
from participants import livecontact
from participants.models import StaffUser
from preventicons.roles import Role, staff_required
from scores import queries as score_queries

Action = AccessLogEntry.Action
# Who else acted on a dossier, shown to its casemanager: the deputy's looks, the admin's reassignment.
SHOWN_OTHERS = 50


def _staff(request: HttpRequest) -> StaffUser:
    user = request.user
    assert isinstance(user, StaffUser)  # staff_required let only a verified staff login through
    return user


def _find(request: HttpRequest, number: str) -> tuple[Dossier, assignment.Reach]:
    """The dossier of this number within reach, or Http404: the same queries for every refusal."""
    reach = assignment.reach_of(_staff(request))
    dossier = assignment.visible_dossiers(reach).filter(number=number[: numbers.LENGTH + 1]).first()
    # may_open runs the same identity queries when nothing was found: every refusal takes alike.
    if not assignment.may_open(dossier, reach) or dossier is None:
        raise Http404
    return dossier, reach


def _look(
    request: HttpRequest, dossier: Dossier, reach: assignment.Reach, action: str, detail: str = ""
) -> None:
    """Log a look or an act; a deputy's look is logged as one, naming whose dossier it is."""
    if reach.is_deputy_for(dossier) and action == Action.VIEW_DOSSIER:
        action = Action.DEPUTY_VIEW
        detail = f"standing in for staff member {dossier.casemanager_id}"
    accesslog.record(
        action, user=_staff(request), dossier_number=dossier.number, request=request, detail=detail
    )


def _names(identity: livecontact.LiveIdentity | None) -> list[str]:
    """The participant's names as a note may not hold them: whole, each part, and the surname with its
    particles ("de Vries", so that "De Vries" is found as one part rather than "Vries" inside it)."""
    if identity is None:
        return []
    words = identity.name.split(maxsplit=1)
    return [identity.name, *identity.first_names, *identity.last_names, *words[1:]]


def _identity(dossier: Dossier) -> livecontact.LiveIdentity | None:
    """The participant's name and chosen contact, read live; never stored, never logged."""
    participant = assignment.participant_of(dossier)
    if participant is None:
        return None
    participant_id, pseudonym = participant
    return livecontact.live_identity(
        participant_id=participant_id, pseudonym=pseudonym, channel=dossier.contact_channel or ""
    )


@staff_required(Role.CASEMANAGER)
@never_cache
@require_GET
def dashboard_page(request: HttpRequest) -> HttpResponse:
    user = _staff(request)
    reach = assignment.reach_of(user)
    search = SearchForm(request.GET or None)
    if search.is_valid():
        number = numbers.parse(search.cleaned_data["number"]) or ""
        found = assignment.visible_dossiers(reach).filter(number=number).first() if number else None
        if found is not None and assignment.may_open(found, reach):
            accesslog.record(Action.SEARCH, user=user, dossier_number=found.number, request=request)
            return redirect("casefiles:dossier", number=found.number)
        # The string searched for is not kept: a miss is logged without it.
        accesslog.record(Action.SEARCH, user=user, dossier_number="", request=request, detail="no match")
        search.add_error(
            "number", _("None of your dossiers has this number. Check the number and try again.")
        )
    board = dashboard.dashboard_for(reach)
    accesslog.record(
        Action.VIEW_DASHBOARD,
        user=user,
        dossier_number="",
        request=request,
        detail=f"{len(board.all_rows)} dossiers",
    )
    return render(
        request,
        "casefiles/dashboard.html",
        {
            "board": board,
            "search": search,
            "today": timezone.localdate(),
            "quiet_days": settings.DOSSIER_QUIET_DAYS,
            "working_days": settings.DOSSIER_FIRST_CONTACT_WORKING_DAYS,
        },
    )


def _render_dossier(
    request: HttpRequest,
    dossier: Dossier,
    reach: assignment.Reach,
    *,
    contact: livecontact.LiveIdentity | None = None,
    contact_shown: bool = False,
    bound: dict[str, forms.Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    values = score_queries.weekly_values_for(dossier.pseudonym or "")
    pairs = [(dt.date.fromisoformat(row["week"]), row["value"]) for row in values]
    if dossier.closed_on is not None:
        # The help ended: weeks answered after it are no longer the casemanager's to see, except the few
        # that measure the outcome of a trajectory ending at the close (casefiles.outcome).
        last = outcome.last_week_measured(dossier.closed_on)
        pairs = [(week, value) for week, value in pairs if week <= last]
    today = timezone.localdate()
    score_chart = chart.score_chart(
        pairs,
        title=_("Weekly scores of dossier %(number)s") % {"number": dossier.number},
        until=min(today, dossier.closed_on) if dossier.closed_on else today,
    )
    bound = bound or {}
    found = trajectories.trajectories_of(dossier, pairs)
    others = (
        AccessLogEntry.objects.filter(dossier_number=dossier.number)
        .exclude(staff_user_id=_staff(request).pk)
        .order_by("-sequence")[:SHOWN_OTHERS]
    )
    context: dict[str, Any] = {
        "dossier": dossier,
        "is_deputy": reach.is_deputy_for(dossier),
        "chart": score_chart,
        "answered": [point for point in score_chart.points if point.value is not None],
        "notes": casenotes.notes_of(dossier),
        "trajectories": [
            {
                "view": view,
                "session_form": bound.get(f"session-{view.trajectory.pk}")
                or SessionForm(prefix=f"session-{view.trajectory.pk}"),
                "end_form": bound.get(f"end-{view.trajectory.pk}")
                or EndForm(prefix=f"end-{view.trajectory.pk}"),
                # Each session with the form that marks it held (shown while it is not).
                "sessions": [
                    (session, bound.get(f"held-{session.pk}") or HeldForm(prefix=f"held-{session.pk}"))
                    for session in view.sessions
                ],
            }
            for view in found
        ],
        "note_form": bound.get("note") or NoteForm(prefix="note"),
        "close_form": bound.get("close") or CloseForm(prefix="close"),
        "trajectory_form": bound.get("trajectory") or TrajectoryForm(prefix="trajectory"),
        "contact": contact,
        "contact_shown": contact_shown,
        "others": list(others),
        "due_on": workdays.first_contact_due(dossier.awaiting_contact_since)
        if dossier.awaiting_contact_since
        else None,
        "today": today,
    }
    return render(request, "casefiles/dossier.html", context, status=status)


@staff_required(Role.CASEMANAGER)
@never_cache
@require_GET
def dossier_page(request: HttpRequest, number: str) -> HttpResponse:
    dossier, reach = _find(request, number)
    _look(request, dossier, reach, Action.VIEW_DOSSIER)
    return _render_dossier(request, dossier, reach)


@staff_required(Role.CASEMANAGER)
@never_cache
@require_POST
def reveal_contact(request: HttpRequest, number: str) -> HttpResponse:
    """The name and the one channel the participant chose, on an explicit action only; every reveal logged."""
    dossier, reach = _find(request, number)
    # A closed dossier is read only, and the request for contact it answered is over: no name or address.
    identity = _identity(dossier) if dossier.is_open else None
    _look(request, dossier, reach, Action.REVEAL_CONTACT, "" if identity else "nothing to show")
    return _render_dossier(request, dossier, reach, contact=identity, contact_shown=dossier.is_open)


def _back(dossier: Dossier, anchor: str = "") -> HttpResponse:
    return redirect(reverse("casefiles:dossier", kwargs={"number": dossier.number}) + anchor, permanent=False)


def _refused(
    request: HttpRequest, dossier: Dossier, reach: assignment.Reach, key: str, form: forms.Form
) -> HttpResponse:
    """The dossier page again with the refused form: a look like any other, so logged like one."""
    _look(request, dossier, reach, Action.VIEW_DOSSIER)
    return _render_dossier(request, dossier, reach, bound={key: form}, status=400)


@staff_required(Role.CASEMANAGER)
@never_cache
@require_POST
def add_note(request: HttpRequest, number: str) -> HttpResponse:
    dossier, reach = _find(request, number)
    form = NoteForm(request.POST, prefix="note")
    if not dossier.is_open:
        form.add_error(None, _("This dossier is closed: it can no longer be changed."))
        return _refused(request, dossier, reach, "note", form)
    if form.is_valid():
        try:
            casenotes.add_note(
                dossier,
                kind=form.cleaned_data["kind"],
                text=form.cleaned_data["text"],
                user=_staff(request),
                names=_names(_identity(dossier)),
                request=request,
            )
        except casenotes.NoteRefused as refused:
            _explain(form, "text", refused)
        except casenotes.DossierClosed:
            form.add_error(None, _("This dossier is closed: it can no longer be changed."))
        else:
            messages.success(request, _("The note was added."))
            return _back(dossier, "#notes")
    return _refused(request, dossier, reach, "note", form)


def _explain(form: forms.Form, field: str, refused: casenotes.NoteRefused) -> None:
    for finding in refused.findings:
        form.add_error(
            field, _("“%(part)s”: %(reason)s") % {"part": finding.excerpt, "reason": finding.reason}
        )


@staff_required(Role.CASEMANAGER)
@never_cache
@require_POST
def close(request: HttpRequest, number: str) -> HttpResponse:
    dossier, reach = _find(request, number)
    form = CloseForm(request.POST, prefix="close")
    if form.is_valid():
        try:
            operations.close_with_note(
                dossier,
                text=form.cleaned_data["text"],
                user=_staff(request),
                names=_names(_identity(dossier)),
                request=request,
            )
        except casenotes.NoteRefused as refused:
            _explain(form, "text", refused)
        else:
            messages.success(request, _("The dossier is closed."))
            return _back(dossier)
    return _refused(request, dossier, reach, "close", form)


def _change_trajectory(
    request: HttpRequest,
    dossier: Dossier,
    reach: assignment.Reach,
    *,
    key: str,
    form: forms.Form,
    change: Callable[[dict[str, Any]], object],
    done: str,
) -> HttpResponse:
    """One change to a trajectory: the form checked, the change made (logged by casefiles.trajectories),
    or the dossier page again with why not (TrajectoryRefused, nothing written)."""
    if form.is_valid():
        try:
            change(form.cleaned_data)
        except trajectories.TrajectoryRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, done)
            return _back(dossier, "#trajectories")
    return _refused(request, dossier, reach, key, form)


@staff_required(Role.CASEMANAGER)
@never_cache
@require_POST
def start_trajectory(request: HttpRequest, number: str) -> HttpResponse:
    dossier, reach = _find(request, number)
    return _change_trajectory(
        request,
        dossier,
        reach,
        key="trajectory",
        form=TrajectoryForm(request.POST, prefix="trajectory"),
        change=lambda data: trajectories.start_trajectory(
            dossier, kind=data["kind"], started_on=data["started_on"], user=_staff(request), request=request
        ),
        done=_("The trajectory was started."),
    )


def _trajectory(dossier: Dossier, trajectory_id: uuid.UUID) -> Trajectory:
    found = Trajectory.objects.filter(pk=trajectory_id, dossier=dossier).select_related("dossier").first()
    if found is None:
        raise Http404
    return found


@staff_required(Role.CASEMANAGER)
@never_cache
@require_POST
def add_session(request: HttpRequest, number: str, trajectory_id: uuid.UUID) -> HttpResponse:
    dossier, reach = _find(request, number)
    trajectory = _trajectory(dossier, trajectory_id)
    key = f"session-{trajectory.pk}"
    return _change_trajectory(
        request,
        dossier,
        reach,
        key=key,
        form=SessionForm(request.POST, prefix=key),
        change=lambda data: trajectories.add_session(
            trajectory,
            planned_on=data["planned_on"],
            held_on=data["held_on"],
            user=_staff(request),
            request=request,
        ),
        done=_("The session was added."),
    )


@staff_required(Role.CASEMANAGER)
@never_cache
@require_POST
def session_held(request: HttpRequest, number: str, session_id: uuid.UUID) -> HttpResponse:
    dossier, reach = _find(request, number)
    session = (
        TrajectorySession.objects.filter(pk=session_id, trajectory__dossier=dossier)
        .select_related("trajectory__dossier")
        .first()
    )
    if session is None:
        raise Http404
    key = f"held-{session.pk}"
    return _change_trajectory(
        request,
        dossier,
        reach,
        key=key,
        form=HeldForm(request.POST, prefix=key),
        change=lambda data: trajectories.mark_held(
            session, held_on=data["held_on"], user=_staff(request), request=request
        ),
        done=_("The session is marked as held."),
    )


@staff_required(Role.CASEMANAGER)
@never_cache
@require_POST
def end_trajectory(request: HttpRequest, number: str, trajectory_id: uuid.UUID) -> HttpResponse:
    dossier, reach = _find(request, number)
    trajectory = _trajectory(dossier, trajectory_id)
    key = f"end-{trajectory.pk}"
    return _change_trajectory(
        request,
        dossier,
        reach,
        key=key,
        form=EndForm(request.POST, prefix=key),
        change=lambda data: trajectories.end_trajectory(
            trajectory, ended_on=data["ended_on"], user=_staff(request), request=request
        ),
        done=_("The trajectory has ended."),
    )
