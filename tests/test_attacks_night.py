"""Operator (live database, its files, dumps; no key file): the night tells not whose rows it erased.

The nightly anonymisation (participants.retention) erases the day's decliners, the inactive whose time ran
out, the rows whose unlisting grace ended and those of an ended contract. It rewrote only their rows: two
dumps around the night named them by their changed ciphertexts and blind indexes, their ``xmin`` and their
dead row versions, and left the stoppers among an ended contract's rows alone (review 7). Now the night's
rules run in one pass that ends by writing every participant row of every organisation once, alike, under
new index salts (retention._one_pass, participants.rewrite). Each test below is an attack that worked before.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.db import connections

from participants import account, retention
from participants.models import AccountLink, Organisation, Participant, index_salt
from preventicons.crypto import blind_index_email
from tests.batchhold import waits_for_a_running_batch
from tests.conftest import ALL_DATABASES
from tests.participants.people import make_participant
from tests.participants.test_stop import make_active
from tests.rowversions import assert_every_row_written_once_by_the_last_pass

pytestmark = [
    pytest.mark.usefixtures("english", "empty_cache"),
    pytest.mark.django_db(databases=ALL_DATABASES, transaction=True),
]

TUESDAY = dt.datetime(2026, 11, 17, 12, 0, tzinfo=dt.UTC)
TABLE = "participants_participant"
# A night by which both the inactivity period and the unlisting grace of a row unlisted today have run out.
NIGHT = TUESDAY.date() + dt.timedelta(
    days=max(settings.ANONYMISE_INACTIVE_AFTER_DAYS, settings.ANONYMISE_UNLISTED_AFTER_DAYS) + 1
)


def _postgres_only() -> None:
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's xmin and table pages")


def _dump() -> dict[str, dict[str, object]]:
    """The table as pg_dump gives it, with each row's xmin beside it."""
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT xmin::text AS xmin_, * FROM {TABLE}")  # noqa: S608  # nosec B608  # the test's name
        names = [column.name for column in cursor.description]
        return {str(row[1]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _everyone(organisation: Organisation, other: Organisation) -> dict[str, Participant]:
    """One person per rule of the night, and people no rule takes, in two organisations."""
    people = {
        name: make_active(organisation, name=f"P {n}", email=f"p{n}@example.nl", mobile=f"+3161234560{n}")
        for n, name in enumerate(["inactive", "unlisted", "unlisted stopper", "bystander", "stopped before"])
    }
    people["decliner"] = make_participant(organisation, email="dec@example.nl", mobile="+31612345676")
    people["invited"] = make_participant(organisation, email="inv@example.nl", mobile="+31612345677")
    people["elsewhere"] = make_active(other, name="E", email="e@example.nl", mobile="+31612345678")
    # As the request batch leaves them (tests/test_attacks_every_row.py runs the batch itself).
    Participant.objects.filter(pk=people["decliner"].pk).set_state(status=Participant.Status.DECLINED)
    Participant.objects.filter(pk=people["inactive"].pk).set_state(status=Participant.Status.INACTIVE)
    account.stop_participation(participant=people["stopped before"])
    account.stop_participation(participant=people["unlisted stopper"])
    # A full list no longer names these two (participants.importing writes the same columns).
    Participant.objects.filter(pk__in=[people["unlisted"].pk, people["unlisted stopper"].pk]).update(
        is_listed=False, unlisted_on=TUESDAY.date()
    )
    return people


@time_machine.travel(TUESDAY, tick=True)
def test_two_dumps_around_the_night_change_every_row_alike_whoever_it_erased(
    organisation: Organisation, other_organisation: Organisation
) -> None:
    """The operator diffs the table across the night and reads each row's xmin: every row of every
    organisation changed in the same columns (every sealed one and both blind indexes) and carries the
    night's xmin, whether the night erased it (a decliner, an inactive person, an unlisted one), had erased it
    before, or had no business with it. Only the unlisted rows' day of unlisting goes, which the dumps showed
    before the night anyway."""
    _postgres_only()
    people = _everyone(organisation, other_organisation)
    before = _dump()

    counts = retention.run_retention(today=NIGHT)

    after = _dump()
    assert (counts.declined_erased, counts.unlisted_anonymised, counts.inactive_anonymised) == (1, 1, 1)
    assert set(after) == set(before)
    changed = {pk: {name for name in before[pk] if before[pk][name] != after[pk][name]} for pk in before}
    expected = {*Participant.sealed_columns(), "email_index", "mobile_index", "xmin_"}
    unlisted = {str(people["unlisted"].pk), str(people["unlisted stopper"].pk)}
    assert {pk: columns - {"unlisted_on"} for pk, columns in changed.items() if pk in unlisted} == {
        pk: expected for pk in unlisted
    }
    assert all(changed[pk] == {*expected, "unlisted_on"} for pk in unlisted)
    assert all(columns == expected for pk, columns in changed.items() if pk not in unlisted), {
        name: changed[str(person.pk)] ^ expected for name, person in people.items()
    }
    assert len({row["xmin_"] for row in after.values()}) == 1
    # The night did what it says, and no more.
    status = {name: Participant.objects.get(pk=person.pk).status for name, person in people.items()}
    stopped = {name for name, value in status.items() if value == Participant.Status.STOPPED}
    assert stopped == {"decliner", "inactive", "unlisted", "unlisted stopper", "stopped before"}
    assert status["bystander"] == status["elsewhere"] == Participant.Status.ACTIVE
    assert status["invited"] == Participant.Status.INVITED


@time_machine.travel(TUESDAY, tick=True)
def test_the_night_leaves_one_dead_version_per_row_and_none_of_its_own(
    organisation: Organisation, other_organisation: Organisation
) -> None:
    """The operator reads the table's pages (pageinspect), dead versions included: a row the night erased
    and then rewrote with everyone would leave a version the night both wrote and killed, on its rows only."""
    _postgres_only()
    _everyone(organisation, other_organisation)

    retention.run_retention(today=NIGHT)

    assert_every_row_written_once_by_the_last_pass(organisation.pk)


@time_machine.travel(TUESDAY, tick=True)
def test_after_the_night_everyone_left_is_found_under_the_new_salt_and_nobody_erased_is(
    organisation: Organisation, other_organisation: Organisation
) -> None:
    """Renewing every index must lose nobody the night left: the account-link form finds the bystander,
    only under the new salt; the addresses the night erased are found under neither."""
    people = _everyone(organisation, other_organisation)
    old_salt = index_salt(organisation.pk)

    retention.run_retention(today=NIGHT)

    salt = index_salt(organisation.pk)
    assert salt != old_salt
    bystander = Participant.objects.get(email_index=blind_index_email("p3@example.nl", salt))
    assert bystander.pk == people["bystander"].pk
    assert not Participant.objects.filter(email_index=blind_index_email("p3@example.nl", old_salt)).exists()
    for address in ("p0@example.nl", "p1@example.nl", "dec@example.nl"):
        for any_salt in (salt, old_salt):
            assert not Participant.objects.filter(email_index=blind_index_email(address, any_salt)).exists()
    assert account.send_account_links(request_id="after-the-night", email="p3@example.nl") == 1
    assert AccountLink.objects.naming([bystander.pk]).count() == 1
    elsewhere = Participant.objects.get(
        email_index=blind_index_email("e@example.nl", index_salt(other_organisation.pk))
    )
    assert elsewhere.pk == people["elsewhere"].pk


@time_machine.travel(TUESDAY, tick=True)
def test_a_second_night_and_a_night_with_nothing_due_write_no_row(
    organisation: Organisation, other_organisation: Organisation
) -> None:
    """Idempotent, and quiet: the rows the first night took left their rules (an unlisted stopper's too),
    so the next night finds nothing, renews no salt and writes no row; nor does a night before anything
    is due."""
    _postgres_only()
    _everyone(organisation, other_organisation)
    Participant.objects.filter(pk__in=retention.declined()).set_state(status=Participant.Status.ACTIVE)
    quiet = _dump()
    salt = index_salt(organisation.pk)

    assert not retention.run_retention(today=TUESDAY.date()).any()

    assert _dump() == quiet
    assert index_salt(organisation.pk) == salt
    assert retention.run_retention(today=NIGHT).inactive_anonymised == 1
    after_first = _dump()

    assert not retention.run_retention(today=NIGHT + dt.timedelta(days=1)).any()

    assert _dump() == after_first


@time_machine.travel(TUESDAY, tick=True)
def test_the_night_holds_every_organisation_before_it_reads(organisation: Organisation) -> None:
    """Its rules read the rows, then its pass writes them all: a request batch, an import or an enrolment
    writing in between would be overwritten, or keep an index under a salt the night replaces. So the
    night takes every organisation first, even with nothing due, and waits for a batch holding them."""
    make_active(organisation)
    waits_for_a_running_batch(lambda: retention.run_retention(today=TUESDAY.date()))
