"""Acts the participant was told are done, lost by the retention when the batch fails (session 31).

A confirmed correction of one's details and a pause (or resume) of the messages are queued sealed and
applied by the request batch (participants.requestqueue); the page that confirms them says they are
applied within minutes. When no batch ran for ``QUEUED_REQUEST_MAX_DAYS`` (a worker down for a week), the
nightly retention purged them like a stale help request:

* the correction was lost silently: when it was their new number because the old one went to someone
  else, that someone goes on getting their weekly messages and codes;
* the pause was lost silently: a restriction the person asked for (GDPR art. 18), and the messages kept
  coming.

Review 4 made the retention keep a proven stop; these are kept the same way, and so are a rejoin and a
decline (and counted in its warning), while a stale help request or request for another casemanager still
goes (the retention "purges ... queued help requests").
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from participants import account, requestqueue, retention
from participants.models import Organisation, Participant, QueuedRequest
from scores import wellbeing
from tests.conftest import ALL_DATABASES
from tests.participants.test_stop import delivered_codes, make_active

pytestmark = [pytest.mark.usefixtures("english", "empty_cache")]

TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)
# Past the queue's bound (QUEUED_REQUEST_MAX_DAYS, 7 by default): the batch failed all week.
A_WEEK_LATER = TUESDAY + dt.timedelta(days=8)


def _kept_a_week_then_taken_up() -> wellbeing.HelpBatch:
    """The nightly retention a week later keeps the one queued act; the batch, back at last, applies it."""
    with time_machine.travel(A_WEEK_LATER, tick=False):
        counts = retention.run_retention()
        assert QueuedRequest.objects.count() == 1
        assert counts.queued_requests_purged == 0
        return wellbeing.take_up_help_requests()


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_correction_no_batch_took_up_for_a_week_is_kept_not_purged(organisation: Organisation) -> None:
    with time_machine.travel(TUESDAY, tick=True):
        person = make_active(organisation, mobile="+31612345678")
        # Their old number went to someone else: they correct it, both codes proven.
        account.request_change(participant=person, mobile="+31612345699")
        email_code, sms_code = delivered_codes()
        assert requestqueue.confirm_change(participant=person, email_code=email_code, sms_code=sms_code).done
    batch = _kept_a_week_then_taken_up()
    assert batch.changes == 1
    assert Participant.objects.get(pk=person.pk).mobile == "+31612345699"


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_pause_no_batch_took_up_for_a_week_is_kept_not_purged(organisation: Organisation) -> None:
    with time_machine.travel(TUESDAY, tick=True):
        person = make_active(organisation)
        requestqueue.queue_pause_change(participant=person, paused=True)
    batch = _kept_a_week_then_taken_up()
    assert batch.pauses_changed == 1
    assert Participant.objects.get(pk=person.pk).messages_paused


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_rejoin_no_batch_took_up_for_a_week_is_kept_not_purged(organisation: Organisation) -> None:
    with time_machine.travel(TUESDAY, tick=True):
        person = make_active(organisation)
        person.status = Participant.Status.INACTIVE
        person.save()
        requestqueue.queue_rejoin(participant=person)
    batch = _kept_a_week_then_taken_up()
    assert batch.rejoins == 1
    assert Participant.objects.get(pk=person.pk).status == Participant.Status.ACTIVE


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_decline_no_batch_took_up_for_a_week_is_kept_not_purged(
    client: Client, organisation: Organisation
) -> None:
    from tests.participants.people import make_participant
    from tests.participants.test_enrolment_views import invite, open_with_sms_code

    with time_machine.travel(TUESDAY, tick=True):
        person = make_participant(organisation)
        open_with_sms_code(client, invite(person), decline=True)
        client.post(reverse("participants:enrol-decline"))
    batch = _kept_a_week_then_taken_up()
    assert batch.declines == 1
    assert Participant.objects.get(pk=person.pk).status == Participant.Status.DECLINED


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_stale_help_and_casemanager_requests_still_go_and_the_kept_acts_are_warned_of(
    organisation: Organisation, caplog: pytest.LogCaptureFixture
) -> None:
    with time_machine.travel(TUESDAY, tick=True):
        asker, switcher, pauser = (
            make_active(organisation, email=f"p{n}@example.nl", mobile=f"+3161234560{n}") for n in range(3)
        )
        wellbeing.request_help(
            participant=asker, channel="phone", consent_text_version=wellbeing.CONTACT_CONSENT_VERSION
        )
        requestqueue.queue_casemanager_change(participant=switcher)
        requestqueue.queue_pause_change(participant=pauser, paused=True)
    with time_machine.travel(A_WEEK_LATER, tick=False), caplog.at_level(logging.WARNING):
        counts = retention.run_retention()
        batch = wellbeing.take_up_help_requests()

    # A week-old request for contact is stale: the person can ask again; the pause stays theirs.
    assert counts.queued_requests_purged == 2
    assert (batch.taken_up, batch.casemanager_changes, batch.pauses_changed) == (0, 0, 1)
    assert "2 queued requests were never taken up" in caplog.text
    assert "1 participants' acts or stops' dossier closes still wait for the batch" in caplog.text
