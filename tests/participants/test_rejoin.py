"""An inactive participant comes back through their own account page, and only they can.

Asked on the page, queued sealed, made so by the next request batch (participants.requestqueue.queue_rejoin):
the participant row is not rewritten in the minute they click (issue 14; tests/test_attacks_review4.py).
"""

from __future__ import annotations

import pytest
from django.test import Client

from casefiles import assignment
from casefiles.models import Dossier
from participants.models import Organisation, Participant, QueuedRequest
from participants.participation import ParticipationState, participation_of
from scores import wellbeing
from tests.conftest import ALL_DATABASES
from tests.participants.test_stop import make_active, open_account, open_dossier

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]


@pytest.fixture
def inactive(organisation: Organisation) -> Participant:
    participant = make_active(organisation)
    open_dossier(participant, "D-REJOIN1")
    participant.status = Participant.Status.INACTIVE
    participant.participation = ParticipationState(weeks_without_response=4).sealed_text()
    participant.save(update_fields=["status", "participation"])
    participant.refresh_from_db()
    return participant


def test_an_inactive_participant_reaches_their_account_and_takes_part_again(
    client: Client, inactive: Participant
) -> None:
    open_account(client, "jan@example.nl")
    page = client.get("/me/").content.decode()
    assert 'action="/me/rejoin/"' in page

    response = client.post("/me/rejoin/")

    assert response.status_code == 302 and response["Location"] == "/me/"
    assert "Within 15 minutes you take part again" in client.get("/me/").content.decode()
    inactive.refresh_from_db()
    assert inactive.status == Participant.Status.INACTIVE  # until the batch
    assert not assignment.live([Dossier.objects.get(number="D-REJOIN1")])

    assert wellbeing.take_up_help_requests().rejoins == 1

    inactive.refresh_from_db()
    assert inactive.status == Participant.Status.ACTIVE
    assert participation_of(inactive).weeks_without_response == 0
    assert assignment.live([Dossier.objects.get(number="D-REJOIN1")])
    assert 'action="/me/rejoin/"' not in client.get("/me/").content.decode()


def test_rejoining_twice_or_while_active_changes_nothing(client: Client, organisation: Organisation) -> None:
    active = make_active(organisation)
    open_account(client, "jan@example.nl")

    assert client.post("/me/rejoin/").status_code == 302

    assert not QueuedRequest.objects.exists()
    active.refresh_from_db()
    assert active.status == Participant.Status.ACTIVE
    assert 'action="/me/rejoin/"' not in client.get("/me/").content.decode()


def test_nobody_without_the_participants_session_can_rejoin_them(
    client: Client, inactive: Participant
) -> None:
    response = client.post("/me/rejoin/")

    assert response.status_code == 302 and response["Location"] == "/me/link/"
    inactive.refresh_from_db()
    assert inactive.status == Participant.Status.INACTIVE


def test_a_double_click_queues_one_rejoin(client: Client, inactive: Participant) -> None:
    open_account(client, "jan@example.nl")

    client.post("/me/rejoin/")
    client.post("/me/rejoin/")

    assert QueuedRequest.objects.count() == 1
    batch = wellbeing.take_up_help_requests()
    assert (batch.rejoins, batch.dropped) == (1, 0)
    inactive.refresh_from_db()
    assert inactive.status == Participant.Status.ACTIVE


def test_a_rejoin_of_someone_active_again_by_the_batch_is_dropped(
    client: Client, inactive: Participant
) -> None:
    open_account(client, "jan@example.nl")
    client.post("/me/rejoin/")
    # Active again before the batch (an earlier rejoin, taken up by a batch already): nothing to do.
    inactive.status = Participant.Status.ACTIVE
    inactive.save(update_fields=["status"])

    batch = wellbeing.take_up_help_requests()

    assert (batch.rejoins, batch.dropped) == (0, 1)
    assert not QueuedRequest.objects.exists()
