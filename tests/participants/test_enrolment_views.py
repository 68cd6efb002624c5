"""Enrolment through the HTTP client: the link, consent, details, codes, unhappy paths, rate limits, staff."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse

from participants import enrolment, invitations, requestqueue
from participants.models import (
    ConsentRecord,
    Invitation,
    InvitationSchedule,
    Organisation,
    Participant,
    QueuedRequest,
    StaffUser,
    VerificationCode,
    index_salt,
)
from participants.session import SESSION_KEY
from participants.verification import codes_of
from participants.views.enrolment import SESSION_INVITATION, SESSION_OPENED
from preventicons import messaging
from preventicons.crypto import blind_index_phone, new_token
from preventicons.gateways import MemorySmsGateway
from preventicons.models import OutboundMessage
from preventicons.roles import Role
from scores import wellbeing
from tests.conftest import ALL_DATABASES, login_verified, make_organisation, make_staff
from tests.fakes.smtp import FakeSmtpServer
from tests.fakes.twilio import FakeTwilio
from tests.participants.people import decline_through_the_batch, make_participant

# A Monday, 10:00 in Amsterdam: within the invitation hours, so an invitation goes out at once.
START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
LINK = re.compile(r"/i/([A-Za-z0-9_-]{43})/")
CODE = re.compile(r"\b(\d{6})\b")


def deliver() -> None:
    invitations.send_due_invitations()
    messaging.send_due_messages()


def invite(participant: Participant) -> str:
    invitations.send_invitations(organisation=participant.organisation)
    deliver()
    match = LINK.search(str(mail.outbox[-1].body))
    assert match
    return match.group(1)


def latest_codes() -> tuple[str, str]:
    messaging.send_due_messages()
    email_code = CODE.search(str(mail.outbox[-1].body))
    sms_code = CODE.search(MemorySmsGateway.outbox[-1]["body"])
    assert email_code and sms_code
    return email_code.group(1), sms_code.group(1)


def latest_sms_code() -> str:
    messaging.send_due_messages()
    match = CODE.search(MemorySmsGateway.outbox[-1]["body"])
    assert match
    return match.group(1)


def text(response: Any) -> str:
    return response.content.decode()


def open_with_sms_code(client: Client, token: str, *, decline: bool = False) -> Any:
    """Open the link, ask for the SMS code and enter it: what the person holding the phone does."""
    client.get(f"/i/{token}/decline/" if decline else f"/i/{token}/")
    client.post(reverse("participants:enrol"))
    return client.post(reverse("participants:enrol-open"), {"code": latest_sms_code()})


# Every store: the request batch that makes an enrolment or a decline joins them all.
pytestmark = [pytest.mark.usefixtures("empty_cache"), pytest.mark.django_db(databases=ALL_DATABASES)]


@pytest.fixture(autouse=True)
def clock() -> Any:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def jan(organisation: Organisation) -> Participant:
    return make_participant(organisation)


@pytest.fixture
def opened(client: Client, jan: Participant, english: None) -> Client:
    """A browser that opened Jan's invitation link and entered the SMS code."""
    response = open_with_sms_code(client, invite(jan))
    assert response["Location"] == reverse("participants:enrol-next")
    assert client.get(response["Location"])["Location"] == reverse("participants:enrol-consent")
    return client


PRIVATE = {"weekly_channel": "private_email", "private_email": "jan.thuis@example.org"}


def consent_and_send_codes(client: Client, **details: str) -> None:
    """Consent, then choose a private address (and maybe a new number): codes go to what is new."""
    client.post(reverse("participants:enrol-consent"))
    response = client.post(
        reverse("participants:enrol-details"), {"name": "Jan de Vries", **PRIVATE, **details}
    )
    assert response.status_code == 302, text(response)
    assert response["Location"] == reverse("participants:enrol-codes")


# --- the link --------------------------------------------------------------------------------------------


def test_the_link_is_swapped_for_a_token_free_address(
    client: Client, jan: Participant, english: None
) -> None:
    token = invite(jan)

    response = client.get(f"/i/{token}/")

    assert response.status_code == 302
    assert response["Location"] == reverse("participants:enrol")
    assert token not in response["Location"]
    assert client.session[SESSION_INVITATION] == str(Invitation.objects.get(participant=jan).pk)
    page = client.get(response["Location"])
    assert page.status_code == 200 and token not in text(page)


def test_the_first_page_asks_for_the_sms_code_and_shows_nothing_of_the_invitation(
    client: Client, jan: Participant, english: None
) -> None:
    page = text(client.get(f"/i/{invite(jan)}/", follow=True))

    assert "we first send a code by text message" in page
    # "•78": the masked mobile (a bare "78" also turns up in the random CSRF token now and then).
    for revealing in ("•78", "j•••", "Jan", "I agree", "already take part", "expired", "do not take part"):
        assert revealing not in page


def test_the_sms_code_goes_to_the_number_on_file_and_opens_the_consent_page(
    opened: Client, jan: Participant
) -> None:
    assert MemorySmsGateway.outbox[-1]["to"] == "+31612345678"
    page = text(opened.get(reverse("participants:enrol-consent")))

    for words in ("Your employer", "groups of at least 5", "dossier number", "The notary", "How to stop"):
        assert words in page
    assert enrolment.CONSENT_TEXT_VERSION in page


def test_the_consent_text_says_what_stays_of_someone_who_leaves(opened: Client) -> None:
    page = text(opened.get(reverse("participants:enrol-consent")))

    assert "keyed code of the e-mail address and mobile number your employer gave us" in page
    assert "with the department your employer listed you in and without a date" in page
    # What is kept while someone takes part (the listed hashes), and on each invitation link (the number).
    assert "also after you changed your details" in page
    assert "Each invitation link also keeps the mobile number your employer gave for it" in page


def test_consent_is_recorded_only_after_the_sms_code(
    client: Client, jan: Participant, english: None, clock: Any
) -> None:
    client.get(f"/i/{invite(jan)}/")

    before = client.post(reverse("participants:enrol-consent"))
    assert before["Location"] == reverse("participants:enrol")
    assert not ConsentRecord.objects.exists()

    open_with_sms_code(client, LINK.findall(str(mail.outbox[-1].body))[0])
    response = client.post(reverse("participants:enrol-consent"))

    assert response["Location"] == reverse("participants:enrol-details")
    (record,) = ConsentRecord.objects.all()
    assert (record.kind, record.text_version, record.recorded_at) == (
        "given",
        enrolment.CONSENT_TEXT_VERSION,
        START.date(),  # the day only: a consent carries no time of day
    )


def test_a_wrong_sms_code_opens_nothing_and_says_the_same_as_for_any_link(
    client: Client, jan: Participant, english: None
) -> None:
    client.get(f"/i/{invite(jan)}/")
    client.post(reverse("participants:enrol"))
    right = latest_sms_code()
    wrong = f"{(int(right) + 1) % 10**6:06d}"

    response = client.post(reverse("participants:enrol-open"), {"code": wrong})

    assert response.status_code == 200
    assert "This code is not right or no longer valid" in text(response)
    assert SESSION_OPENED not in client.session
    assert client.get(reverse("participants:enrol-consent"))["Location"] == reverse("participants:enrol")


def test_details_come_only_after_consent(opened: Client) -> None:
    response = opened.get(reverse("participants:enrol-details"))

    assert response["Location"] == reverse("participants:enrol-consent")


def test_details_page_shows_the_contact_data_on_file_only_masked(opened: Client) -> None:
    opened.post(reverse("participants:enrol-consent"))

    page = text(opened.get(reverse("participants:enrol-details")))

    assert "j•••@example.nl" in page and "78" in page
    assert "jan@example.nl" not in page and "612345678" not in page


def test_the_details_page_warns_that_the_employer_can_read_a_work_mailbox(opened: Client) -> None:
    opened.post(reverse("participants:enrol-consent"))

    page = text(opened.get(reverse("participants:enrol-details")))

    assert "Your employer's IT department can read a work mailbox" in page
    assert "We therefore recommend a text message or a private e-mail address" in page
    assert 'value="sms"' in page and 'value="private_email"' in page and 'value="work_email"' in page


def test_codes_page_has_labelled_numeric_one_time_code_fields(opened: Client) -> None:
    consent_and_send_codes(opened, mobile="06 87654321")

    page = text(opened.get(reverse("participants:enrol-codes")))

    assert page.count('autocomplete="one-time-code"') == 2
    assert page.count('inputmode="numeric"') == 2
    assert '<label for="id_email_code"' in page and '<label for="id_sms_code"' in page


def test_a_wrong_code_says_how_many_tries_remain(opened: Client, jan: Participant) -> None:
    consent_and_send_codes(opened, mobile="06 87654321")
    email_code, sms_code = latest_codes()
    bad = f"{(int(email_code) + 1) % 10**6:06d}"

    response = opened.post(reverse("participants:enrol-codes"), {"email_code": bad, "sms_code": sms_code})

    assert response.status_code == 200
    assert "The code from the e-mail is not right. You can try 4 more times." in text(response)
    assert "The code from the text message is correct." in text(response)
    jan.refresh_from_db()
    assert jan.status == Participant.Status.INVITED


def test_five_wrong_codes_lock_and_offer_new_codes(opened: Client, clock: Any) -> None:
    consent_and_send_codes(opened)
    email_code, _sms = latest_codes()
    bad = f"{(int(email_code) + 1) % 10**6:06d}"
    for _ in range(4):
        opened.post(reverse("participants:enrol-codes"), {"email_code": bad})

    response = opened.post(reverse("participants:enrol-codes"), {"email_code": bad})

    assert "was entered wrongly too often. Ask for new codes below." in text(response)
    assert "Send me new codes" in text(response)


def test_a_resend_says_how_long_to_wait(
    opened: Client, clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    consent_and_send_codes(opened)

    response = opened.post(reverse("participants:enrol-resend"), follow=True)
    assert "new codes in 30 seconds" in text(response)

    clock.shift(dt.timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        response = opened.post(reverse("participants:enrol-resend"), follow=True)
    assert "New codes are on their way" in text(response)
    # The task ran once the request's transaction committed; the page now shows the next, longer wait.
    assert "You can ask for new codes in 60 seconds." in text(opened.get(reverse("participants:enrol-codes")))
    assert VerificationCode.objects.filter(channel="email").count() == 2


def test_both_codes_enrol_start_the_session_and_welcome(opened: Client, jan: Participant, clock: Any) -> None:
    consent_and_send_codes(opened, mobile="06 87654321")
    email_code, sms_code = latest_codes()

    response = opened.post(
        reverse("participants:enrol-codes"), {"email_code": email_code, "sms_code": sms_code}
    )

    assert response["Location"] == reverse("participants:enrol-welcome")
    # Nothing written on the row yet: the next request batch makes them a participant (issue 14).
    jan.refresh_from_db()
    assert jan.status == Participant.Status.INVITED and jan.weekly_channel is None
    minutes = settings.HELP_REQUEST_BATCH_MINUTES
    assert f"Within {minutes} minutes you are signed up" in text(opened.get(response["Location"]))
    assert wellbeing.take_up_help_requests().enrolments == 1
    jan.refresh_from_db()
    assert jan.status == Participant.Status.ACTIVE and jan.pseudonym
    assert jan.weekly_channel == Participant.WeeklyChannel.PRIVATE_EMAIL
    assert jan.mobile == "+31687654321" and jan.private_email == "jan.thuis@example.org"
    assert opened.session[SESSION_KEY] == str(jan.pk)
    assert SESSION_INVITATION not in opened.session
    welcome = opened.get(response["Location"])
    assert welcome.status_code == 200 and "you are taking part" in text(welcome)


def test_choosing_text_messages_enrols_without_any_message_to_the_work_mailbox(
    opened: Client, jan: Participant
) -> None:
    mails_before = len(mail.outbox)
    opened.post(reverse("participants:enrol-consent"))

    response = opened.post(reverse("participants:enrol-details"), {"name": "Jan", "weekly_channel": "sms"})
    messaging.send_due_messages()

    assert response["Location"] == reverse("participants:enrol-welcome")
    assert wellbeing.take_up_help_requests().enrolments == 1
    jan.refresh_from_db()
    assert (jan.status, jan.weekly_channel) == ("active", "sms")
    assert len(mail.outbox) == mails_before  # the link and its SMS code were the two factors


def test_without_the_link_code_nothing_completes(client: Client, jan: Participant) -> None:
    invitation = enrolment.find_invitation(token=invite(jan))
    assert invitation is not None
    enrolment.record_consent(participant=jan)

    with pytest.raises(enrolment.EnrolmentRefused):
        requestqueue.confirm_enrolment(invitation=invitation)
    with pytest.raises(enrolment.EnrolmentRefused):
        decline_through_the_batch(invitation)

    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.INVITED


def test_a_private_address_chosen_on_the_page_is_proven_by_its_own_code(
    opened: Client, jan: Participant, clock: Any
) -> None:
    consent_and_send_codes(opened)
    messaging.send_due_messages()
    assert mail.outbox[-1].to == ["jan.thuis@example.org"]
    code = CODE.search(str(mail.outbox[-1].body))
    assert code
    page = text(opened.get(reverse("participants:enrol-codes")))
    assert page.count('autocomplete="one-time-code"') == 1  # the number on file needs no new code
    jan.refresh_from_db()
    assert jan.status == Participant.Status.INVITED and jan.private_email is None

    opened.post(reverse("participants:enrol-codes"), {"email_code": code.group(1)})
    assert wellbeing.take_up_help_requests().enrolments == 1

    jan.refresh_from_db()
    assert jan.status == Participant.Status.ACTIVE
    assert (jan.weekly_channel, jan.private_email) == ("private_email", "jan.thuis@example.org")


def test_codes_can_be_entered_one_after_the_other(opened: Client, jan: Participant, clock: Any) -> None:
    consent_and_send_codes(opened, mobile="06 87654321")
    email_code, sms_code = latest_codes()

    first = opened.post(reverse("participants:enrol-codes"), {"email_code": email_code})
    second = opened.post(reverse("participants:enrol-codes"), {"sms_code": sms_code})

    assert first.status_code == 200
    assert second["Location"] == reverse("participants:enrol-welcome")


def test_welcome_needs_the_participant_session(client: Client, english: None) -> None:
    assert client.get(reverse("participants:enrol-welcome")).status_code == 404


def test_correcting_both_email_and_mobile_is_refused_on_the_page(opened: Client) -> None:
    opened.post(reverse("participants:enrol-consent"))

    response = opened.post(
        reverse("participants:enrol-details"),
        {"name": "Jan", "email": "nieuw@example.nl", "mobile": "06 87654321", "weekly_channel": "sms"},
    )

    assert response.status_code == 200
    assert "not both at once" in text(response)
    assert not VerificationCode.objects.filter(purpose="enrol").exists()


def test_an_invalid_mobile_number_is_refused(opened: Client) -> None:
    opened.post(reverse("participants:enrol-consent"))

    response = opened.post(
        reverse("participants:enrol-details"), {"name": "Jan", "mobile": "12", "weekly_channel": "sms"}
    )

    assert response.status_code == 200 and 'aria-invalid="true"' in text(response)
    assert not VerificationCode.objects.filter(purpose="enrol").exists()


# --- unhappy links ---------------------------------------------------------------------------------------


def test_malformed_tokens_get_the_unknown_page(client: Client, jan: Participant, english: None) -> None:
    token = invite(jan)

    pages = [client.get(f"/i/{candidate}/") for candidate in (token[:30], token + "x", "a" * 42 + "!")]

    assert {page.status_code for page in pages} == {404}
    assert all("This link does not work" in text(page) for page in pages)
    assert SESSION_INVITATION not in client.session


def test_enrol_pages_without_an_opened_link_look_like_an_unknown_link(client: Client, english: None) -> None:
    for name in (
        "participants:enrol",
        "participants:enrol-open",
        "participants:enrol-next",
        "participants:enrol-consent",
        "participants:enrol-details",
        "participants:enrol-codes",
        "participants:enrol-decline",
    ):
        response = client.get(reverse(name))
        assert response.status_code == 404 and "This link does not work" in text(response)


def test_an_expired_link_goes_on_after_the_sms_code_and_enrols_without_a_new_link(
    client: Client, jan: Participant, clock: Any, english: None
) -> None:
    token = invite(jan)
    clock.shift(dt.timedelta(days=15))
    sent_before = OutboundMessage.objects.count()

    opened = open_with_sms_code(client, token)
    page = client.get(opened["Location"])
    assert "This link has expired" in text(page)
    # Before choosing to go on, the expired link leads to no step of joining.
    assert "This link has expired" in text(client.get(reverse("participants:enrol-consent")))
    response = client.post(reverse("participants:enrol-new-link"))

    assert response["Location"] == reverse("participants:enrol-consent")
    assert client.get(response["Location"]).status_code == 200
    assert OutboundMessage.objects.count() == sent_before + 1  # only the SMS code: no new link by mail
    # No new link row: it would name the row that took up its invitation late, and when (review 5).
    assert Invitation.objects.filter(participant=jan).count() == 1
    client.post(reverse("participants:enrol-consent"))
    client.post(reverse("participants:enrol-details"), {"name": "", "weekly_channel": "sms"})
    assert wellbeing.take_up_help_requests().enrolments == 1
    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.ACTIVE


def test_a_reused_link_after_enrolment_explains_they_already_take_part_after_the_sms_code(
    opened: Client, jan: Participant, clock: Any
) -> None:
    consent_and_send_codes(opened)
    email_code, sms_code = latest_codes()
    opened.post(reverse("participants:enrol-codes"), {"email_code": email_code, "sms_code": sms_code})
    mail_token = LINK.search(str(mail.outbox[0].body))
    assert mail_token
    clock.shift(dt.timedelta(minutes=5))
    assert wellbeing.take_up_help_requests().enrolments == 1

    again = Client()
    response = open_with_sms_code(again, mail_token.group(1))

    assert "You already take part" in text(again.get(response["Location"]))
    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.ACTIVE


def test_the_link_of_someone_who_declined_reactivates_nothing(
    client: Client, jan: Participant, english: None
) -> None:
    token = invite(jan)
    Participant.objects.filter(pk=jan.pk).set_state(status="declined")
    words = "You said you do not want to take part"

    page = client.get(open_with_sms_code(client, token)["Location"])
    consent = client.post(reverse("participants:enrol-consent"))
    details = client.post(reverse("participants:enrol-details"), {"name": "Jan", "weekly_channel": "sms"})
    declined = client.post(reverse("participants:enrol-decline"))

    assert words in text(page)
    assert all(words in text(response) for response in (consent, details, declined))
    assert not ConsentRecord.objects.exists()
    assert not VerificationCode.objects.filter(purpose="enrol").exists()
    assert Participant.objects.get(pk=jan.pk).status == "declined"


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_link_of_someone_who_stopped_texts_a_code_like_any_other_and_opens_nothing(
    client: Client, jan: Participant, english: None
) -> None:
    """The employer supplied the phone: its texts must not tell that Jan stopped (issue #14, F5). The code
    goes to the number the employer gave for the link, and opens nothing, since nobody is left to open."""
    from participants import account

    token = invite(jan)
    account.stop_participation(participant=jan)
    sms_before = len(MemorySmsGateway.outbox)

    client.get(f"/i/{token}/")
    client.post(reverse("participants:enrol"))
    messaging.send_due_messages()
    texts = MemorySmsGateway.outbox[sms_before:]
    assert [sms["to"] for sms in texts] == ["+31612345678"]
    code = CODE.search(texts[0]["body"])
    assert code
    response = client.post(reverse("participants:enrol-open"), {"code": code.group(1)})

    assert "This code is not right or no longer valid" in text(response)
    assert client.get(reverse("participants:enrol-consent"))["Location"] == reverse("participants:enrol")
    assert Participant.objects.get(pk=jan.pk).status == "stopped"
    # The link keeps naming Jan's row, as everyone's link does (tests/test_attacks_review5.py), and opens
    # nothing: the row is stopped.
    link = Invitation.objects.get(participant=jan)
    assert enrolment.link_state(link) is enrolment.LinkState.STOPPED


# --- declining --------------------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)  # the request batch joins every store
def test_declining_needs_the_sms_code_and_a_confirmation(
    client: Client, jan: Participant, english: None
) -> None:
    token = invite(jan)

    response = client.get(f"/i/{token}/decline/")
    assert response["Location"] == reverse("participants:enrol")
    assert client.get(reverse("participants:enrol-decline"))["Location"] == reverse("participants:enrol")

    opened = open_with_sms_code(client, token, decline=True)
    assert client.get(opened["Location"])["Location"] == reverse("participants:enrol-decline")
    confirm = client.get(reverse("participants:enrol-decline"))
    assert "Do you not want to take part?" in text(confirm)
    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.INVITED  # a GET changes nothing

    done = client.post(reverse("participants:enrol-decline"))

    assert "Done: you do not take part" in text(done)
    # Queued: the row is not rewritten in the minute they said no; the next batch makes it.
    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.INVITED
    assert wellbeing.take_up_help_requests().declines == 1
    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.DECLINED
    assert invitations.send_invitations(organisation=jan.organisation) == 0


@pytest.mark.django_db(databases=ALL_DATABASES)  # the request batch joins every store
def test_an_expired_link_can_still_decline_with_the_sms_code(
    client: Client, jan: Participant, clock: Any, english: None
) -> None:
    token = invite(jan)
    clock.shift(dt.timedelta(days=30))

    open_with_sms_code(client, token, decline=True)
    client.post(reverse("participants:enrol-decline"))
    wellbeing.take_up_help_requests()

    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.DECLINED


@pytest.mark.django_db(databases=ALL_DATABASES)  # the request batch joins every store
def test_saying_no_twice_queues_one_decline_and_enrolling_before_the_batch_wins(
    client: Client, jan: Participant, english: None
) -> None:
    """A double click queues one decline. Someone who said no and then, before the batch, joined after all
    (the link still opens the join pages until the batch) stays a participant: the batch drops the no."""
    token = invite(jan)
    open_with_sms_code(client, token, decline=True)
    client.post(reverse("participants:enrol-decline"))
    assert QueuedRequest.objects.count() == 1
    open_with_sms_code(client, token, decline=True)
    client.post(reverse("participants:enrol-decline"))
    assert QueuedRequest.objects.count() == 1
    jan.status = Participant.Status.ACTIVE  # as enrolling leaves them (tested on its own above)
    jan.save(update_fields=["status"])

    batch = wellbeing.take_up_help_requests()

    assert (batch.declines, batch.dropped) == (0, 1)
    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.ACTIVE


# --- rate limits -----------------------------------------------------------------------------------------


def test_links_we_never_made_are_refused_after_the_limit_and_ours_still_open(
    client: Client, jan: Participant, english: None, settings: Any
) -> None:
    settings.UNKNOWN_LINKS_PER_HOUR = 10
    token = invite(jan)
    made_up = ["A" * 43, "B" * 43, "too-short", *(f"{n:0>43}" for n in range(7))]
    lookups = [client.get(f"/i/{guess}/").status_code for guess in made_up]

    blocked = client.get(f"/i/{'C' * 43}/")
    ours = client.get(f"/i/{token}/")
    # A link we made whose row is gone (a stopped person's, a decoy) is ours too: the limit cannot tell it.
    gone = client.get(f"/i/{new_token()}/")
    other_address = Client(REMOTE_ADDR="192.0.2.7").get(f"/i/{'C' * 43}/")

    assert lookups == [302, 302, 404, 302, 302, 302, 302, 302, 302, 302]
    assert blocked.status_code == 429 and 0 < int(blocked["Retry-After"]) <= 3660
    assert ours.status_code == 302 and ours["Location"] == reverse("participants:enrol")
    assert gone.status_code == 302 and gone["Location"] == reverse("participants:enrol")
    assert other_address.status_code == 302


def test_asking_for_link_codes_waits_the_same_for_any_link(
    client: Client, jan: Participant, english: None
) -> None:
    waits = []
    for token in (invite(jan), new_token()):
        browser = Client()
        browser.get(f"/i/{token}/")
        browser.post(reverse("participants:enrol"))
        waits.append(text(browser.post(reverse("participants:enrol"), follow=True)))

    assert all("a new code in 30 seconds" in page for page in waits)


# --- staff: send invitations --------------------------------------------------------------------------------


def test_an_employer_sends_invitations_for_their_own_organisation_without_learning_a_count(
    client: Client, employer: StaffUser, jan: Participant, english: None
) -> None:
    login_verified(client, employer)

    response = client.post(reverse("participants:send-invitations"), follow=True)

    assert response.status_code == 200
    assert InvitationSchedule.objects.filter(participant=jan).count() == 1
    assert "Invitations go out to everyone who is new on the list" in text(response)
    assert not re.search(r"\b1 invitation", text(response))


def test_an_employer_cannot_send_for_another_organisation(
    client: Client, employer: StaffUser, other_organisation: Organisation, english: None
) -> None:
    make_participant(other_organisation, email="piet@example.nl", mobile="+31611111111")
    login_verified(client, employer)

    response = client.post(reverse("participants:send-invitations"), {"organisation": other_organisation.pk})

    assert response.status_code == 403
    assert not InvitationSchedule.objects.exists()


def test_an_admin_sends_for_a_chosen_organisation_and_sees_the_count(
    client: Client, platform_admin: StaffUser, jan: Participant, english: None
) -> None:
    login_verified(client, platform_admin)

    missing = client.post(reverse("participants:send-invitations"))
    response = client.post(
        reverse("participants:send-invitations"), {"organisation": jan.organisation.pk}, follow=True
    )

    assert missing.status_code == 400
    assert "1 invitation sent." in text(response)


def test_without_an_agreement_the_send_button_sends_nothing_and_says_why(
    client: Client, db: Any, english: None
) -> None:
    unsigned = make_organisation("Zonder Overeenkomst BV", signed=False)
    make_participant(unsigned)
    login_verified(client, make_staff("hr-zonder", Role.EMPLOYER, unsigned))

    response = client.post(reverse("participants:send-invitations"), follow=True)

    assert "No signed processing agreement" in text(response)
    assert not InvitationSchedule.objects.exists() and not OutboundMessage.objects.exists()


@pytest.mark.parametrize("persona", ["casemanager", "auditor"])
def test_other_roles_cannot_send_invitations(
    client: Client, persona: str, request: pytest.FixtureRequest, jan: Participant
) -> None:
    login_verified(client, request.getfixturevalue(persona))

    assert client.post(reverse("participants:send-invitations")).status_code == 403
    assert not InvitationSchedule.objects.exists()


def test_anonymous_visitors_are_sent_to_the_login_and_get_is_not_allowed(
    client: Client, employer: StaffUser, jan: Participant
) -> None:
    assert client.post(reverse("participants:send-invitations")).status_code == 302
    login_verified(client, employer)
    assert client.get(reverse("participants:send-invitations")).status_code == 405
    assert not InvitationSchedule.objects.exists()


# --- the whole journey, with a real SMTP server and the twilio SDK against a local endpoint ----------------


@pytest.mark.integration
def test_journey_from_invitation_to_active_through_real_email_and_sms(
    client: Client,
    jan: Participant,
    smtp_server: FakeSmtpServer,
    fake_twilio: FakeTwilio,
    django_capture_on_commit_callbacks: Any,
    english: None,
    clock: Any,
) -> None:
    def mail_text(index: int) -> str:
        received = smtp_server.wait_for(index + 1, timeout=10)
        body = received[index].message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())

    with django_capture_on_commit_callbacks(execute=True):
        invitations.send_invitations(organisation=jan.organisation)
    invitation_mail = mail_text(0)
    assert smtp_server.messages[0].rcpt_tos == ["jan@example.nl"]
    (invitation_sms,) = fake_twilio.messages
    assert invitation_sms["To"] == "+31612345678"
    match = LINK.search(invitation_mail)
    assert match and match.group(1) in invitation_sms["Body"]

    landing = client.get(f"/i/{match.group(1)}/", follow=True)
    assert "Your invitation to the weekly check-in" in text(landing)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("participants:enrol"))
    link_sms = fake_twilio.messages[-1]
    assert link_sms["To"] == "+31612345678"
    link_code = CODE.search(link_sms["Body"])
    assert link_code
    opened = client.post(reverse("participants:enrol-open"), {"code": link_code.group(1)})
    assert "Join the weekly check-in" in text(client.get(client.get(opened["Location"])["Location"]))
    client.post(reverse("participants:enrol-consent"))
    with django_capture_on_commit_callbacks(execute=True):
        details = client.post(
            reverse("participants:enrol-details"),
            {"name": "Jan de Vries", "mobile": "06 87654321", "weekly_channel": "sms"},
        )
    assert details.status_code == 302

    code_sms = fake_twilio.messages[-1]
    assert code_sms["To"] == "+31687654321"  # the corrected number
    sms_code = CODE.search(code_sms["Body"])
    assert sms_code
    done = client.post(reverse("participants:enrol-codes"), {"sms_code": sms_code.group(1)})

    assert done["Location"] == reverse("participants:enrol-welcome")
    assert wellbeing.take_up_help_requests().enrolments == 1
    jan.refresh_from_db()
    assert jan.status == Participant.Status.ACTIVE
    salt = index_salt(jan.organisation_id)  # renewed by the batch (participants.rewrite)
    assert jan.mobile == "+31687654321" and jan.mobile_index == blind_index_phone("+31687654321", salt)
    assert OutboundMessage.objects.filter(status="pending").count() == 0
    assert len(smtp_server.messages) == 1  # only the invitation: enrolling sent nothing to the work mailbox


def test_a_code_entered_more_than_an_hour_ago_no_longer_declines(
    client: Client, jan: Participant, clock: Any, english: None
) -> None:
    open_with_sms_code(client, invite(jan), decline=True)
    clock.shift(dt.timedelta(hours=1, seconds=1))

    response = client.post(reverse("participants:enrol-decline"))

    assert response["Location"] == reverse("participants:enrol")
    assert not QueuedRequest.objects.exists()
    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.INVITED


# --- the wrong-code budget, and what is typed ------------------------------------------------------------


def test_a_spent_budget_of_wrong_codes_says_when_to_try_again_and_sends_nothing(
    opened: Client, jan: Participant, settings: Any, clock: Any
) -> None:
    consent_and_send_codes(opened)
    email_code, _sms = latest_codes()
    bad = f"{(int(email_code) + 1) % 10**6:06d}"
    settings.VERIFICATION_FAILURES_PER_HOUR = 3
    for _ in range(3):
        response = opened.post(reverse("participants:enrol-codes"), {"email_code": bad})
    clock.shift(dt.timedelta(minutes=5))
    codes_before = codes_of(jan).count()

    resend = opened.post(reverse("participants:enrol-resend"), follow=True)

    assert "Too many wrong codes were entered in the last hour. You can try again in" in text(response)
    assert "new codes in 55 minutes" in text(resend)
    assert codes_of(jan).count() == codes_before


@pytest.mark.parametrize(
    ("details", "words"),
    [
        ({"mobile": "020-5551234"}, "landline"),
        ({"mobile": "0612ABCDEF"}, "valid mobile number"),
        ({"mobile": "+33 6 12 34 56 78"}, "only to mobile numbers of these countries: NL (+31), BE (+32)"),
        ({"mobile": "0800-1234"}, "service number"),
        ({"name": "=cmd|' /C calc'!A0"}, "cannot start with"),
        ({"name": "@SUM(1+1)"}, "cannot start with"),
        ({"name": "Jan\u202e seirV ed"}, "control characters"),
        ({"name": "Jan\x07"}, "control characters"),
    ],
)
def test_typed_numbers_and_names_meet_the_imports_rules(
    opened: Client, jan: Participant, details: dict[str, str], words: str
) -> None:
    opened.post(reverse("participants:enrol-consent"))
    sent_before = len(MemorySmsGateway.outbox)

    response = opened.post(
        reverse("participants:enrol-details"), {"name": "Jan", "weekly_channel": "sms", **details}
    )

    assert response.status_code == 200
    assert words in text(response).replace("&#x27;", "'")
    jan.refresh_from_db()
    assert jan.name != details.get("name") and jan.status == Participant.Status.INVITED
    assert not codes_of(jan).filter(purpose="enrol").exists()
    assert len(MemorySmsGateway.outbox) == sent_before
