"""Review 9 (adversary): the night's anonymisation in one pass that rewrites every row (main c6697da).

The night's rules (decliners, the inactive beyond the period, rows past their unlisting grace, an ended
contract's) now stop whom they take in one transaction that holds every organisation and ends by writing
every participant row once, alike, under new index salts (retention._one_pass, participants.rewrite). The
three attackers of issue 14 try it: the operator (dumps of the identity store around the night, the outbox
beside it), the employer (the mailboxes it supplied) and whoever opens a link. Each test below is an attack
that worked on c6697da.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.db import connections

from participants import account, invitations, retention
from participants.models import Organisation, Participant, index_salt
from preventicons import messaging
from preventicons.crypto import blind_index_email
from preventicons.models import OutboundMessage
from scores import rounds
from scores.models import WeeklyLink
from tests.batchhold import waits_for_a_running_batch
from tests.conftest import ALL_DATABASES
from tests.participants.people import make_participant
from tests.participants.test_stop import make_active

pytestmark = [
    pytest.mark.usefixtures("english", "empty_cache"),
    pytest.mark.django_db(databases=ALL_DATABASES, transaction=True),
]

TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)
# A night by which the inactivity period of someone silent since before TUESDAY has run out.
NIGHT = TUESDAY.date() + dt.timedelta(days=settings.ANONYMISE_INACTIVE_AFTER_DAYS + 1)


@time_machine.travel(TUESDAY, tick=True)
def test_the_night_ends_none_of_the_weeks_messages_of_whom_it_erased(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator dumps the outbox around the night: the week's messages are deferred, each naming its
    weekly link in clear, and the link names its participant row. The night ended the pending ones of the
    rows it erased (a decliner, an inactive person) in its own transaction, so the tombstones named whose
    rows the night erased, however alike it wrote the participant table. As a stop in the request batch
    (review 8): only messages that hold an address in clear go at the erasure; the week's message ends at
    its claim, as a stand-in's does (neither person would have been sent it)."""
    inactive = make_active(organisation, name="I", email="i@example.nl", mobile="+31612345601")
    make_active(organisation, name="B", email="b@example.nl", mobile="+31612345602")
    decliner = make_participant(organisation, email="dec@example.nl", mobile="+31612345603")
    Participant.objects.filter(pk=decliner.pk).set_state(status=Participant.Status.DECLINED)
    Participant.objects.filter(pk=inactive.pk).set_state(status=Participant.Status.INACTIVE)
    # No worker runs between the round and the night (a provider's backoff, or a round late on Monday).
    with monkeypatch.context() as patched:
        patched.setattr(messaging, "_hurry_sending", lambda: None)
        rounds.run_weekly_round(organisation=organisation, week=rounds.week_of(TUESDAY))
    weekly = OutboundMessage.objects.filter(renderer=rounds.RENDERER)
    weekly.update(next_attempt_at=TUESDAY + dt.timedelta(days=1))
    assert WeeklyLink.objects.filter(participant__in=[inactive, decliner]).count() == 2
    before = dict(weekly.values_list("key_hash", "status"))

    counts = retention.run_retention(today=NIGHT)

    assert (counts.declined_erased, counts.inactive_anonymised) == (1, 1)
    after = dict(weekly.values_list("key_hash", "status"))
    assert after == before
    assert set(before.values()) == {OutboundMessage.Status.PENDING}
    weekly.update(next_attempt_at=TUESDAY)
    mail.outbox.clear()
    messaging.send_due_messages()
    # Only the bystander's is sent in clear; the erased rows' end as a stand-in's does.
    assert [message.to for message in mail.outbox] == [["b@example.nl"]]


@time_machine.travel(TUESDAY, tick=True)
def test_an_organisation_saved_from_a_read_before_the_night_keeps_the_nights_salt(
    organisation: Organisation,
) -> None:
    """Correctness after the salt renewal: the admin's change form reads an organisation, then saves it
    whole (every column). Its UPDATE waits for a night (or a request batch) that holds the organisation
    and renews its index salt, then writes the salt it read back over the new one, while every row's
    index stays under the new one: the account-link form, the enrolment's "held by someone else" and the
    import's clash check then find nobody of the organisation. A save writes the salt only when it makes
    the organisation (Organisation.save)."""
    bystander = make_active(organisation, name="B", email="b@example.nl", mobile="+31612345602")
    decliner = make_participant(organisation, email="dec@example.nl", mobile="+31612345603")
    Participant.objects.filter(pk=decliner.pk).set_state(status=Participant.Status.DECLINED)
    # What the change form read before the night committed (its save waits for the night's lock).
    read_before = Organisation.objects.get(pk=organisation.pk)

    assert retention.run_retention(today=NIGHT).declined_erased == 1

    read_before.arbo_provider = "Arbo Noord"
    read_before.save()
    salt = index_salt(organisation.pk)
    assert salt != read_before.index_salt
    assert Participant.objects.get(email_index=blind_index_email("b@example.nl", salt)).pk == bystander.pk
    assert account.send_account_links(request_id="after-the-save", email="b@example.nl") == 1
    assert Organisation.objects.get(pk=organisation.pk).arbo_provider == "Arbo Noord"


@time_machine.travel(TUESDAY, tick=True)
def test_send_invitations_waits_for_a_night_that_rewrites_every_row(organisation: Organisation) -> None:
    """The employer's "send invitations" locked the organisation's new rows (FOR UPDATE, in pk order) and
    wrote them, without taking the organisation first as every other writer of a participant row does. A
    night (or a request batch) that holds every organisation writes every row, in random order: each
    holding rows the other waits for, one of them was aborted as a deadlock (a night that erased nobody, or
    the employer's error page). It takes the organisation first, so it waits for a running pass."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's row locks")
    make_participant(organisation, email="new@example.nl", mobile="+31612345604")
    waits_for_a_running_batch(lambda: invitations.send_invitations(organisation=organisation))
