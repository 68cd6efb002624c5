"""Operator (live database, its files, dumps; no key file): a request batch's acts tell not whose they were.

Each act the batch applied (a pause, a rejoin, a correction, a decline, a stop) used to rewrite its own row:
whoever reads the live database or its files saw which rows the batch touched (``xmin``, two dumps), a
correction's or a stop's blind indexes change, and one dead row version per act. Now the acts change the
batch's copies and the batch writes every row of every organisation once, alike, with every blind index
under a new salt (participants.rewrite). Each test below is an attack that worked before.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connections
from django.test import Client
from django.urls import reverse

from participants import account, requestqueue
from participants.invitations import held_by_someone_else
from participants.models import AccountLink, Organisation, Participant, hold_index_salts, index_salt
from preventicons.crypto import blind_index_email, blind_index_phone
from scores import wellbeing
from tests.batchhold import waits_for_a_running_batch
from tests.conftest import ALL_DATABASES
from tests.participants.people import make_participant
from tests.participants.test_enrolment_views import invite, open_with_sms_code
from tests.participants.test_stop import delivered_codes, make_active
from tests.rowversions import assert_every_row_written_once_by_the_last_pass

pytestmark = [
    pytest.mark.usefixtures("english", "empty_cache"),
    pytest.mark.django_db(databases=ALL_DATABASES, transaction=True),
]

TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)
TABLE = "participants_participant"


def _dump() -> dict[str, dict[str, object]]:
    """The table as pg_dump gives it, with each row's xmin beside it."""
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT xmin::text AS xmin_, * FROM {TABLE}")  # noqa: S608  # nosec B608  # the test's name
        names = [column.name for column in cursor.description]
        return {str(row[1]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _postgres_only() -> None:
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's xmin and table pages")


def _everyone_acts(client: Client, organisation: Organisation) -> dict[str, Participant]:
    """One person per act, queued as their own pages queue them, and people who do nothing."""
    people = {
        name: make_active(organisation, name=f"P {n}", email=f"p{n}@example.nl", mobile=f"+3161234560{n}")
        for n, name in enumerate(
            ["pauser", "rejoiner", "corrector", "stopper", "bystander", "stopped before"]
        )
    }
    people["decliner"] = make_participant(organisation, email="dec@example.nl", mobile="+31612345676")
    Participant.objects.filter(pk=people["rejoiner"].pk).set_state(status=Participant.Status.INACTIVE)
    account.stop_participation(participant=people["stopped before"])

    # Invited alone, so the last invitation sent is theirs.
    open_with_sms_code(client, invite(people["decliner"]), decline=True)
    assert client.post(reverse("participants:enrol-decline")).status_code == 200
    # Invited alone in turn, and joined through the pages with a corrected name: queued, not written.
    people["enroller"] = make_participant(organisation, email="enr@example.nl", mobile="+31612345675")
    joining = Client()
    open_with_sms_code(joining, invite(people["enroller"]))
    joining.post(reverse("participants:enrol-consent"))
    joined = joining.post(reverse("participants:enrol-details"), {"name": "E R", "weekly_channel": "sms"})
    assert joined["Location"] == reverse("participants:enrol-welcome")
    people["invited"] = make_participant(organisation, email="inv@example.nl", mobile="+31612345677")
    requestqueue.queue_pause_change(participant=people["pauser"], paused=True)
    requestqueue.queue_rejoin(participant=people["rejoiner"])
    account.request_stop_codes(participant=people["stopper"])
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_stop(
        participant=people["stopper"], email_code=email_code, sms_code=sms_code
    ).done
    account.request_change(participant=people["corrector"], email="new@example.nl")
    email_code, sms_code = delivered_codes()
    confirmation = requestqueue.confirm_change(
        participant=people["corrector"], email_code=email_code, sms_code=sms_code
    )
    assert confirmation.done
    return people


@time_machine.travel(TUESDAY, tick=True)
def test_two_dumps_around_a_batch_change_every_row_alike_whoever_acted(
    client: Client, organisation: Organisation
) -> None:
    """The operator diffs the table across the batch, and reads each row's xmin: every row changed in the
    same columns (every sealed one and both blind indexes), and carries the batch's xmin; the listed
    hashes and the department changed for nobody."""
    _postgres_only()
    people = _everyone_acts(client, organisation)
    before = _dump()

    batch = wellbeing.take_up_help_requests()

    after = _dump()
    assert (
        batch.pauses_changed,
        batch.rejoins,
        batch.changes,
        batch.stops,
        batch.declines,
        batch.enrolments,
    ) == (1, 1, 1, 1, 1, 1)
    assert set(after) == set(before)
    changed = {pk: {name for name in before[pk] if before[pk][name] != after[pk][name]} for pk in before}
    expected = {*Participant.sealed_columns(), "email_index", "mobile_index", "xmin_"}
    assert all(columns == expected for columns in changed.values()), {
        name: changed[str(person.pk)] ^ expected for name, person in people.items()
    }
    assert len({row["xmin_"] for row in after.values()}) == 1
    # The acts did what they say.
    states = {name: Participant.objects.get(pk=person.pk) for name, person in people.items()}
    assert states["pauser"].messages_paused
    assert states["rejoiner"].status == Participant.Status.ACTIVE
    assert states["stopper"].status == Participant.Status.STOPPED
    assert states["decliner"].status == Participant.Status.DECLINED
    assert (states["enroller"].status, states["enroller"].name) == (Participant.Status.ACTIVE, "E R")
    assert states["corrector"].email == "new@example.nl"


@time_machine.travel(TUESDAY, tick=True)
def test_the_batch_leaves_one_dead_version_per_row_and_none_of_its_own(
    client: Client, organisation: Organisation
) -> None:
    """The operator reads the table's pages (pageinspect), dead versions included: an act written and then
    rewritten with everyone would leave a version the batch both wrote and killed, on actors' rows only."""
    _postgres_only()
    _everyone_acts(client, organisation)

    wellbeing.take_up_help_requests()

    assert_every_row_written_once_by_the_last_pass(organisation.pk)


@time_machine.travel(TUESDAY, tick=True)
def test_every_lookup_finds_its_row_again_under_the_new_salt(
    client: Client, organisation: Organisation
) -> None:
    """Renewing every index must lose nobody: the account-link form, the "held by someone else" check, a
    corrected address, and a person who did nothing are all found, and only under the new salt."""
    people = _everyone_acts(client, organisation)
    old_salt = index_salt(organisation.pk)

    wellbeing.take_up_help_requests()

    salt = index_salt(organisation.pk)
    assert salt != old_salt
    bystander = Participant.objects.get(
        organisation=organisation, email_index=blind_index_email("p4@example.nl", salt)
    )
    assert bystander.pk == people["bystander"].pk
    assert not Participant.objects.filter(email_index=blind_index_email("p4@example.nl", old_salt)).exists()
    assert Participant.objects.get(mobile_index=blind_index_phone("+31612345604", salt)).pk == bystander.pk
    corrected = Participant.objects.get(email_index=blind_index_email("new@example.nl", salt))
    assert corrected.pk == people["corrector"].pk
    assert held_by_someone_else(
        participant=people["pauser"], email="p4@example.nl", mobile="+31612345602"
    ) == (
        True,
        True,
    )
    # Neither the stopper's nor the stopped row's erased addresses come back under the new salt.
    for address in ("p3@example.nl", "p5@example.nl"):
        assert not Participant.objects.filter(email_index=blind_index_email(address, salt)).exists()
    assert account.send_account_links(request_id="after-the-batch", email="p4@example.nl") == 1
    assert AccountLink.objects.naming([bystander.pk]).count() == 1


@time_machine.travel(TUESDAY, tick=True)
def test_a_correction_to_an_address_someone_else_took_since_is_refused_and_the_batch_goes_on(
    organisation: Organisation,
) -> None:
    """Inside the batch nothing is written until every row is, so the unique index no longer refuses a
    correction whose address someone else took after it was confirmed: the act checks it first."""
    corrector = make_active(organisation, name="C", email="c@example.nl", mobile="+31612345601")
    taker = make_active(organisation, name="T", email="t@example.nl", mobile="+31612345602")
    pauser = make_active(organisation, name="P", email="p@example.nl", mobile="+31612345603")
    account.request_change(participant=corrector, email="free@example.nl")
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_change(participant=corrector, email_code=email_code, sms_code=sms_code).done
    # Someone else takes the address between the confirmation and the batch (an enrolment, say).
    taker.save(update_fields=taker.set_email("free@example.nl"))
    requestqueue.queue_pause_change(participant=pauser, paused=True)

    batch = wellbeing.take_up_help_requests()

    assert (batch.changes, batch.pauses_changed) == (0, 1)
    corrector.refresh_from_db()
    assert corrector.email == "c@example.nl"
    assert Participant.objects.get(pk=pauser.pk).messages_paused
    salt = index_salt(organisation.pk)
    assert Participant.objects.get(email_index=blind_index_email("free@example.nl", salt)).pk == taker.pk


@time_machine.travel(TUESDAY, tick=True)
def test_an_index_lookup_waits_for_a_batch_that_renews_the_salt(organisation: Organisation) -> None:
    """An enrolment or the account-link form computes an index under the salt it read. Were it to read the
    salt while a batch renews it, it would write or look up an index under a salt no row has any more. So
    it holds the salt (FOR SHARE), which a batch holding the organisation (FOR NO KEY UPDATE) excludes."""
    waits_for_a_running_batch(lambda: hold_index_salts([organisation.pk]))


@time_machine.travel(TUESDAY, tick=True)
def test_a_stop_in_the_batch_ends_none_of_the_weeks_messages_there_and_the_stopper_gets_none(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator dumps the outbox around the batch: a stop that ended its person's pending weekly message
    there named whose row the batch stopped. The week's message (deferred, a link's reference only) ends at
    its claim instead, as a stand-in's does; only messages that hold an address in clear go at the stop."""
    from django.core import mail

    from preventicons import messaging
    from preventicons.models import OutboundMessage
    from scores import rounds

    stopper = make_active(organisation, name="S", email="s@example.nl", mobile="+31612345601")
    make_active(organisation, name="B", email="b@example.nl", mobile="+31612345602")
    # No worker runs between the round and the batch (a provider's backoff, or a busy Monday).
    with monkeypatch.context() as patched:
        patched.setattr(messaging, "_hurry_sending", lambda: None)
        rounds.run_weekly_round(organisation=organisation, week=rounds.week_of(TUESDAY))
    weekly = OutboundMessage.objects.filter(renderer=rounds.RENDERER)
    weekly.update(next_attempt_at=TUESDAY + dt.timedelta(days=1))
    account.request_stop_codes(participant=stopper)
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_stop(participant=stopper, email_code=email_code, sms_code=sms_code).done
    before = dict(OutboundMessage.objects.filter(renderer=rounds.RENDERER).values_list("key_hash", "status"))

    assert wellbeing.take_up_help_requests().stops == 1

    after = dict(OutboundMessage.objects.filter(renderer=rounds.RENDERER).values_list("key_hash", "status"))
    assert after == before
    assert set(before.values()) == {OutboundMessage.Status.PENDING}
    OutboundMessage.objects.filter(status=OutboundMessage.Status.PENDING).update(next_attempt_at=TUESDAY)
    mail.outbox.clear()
    messaging.send_due_messages()
    assert [message.to for message in mail.outbox] == [["b@example.nl"]]
