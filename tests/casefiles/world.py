"""A small world for the casemanager's pages: an organisation, linked casemanagers, participants who asked
for help through the real flow (queued request, batch), and their weekly scores."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from casefiles.models import Dossier
from participants import casemanagers
from participants.agreements import record_agreement
from participants.models import Organisation, Participant, StaffUser
from preventicons import crypto
from preventicons.roles import Role
from scores import wellbeing
from scores.submission import record_score
from tests.conftest import make_staff
from tests.factories import ParticipantFactory

ONE_WEEK = dt.timedelta(days=7)


def this_monday() -> dt.date:
    today = timezone.localdate()
    return today - dt.timedelta(days=today.weekday())


def signed_casemanager(username: str, *organisations: Organisation) -> StaffUser:
    """A casemanager whose agreement is recorded, linked to the organisations they serve."""
    user = make_staff(username, Role.CASEMANAGER)
    record_agreement(casemanager=user, signed_on=dt.date(2026, 1, 5), signer=username, document=b"agreement")
    for organisation in organisations:
        casemanagers.link_casemanager(organisation=organisation, casemanager=user)
    return user


def ask_for_help(participant: Participant, channel: str = "email") -> Dossier:
    """The participant asks, the batch takes it up: the dossier as the real flow opens it."""
    wellbeing.request_help(
        participant=participant, channel=channel, consent_text_version=wellbeing.CONTACT_CONSENT_VERSION
    )
    wellbeing.take_up_help_requests()
    assert participant.pseudonym
    return Dossier.objects.get(pseudonym_index=crypto.casefiles_index(participant.pseudonym))


def close_stopped_dossiers() -> wellbeing.HelpBatch:
    """The first request batch of the next day: it closes the dossiers of the stops queued before it (a stop
    only queues its close, participants.requestqueue)."""
    return wellbeing.take_up_help_requests(today=timezone.localdate() + dt.timedelta(days=1))


def add_weeks(participant: Participant, values: list[int | None], *, last: dt.date | None = None) -> None:
    """Scores for consecutive weeks ending with ``last`` (this week by default); None leaves a week out."""
    assert participant.pseudonym
    end = last or this_monday()
    for back, value in enumerate(reversed(values)):
        if value is not None:
            record_score(
                pseudonym=participant.pseudonym,
                week=end - ONE_WEEK * back,
                value=value,
                organisation_id=participant.organisation_id,
                department_id=participant.department_id,
            )


def active_participant(organisation: Organisation, **fields: object) -> Participant:
    return ParticipantFactory.create(organisation=organisation, status=Participant.Status.ACTIVE, **fields)


@dataclass
class World:
    organisation: Organisation
    anna: StaffUser  # gets the dossiers
    bert: StaffUser  # linked to the same organisation, assigned nothing
    participant: Participant
    dossier: Dossier


def build_world(organisation: Organisation) -> World:
    anna = signed_casemanager("cm-anna", organisation)
    participant = active_participant(
        organisation, name="Jan de Vries", email_address="jan.devries@example.nl"
    )
    add_weeks(participant, [4, 4, 5, 4, 2])
    dossier = ask_for_help(participant)
    # Linked after the dossier went to Anna: the fewest-open rule would otherwise split them.
    bert = signed_casemanager("cm-bert", organisation)
    return World(organisation, anna, bert, participant, dossier)
