"""A participant on the address list, as the tests of the participant journey need one."""

from __future__ import annotations

from typing import Any

from participants.invitations import BATCH, departed_owners, listed_hashes
from participants.models import DepartedContact, Invitation, InvitationSchedule, Organisation, Participant
from tests.factories import ParticipantFactory


def make_participant(
    organisation: Organisation,
    *,
    email: str = "jan@example.nl",
    mobile: str = "+31612345678",
    status: str = Participant.Status.INVITED,
    **fields: Any,
) -> Participant:
    """Jan, invited by default, with his contact data sealed and indexed as the import leaves it."""
    fields.setdefault("was_invited", False)
    participant: Participant = ParticipantFactory.create(
        organisation=organisation,
        name="Jan de Vries",
        status=status,
        email_address=email,
        mobile_number=mobile,
        **fields,
    )
    return participant


def enrol_through_the_batch(invitation: Invitation, **choices: Any) -> Participant:
    """Join through this opened link as the pages do (queued), then run the batch that makes it; the
    participant as the table holds them afterwards. ``choices`` as requestqueue.confirm_enrolment takes
    them (weekly_channel, with_codes, expired_ok, name)."""
    from participants import requestqueue
    from scores import wellbeing

    requestqueue.confirm_enrolment(invitation=invitation, **choices)
    assert wellbeing.take_up_help_requests().enrolments == 1
    return Participant.objects.get(pk=invitation.invitee.pk)


def decline_through_the_batch(invitation: Invitation) -> bool:
    """Say no through this opened link as the page does (queued), then run the batch that makes it."""
    from participants import requestqueue
    from scores import wellbeing

    if not requestqueue.confirm_decline(invitation=invitation):
        return False
    return wellbeing.take_up_help_requests().declines == 1


def remember_departed(*, participant: Participant) -> None:
    """A departed record of this person's listed hashes, as a stop or a decline wrote one before review 4.

    Nothing in the platform writes such records any more (Participant.shredded keeps the hashes on the
    row); databases from before hold them, and the import and the account-link form still read them, so
    tests make them here to stand for that data.
    """
    remember_departed_all(participants=[participant])


def _as_listed(participant: Participant) -> tuple[str | None, str | None]:
    # The hashes the list knows them by. A participant row from before the listed hashes has none: then the
    # addresses the employer supplied for their invitation schedule, else the contacts on file.
    if participant.listed_email_hash or participant.listed_mobile_hash:
        return participant.listed_email_hash, participant.listed_mobile_hash
    schedule = InvitationSchedule.objects.filter(participant_id=participant.pk).first()
    email = schedule.email if schedule and schedule.email else participant.email
    mobile = schedule.mobile if schedule and schedule.mobile else participant.mobile
    return listed_hashes(organisation_id=participant.organisation_id, email=email, mobile=mobile)


def remember_departed_all(*, participants: list[Participant]) -> int:
    """remember_departed for many at once, as the nightly anonymisation did; how many people were new.

    One DepartedContact per person with both of their listed hashes; a row already remembering either hash
    (a decliner's, from when declines wrote theirs at once; a row from before the hashes were paired) is
    replaced by it, so one person is one row. Runs in the caller's transaction. Sorted, not in the
    participants' order: the new rows' order says nothing about whom they came from.
    """
    records: set[tuple[int, str | None, str | None]] = set()
    for participant in participants:
        email_hash, mobile_hash = _as_listed(participant)
        if email_hash or mobile_hash:
            records.add((participant.organisation_id, email_hash, mobile_hash))
    by_organisation: dict[int, list[tuple[str | None, str | None]]] = {}
    for organisation_id, email_hash, mobile_hash in sorted(
        records, key=lambda r: (r[0], r[1] or "", r[2] or "")
    ):
        by_organisation.setdefault(organisation_id, []).append((email_hash, mobile_hash))
    added = 0
    for organisation_id, pairs in by_organisation.items():
        hashes = {value for pair in pairs for value in pair if value}
        existing = departed_owners(organisation_id=organisation_id, hashes=hashes)
        kept = {(record.email_hash, record.mobile_hash) for record in existing}
        new = [pair for pair in pairs if pair not in kept]
        new_hashes = {value for pair in new for value in pair if value}
        replaced = [record.pk for record in existing if {record.email_hash, record.mobile_hash} & new_hashes]
        for start in range(0, len(replaced), BATCH):
            DepartedContact.objects.filter(pk__in=replaced[start : start + BATCH]).delete()
        DepartedContact.objects.bulk_create(
            [
                DepartedContact(
                    organisation_id=organisation_id, email_hash=email_hash, mobile_hash=mobile_hash
                )
                for email_hash, mobile_hash in new
            ],
            batch_size=BATCH,
        )
        added += max(0, len(new) - len(replaced))
    return added
