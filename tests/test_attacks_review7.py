"""Review 7 (adversary): a stop keeps the listed hashes on its row (main 273d766), attacked.

Until that change a stop (and the nightly anonymisation) moved the row's listed hashes into a DepartedContact
and left look-alikes; now they stay on the row and the import matches a stopped row like anyone's. The three
attackers of issue 14 try it: the employer (its lists, previews, refusals, "send invitations", the mailboxes
it supplied), the operator (dumps of the identity store around an import and a night), and whoever opens a
link from a mailbox (the account-link form, the enrolment's "held by someone else"). Each answer is compared
across what Anna did: nothing (invited), joined, paused, declined (before and after the night), stopped, and
stopped before the change (a row with look-alike listed hashes and a DepartedContact record, as databases
from before hold them).

What holds is a passing test. Closed here (invitations, retention): an import matches nobody to a
row stopped before the change (its listed hashes are look-alikes), so a full list unlists it, and the
invitation schedule then ended the person's reminders while the list still named them, which the employer
reads in the mailboxes it supplied; a full list ended the schedule of someone who stopped in the
import's own transaction, everyone else's at their next step, so the schedule table named the stopper's row
to the operator; and the night a row's unlisting grace ended rewrote every unlisted row but the stoppers'
(retention.unlisted). Closed since: the first full list after the change unlisted the rows stopped before
it (importing._not_named), and the night a contract's grace ends rewrote only the rows not stopped yet (the
night's one pass now rewrites every row, retention._one_pass).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from participants import account, invitations, queries, retention
from participants.importing import AddressListInvalid, check_address_list, import_address_list
from participants.models import (
    DepartedContact,
    Department,
    InvitationSchedule,
    Organisation,
    Participant,
    StaffUser,
)
from preventicons.fields import look_alike_hash
from tests.conftest import ALL_DATABASES
from tests.participants.people import remember_departed

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]

HEADER = "naam;e-mail;mobiel;afdeling"
TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)  # 13:00 in Amsterdam, within the sending hours
ANNA = "Anna;anna@werk.example;0611111111;Care"
BERT = "Bert;bert@werk.example;0622222222;IT"
# Every state Anna can be in when the employer next looks.
WHAT_ANNA_DID = (
    "nothing",
    "joined",
    "paused",
    "declined",
    "declined, then the night",
    "stopped",
    "stopped before review 4",
)
STOPPED = ("stopped", "stopped before review 4")


def csv(*rows: str) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


def load(organisation: Organisation, employer: StaffUser, *rows: str, full_list: bool = False) -> Any:
    return import_address_list(organisation=organisation, data=csv(*rows), full_list=full_list, by=employer)


def preview(organisation: Organisation, employer: StaffUser, *rows: str) -> list[str]:
    """What the employer's preview answers (the import's own checks, rolled back): the refusals' codes."""
    try:
        check_address_list(organisation=organisation, data=csv(*rows), full_list=True, by=employer)
    except AddressListInvalid as invalid:
        return sorted(error.code for error in invalid.errors)
    return []


def listed_as(organisation: Organisation, email: str) -> Participant:
    email_hash, _mobile = invitations.listed_hashes(organisation_id=organisation.pk, email=email, mobile=None)
    return Participant.objects.get(listed_email_hash=email_hash)


def fresh(organisation: Organisation, employer: StaffUser) -> Participant:
    """Anna and Bert listed and invited ("send invitations" pressed), nothing left from an earlier round."""
    Participant.objects.all().delete()
    DepartedContact.objects.all().delete()
    InvitationSchedule.objects.all().delete()
    load(organisation, employer, ANNA, BERT, full_list=True)
    invitations.send_invitations(organisation=organisation)
    return listed_as(organisation, "anna@werk.example")


def stop_before_review_4(person: Participant) -> None:
    """A stop as it was until review 4: a DepartedContact with the listed hashes, look-alikes on the row."""
    remember_departed(participant=person)
    account.stop_participation(participant=person)
    # A hash left out gets a fresh look-alike on save (ContactHashField), as the old shred() left it.
    Participant.objects.filter(pk=person.pk).update(
        listed_email_hash=look_alike_hash(), listed_mobile_hash=look_alike_hash()
    )


def anna_does(person: Participant, what: str) -> None:
    one = Participant.objects.filter(pk=person.pk)
    if what == "joined":
        one.set_state(status=Participant.Status.ACTIVE)
    elif what == "paused":
        one.set_state(status=Participant.Status.ACTIVE, messages_paused=True)
    elif what.startswith("declined"):
        one.set_state(status=Participant.Status.DECLINED)
        if what.endswith("night"):
            retention.run_retention()
    elif what == "stopped":
        account.stop_participation(participant=person)
    elif what == "stopped before review 4":
        stop_before_review_4(person)
    else:
        assert what == "nothing"


def dump(table: str = "participants_participant") -> dict[str, dict[str, object]]:
    """A table as pg_dump gives it: every column of every row, by id."""
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608  # nosec B608  # the test's own names
        names = [column.name for column in cursor.description]
        return {str(row[0]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def changed(
    before: dict[str, dict[str, object]], after: dict[str, dict[str, object]], pk: object
) -> set[str]:
    old, new = before[str(pk)], after[str(pk)]
    return {name for name in old if old[name] != new[name]}


# --- the employer: previews, refusals, counts, "send invitations" ------------------------------------------


def test_every_answer_the_employer_gets_from_its_lists_is_alike_whatever_anna_did(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The employer probes with lists at will (the preview costs it nothing), then imports lists that change
    Anna's address, her number and her department and presses "send invitations" after each: the refusals'
    words, the rows read and the invitations started are one answer, for a stop before and after the change
    as for everyone else."""
    answers = {}
    for what in WHAT_ANNA_DID:
        anna = fresh(organisation, employer)
        anna_does(anna, what)
        seen: list[object] = [
            # Anna's address with Bert's number; her address and her number on two rows; her number and a
            # stranger's address next to her own row; her address under a new number (accepted).
            preview(organisation, employer, "Anna;anna@werk.example;0622222222;Care"),
            preview(
                organisation,
                employer,
                "A;anna@werk.example;0633333333;Care",
                "X;x@werk.example;0611111111;IT",
            ),
            preview(organisation, employer, ANNA, "X;x@werk.example;0611111111;IT"),
            preview(organisation, employer, "Anna;anna@werk.example;0633333333;Care", BERT),
        ]
        for rows in (
            (ANNA, BERT),
            ("Anna;anna@werk.example;0633333333;Zorg", BERT),  # a new number and department
            ("Anna;anna.b@werk.example;0633333333;Zorg", BERT),  # then a new address, matched by the number
            ("Anna B;anna.b@werk.example;0633333333;Zorg", BERT),  # then a new name
            (BERT,),  # off the full list
            ("Anna B;anna.b@werk.example;0633333333;Zorg", BERT),  # and back
        ):
            result = load(organisation, employer, *rows, full_list=True)
            started = invitations.send_invitations(organisation=organisation)
            # What the employer's page shows of an import is the rows read (participants.views.importing).
            seen.append((result.created + result.updated + result.unchanged, started))
        # The old number and address are free again: a newcomer listed under them is new, and invited.
        seen.append(preview(organisation, employer, "Y;anna@werk.example;0611111111;IT", BERT))
        answers[what] = seen
    assert all(answer == answers["nothing"] for answer in answers.values()), answers


def test_an_address_held_by_a_colleague_is_refused_alike_whatever_the_colleague_did(
    organisation: Organisation, employer: StaffUser
) -> None:
    """Whoever holds Bert's link (a colleague; the employer's own staff take part too) tries Anna's work
    address and number at enrolment or in a correction: "held by someone else", whatever Anna did."""
    answers = {}
    for what in WHAT_ANNA_DID:
        anna = fresh(organisation, employer)
        anna_does(anna, what)
        bert = listed_as(organisation, "bert@werk.example")
        answers[what] = invitations.held_by_someone_else(
            participant=bert, email="anna@werk.example", mobile="+31611111111"
        )
    assert set(answers.values()) == {(True, True)}, answers


def test_the_account_link_form_mails_the_listed_address_alike_whatever_anna_did(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The employer types Anna's work address into /me/link/ and reads her mailbox: one e-mail arrives,
    whatever she did (a real link or a decoy of the same shape)."""
    counts: dict[str, int] = {}
    for what in WHAT_ANNA_DID:
        anna = fresh(organisation, employer)
        anna_does(anna, what)
        counts[what] = account.send_account_links(
            request_id=f"probe-{len(counts)}", email="anna@werk.example"
        )
    assert set(counts.values()) == {1}, counts


# --- the import against a stopped row: what it writes, what it never writes --------------------------------


@time_machine.travel(TUESDAY, tick=True)
def test_an_import_rewrites_a_stopped_row_as_it_rewrites_an_enrolled_ones(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The operator diffs the participant table around an import that moves everyone to a new department and
    a new address (matched by the number). A stopped row changes in exactly the columns an enrolled or paused
    row changes in (department and listed hashes): no contact data is written on it, so it stays a row whose
    name, address and number are empty, and the import does not tell it from the others."""
    rows = [f"P{n};p{n}@werk.example;061234560{n};Care" for n in range(4)]
    load(organisation, employer, *rows, full_list=True)
    joined, paused, stopped, _invited = (listed_as(organisation, f"p{n}@werk.example") for n in range(4))
    Participant.objects.filter(pk=joined.pk).set_state(status=Participant.Status.ACTIVE)
    Participant.objects.filter(pk=paused.pk).set_state(status=Participant.Status.ACTIVE, messages_paused=True)
    account.stop_participation(participant=stopped)
    before = dump()

    load(
        organisation,
        employer,
        *(f"P{n};q{n}@werk.example;061234560{n};Zorg" for n in range(4)),
        full_list=True,
    )

    after = dump()
    assert changed(before, after, joined.pk) == {"department_id", "listed_email_hash"}
    assert changed(before, after, paused.pk) == changed(before, after, joined.pk)
    assert changed(before, after, stopped.pk) == changed(before, after, joined.pk)
    stopped.refresh_from_db()
    assert (stopped.name, stopped.email, stopped.mobile) == (None, None, None)
    assert stopped.status == Participant.Status.STOPPED
    assert stopped.department == Department.objects.get(organisation=organisation, name="Zorg")


def test_no_list_revives_reinvites_or_writes_contact_data_onto_a_stopped_row(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The employer tries to bring back someone who stopped: it changes their number, then their address,
    drops and relists them, and lists a newcomer next to them under one of their hashes. The row stays
    stopped and empty, no schedule starts, nothing is queued to the addresses it wrote, and the conflict rows
    are refused as they would be for anyone."""
    anna = fresh(organisation, employer)
    account.stop_participation(participant=anna)
    schedules = set(InvitationSchedule.objects.values_list("pk", flat=True))
    for rows in (
        ("Anna;anna@werk.example;0633333333;Care", BERT),
        ("Anna;anna@prive.example;0633333333;Care", BERT),
        (BERT,),
        ("Anna;anna@prive.example;0633333333;Care", BERT),
    ):
        load(organisation, employer, *rows, full_list=True)
        assert invitations.send_invitations(organisation=organisation) == 0
    assert preview(
        organisation, employer, "X;x@werk.example;0633333333;IT", "Anna;anna@prive.example;0644444444;Care"
    ) == ["conflict_same_person"]
    assert preview(organisation, employer, "X;anna@prive.example;0622222222;IT") == [
        "conflict_email_and_mobile"
    ]
    anna.refresh_from_db()
    assert anna.status == Participant.Status.STOPPED and anna.is_listed
    assert (anna.name, anna.email, anna.mobile, anna.pseudonym) == (None, None, None, None)
    assert set(InvitationSchedule.objects.values_list("pk", flat=True)) <= schedules
    assert Participant.objects.count() == 2


def test_a_stopped_row_is_unlisted_and_relisted_like_anyones_in_the_weekly_round(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The weekly round queues a message (a stand-in for whoever has no channel) for every listed row: a
    stopped row leaves it and comes back with the list exactly as an invited one does."""
    load(organisation, employer, ANNA, BERT, "Cees;cees@werk.example;0655555555;IT", full_list=True)
    anna, cees = listed_as(organisation, "anna@werk.example"), listed_as(organisation, "cees@werk.example")
    account.stop_participation(participant=anna)

    def round_holds() -> tuple[bool, bool, int]:
        recipients, _last = queries.weekly_recipients(
            organisation=organisation, excluding=Q(pk__in=[]), after=None, size=100
        )
        ids = {recipient.pk for recipient in recipients}
        return anna.pk in ids, cees.pk in ids, queries.listed_count(organisation.pk)

    assert round_holds() == (True, True, 3)
    load(organisation, employer, BERT, full_list=True)
    assert round_holds() == (False, False, 1)
    load(organisation, employer, ANNA, BERT, "Cees;cees@werk.example;0655555555;IT", full_list=True)
    assert round_holds() == (True, True, 3)


# --- rows stopped before the change: a look-alike on the row, the hashes in a DepartedContact -------------


def _next_steps(now: dt.datetime) -> dict[str, int | None]:
    """Each listed person's schedule step after the steps due now went out (None: the schedule ended)."""
    invitations.send_due_invitations(now=now)
    # Instances, not values_list: the copy of the addresses is sealed to its row.
    steps = {schedule.email: schedule.next_step for schedule in InvitationSchedule.objects.all()}
    return {email: steps.get(email) for email in ("anna@werk.example", "bert@werk.example")}


@pytest.mark.parametrize("what", STOPPED)
@time_machine.travel(TUESDAY, tick=True)
def test_someone_who_stopped_keeps_their_reminders_while_the_list_names_them(
    organisation: Organisation, employer: StaffUser, what: str
) -> None:
    """The employer reads Anna's and Bert's work mailboxes through the invitation weeks. Anna stops after the
    invitation; the employer imports its unchanged full list. The list matches nobody to a row stopped before
    the change (its listed hashes are look-alikes), so it unlisted that row, and the schedule then ended at
    its next step: Bert got his reminder, Anna none, and the employer knew she had stopped. Such a row's
    schedule is ended by the hashes of the addresses it holds (invitations.end_schedules_not_listed), as
    before the change, not by the row's listing."""
    anna = fresh(organisation, employer)
    first = InvitationSchedule.objects.get(participant=anna).next_due_at
    assert _next_steps(first) == {"anna@werk.example": 1, "bert@werk.example": 1}
    anna_does(anna, what)

    load(organisation, employer, ANNA, BERT, full_list=True)

    assert _next_steps(invitations.following_slot(first)) == {"anna@werk.example": 2, "bert@werk.example": 2}
    # Off the list, the schedule ends (at the import, or at the next step: see the next test).
    load(organisation, employer, BERT, full_list=True)
    assert _next_steps(invitations.following_slot(invitations.following_slot(first))) == {
        "anna@werk.example": None,
        "bert@werk.example": 3,
    }


@time_machine.travel(TUESDAY, tick=True)
def test_a_full_list_ends_a_stoppers_schedule_when_it_ends_anyones(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The operator dumps the schedules around a full list that leaves out Anna, who stopped, and Cees, who
    did nothing. Ending the stopper's schedule in the import's own transaction (and everyone else's at their
    next step) left a dead tuple naming the stopper's row, and the live table told it until that step. The
    row a stop leaves keeps its listed hashes now and is unlisted like anyone's, so its schedule ends at
    the next step with everyone else's."""
    anna = fresh(organisation, employer)
    load(organisation, employer, ANNA, BERT, "Cees;cees@werk.example;0655555555;IT", full_list=True)
    invitations.send_invitations(organisation=organisation)
    first = InvitationSchedule.objects.get(participant=anna).next_due_at
    _next_steps(first)
    account.stop_participation(participant=anna)
    before = dump("participants_invitationschedule")

    load(organisation, employer, BERT, full_list=True)

    assert dump("participants_invitationschedule") == before
    steps = _next_steps(invitations.following_slot(first))
    assert steps == {"anna@werk.example": None, "bert@werk.example": 2}
    assert [schedule.email for schedule in InvitationSchedule.objects.all()] == ["bert@werk.example"]


@pytest.mark.parametrize("what", ("nothing", "stopped"))
@time_machine.travel(TUESDAY, tick=True)
def test_a_schedule_whose_old_number_the_list_gave_to_someone_else_ends_alike(
    organisation: Organisation, employer: StaffUser, what: str
) -> None:
    """The list gives Anna a new number, then Anna's old one to Bert, then leaves Anna out. Her schedule
    still holds her old number, which the list now names (as Bert's): were a stopper's schedule ended only
    by those hashes (as a row stopped before the change still is), it would go on to her mailbox, while
    anyone else's ends at the next step with the row's listing. A guard on the fix above."""
    anna = fresh(organisation, employer)
    first = InvitationSchedule.objects.get(participant=anna).next_due_at
    _next_steps(first)
    anna_does(anna, what)
    load(organisation, employer, "Anna;anna@werk.example;0633333333;Care", BERT, full_list=True)
    load(
        organisation,
        employer,
        "Anna;anna@werk.example;0633333333;Care",
        "Bert;bert@werk.example;0611111111;IT",
    )
    load(organisation, employer, "Bert;bert@werk.example;0611111111;IT", full_list=True)

    steps = _next_steps(invitations.following_slot(first))

    assert steps == {"anna@werk.example": None, "bert@werk.example": 2}


def test_a_row_stopped_before_the_change_stays_listed_while_the_list_names_them(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The first full list after the change unlists every row stopped before it: is_listed goes False,
    unlisted_on is the import's day, the listed count (the denominator of the reports' participation band)
    drops and the weekly round stops queueing its stand-in, while the person is still on the list; the
    import's unlisted count (the admin's page, the log) counts them. Their reminders no longer end with it
    (invitations._listed_as_departed), and the night their grace ends rewrites them with every other
    unlisted row (retention.unlisted). Closed by counting: as many unnamed stopped rows stay listed as the
    list named records of people who left before the change (importing._not_named)."""
    anna = fresh(organisation, employer)
    stop_before_review_4(anna)

    result = load(organisation, employer, ANNA, BERT, full_list=True)

    anna.refresh_from_db()
    assert (result.unlisted, anna.is_listed, queries.listed_count(organisation.pk)) == (0, True, 2)


def test_of_two_rows_stopped_before_the_change_a_list_naming_one_unlists_one(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The employer drops one of two people who stopped before the change: the import says one row is no
    longer listed, as it would for anyone, and the listed count drops by one."""
    anna = fresh(organisation, employer)
    bert = listed_as(organisation, "bert@werk.example")
    stop_before_review_4(anna)
    stop_before_review_4(bert)

    result = load(organisation, employer, ANNA, full_list=True)

    assert (result.unlisted, queries.listed_count(organisation.pk)) == (1, 1)
    assert load(organisation, employer, ANNA, full_list=True).unlisted == 0


@time_machine.travel(TUESDAY, tick=True)
def test_the_night_a_grace_ends_rewrites_every_unlisted_row_alike_whatever_it_did(
    organisation: Organisation, employer: StaffUser
) -> None:
    """The operator dumps the identity store before and after the night on which the grace of an import's
    unlisting ends. Before the change a stopped row was never unlisted, so every unlisted row the night
    reached was rewritten; since, a stopped row is unlisted like anyone's, and retention.unlisted() left it
    out (already stopped), so of the rows unlisted that day the ones the night did not rewrite were those
    who had stopped. The night now shreds a stopped one again with the others, in the same transaction,
    and takes every row it handled off the rule (unlisted_on cleared), so no later night rewrites it.
    What stays: one withdrawal consent record is written for each row that had not stopped yet, so the
    night's count of new records (and its summary) tells how many had, not which."""
    load(organisation, employer, ANNA, BERT, "Cees;cees@werk.example;0655555555;IT", full_list=True)
    anna, bert = listed_as(organisation, "anna@werk.example"), listed_as(organisation, "bert@werk.example")
    account.stop_participation(participant=anna)
    load(organisation, employer, "Cees;cees@werk.example;0655555555;IT", full_list=True)
    grace_end = timezone.localdate() + dt.timedelta(days=settings.ANONYMISE_UNLISTED_AFTER_DAYS)
    retention.run_retention(today=grace_end - dt.timedelta(days=1))
    before = dump()

    retention.run_retention(today=grace_end)

    after = dump()
    assert changed(before, after, bert.pk)
    assert changed(before, after, anna.pk) == changed(before, after, bert.pk)
    assert retention.unlisted(today=grace_end + dt.timedelta(days=1)) == []
    # A second run the same night, and the next night, rewrite neither row again.
    retention.run_retention(today=grace_end)
    retention.run_retention(today=grace_end + dt.timedelta(days=1))
    assert dump() == after


def test_the_night_a_contract_ends_rewrites_every_row_of_the_organisation_alike(
    organisation: Organisation, employer: StaffUser
) -> None:
    """From before the change, the same shape as the unlisted rule's: the operator dumps the identity store
    around the night an organisation's contract grace ends. retention.of_ended_contracts leaves out the
    rows already stopped, and the night rewrote only those it stopped. Now its one pass ends by rewriting
    every row (retention._one_pass), so a stopper's row changes as the others' do."""
    load(organisation, employer, ANNA, BERT, full_list=True)
    anna, bert = listed_as(organisation, "anna@werk.example"), listed_as(organisation, "bert@werk.example")
    account.stop_participation(participant=anna)
    Organisation.objects.filter(pk=organisation.pk).update(contract_end=timezone.localdate())
    grace_end = timezone.localdate() + dt.timedelta(days=settings.ANONYMISE_AFTER_CONTRACT_END_DAYS + 1)
    before = dump()

    retention.run_retention(today=grace_end)

    after = dump()
    assert changed(before, after, bert.pk)
    assert changed(before, after, anna.pk) == changed(before, after, bert.pk)
