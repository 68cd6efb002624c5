"""fields.column_cipher: batch paths (the weekly round) open a column of many rows as the field opens one."""

from __future__ import annotations

import pytest

from participants.models import Organisation, Participant
from preventicons.crypto import DecryptionError
from preventicons.fields import SealedBooleanField, column_cipher
from tests.scores.people import make_participant


@pytest.mark.django_db
def test_a_column_cipher_opens_what_the_field_sealed_for_the_same_row(organisation: Organisation) -> None:
    stopped = make_participant(organisation, status=Participant.Status.STOPPED, messages_paused=True)
    rows = Participant.objects.filter(pk=stopped.pk).values_list("status", "messages_paused")
    status, paused = rows.get()

    assert column_cipher(Participant, "status").open(str(status), str(stopped.pk)) == "stopped"
    assert column_cipher(Participant, "messages_paused").open(str(paused), str(stopped.pk)) == (
        SealedBooleanField.TRUE
    )


@pytest.mark.django_db
def test_a_column_cipher_refuses_a_value_moved_to_another_row_or_column(organisation: Organisation) -> None:
    one, other = make_participant(organisation), make_participant(organisation)
    status = Participant.objects.filter(pk=one.pk).values_list("status", flat=True).get()

    with pytest.raises(DecryptionError):
        column_cipher(Participant, "status").open(str(status), str(other.pk))
    with pytest.raises(DecryptionError):
        column_cipher(Participant, "messages_paused").open(str(status), str(one.pk))
