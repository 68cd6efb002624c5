"""A participant on the address list, as the tests of the participant journey need one."""

from __future__ import annotations

from typing import Any

from participants.models import Organisation, Participant
from preventicons.crypto import blind_index_email, blind_index_phone


def make_participant(
    organisation: Organisation,
    *,
    email: str = "jan@example.nl",
    mobile: str = "+31612345678",
    status: str = Participant.Status.INVITED,
    **fields: Any,
) -> Participant:
    """Jan, invited by default, with his contact data sealed and indexed as the import leaves it."""
    participant = Participant(
        organisation=organisation,
        name="Jan de Vries",
        email=email,
        mobile=mobile,
        email_index=blind_index_email(email),
        mobile_index=blind_index_phone(mobile),
        status=status,
        **fields,
    )
    participant.save()
    return participant
