"""A participant on the address list, as the tests of the participant journey need one."""

from __future__ import annotations

from typing import Any

from participants.models import Invitation, Organisation, Participant
from tests.factories import ParticipantFactory


def make_participant(
    organisation: Organisation,
    *,
    email: str = "jan@example.nl",
    mobile: str = "+31612345678",
    status: str = Participant.Status.INVITED,
    **fields: Any,
) -> Participant:
    """Jan, invited by default, with his contact data sealed and indexed as the import leaves it."""
    fields.setdefault("was_invited", False)
    participant: Participant = ParticipantFactory.create(
        organisation=organisation,
        name="Jan de Vries",
        status=status,
        email_address=email,
        mobile_number=mobile,
        **fields,
    )
    return participant


def decline_through_the_batch(invitation: Invitation) -> bool:
    """Say no through this opened link as the page does (queued), then run the batch that makes it."""
    from participants import requestqueue
    from scores import wellbeing

    if not requestqueue.confirm_decline(invitation=invitation):
        return False
    return wellbeing.take_up_help_requests().declines == 1
