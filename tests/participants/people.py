"""A participant on the address list, as the tests of the participant journey need one."""

from __future__ import annotations

from typing import Any

from participants.models import Organisation, Participant


def make_participant(
    organisation: Organisation,
    *,
    email: str = "jan@example.nl",
    mobile: str = "+31612345678",
    status: str = Participant.Status.INVITED,
    **fields: Any,
) -> Participant:
    """Jan, invited by default, with his contact data sealed and indexed as the import leaves it."""
    participant = Participant(organisation=organisation, name="Jan de Vries", status=status, **fields)
    participant.set_email(email)
    participant.set_mobile(mobile)
    participant.save()
    return participant
