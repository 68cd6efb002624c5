"""Participants and weekly links for the scores tests (rounds, submission, unlinkability, browser)."""

from __future__ import annotations

import datetime as dt
import itertools
import re

from participants.models import Department, Organisation, Participant
from preventicons.crypto import hash_token, new_pseudonym, new_token
from scores import rounds
from scores.models import Score, WeeklyLink
from scores.submission import record_score
from tests.factories import ParticipantFactory

WEEK_LINK = re.compile(r"/w/([A-Za-z0-9_-]{43})/")
_numbers = itertools.count(1)


def make_participant(
    organisation: Organisation,
    *,
    status: str = Participant.Status.ACTIVE,
    is_listed: bool = True,
    messages_paused: bool = False,
    prefers_email: bool = True,
    prefers_sms: bool = True,
    email: bool = True,
    mobile: bool = True,
    weekly_channel: str | None = None,
    private_email: str | None = None,
) -> Participant:
    """A participant with a unique address and number, an active one with a pseudonym and a department.

    The weekly messages go to ``weekly_channel``; by default to the work address, or by SMS without one.
    """
    if weekly_channel is None and email and prefers_email:
        weekly_channel = Participant.WeeklyChannel.WORK_EMAIL
    elif weekly_channel is None and mobile and prefers_sms:
        weekly_channel = Participant.WeeklyChannel.SMS
    n = next(_numbers)
    address = f"medewerker{n}@example.nl"
    number = f"+3161{n:07d}"
    participant: Participant = ParticipantFactory.create(
        organisation=organisation,
        department=Department.objects.filter(organisation=organisation).order_by("name").first(),
        status=status,
        is_listed=is_listed,
        messages_paused=messages_paused,
        prefers_email=prefers_email,
        prefers_sms=prefers_sms,
        name=f"Medewerker {n}",
        pseudonym=new_pseudonym() if status == Participant.Status.ACTIVE else None,
        weekly_channel=weekly_channel,
        private_email=private_email,
        was_invited=True,
        email_address=address if email else None,
        mobile_number=number if mobile else None,
    )
    return participant


# The states whose weekly link pages must read like an active participant's (the "reads the same" tests).
LINK_HOLDER_STATES = ["active", "paused", "inactive", "stopped", "unlisted"]


def person_in_state(
    organisation: Organisation, state: str, *, answered_week: dt.date | None = None, value: int = 5
) -> Participant:
    """A participant in one of LINK_HOLDER_STATES, with a score for ``answered_week`` when given.

    A stopped person's score of that week carries a per-week pseudonym nobody can derive any more.
    """
    person = make_participant(organisation, messages_paused=state == "paused", is_listed=state != "unlisted")
    if state in ("inactive", "stopped"):
        person.status = state
        person.pseudonym = person.pseudonym if state == "inactive" else None
        person.save()
    if answered_week is not None:
        record_score(
            pseudonym=person.pseudonym or new_pseudonym(),
            week=answered_week,
            value=value,
            organisation_id=organisation.pk,
            department_id=None,
        )
    return person


def make_link(participant: Participant, *, week: dt.date) -> tuple[WeeklyLink, str]:
    """A weekly link as the round makes it, and its token (only the hash is stored)."""
    token = new_token()
    link = WeeklyLink.objects.create(
        participant=participant,
        week=week,
        token_hash=hash_token(token),
        expires_at=rounds.week_closes_at(week),
    )
    return link, token


def add_score(participant: Participant, *, week: dt.date, value: int) -> None:
    """A score of the participant's, stored as a submission stores it (sealed, per-week pseudonym)."""
    assert participant.pseudonym
    record_score(
        pseudonym=participant.pseudonym,
        week=week,
        value=value,
        organisation_id=participant.organisation_id,
        department_id=participant.department_id,
    )


def recorded_values() -> list[int]:
    """Every score value in the table, opened (the column holds ciphertext)."""
    return sorted(score.value for score in Score.objects.all())
