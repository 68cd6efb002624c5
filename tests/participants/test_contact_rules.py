"""Participant owns its contact rules: a sealed value and its blind index are set together, by one method."""

from __future__ import annotations

import pytest

from participants import contact
from participants.models import Organisation, Participant
from preventicons.crypto import blind_index_email, blind_index_phone


@pytest.mark.django_db
def test_set_mobile_normalises_the_number_and_indexes_what_it_stores(organisation: Organisation) -> None:
    participant = Participant(organisation=organisation, name="Jan de Vries")

    fields = participant.set_mobile("06-1234 5678")

    assert fields == ["mobile", "mobile_index"]
    assert participant.mobile == "+31612345678"
    assert participant.mobile_index == blind_index_phone("+31612345678")


@pytest.mark.parametrize(("typed", "code"), [("020-5551234", "landline"), ("0612ABCDEF", "unparseable")])
def test_set_mobile_refuses_what_the_import_refuses_and_changes_nothing(typed: str, code: str) -> None:
    participant = Participant(mobile="+31612345678", mobile_index=blind_index_phone("+31612345678"))

    with pytest.raises(contact.MobileRefused) as refused:
        participant.set_mobile(typed)

    assert refused.value.code == code
    assert participant.mobile == "+31612345678"
    assert participant.mobile_index == blind_index_phone("+31612345678")


def test_set_email_seals_the_address_with_its_index_or_without_when_someone_else_holds_it() -> None:
    participant = Participant()

    assert participant.set_email("Jan@Example.nl") == ["email", "email_index"]
    assert participant.email == "Jan@Example.nl"
    assert participant.email_index == blind_index_email("jan@example.nl")

    participant.set_email("piet@example.nl", indexed=False)
    assert participant.email == "piet@example.nl" and participant.email_index is None


@pytest.mark.parametrize(
    ("status", "is_listed", "paused", "expected"),
    [
        (Participant.Status.ACTIVE, True, False, True),
        (Participant.Status.ACTIVE, False, False, False),
        (Participant.Status.ACTIVE, True, True, False),
        (Participant.Status.INVITED, True, False, False),
        (Participant.Status.INACTIVE, True, False, False),
        (Participant.Status.STOPPED, True, False, False),
        (Participant.Status.DECLINED, True, False, False),
    ],
)
def test_only_active_listed_unpaused_participants_can_take_part_this_week(
    status: str, is_listed: bool, paused: bool, expected: bool
) -> None:
    participant = Participant(status=status, is_listed=is_listed, messages_paused=paused)

    assert participant.can_take_part_this_week() is expected
    assert Participant.can_take_part(status=status, is_listed=is_listed, paused=paused) is expected
