"""Review 5 (adversary): the invitation links' table, and today's rejoin queue and organisation lock.

Attackers: the operator (a ``pg_dump`` of the identity store, or the live database, no key file) and the
employer (its mailboxes, the account pages a forwarded link opens). Each test is an attack; a strict xfail
is a leak still open, its reason says what and a direction for the fix.

1. Operator, one dump: ``participants_invitation`` names its participant in clear and keeps ``used_at`` in
   clear, written when the person enrols. Every link a person enrolled through says "this participant row
   takes part", to the microsecond, until the link is purged (``INVITATION_DAYS`` +
   ``EXPIRED_INVITATION_KEEP_DAYS``, some two months). The participant row, its sealed status and its shape
   were made alike for exactly this (tests/test_attacks_rowshape.py).
2. Operator, one dump: a stop and the nightly anonymisation set ``participant_id`` NULL on every link of
   the person, and the invitation schedule's later reminders make links with no participant for them. So
   in a cohort sent the same step (one ``expires_at``), the participant rows with no link of that step are
   the ones who stopped or declined (and were erased), for two months.
3. Operator, one dump, for good: the invitation purge keeps the newest link only of someone still invited
   (never enrolled, never declined). After it, the participant rows that still have a link are exactly
   those who never took part, so every other row of the list took part (or declined): who takes part, in
   every later dump.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import connections

from participants import retention
from participants.models import Organisation, StaffUser
from tests.conftest import ALL_DATABASES
from tests.test_attacks_rowshape import START, _people

pytestmark = [pytest.mark.usefixtures("english", "empty_cache")]


def _invitation_rows() -> list[tuple[uuid.UUID | None, bool, dt.datetime]]:
    """The invitation table as the operator reads it: (participant_id, used_at set, expires_at) per row."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT participant_id, used_at IS NOT NULL, expires_at FROM participants_invitation")
        return [
            (uuid.UUID(str(pid)) if pid is not None else None, bool(used), expires)
            for pid, used, expires in cursor.fetchall()
        ]


def _per_person(ids: dict[str, uuid.UUID]) -> dict[str, tuple[int, int]]:
    """Per state: (links naming the row, links naming it with used_at set)."""
    rows = _invitation_rows()
    return {
        state: (
            sum(1 for pid, _used, _expires in rows if pid == pk),
            sum(1 for pid, used, _expires in rows if pid == pk and used),
        )
        for state, pk in ids.items()
    }


@pytest.mark.xfail(
    strict=True,
    reason=(
        "review 5 (1): Invitation.used_at is written in clear at enrolment, beside participant_id in clear, so "
        "one dump names every participant row that enrolled (and the minute) until the link is purged. Fix: "
        "do not write used_at (a link already opens no second enrolment once the sealed status is not "
        "'invited': complete_enrolment and link_state check it), NULL it in a migration and VACUUM FULL the "
        "table so the old values leave the file."
    ),
)
@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_a_dump_of_the_invitation_links_does_not_tell_who_enrolled(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    used = {state: used for state, (_links, used) in _per_person(ids).items()}
    # What the operator reads per participant row: whether a link of theirs carries a used_at.
    assert len(set(used.values())) == 1, used


@pytest.mark.xfail(
    strict=True,
    reason=(
        "review 5 (2): a stop and the nightly anonymisation set participant_id NULL on every invitation link "
        "of the person (account.stop_participation, retention.anonymise_participants), and the schedule's "
        "later reminders make links without a participant for them (invitations._link_for): in one dump the "
        "rows of the cohort with no link are the ones who stopped or declined. Fix: keep the participant on "
        "the links (link_state already opens nothing for a stopped row, whose sealed status says so; the "
        "shredded row stays), and make the reminders' links for the row as for anyone."
    ),
)
@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_a_dump_of_the_invitation_links_does_not_tell_who_stopped_or_was_erased(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    # The first reminder a week later, for everyone on the list alike (whatever they did).
    with time_machine.travel(START + dt.timedelta(days=7, minutes=1), tick=False):
        from tests.test_attacks_rowshape import _deliver

        _deliver()
    rows = _invitation_rows()
    # One cohort, two steps: each step's links share one expires_at.
    steps = Counter(expires for _pid, _used, expires in rows)
    assert len(steps) == 2 and set(steps.values()) == {len(ids)}
    links = {state: links for state, (links, _used) in _per_person(ids).items()}
    assert len(set(links.values())) == 1, links


@pytest.mark.xfail(
    strict=True,
    reason=(
        "review 5 (3): retention._purge_invitations keeps the newest link only of someone still invited, so "
        "after the purge the participant rows that still have a link are those who never enrolled (and "
        "every other row enrolled or declined), in every later dump. Fix: keep the newest link of every "
        "participant row alike (or of none), whatever its sealed status; what the reminders need of it is "
        "decided from the status in Python."
    ),
)
@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_after_the_invitation_purge_the_links_left_do_not_tell_who_never_took_part(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    later = START + dt.timedelta(
        days=django_settings.INVITATION_DAYS + django_settings.EXPIRED_INVITATION_KEEP_DAYS + 1
    )
    with time_machine.travel(later, tick=False):
        retention.run_retention()
    links = {state: links for state, (links, _used) in _per_person(ids).items()}
    assert len(set(links.values())) == 1, links
