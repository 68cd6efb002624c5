"""Attacks by the employer reading the work mailboxes it supplied, on corrections and stops (issue #14).

The employer sees every message that reaches a work address, through a real SMTP server here. A participant
who chose SMS or a private address for their weekly messages must leave nothing there when they correct
their details or stop: no code (it would say they take part and are about to do something), no notice. Code
e-mails read the same for every purpose, and a stop still needs both factors.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core import mail
from django.db.models import F
from django.test import Client
from django.utils import translation

from participants import account, requestqueue, verification
from participants.models import Organisation, Participant, VerificationCode
from participants.session import bind_participant_session
from preventicons import messaging
from preventicons.gateways import MemorySmsGateway
from scores import wellbeing
from tests.conftest import ALL_DATABASES
from tests.fakes.smtp import FakeSmtpServer
from tests.participants.test_stop import make_active, wrong

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]

WORK = "jan@werk.example"
PRIVATE = "jan@thuis.example"
MOBILE = "+31612345678"
CODE = re.compile(r"\b(\d{6})\b")
Channel = Participant.WeeklyChannel


def jan(organisation: Organisation, chose: str | None) -> Participant:
    """Jan, active, whose employer supplied WORK; he chose ``chose`` for the weekly messages (None: not yet,
    as for someone who opens the account before enrolling)."""
    return make_active(
        organisation,
        email=WORK,
        mobile=MOBILE,
        weekly_channel=chose,
        private_email=PRIVATE if chose == Channel.PRIVATE_EMAIL else None,
    )


def work_mailbox(smtp: FakeSmtpServer) -> list[str]:
    """What the employer reads: every message the SMTP server delivered to the work address."""
    messaging.send_due_messages()
    return [
        f"{received.message['Subject']}\n{received.message.get_body(preferencelist=('plain',))}"
        for received in smtp.messages
        if WORK in received.rcpt_tos
    ]


def last_code_to(smtp: FakeSmtpServer, address: str) -> str:
    messaging.send_due_messages()
    bodies = [
        str(m.message.get_body(preferencelist=("plain",))) for m in smtp.messages if address in m.rcpt_tos
    ]
    assert bodies, f"no e-mail reached {address}"
    found = CODE.search(bodies[-1])
    assert found
    return found.group(1)


def last_sms_code() -> str:
    messaging.send_due_messages()
    found = CODE.search(MemorySmsGateway.outbox[-1]["body"])
    assert found
    return found.group(1)


def session_for(participant: Participant) -> Client:
    """A browser whose account session is open (both factors proven: the e-mailed link and an SMS code)."""
    client = Client()
    session = client.session
    bind_participant_session(session, participant)
    session.save()
    return client


# --- nothing in a work mailbox the participant did not choose -----------------------------------


@pytest.mark.parametrize("chose", [Channel.SMS, Channel.PRIVATE_EMAIL, None])
def test_stopping_leaves_nothing_in_the_work_mailbox(
    organisation: Organisation, smtp_server: FakeSmtpServer, chose: str | None
) -> None:
    participant = jan(organisation, chose)
    client = session_for(participant)

    assert client.post("/me/stop/")["Location"] == "/me/stop/confirm/"
    codes = {"sms_code": last_sms_code()}
    if chose == Channel.PRIVATE_EMAIL:
        codes["email_code"] = last_code_to(smtp_server, PRIVATE)
    assert client.post("/me/stop/confirm/", codes)["Location"] == "/me/stopped/"
    wellbeing.take_up_help_requests()

    participant.refresh_from_db()
    assert participant.status == Participant.Status.STOPPED
    assert work_mailbox(smtp_server) == []


@pytest.mark.parametrize("chose", [Channel.SMS, Channel.PRIVATE_EMAIL, None])
@pytest.mark.parametrize(
    "change",
    [
        {"name": "Jan Jansen"},
        {"mobile": "+31687654399"},
        {"email": "jan.nieuw@werk.example"},
        {"email": "jan@elders.example"},
    ],
    ids=["name", "mobile", "work-address", "moving-to-another-address"],
)
def test_a_correction_leaves_nothing_in_the_work_mailbox(
    organisation: Organisation, smtp_server: FakeSmtpServer, chose: str | None, change: dict[str, str]
) -> None:
    participant = jan(organisation, chose)
    pending = account.request_change(participant=participant, **change)
    codes = {"email_code": "", "sms_code": last_sms_code()}
    if "email" in change:
        codes["email_code"] = last_code_to(smtp_server, change["email"])
    elif chose == Channel.PRIVATE_EMAIL:
        codes["email_code"] = last_code_to(smtp_server, PRIVATE)

    assert requestqueue.confirm_change(participant=participant, sealed_name=pending.sealed_name, **codes).done
    wellbeing.take_up_help_requests()

    # Neither the code nor the notice of the change reached the old work address.
    assert work_mailbox(smtp_server) == []


def test_who_chose_the_work_address_still_gets_codes_and_the_change_notice_there(
    organisation: Organisation, smtp_server: FakeSmtpServer
) -> None:
    participant = jan(organisation, Channel.WORK_EMAIL)
    account.request_change(participant=participant, email="jan.nieuw@werk.example")
    codes = {"email_code": last_code_to(smtp_server, "jan.nieuw@werk.example"), "sms_code": last_sms_code()}
    assert requestqueue.confirm_change(participant=participant, **codes).done
    wellbeing.take_up_help_requests()

    (notice,) = work_mailbox(smtp_server)
    assert "changed" in notice


def test_a_change_notice_goes_where_the_participant_chose(
    organisation: Organisation, smtp_server: FakeSmtpServer
) -> None:
    by_sms = jan(organisation, Channel.SMS)
    account.request_change(participant=by_sms, email="jan.nieuw@werk.example")
    codes = {"email_code": last_code_to(smtp_server, "jan.nieuw@werk.example"), "sms_code": last_sms_code()}
    assert requestqueue.confirm_change(participant=by_sms, **codes).done
    wellbeing.take_up_help_requests()
    messaging.send_due_messages()
    assert MemorySmsGateway.outbox[-1]["to"] == MOBILE
    assert "changed" in MemorySmsGateway.outbox[-1]["body"]


def test_a_private_address_gets_the_notice_that_the_work_address_changed(
    organisation: Organisation, smtp_server: FakeSmtpServer
) -> None:
    participant = jan(organisation, Channel.PRIVATE_EMAIL)
    account.request_change(participant=participant, email="jan.nieuw@werk.example")
    codes = {"email_code": last_code_to(smtp_server, "jan.nieuw@werk.example"), "sms_code": last_sms_code()}
    assert requestqueue.confirm_change(participant=participant, **codes).done
    wellbeing.take_up_help_requests()
    messaging.send_due_messages()
    to_private = [m for m in smtp_server.messages if PRIVATE in m.rcpt_tos]
    assert "changed" in str(to_private[-1].message["Subject"])


@pytest.mark.parametrize(
    ("chose", "told_at"),
    [(Channel.WORK_EMAIL, WORK), (Channel.PRIVATE_EMAIL, PRIVATE), (Channel.SMS, MOBILE), (None, MOBILE)],
)
def test_a_name_change_is_told_where_the_participant_chose_without_the_new_name(
    organisation: Organisation, smtp_server: FakeSmtpServer, chose: str | None, told_at: str
) -> None:
    # Whoever got hold of both factors renames the account (the name a casemanager calls them by): its person
    # must hear of it as of a new address or number, and only where they chose to hear from us.
    participant = jan(organisation, chose)
    pending = account.request_change(participant=participant, name="Mallory Jansen")
    codes = {"email_code": "", "sms_code": last_sms_code()}
    if chose in (Channel.WORK_EMAIL, Channel.PRIVATE_EMAIL):
        codes["email_code"] = last_code_to(smtp_server, told_at)
    mails_before, sms_before = len(smtp_server.messages), len(MemorySmsGateway.outbox)
    assert requestqueue.confirm_change(participant=participant, sealed_name=pending.sealed_name, **codes).done

    assert wellbeing.take_up_help_requests().changes == 1
    messaging.send_due_messages()

    notices = [
        (to, f"{m.message['Subject']}\n{m.message.get_body(preferencelist=('plain',))}")
        for m in smtp_server.messages[mails_before:]
        for to in m.rcpt_tos
    ] + [(sms["to"], sms["body"]) for sms in MemorySmsGateway.outbox[sms_before:]]
    ((to, text),) = notices
    assert to == told_at
    assert "The name on your Preventicons account was just changed" in text
    assert "Was this not you?" in text
    assert "Mallory" not in text


def test_the_stop_page_of_an_sms_participant_asks_for_the_sms_code_only(organisation: Organisation) -> None:
    participant = jan(organisation, Channel.SMS)
    client = session_for(participant)
    assert "one by e-mail" not in client.get("/me/stop/").content.decode()
    assert "one by e-mail" not in client.get("/me/").content.decode()
    client.post("/me/stop/")
    page = client.get("/me/stop/confirm/").content.decode()
    assert 'name="sms_code"' in page
    assert 'name="email_code"' not in page
    assert "werk.example" not in page


# --- one text for every purpose -----------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "nl"])
def test_every_code_message_reads_the_same_whatever_it_is_for(
    organisation: Organisation, language: str
) -> None:
    translation.activate(language)  # the english fixture's override restores its language afterwards
    participant = jan(organisation, Channel.WORK_EMAIL)
    emails: dict[str, str] = {}
    texts: dict[str, str] = {}
    for purpose in (
        VerificationCode.Purpose.ENROL,
        VerificationCode.Purpose.CHANGE,
        VerificationCode.Purpose.STOP,
    ):
        mail.outbox.clear()
        MemorySmsGateway.outbox.clear()
        verification.issue_codes(participant=participant, purpose=purpose)
        messaging.send_due_messages()
        (message,) = mail.outbox
        emails[purpose] = CODE.sub("NNNNNN", f"{message.subject}\n{message.body}")
        texts[purpose] = CODE.sub("NNNNNN", MemorySmsGateway.outbox[-1]["body"])
    MemorySmsGateway.outbox.clear()
    verification.issue_sms_code(participant=participant, purpose=VerificationCode.Purpose.ACCOUNT)
    messaging.send_due_messages()
    texts["account"] = CODE.sub("NNNNNN", MemorySmsGateway.outbox[-1]["body"])

    assert len(set(emails.values())) == 1, emails
    assert len(set(texts.values())) == 1, texts
    assert ("Je code is" if language == "nl" else "Your code is") in next(iter(emails.values()))
    purpose_words = r"\bstop|change of|your details|take part|open your account|wijzig|meedoen|account"
    assert not re.search(purpose_words, next(iter(emails.values())), re.I)


# --- a stop still needs both factors ------------------------------------------------------------


def test_an_sms_participant_is_not_stopped_by_a_wrong_or_missing_sms_code(organisation: Organisation) -> None:
    participant = jan(organisation, Channel.SMS)
    account.request_stop_codes(participant=participant)
    code = last_sms_code()

    assert not requestqueue.confirm_stop(participant=participant, email_code="", sms_code="").done
    assert not requestqueue.confirm_stop(
        participant=participant, email_code="123456", sms_code=wrong(code)
    ).done
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE


def test_without_the_account_session_nobody_can_ask_for_or_use_stop_codes(organisation: Organisation) -> None:
    participant = jan(organisation, Channel.SMS)
    stranger = Client()
    assert stranger.post("/me/stop/")["Location"] == "/me/link/"
    account.request_stop_codes(participant=participant)
    assert stranger.post("/me/stop/confirm/", {"sms_code": last_sms_code()})["Location"] == "/me/link/"
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE


def test_a_private_address_participant_needs_both_codes_to_stop(organisation: Organisation) -> None:
    participant = jan(organisation, Channel.PRIVATE_EMAIL)
    account.request_stop_codes(participant=participant)
    messaging.send_due_messages()
    (to_private,) = [m for m in mail.outbox if PRIVATE in m.to]
    email_code = CODE.search(str(to_private.body))
    assert email_code
    sms_code = last_sms_code()

    assert not requestqueue.confirm_stop(participant=participant, email_code="", sms_code=sms_code).done
    assert not requestqueue.confirm_stop(
        participant=participant, email_code=wrong(email_code.group(1)), sms_code=""
    ).done
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE
    assert requestqueue.confirm_stop(
        participant=participant, email_code=email_code.group(1), sms_code=""
    ).done
    wellbeing.take_up_help_requests()


def test_an_sms_only_round_no_longer_suffices_once_an_e_mail_code_could_go_somewhere(
    organisation: Organisation,
) -> None:
    participant = jan(organisation, Channel.SMS)
    account.request_stop_codes(participant=participant)
    code = last_sms_code()
    # Meanwhile a private address was proven: the e-mail factor now has somewhere to go, so it is required.
    participant.private_email = PRIVATE
    participant.weekly_channel = Channel.PRIVATE_EMAIL
    participant.save(update_fields=["private_email", "weekly_channel"])

    assert not requestqueue.confirm_stop(participant=participant, email_code="", sms_code=code).done
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE


def test_new_codes_for_a_stop_spare_the_work_mailbox_like_the_first(
    organisation: Organisation, smtp_server: FakeSmtpServer, settings: Any
) -> None:
    settings.VERIFICATION_RESEND_BASE_SECONDS = 0
    participant = jan(organisation, Channel.SMS)
    account.request_stop_codes(participant=participant)
    first = VerificationCode.objects.naming([participant.pk]).get(purpose=VerificationCode.Purpose.STOP)

    def resend() -> bool:
        return verification.resend_after(
            participant_id=str(participant.pk),
            purpose=VerificationCode.Purpose.STOP,
            after_code_id=str(first.pk),
        )

    assert resend()
    # A redelivered task finds its round issued already: no third code.
    assert not resend()
    codes = VerificationCode.objects.naming([participant.pk]).filter(purpose=VerificationCode.Purpose.STOP)
    assert sorted(codes.values_list("channel", flat=True)) == ["sms", "sms"]
    assert work_mailbox(smtp_server) == []


def test_the_confirm_page_shows_only_what_the_latest_round_changes(organisation: Organisation) -> None:
    participant = jan(organisation, Channel.SMS)
    client = session_for(participant)
    client.post("/me/change/", {"name": "Jan de Vries", "email": "jan@elders.example", "mobile": MOBILE})
    verification_wait_free(participant)
    client.post("/me/change/", {"name": "Jan de Vries", "email": WORK, "mobile": "+31687654399"})

    page = client.get("/me/change/confirm/").content.decode()
    assert "+31687654399" in page
    assert "jan@elders.example" not in page


def verification_wait_free(participant: Participant) -> None:
    """Move the earlier codes half an hour back, so the backoff lets the next request through."""
    VerificationCode.objects.naming([participant.pk]).all().update(
        created_at=F("created_at") - dt.timedelta(minutes=30),
        expires_at=F("expires_at") - dt.timedelta(minutes=30),
    )
