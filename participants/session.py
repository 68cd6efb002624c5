"""The participant's short-lived session: reached through a link, never through a password.

Only the participant's random id is kept in the session, and only for a short while: whoever picks up an
unattended phone should find the account closed again.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from participants.models import Participant

SESSION_KEY = "participant_id"


def start_participant_session(request: HttpRequest, participant: Participant) -> None:
    """Open the account for this participant on this browser (a fresh session key, against fixation)."""
    request.session.cycle_key()
    request.session[SESSION_KEY] = str(participant.pk)
    request.session.set_expiry(settings.PARTICIPANT_SESSION_SECONDS)


def end_participant_session(request: HttpRequest) -> None:
    request.session.flush()


def current_participant(request: HttpRequest) -> Participant | None:
    """The participant whose session this is, if it is still valid and they have not stopped."""
    participant_id = request.session.get(SESSION_KEY)
    if not participant_id:
        return None
    participant = (
        Participant.objects.filter(pk=participant_id).exclude(status=Participant.Status.STOPPED).first()
    )
    if participant is None:
        request.session.flush()
    return participant
