"""Demo data of the casefiles app: the demo casemanager's dossiers in different states.

Called by ``manage.py seed_demo`` after the participants and scores apps' demo data (half a year of scores).
Each dossier is opened as the platform opens one: the participant asks for contact, the help-request batch
takes it up and gives the dossier to the demo casemanager (linked to every demo organisation). Then the
casemanager's work is done through the same operations the pages call: notes, trajectories, sessions, a
close. Safe to run again: a casemanager who already has dossiers gets no more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from casefiles import notes, operations, trajectories
from casefiles.models import Dossier, ProgressNote
from participants import queries
from participants.models import Organisation, Participant, StaffUser
from preventicons import crypto
from scores import wellbeing

DEMO_CASEMANAGER = "demo-casemanager"
DEMO_DOSSIERS = 5


def _ask(participant: Participant, channel: str) -> None:
    wellbeing.request_help(
        participant=participant,
        channel=channel,
        consent_text_version=wellbeing.CONTACT_CONSENT_VERSION,
    )


def _work(dossiers: list[Dossier], casemanager: StaffUser, today: dt.date) -> None:
    """Five states: new; new and overdue; in a coaching trajectory; quiet; closed after counselling."""
    new, overdue, coaching, quiet, closed = dossiers
    del new  # waits for its first contact, as asked today
    overdue.awaiting_contact_since = today - dt.timedelta(days=6)  # sealed to the row: saved
    overdue.save(update_fields=["awaiting_contact_since"])

    notes.add_note(
        coaching, kind="intake", text="Intake telefonisch: werkdruk en slecht slapen.", user=casemanager
    )
    trajectory = trajectories.start_trajectory(
        coaching, kind="coaching", started_on=today - dt.timedelta(weeks=3), user=casemanager
    )
    for weeks_ago, held in ((3, True), (2, True), (0, False)):
        day = today - dt.timedelta(weeks=weeks_ago)
        trajectories.add_session(trajectory, planned_on=day, held_on=day if held else None, user=casemanager)
    notes.add_note(
        coaching,
        kind="session",
        text="Tweede gesprek: planning besproken, gaat iets beter.",
        user=casemanager,
    )

    queued = notes.add_note(
        quiet, kind="intake", text="Intake: wil eerst zelf verder, belt terug als nodig.", user=casemanager
    )
    # Written to the notes store now rather than by the next batch, so its day can be set back: the day is
    # sealed to the row, set on the note and saved, never update()d in place.
    notes.take_up_queued_notes(force=True)
    intake = ProgressNote.objects.get(pk=queued.id)
    intake.written_on = today - dt.timedelta(days=20)
    intake.save(update_fields=["written_on"])

    notes.add_note(closed, kind="intake", text="Intake: spanning thuis en op het werk.", user=casemanager)
    counselling = trajectories.start_trajectory(
        closed, kind="counselling", started_on=today - dt.timedelta(weeks=5), user=casemanager
    )
    trajectories.add_session(
        counselling, planned_on=counselling.started_on, held_on=counselling.started_on, user=casemanager
    )
    trajectories.end_trajectory(counselling, ended_on=today - dt.timedelta(weeks=4), user=casemanager)
    operations.close_with_note(
        closed, text="Traject afgerond; deelnemer weet de weg als het nodig is.", user=casemanager
    )
    # Demo data: written to the notes store at once, as the first batch after seeding would.
    notes.take_up_queued_notes(force=True)


def seed(*, write: Callable[[str], None]) -> None:
    casemanager = StaffUser.objects.filter(username=DEMO_CASEMANAGER).first()
    if casemanager is None:
        write("casefiles: no demo casemanager, no demo dossiers")
        return
    if Dossier.objects.filter(casemanager_id=casemanager.pk).exists():
        write(f"casefiles: {DEMO_CASEMANAGER} already has dossiers (make clean starts afresh)")
        return
    asking = []
    for organisation in Organisation.objects.order_by("pk"):
        asking.extend(queries.active_participants(organisation.pk))
    asking = asking[:DEMO_DOSSIERS]
    if len(asking) < DEMO_DOSSIERS:
        write("casefiles: too few active demo participants for the demo dossiers")
        return
    for number, participant in enumerate(asking):
        _ask(participant, "phone" if number % 2 else "email")
    wellbeing.take_up_help_requests()
    dossiers = [
        Dossier.objects.get(pseudonym_index=crypto.casefiles_index(participant.pseudonym or ""))
        for participant in asking
    ]
    _work(dossiers, casemanager, timezone.localdate())
    write(
        f"casefiles: {DEMO_DOSSIERS} dossiers for {DEMO_CASEMANAGER} (new, overdue, in coaching, quiet, "
        f"closed): {settings.SITE_URL}{reverse('casefiles:dashboard')}"
    )
