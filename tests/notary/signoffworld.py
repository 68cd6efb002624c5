"""Participants with an ended trajectory, as the sign-off and feedback tests need them: a help request
through the real flow (queued, batch), a trajectory started and ended by the casemanager, and its reference
made as the ledger's nightly feed makes it."""

from __future__ import annotations

import datetime as dt
import itertools
import json

from django.utils import timezone

from casefiles import trajectories
from casefiles.models import Dossier, Trajectory
from notary import references, signoffs
from participants.models import Organisation, Participant, StaffUser
from tests.casefiles.world import ask_for_help
from tests.participants.test_stop import make_active

_numbers = itertools.count(1)


def participant_in(organisation: Organisation, *, name: str = "Jan de Vries", email: str = "") -> Participant:
    """An active participant with an address and a mobile of their own, as the account link needs them."""
    number = next(_numbers)
    return make_active(
        organisation, name=name, email=email or f"deelnemer{number}@example.nl", mobile=f"+3161{number:07d}"
    )


def ended_trajectory(
    participant: Participant,
    casemanager: StaffUser,
    *,
    kind: str = "coaching",
    ended_on: dt.date | None = None,
    with_reference: bool = True,
) -> tuple[Dossier, Trajectory]:
    """The participant asks for help; their casemanager runs a trajectory that ended (today by default)."""
    dossier = ask_for_help(participant)
    end = ended_on or timezone.localdate()
    trajectory = trajectories.start_trajectory(
        dossier, kind=kind, started_on=end - dt.timedelta(days=30), user=casemanager
    )
    trajectories.end_trajectory(trajectory, ended_on=end, user=casemanager)
    if with_reference:
        references.reference_for(trajectory.pk)
    return dossier, trajectory


def choice_of(participant: Participant) -> str:
    """The form's token for the participant's one open trajectory."""
    (found,) = signoffs.open_sign_offs(participant=participant)
    return found.choice


def sign_off(
    participant: Participant, *, rating: str = "", remark: str = "", took_place: str = "yes"
) -> None:
    signoffs.queue_sign_off(
        participant=participant,
        choice=choice_of(participant),
        took_place=took_place,
        rating=rating,
        remark=remark,
    )


def pending_feedback() -> list[dict[str, object]]:
    """What the sign-off batch left to be mixed into Feedback rows, opened: one per recorded sign-off."""
    from notary.models import PendingFeedback

    return [json.loads(row.sealed or "{}") for row in PendingFeedback.objects.all()]
