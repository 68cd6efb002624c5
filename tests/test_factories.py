"""The one participant factory and its personas: built the way the application builds participants."""

from __future__ import annotations

import pytest

from participants.contact import MobileRefused
from participants.models import Participant
from preventicons.crypto import blind_index_email, blind_index_phone
from tests.conftest import ALL_DATABASES
from tests.factories import ParticipantFactory

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


def test_a_factory_participant_has_its_contact_data_sealed_and_indexed(organisation: object) -> None:
    participant = ParticipantFactory.create(
        organisation=organisation, email_address="Anna@Example.nl", mobile_number="06 1234 5678"
    )
    stored = Participant.objects.get(pk=participant.pk)
    assert stored.email == "Anna@Example.nl" and stored.mobile == "+31612345678"
    assert stored.email_index == blind_index_email("anna@example.nl")
    assert stored.mobile_index == blind_index_phone("+31612345678")


def test_a_factory_refuses_a_number_the_import_would_refuse(organisation: object) -> None:
    with pytest.raises(MobileRefused):
        ParticipantFactory.create(organisation=organisation, mobile_number="020-5551234")


def test_only_the_active_unpaused_persona_can_take_part(personas: dict[str, Participant]) -> None:
    opened = {name: Participant.objects.get(pk=person.pk) for name, person in personas.items()}
    assert {name for name, person in opened.items() if person.can_take_part_this_week()} == {"active"}
    assert opened["active"].pseudonym and not opened["invited"].pseudonym
    assert opened["paused"].messages_paused is True
