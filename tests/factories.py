"""The one way tests build participants: a factory-boy factory, and the named personas built with it.

Every participant a test needs comes from ``ParticipantFactory``, so a rule of the model (contact data sealed
with its blind index, mobile numbers normalised, see ``Participant.set_email`` / ``set_mobile``) holds for
test data as it does for the import, enrolment and the account. The personas name the situations the
privacy tests compare (someone active, paused, declined, stopped, silent) so each test does not invent them.
"""

from __future__ import annotations

import itertools
from typing import Any

import factory

from participants.models import Organisation, Participant
from preventicons.crypto import new_pseudonym

_numbers = itertools.count(1)


class ParticipantFactory(factory.django.DjangoModelFactory[Participant]):
    """A listed participant, invited by default, with a unique work address and mobile number.

    ``email_address`` and ``mobile_number`` go through ``set_email`` / ``set_mobile`` (sealed value and blind
    index together); pass ``None`` for no such contact, or set ``email`` / ``mobile`` directly for a value
    stored without an index (as some crypto tests need).
    """

    class Meta:
        model = Participant

    name = factory.LazyFunction(lambda: f"Medewerker {next(_numbers)}")
    status = Participant.Status.INVITED
    was_invited = True
    email_address = factory.Sequence(lambda n: f"persoon{n}@example.nl")
    mobile_number = factory.Sequence(lambda n: f"+3162{n:07d}")

    @classmethod
    def _create(cls, model_class: type[Participant], *args: Any, **kwargs: Any) -> Participant:
        email = kwargs.pop("email_address")
        mobile = kwargs.pop("mobile_number")
        if kwargs.get("status") == Participant.Status.ACTIVE and "pseudonym" not in kwargs:
            kwargs["pseudonym"] = new_pseudonym()
        participant = model_class(**kwargs)
        if email:
            participant.set_email(email)
        if mobile:
            participant.set_mobile(mobile)
        participant.save()
        return participant


# The personas: who the privacy tests compare, each built the one way above.
PERSONAS: dict[str, dict[str, Any]] = {
    "invited": {"status": Participant.Status.INVITED},
    "active": {"status": Participant.Status.ACTIVE},
    "paused": {"status": Participant.Status.ACTIVE, "messages_paused": True},
    "silent": {"status": Participant.Status.INACTIVE},
    "declined": {"status": Participant.Status.DECLINED},
}


def persona(name: str, organisation: Organisation, **fields: Any) -> Participant:
    """The persona ``name`` in ``organisation``; ``fields`` override its defaults."""
    return ParticipantFactory.create(organisation=organisation, **{**PERSONAS[name], **fields})
