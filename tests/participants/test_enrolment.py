"""Invitations, renewed links, declining and completing enrolment: the rules, via the operations."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection

from participants import enrolment, invitations, requestqueue, retention, verification
from participants.agreements import AgreementMissing
from participants.enrolment import LinkState
from participants.models import (
    ConsentRecord,
    DepartedContact,
    Invitation,
    InvitationSchedule,
    Organisation,
    Participant,
    VerificationCode,
    index_salt,
)
from preventicons import messaging
from preventicons.crypto import blind_index_email, blind_index_phone, hash_token
from preventicons.gateways import MemorySmsGateway
from preventicons.models import OutboundMessage
from tests.conftest import ALL_DATABASES, make_organisation
from tests.participants.people import decline_through_the_batch, enrol_through_the_batch, make_participant

# Every store: the request batch that makes an enrolment (enrol_through_the_batch) joins them all.
pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

# A Monday, 10:00 in Amsterdam: within the invitation hours, so an invitation goes out at once.
START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
LINK = re.compile(r"/i/([A-Za-z0-9_-]{43})/(decline/)?")


def deliver() -> None:
    invitations.send_due_invitations()
    messaging.send_due_messages()


def tokens_in(text: str) -> set[str]:
    return {match.group(1) for match in LINK.finditer(text)}


@pytest.fixture(autouse=True)
def clock() -> Any:
    # Every test at a fixed weekday hour: the schedule sends nothing at night or at a weekend.
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def jan(organisation: Organisation) -> Participant:
    return make_participant(organisation)


def invite(participant: Participant) -> str:
    """Start the organisation's invitations and return the token that reached the participant by e-mail."""
    invitations.send_invitations(organisation=participant.organisation)
    deliver()
    (token,) = tokens_in(str(mail.outbox[-1].body))
    return token


def open_link(token: str) -> Invitation:
    """Open the invitation as its holder does: the SMS code to the number on file, entered."""
    invitation = enrolment.find_invitation(token=token)
    assert invitation is not None
    assert enrolment.request_link_code(invitation=invitation)
    messaging.send_due_messages()
    code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"])
    assert code and enrolment.verify_link_code(invitation=invitation, code=code.group(1))
    return invitation


# --- invitations -------------------------------------------------------------------------------------


def test_no_signed_agreement_means_no_invitation_is_sent(db: Any) -> None:
    unsigned = make_organisation("Zonder Overeenkomst BV", signed=False)
    make_participant(unsigned)

    with pytest.raises(AgreementMissing):
        invitations.send_invitations(organisation=unsigned)

    assert not Invitation.objects.exists()
    assert not OutboundMessage.objects.exists()


def test_invitation_goes_by_email_and_sms_with_a_join_and_a_decline_link(jan: Participant) -> None:
    sent = invitations.send_invitations(organisation=jan.organisation)
    deliver()

    assert sent == 1
    (email,) = mail.outbox
    (sms,) = MemorySmsGateway.outbox
    assert email.to == ["jan@example.nl"] and sms["to"] == "+31612345678"
    (token,) = tokens_in(str(email.body))
    assert f"{settings.SITE_URL}/i/{token}/" in email.body
    assert f"{settings.SITE_URL}/i/{token}/decline/" in email.body
    assert f"/i/{token}/" in sms["body"] and f"/i/{token}/decline/" in sms["body"]
    invitation = Invitation.objects.get(participant=jan)
    assert invitation.token_hash == hash_token(token)
    assert invitation.expires_at == START + dt.timedelta(days=14)
    assert len(token) * 6 >= 256  # 43 URL-safe characters carry 256 bits


def test_only_the_token_hash_is_stored_and_keys_name_nobody(jan: Participant) -> None:
    invitations.send_invitations(organisation=jan.organisation)
    invitations.send_due_invitations()
    # The outbox keeps its keys only as keyed hashes (preventicons.messaging): no participant id in the table.
    key_hashes = set(OutboundMessage.objects.values_list("key_hash", flat=True))
    messaging.send_due_messages()
    (token,) = tokens_in(str(mail.outbox[-1].body))

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM participants_invitation")
        dump = repr(cursor.fetchall())
    assert token not in dump
    # The keys name the schedule, not the person, so a stop cannot cancel (and thereby reveal) its reminders.
    schedule = InvitationSchedule.objects.get()
    assert key_hashes == {
        messaging.outbox_key_hash(f"invite:{schedule.pk}:0:email"),
        messaging.outbox_key_hash(f"invite:{schedule.pk}:0:sms"),
    }


def test_sending_invitations_twice_starts_one_schedule(jan: Participant) -> None:
    first = invitations.send_invitations(organisation=jan.organisation)
    second = invitations.send_invitations(organisation=jan.organisation)
    deliver()
    deliver()

    assert (first, second) == (1, 0)
    assert len(mail.outbox) == 1 and len(MemorySmsGateway.outbox) == 1
    assert Invitation.objects.count() == 1


def test_invitation_days_come_from_the_settings(jan: Participant, settings: Any) -> None:
    settings.INVITATION_DAYS = 3

    invite(jan)

    assert Invitation.objects.get().expires_at == START + dt.timedelta(days=3)


def test_after_the_link_expired_the_next_run_invites_nobody_again(jan: Participant, clock: Any) -> None:
    invite(jan)
    clock.shift(dt.timedelta(days=30))

    assert invitations.send_invitations(organisation=jan.organisation) == 0


def test_invitations_start_only_for_people_new_to_the_list(organisation: Organisation) -> None:
    skipped = [
        make_participant(organisation, email="b@example.nl", mobile="+31610000002", is_listed=False),
        make_participant(organisation, email="c@example.nl", mobile="+31610000003", status="declined"),
        make_participant(organisation, email="d@example.nl", mobile="+31610000004", status="active"),
        make_participant(organisation, email="e@example.nl", mobile="+31610000005", status="stopped"),
        make_participant(organisation, email="g@example.nl", mobile="+31610000007", was_invited=True),
    ]
    invited = make_participant(organisation, email="f@example.nl", mobile="+31610000006")

    assert invitations.send_invitations(organisation=organisation) == 1
    deliver()

    assert [message.to for message in mail.outbox] == [["f@example.nl"]]
    assert set(Invitation.objects.values_list("participant", flat=True)) == {invited.pk}
    assert all(not p.invitations.exists() for p in skipped)


def test_invitations_of_one_organisation_do_not_reach_another(
    jan: Participant, other_organisation: Any
) -> None:
    make_participant(other_organisation, email="piet@example.nl", mobile="+31611111111")

    invite(jan)

    assert set(Invitation.objects.values_list("participant", flat=True)) == {jan.pk}


def test_without_a_mobile_number_the_invitation_goes_by_email_only(organisation: Organisation) -> None:
    participant = Participant(organisation=organisation, name="Els", email="els@example.nl")
    participant.email_index = blind_index_email("els@example.nl")
    participant.save()

    assert invitations.send_invitations(organisation=organisation) == 1
    deliver()
    assert len(mail.outbox) == 1 and MemorySmsGateway.outbox == []


# --- link states -------------------------------------------------------------------------------------


def test_link_states(jan: Participant, clock: Any) -> None:
    token = invite(jan)
    invitation = enrolment.find_invitation(token=token)
    assert invitation is not None
    assert enrolment.link_state(invitation) is LinkState.OPEN

    clock.shift(dt.timedelta(days=15))
    assert enrolment.link_state(invitation) is LinkState.EXPIRED
    Participant.objects.filter(pk=jan.pk).update(is_listed=False)
    assert enrolment.link_state(enrolment.find_invitation(token=token)) is LinkState.WITHDRAWN  # type: ignore[arg-type]
    for status, state in (
        ("active", LinkState.ENROLLED),
        ("declined", LinkState.DECLINED),
        ("stopped", LinkState.STOPPED),
    ):
        Participant.objects.filter(pk=jan.pk).set_state(status=status)
        assert enrolment.link_state(enrolment.find_invitation(token=token)) is state  # type: ignore[arg-type]


def test_tampered_truncated_and_unknown_tokens_find_nothing(jan: Participant) -> None:
    token = invite(jan)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    assert enrolment.find_invitation(token=token) is not None
    assert enrolment.find_invitation(token=tampered) is None
    assert enrolment.find_invitation(token=token[:20]) is None
    assert enrolment.find_invitation(token=token + "x") is None
    assert enrolment.find_invitation(token=hash_token(token)) is None  # the stored hash opens nothing


# --- going on with an expired link ------------------------------------------------------------------


def test_an_expired_link_may_be_gone_on_writing_and_sending_nothing(jan: Participant, clock: Any) -> None:
    token = invite(jan)
    clock.shift(dt.timedelta(days=15))
    expired = enrolment.find_invitation(token=token)
    assert expired is not None and enrolment.link_state(expired) is LinkState.EXPIRED
    OutboundMessage.objects.all().delete()

    assert enrolment.may_go_on_expired(invitation=expired)

    assert Invitation.objects.filter(participant=jan).count() == 1
    assert not OutboundMessage.objects.exists()


@pytest.mark.django_db(databases=ALL_DATABASES)  # the request batch joins every store
def test_not_for_a_link_that_has_not_expired_or_for_who_declined(jan: Participant, clock: Any) -> None:
    token = invite(jan)
    invitation = enrolment.find_invitation(token=token)
    assert invitation is not None
    assert not enrolment.may_go_on_expired(invitation=invitation)

    clock.shift(dt.timedelta(days=15))
    decline_through_the_batch(open_link(token))
    invitation.refresh_from_db()
    assert not enrolment.may_go_on_expired(invitation=invitation)
    assert Invitation.objects.filter(participant=jan).count() == 1


def test_an_expired_link_enrols_only_when_its_person_chose_to_go_on(jan: Participant, clock: Any) -> None:
    token = invite(jan)
    clock.shift(dt.timedelta(days=15))
    invitation = open_link(token)
    enrolment.record_consent(participant=invitation.invitee)

    with pytest.raises(enrolment.EnrolmentRefused, match="expired"):
        requestqueue.confirm_enrolment(invitation=invitation)
    enrolled = enrol_through_the_batch(invitation, expired_ok=True)

    assert enrolled.status == Participant.Status.ACTIVE


# --- declining -------------------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)  # the request batch joins every store
def test_declining_ends_the_participation_but_not_the_schedule(jan: Participant, clock: Any) -> None:
    token = invite(jan)
    invitation = open_link(token)
    assert invitation is not None

    assert decline_through_the_batch(invitation) is True
    assert decline_through_the_batch(invitation) is False

    jan.refresh_from_db()
    assert jan.status == Participant.Status.DECLINED
    assert invitations.send_invitations(organisation=jan.organisation) == 0
    with pytest.raises(ValueError):
        verification.issue_codes(participant=jan, purpose=VerificationCode.Purpose.ENROL)
    # The reminders still come, like everyone else's (tests/participants/test_enrolment_schedule.py).
    clock.shift(dt.timedelta(days=7))
    deliver()
    assert len(mail.outbox) == 2


@pytest.mark.django_db(databases=ALL_DATABASES)  # the request batch joins every store
def test_declining_leaves_only_keyed_hashes_of_the_contact_data(jan: Participant) -> None:
    invitation = open_link(invite(jan))
    assert invitation is not None

    decline_through_the_batch(invitation)
    retention.run_retention()

    # Only the keyed hashes the employer's list names him by stay, on his row (Participant.shredded), so a
    # re-import meets him as one person; no departed record (review 4: its hashes named the row).
    jan.refresh_from_db()
    assert not DepartedContact.objects.exists()
    assert (jan.listed_email_hash, jan.listed_mobile_hash) == invitations.listed_hashes(
        organisation_id=jan.organisation_id, email="jan@example.nl", mobile="+31612345678"
    )
    assert (jan.name, jan.email, jan.mobile, jan.pseudonym) == (None, None, None, None)
    # Not the blind indexes: look-alikes, which no lookup of his contacts finds.
    assert not {jan.email_index, jan.mobile_index} & {
        blind_index_email("jan@example.nl"),
        blind_index_phone("+31612345678"),
    }


# --- consent, details and completing enrolment ------------------------------------------------------------


def test_consent_is_recorded_with_text_version_and_time(jan: Participant, clock: Any) -> None:
    record = enrolment.record_consent(participant=jan)
    again = enrolment.record_consent(participant=jan)

    assert record.pk == again.pk
    assert (record.kind, record.text_version, record.recorded_at) == (
        ConsentRecord.Kind.GIVEN,
        enrolment.CONSENT_TEXT_VERSION,
        START.date(),  # the day only: a consent carries no time of day
    )
    assert enrolment.has_consented(jan)


def verify_round(participant: Participant) -> None:
    """Enter the codes of the latest enrolment round, as they arrived."""
    messaging.send_due_messages()
    for channel in verification.round_channels(participant=participant, purpose="enrol"):
        text = str(mail.outbox[-1].body) if channel == "email" else MemorySmsGateway.outbox[-1]["body"]
        code = re.search(r"\b(\d{6})\b", text)
        assert code
        assert verification.verify_code(
            participant=participant, purpose="enrol", channel=channel, code=code.group(1)
        ).ok


def test_enrolment_completes_only_with_the_link_code_consent_and_the_new_numbers_code(
    jan: Participant, clock: Any
) -> None:
    invitation = open_link(invite(jan))

    with pytest.raises(enrolment.EnrolmentRefused):
        requestqueue.confirm_enrolment(invitation=invitation)
    enrolment.record_consent(participant=jan)
    assert enrolment.start_verification(participant=jan, name="Jan de Vries", mobile="+31687654321")
    with pytest.raises(enrolment.EnrolmentRefused):
        requestqueue.confirm_enrolment(invitation=invitation, with_codes=True)
    verify_round(jan)

    enrolled = enrol_through_the_batch(invitation, with_codes=True)

    enrolled.refresh_from_db()
    invitation.refresh_from_db()
    assert enrolled.status == Participant.Status.ACTIVE
    assert re.fullmatch(r"[0-9a-f]{32}", enrolled.pseudonym or "")
    salt = index_salt(enrolled.organisation_id)  # the batch renewed it (participants.rewrite)
    assert enrolled.mobile == "+31687654321"
    assert enrolled.mobile_index == blind_index_phone("+31687654321", salt)
    assert enrolled.email == "jan@example.nl"
    with pytest.raises(enrolment.EnrolmentRefused):
        requestqueue.confirm_enrolment(invitation=invitation)
    assert enrolment.link_state(invitation) is LinkState.ENROLLED


def test_nothing_new_means_no_code_and_nothing_to_the_work_mailbox(jan: Participant) -> None:
    invitation = open_link(invite(jan))
    enrolment.record_consent(participant=jan)
    mails = len(mail.outbox)

    assert enrolment.start_verification(participant=jan, name="") is False
    enrolled = enrol_through_the_batch(invitation)

    messaging.send_due_messages()
    assert enrolled.status == Participant.Status.ACTIVE and enrolled.weekly_channel == "sms"
    assert len(mail.outbox) == mails


def test_a_new_number_is_not_taken_without_its_code(jan: Participant) -> None:
    invitation = open_link(invite(jan))
    enrolment.record_consent(participant=jan)
    enrolment.start_verification(participant=jan, name="", mobile="+31687654321")

    enrolled = enrol_through_the_batch(invitation)  # a caller skipping the codes

    enrolled.refresh_from_db()
    assert enrolled.mobile == "+31612345678"  # what is new waits for its code


def test_every_enrolment_gets_a_fresh_pseudonym(organisation: Organisation, clock: Any) -> None:
    pseudonyms = set()
    for number in range(2):
        participant = make_participant(
            organisation, email=f"p{number}@example.nl", mobile=f"+3161000001{number}"
        )
        invitation = open_link(invite(participant))
        enrolment.record_consent(participant=participant)
        enrolment.start_verification(participant=participant, name="")
        pseudonyms.add(enrol_through_the_batch(invitation).pseudonym)
    assert len(pseudonyms) == 2


def test_correcting_both_email_and_mobile_at_once_is_refused(jan: Participant) -> None:
    with pytest.raises(ValidationError) as refused:
        enrolment.start_verification(
            participant=jan, name="Jan", email="other@example.nl", mobile="+31687654321"
        )

    assert "__all__" in refused.value.message_dict
    assert not VerificationCode.objects.exists()


def test_an_address_of_a_colleague_on_the_list_cannot_be_taken(jan: Participant) -> None:
    make_participant(jan.organisation, email="piet@example.nl", mobile="+31611111111")

    with pytest.raises(ValidationError) as refused:
        enrolment.start_verification(participant=jan, name="Jan", email="Piet@Example.nl")

    assert "email" in refused.value.message_dict
    assert not VerificationCode.objects.exists()


def test_a_corrected_name_is_stored_sealed_by_the_batch_not_when_it_is_typed(jan: Participant) -> None:
    """The details page writes nothing on the row (it would date the enrolment); the name goes with the
    queued enrolment and the batch writes it, sealed."""
    invitation = open_link(invite(jan))
    enrolment.record_consent(participant=jan)
    enrolment.start_verification(participant=jan, name="Jan de Vries-Bakker")
    jan.refresh_from_db()
    assert jan.name == "Jan de Vries"

    enrol_through_the_batch(invitation, name="Jan de Vries-Bakker")

    jan.refresh_from_db()
    assert jan.name == "Jan de Vries-Bakker"
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM participants_participant WHERE id = %s", [jan.pk])
        (stored,) = cursor.fetchone()
    assert "Bakker" not in stored


def test_masks_show_enough_to_recognise_and_no_more() -> None:
    assert enrolment.mask_email("jan@example.nl") == "j•••@example.nl"
    assert enrolment.mask_mobile("+31612345678") == "••••••78"


# --- where the weekly messages go -------------------------------------------------------------------------


def test_a_private_address_is_taken_only_once_its_code_was_entered(jan: Participant) -> None:
    invitation = open_link(invite(jan))
    assert invitation is not None
    enrolment.record_consent(participant=jan)
    private = Participant.WeeklyChannel.PRIVATE_EMAIL

    enrolment.start_verification(
        participant=jan, name="", weekly_channel=private, private_email="jan.thuis@example.org"
    )
    messaging.send_due_messages()

    # The e-mail code went to the private address; the number on file was proven by the link's code.
    assert mail.outbox[-1].to == ["jan.thuis@example.org"]
    assert verification.round_channels(participant=jan, purpose="enrol") == {"email"}
    with pytest.raises(enrolment.EnrolmentRefused):
        requestqueue.confirm_enrolment(invitation=invitation, weekly_channel=private, with_codes=True)
    with pytest.raises(enrolment.EnrolmentRefused):
        requestqueue.confirm_enrolment(invitation=invitation, weekly_channel=private)
    jan.refresh_from_db()
    assert jan.private_email is None and jan.weekly_channel is None

    verify_round(jan)
    enrolled = enrol_through_the_batch(invitation, weekly_channel=private, with_codes=True)

    enrolled.refresh_from_db()
    assert enrolled.weekly_channel == private
    assert enrolled.private_email == "jan.thuis@example.org"
    assert enrolled.email == "jan@example.nl"  # the work address stays what the list says
    with connection.cursor() as cursor:
        row_id = Participant._meta.pk.get_db_prep_value(enrolled.pk, connection)  # type: ignore[union-attr]
        cursor.execute("SELECT private_email FROM participants_participant WHERE id = %s", [row_id])
        (stored,) = cursor.fetchone()
    assert stored.startswith("v1.") and "thuis" not in stored


def test_a_private_address_needs_its_own_code_round(jan: Participant) -> None:
    """Codes proven for the work address do not make a private address usable afterwards."""
    invitation = open_link(invite(jan))
    assert invitation is not None
    enrolment.record_consent(participant=jan)
    enrolment.start_verification(participant=jan, name="", mobile="+31687654321")
    verify_round(jan)

    with pytest.raises(enrolment.EnrolmentRefused):
        requestqueue.confirm_enrolment(
            invitation=invitation, weekly_channel=Participant.WeeklyChannel.PRIVATE_EMAIL, with_codes=True
        )

    jan.refresh_from_db()
    assert jan.status == Participant.Status.INVITED and jan.private_email is None


def test_the_work_address_is_no_private_address(jan: Participant) -> None:
    with pytest.raises(ValidationError) as refused:
        enrolment.start_verification(
            participant=jan,
            name="",
            weekly_channel=Participant.WeeklyChannel.PRIVATE_EMAIL,
            private_email="JAN@example.nl",
        )

    assert "private_email" in refused.value.message_dict
    assert not VerificationCode.objects.exists()
