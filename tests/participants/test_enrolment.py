"""Invitations, reminders, new links, declining and completing enrolment: the rules, via the operations."""

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

from participants import enrolment, verification
from participants.agreements import AgreementMissing
from participants.enrolment import LinkState, NewLink
from participants.models import ConsentRecord, Invitation, Organisation, Participant, VerificationCode
from preventicons import messaging
from preventicons.crypto import blind_index_email, blind_index_phone, hash_token
from preventicons.messaging import MemorySmsGateway
from preventicons.models import OutboundMessage
from tests.conftest import make_organisation
from tests.participants.people import make_participant

START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
WEEK = dt.date(2026, 11, 23)
LINK = re.compile(r"/i/([A-Za-z0-9_-]{43})/(decline/)?")


def deliver() -> None:
    messaging.send_due_messages()


def tokens_in(text: str) -> set[str]:
    return {match.group(1) for match in LINK.finditer(text)}


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def jan(organisation: Organisation) -> Participant:
    return make_participant(organisation)


def invite(participant: Participant) -> str:
    """Send invitations to the participant's organisation and return the token that reached them by e-mail."""
    enrolment.send_invitations(organisation=participant.organisation)
    deliver()
    (token,) = tokens_in(str(mail.outbox[-1].body))
    return token


# --- invitations -------------------------------------------------------------------------------------


def test_no_signed_agreement_means_no_invitation_is_sent(db: Any) -> None:
    unsigned = make_organisation("Zonder Overeenkomst BV", signed=False)
    make_participant(unsigned)

    with pytest.raises(AgreementMissing):
        enrolment.send_invitations(organisation=unsigned)

    assert not Invitation.objects.exists()
    assert not OutboundMessage.objects.exists()


def test_invitation_goes_by_email_and_sms_with_a_join_and_a_decline_link(
    jan: Participant, clock: Any
) -> None:
    sent = enrolment.send_invitations(organisation=jan.organisation)
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


def test_only_the_token_hash_is_stored_and_keys_carry_no_personal_data(jan: Participant) -> None:
    enrolment.send_invitations(organisation=jan.organisation)
    # The outbox keeps its keys only as keyed hashes: no participant id in the table.
    key_hashes = set(OutboundMessage.objects.values_list("key_hash", flat=True))
    deliver()
    (token,) = tokens_in(str(mail.outbox[-1].body))

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM participants_invitation")
        dump = repr(cursor.fetchall())
    assert token not in dump
    invitation = Invitation.objects.get(participant=jan)
    assert key_hashes == {
        messaging.outbox_key_hash(f"invite:{jan.pk}:{invitation.pk}:email"),
        messaging.outbox_key_hash(f"invite:{jan.pk}:{invitation.pk}:sms"),
    }


def test_sending_invitations_twice_sends_once(jan: Participant) -> None:
    first = enrolment.send_invitations(organisation=jan.organisation)
    second = enrolment.send_invitations(organisation=jan.organisation)
    deliver()

    assert (first, second) == (1, 0)
    assert len(mail.outbox) == 1 and len(MemorySmsGateway.outbox) == 1
    assert Invitation.objects.count() == 1


def test_invitation_days_come_from_the_settings(jan: Participant, clock: Any, settings: Any) -> None:
    settings.INVITATION_DAYS = 3

    enrolment.send_invitations(organisation=jan.organisation)

    assert Invitation.objects.get().expires_at == START + dt.timedelta(days=3)


def test_after_the_link_expired_the_next_run_invites_again(jan: Participant, clock: Any) -> None:
    enrolment.send_invitations(organisation=jan.organisation)
    clock.shift(dt.timedelta(days=14, seconds=1))

    assert enrolment.send_invitations(organisation=jan.organisation) == 1
    assert Invitation.objects.filter(participant=jan).count() == 2


def test_invitations_skip_who_paused_left_the_list_declined_joined_or_stopped(
    organisation: Organisation,
) -> None:
    skipped = [
        make_participant(organisation, email="a@example.nl", mobile="+31600000001", messages_paused=True),
        make_participant(organisation, email="b@example.nl", mobile="+31600000002", is_listed=False),
        make_participant(organisation, email="c@example.nl", mobile="+31600000003", status="declined"),
        make_participant(organisation, email="d@example.nl", mobile="+31600000004", status="active"),
        make_participant(organisation, email="e@example.nl", mobile="+31600000005", status="stopped"),
    ]
    invited = make_participant(organisation, email="f@example.nl", mobile="+31600000006")

    assert enrolment.send_invitations(organisation=organisation) == 1
    deliver()

    assert [message.to for message in mail.outbox] == [["f@example.nl"]]
    assert set(Invitation.objects.values_list("participant", flat=True)) == {invited.pk}
    assert all(not p.invitations.exists() for p in skipped)


def test_invitations_of_one_organisation_do_not_reach_another(
    jan: Participant, other_organisation: Any
) -> None:
    make_participant(other_organisation, email="piet@example.nl", mobile="+31611111111")

    enrolment.send_invitations(organisation=jan.organisation)

    assert set(Invitation.objects.values_list("participant", flat=True)) == {jan.pk}


def test_without_a_mobile_number_the_invitation_goes_by_email_only(organisation: Organisation) -> None:
    participant = Participant(organisation=organisation, name="Els", email="els@example.nl")
    participant.email_index = blind_index_email("els@example.nl")
    participant.save()

    assert enrolment.send_invitations(organisation=organisation) == 1
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
        Participant.objects.filter(pk=jan.pk).update(status=status)
        assert enrolment.link_state(enrolment.find_invitation(token=token)) is state  # type: ignore[arg-type]


def test_tampered_truncated_and_unknown_tokens_find_nothing(jan: Participant) -> None:
    token = invite(jan)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    assert enrolment.find_invitation(token=token) is not None
    assert enrolment.find_invitation(token=tampered) is None
    assert enrolment.find_invitation(token=token[:20]) is None
    assert enrolment.find_invitation(token=token + "x") is None
    assert enrolment.find_invitation(token=hash_token(token)) is None  # the stored hash opens nothing


# --- reminders ----------------------------------------------------------------------------------------


def test_reminders_go_once_per_week_with_a_fresh_link(jan: Participant, clock: Any) -> None:
    first_token = invite(jan)

    assert enrolment.send_enrolment_reminders(organisation=jan.organisation, week=WEEK) == 1
    assert enrolment.send_enrolment_reminders(organisation=jan.organisation, week=WEEK) == 0
    deliver()
    reminder = mail.outbox[-1]
    assert len(mail.outbox) == 2 and len(MemorySmsGateway.outbox) == 2
    (fresh,) = tokens_in(str(reminder.body))
    assert fresh != first_token
    assert enrolment.link_state(enrolment.find_invitation(token=fresh)) is LinkState.OPEN  # type: ignore[arg-type]
    assert Invitation.objects.filter(participant=jan).count() == 2  # the repeated run kept no orphan link

    clock.shift(dt.timedelta(days=7))
    assert (
        enrolment.send_enrolment_reminders(organisation=jan.organisation, week=WEEK + dt.timedelta(days=7))
        == 1
    )


def test_reminders_skip_who_joined_declined_paused_or_was_never_invited(organisation: Organisation) -> None:
    joined = make_participant(organisation, email="a@example.nl", mobile="+31600000001")
    declined = make_participant(organisation, email="b@example.nl", mobile="+31600000002")
    paused = make_participant(organisation, email="c@example.nl", mobile="+31600000003")
    waiting = make_participant(organisation, email="d@example.nl", mobile="+31600000004")
    enrolment.send_invitations(organisation=organisation)
    make_participant(organisation, email="e@example.nl", mobile="+31600000005")  # not invited yet
    Participant.objects.filter(pk=joined.pk).update(status="active")
    enrolment.decline_invitation(invitation=declined.invitations.get())
    Participant.objects.filter(pk=paused.pk).update(messages_paused=True)
    deliver()
    mail.outbox.clear()

    assert enrolment.send_enrolment_reminders(organisation=organisation, week=WEEK) == 1
    deliver()
    assert [message.to for message in mail.outbox] == [["d@example.nl"]]
    assert waiting.invitations.count() == 2


def test_no_reminders_without_a_signed_agreement(db: Any) -> None:
    unsigned = make_organisation("Zonder Overeenkomst BV", signed=False)

    with pytest.raises(AgreementMissing):
        enrolment.send_enrolment_reminders(organisation=unsigned, week=WEEK)


# --- a new link for an expired one ---------------------------------------------------------------------


def test_an_expired_link_gets_a_new_one_sent_to_the_address_on_file_once(
    jan: Participant, clock: Any
) -> None:
    token = invite(jan)
    clock.shift(dt.timedelta(days=15))
    expired = enrolment.find_invitation(token=token)
    assert expired is not None

    assert enrolment.send_new_link(invitation=expired) is NewLink.SENT
    assert enrolment.send_new_link(invitation=expired) is NewLink.ALREADY_SENT
    deliver()

    assert [message.to for message in mail.outbox] == [["jan@example.nl"]] * 2
    assert [sms["to"] for sms in MemorySmsGateway.outbox] == ["+31612345678"] * 2
    (fresh,) = tokens_in(str(mail.outbox[-1].body))
    assert enrolment.link_state(enrolment.find_invitation(token=fresh)) is LinkState.OPEN  # type: ignore[arg-type]


def test_no_new_link_for_a_link_that_has_not_expired_or_for_who_declined(
    jan: Participant, clock: Any
) -> None:
    token = invite(jan)
    invitation = enrolment.find_invitation(token=token)
    assert invitation is not None
    assert enrolment.send_new_link(invitation=invitation) is NewLink.NOT_POSSIBLE

    clock.shift(dt.timedelta(days=15))
    enrolment.decline_invitation(invitation=invitation)
    assert enrolment.send_new_link(invitation=invitation) is NewLink.NOT_POSSIBLE
    assert Invitation.objects.filter(participant=jan).count() == 1


# --- declining -------------------------------------------------------------------------------------------


def test_declining_stops_every_further_message(jan: Participant, clock: Any) -> None:
    token = invite(jan)
    invitation = enrolment.find_invitation(token=token)
    assert invitation is not None

    assert enrolment.decline_invitation(invitation=invitation) is True
    assert enrolment.decline_invitation(invitation=invitation) is False

    jan.refresh_from_db()
    assert jan.status == Participant.Status.DECLINED
    clock.shift(dt.timedelta(days=20))
    assert enrolment.send_invitations(organisation=jan.organisation) == 0
    assert enrolment.send_enrolment_reminders(organisation=jan.organisation, week=WEEK) == 0
    with pytest.raises(ValueError):
        verification.issue_codes(participant=jan, purpose=VerificationCode.Purpose.ENROL)


def test_declining_withdraws_messages_still_waiting_in_the_outbox(jan: Participant, clock: Any) -> None:
    token = invite(jan)
    invitation = enrolment.find_invitation(token=token)
    assert invitation is not None
    enrolment.send_enrolment_reminders(organisation=jan.organisation, week=WEEK)  # queued, not yet sent
    assert OutboundMessage.objects.filter(status="pending").count() == 2

    enrolment.decline_invitation(invitation=invitation)
    deliver()

    assert OutboundMessage.objects.filter(status="pending").count() == 0
    assert len(mail.outbox) == 1 and len(MemorySmsGateway.outbox) == 1  # only the first invitation went out


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


def read_codes() -> tuple[str, str]:
    deliver()
    email_code = re.search(r"\b(\d{6})\b", str(mail.outbox[-1].body))
    sms_code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"])
    assert email_code and sms_code
    return email_code.group(1), sms_code.group(1)


def verify_both(participant: Participant) -> None:
    email_code, sms_code = read_codes()
    for channel, code in (("email", email_code), ("sms", sms_code)):
        assert verification.verify_code(
            participant=participant, purpose="enrol", channel=channel, code=code
        ).ok


def test_enrolment_completes_only_with_consent_and_both_codes(jan: Participant, clock: Any) -> None:
    invitation = enrolment.find_invitation(token=invite(jan))
    assert invitation is not None

    with pytest.raises(enrolment.EnrolmentRefused):
        enrolment.complete_enrolment(invitation=invitation)
    enrolment.record_consent(participant=jan)
    enrolment.start_verification(participant=jan, name="Jan de Vries", mobile="+31687654321")
    with pytest.raises(enrolment.EnrolmentRefused):
        enrolment.complete_enrolment(invitation=invitation)
    verify_both(jan)

    enrolled = enrolment.complete_enrolment(invitation=invitation)

    enrolled.refresh_from_db()
    invitation.refresh_from_db()
    assert enrolled.status == Participant.Status.ACTIVE
    assert re.fullmatch(r"[0-9a-f]{32}", enrolled.pseudonym or "")
    assert enrolled.mobile == "+31687654321" and enrolled.mobile_index == blind_index_phone("+31687654321")
    assert enrolled.email == "jan@example.nl"
    assert invitation.used_at == START
    with pytest.raises(enrolment.EnrolmentRefused):
        enrolment.complete_enrolment(invitation=invitation)
    assert enrolment.link_state(invitation) is LinkState.ENROLLED


def test_every_enrolment_gets_a_fresh_pseudonym(organisation: Organisation, clock: Any) -> None:
    pseudonyms = set()
    for number in range(2):
        participant = make_participant(
            organisation, email=f"p{number}@example.nl", mobile=f"+3160000001{number}"
        )
        invitation = enrolment.find_invitation(token=invite(participant))
        assert invitation is not None
        enrolment.record_consent(participant=participant)
        enrolment.start_verification(participant=participant, name="")
        verify_both(participant)
        pseudonyms.add(enrolment.complete_enrolment(invitation=invitation).pseudonym)
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


def test_a_corrected_name_is_stored_sealed(jan: Participant) -> None:
    enrolment.start_verification(participant=jan, name="Jan de Vries-Bakker")

    jan.refresh_from_db()
    assert jan.name == "Jan de Vries-Bakker"
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM participants_participant WHERE id = %s", [jan.pk])
        (stored,) = cursor.fetchone()
    assert "Bakker" not in stored


def test_masks_show_enough_to_recognise_and_no_more() -> None:
    assert enrolment.mask_email("jan@example.nl") == "j•••@example.nl"
    assert enrolment.mask_mobile("+31612345678") == "••••••78"
