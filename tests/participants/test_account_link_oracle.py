"""The account-link form as the employer uses it: type a colleague's work address, read the work mailbox.

The employer knows whom it listed and reads every mailbox it supplied. Whatever the colleague did (takes
part, paused, went silent, was only invited, declined, stopped, or was anonymised by the nightly run), the
mailbox must receive the same e-mail, and the link in it must lead through the same pages up to the SMS
code: only the phone on file learns whether the link was real.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from participants import account, retention
from participants.models import AccountLink, Organisation, Participant
from preventicons import crypto, messaging
from preventicons.gateways import MemorySmsGateway
from tests.conftest import ALL_DATABASES, make_organisation
from tests.fakes.smtp import FakeSmtpServer
from tests.participants.people import remember_departed
from tests.participants.test_stop import make_active

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("empty_cache")]

STATUSES = ["active", "inactive", "invited", "paused", "declined", "stopped", "anonymised"]
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
_LINK = re.compile(r"/me/link/([A-Za-z0-9_-]{43})/")


def address_of(status: str) -> str:
    return f"{status}@example.nl"


def mobile_of(number: int) -> str:
    return f"+3161000000{number}"


def put_in(participant: Participant, status: str) -> None:
    """Bring a participant where ``status`` says, the way the platform itself gets them there."""
    if status == "paused":
        participant.messages_paused = True
        participant.save()
    elif status in ("inactive", "invited"):
        participant.status = status
        participant.save()
    elif status == "declined":
        # As enrolment.decline_participation leaves them (its SMS-code step aside): hashes kept, row declined.
        participant.status = Participant.Status.INVITED
        participant.save()
        remember_departed(participant=participant)
        participant.status = Participant.Status.DECLINED
        participant.save()
    elif status == "stopped":
        account.stop_participation(participant=participant)
    elif status == "anonymised":
        participant.status = Participant.Status.INACTIVE
        participant.save()
        assert retention.anonymise_participants(participant_ids=[participant.pk]) == 1


@pytest.fixture
def colleagues(organisation: Organisation) -> dict[str, Participant]:
    people = {}
    for number, status in enumerate(STATUSES):
        person = make_active(
            organisation, name=f"Person {status}", email=address_of(status), mobile=mobile_of(number)
        )
        put_in(person, status)
        people[status] = person
    return people


def normalised(response: Any, token: str = "") -> tuple[int, str, str]:
    body = _CSRF.sub("", response.content.decode())
    if token:
        body = body.replace(token, "TOKEN")
    return response.status_code, response.get("Location", ""), body


def ask_for_links(smtp_server: FakeSmtpServer) -> dict[str, list[Any]]:
    """The employer types every address it listed into /me/link/ and reads what arrives, per mailbox."""
    for number, status in enumerate(STATUSES):
        employer = Client(REMOTE_ADDR=f"192.0.2.{number + 1}")  # one office per address: under the limit
        assert employer.post("/me/link/", {"email": address_of(status)}).status_code == 200
    messaging.send_due_messages()
    received = smtp_server.wait_for(len(STATUSES), timeout=10)
    mailboxes: dict[str, list[Any]] = {address_of(status): [] for status in STATUSES}
    for item in received:
        for recipient in item.rcpt_tos:
            mailboxes[recipient].append(item.message)
    return mailboxes


def walk(token: str) -> list[tuple[int, str, str]]:
    """Follow a link as its reader would, up to a wrong code and a resend, in a fresh browser."""
    visitor = Client()
    steps = [
        visitor.get(f"/me/link/{token}/"),
        visitor.get("/me/link/open/"),
        visitor.post("/me/link/open/"),
        visitor.get("/me/link/code/"),
        visitor.post("/me/link/code/", {"sms_code": "000000"}),
        visitor.post("/me/link/code/", {"sms_code": "000000"}),
        visitor.post("/me/link/code/resend/"),
        visitor.get("/me/link/code/"),
        visitor.post("/me/link/code/resend/"),
        visitor.get("/me/link/code/"),
        visitor.get("/me/"),
        visitor.get("/me/export.json"),
    ]
    return [normalised(response, token) for response in steps]


@pytest.mark.integration
def test_every_listed_colleague_gets_the_same_link_e_mail_whatever_they_did(
    colleagues: dict[str, Participant], smtp_server: FakeSmtpServer
) -> None:
    mailboxes = ask_for_links(smtp_server)

    assert {address: len(messages) for address, messages in mailboxes.items()} == {
        address_of(status): 1 for status in STATUSES
    }
    shapes = set()
    for address, (message,) in mailboxes.items():
        body = message.get_content()
        token = _LINK.search(body)
        assert token, address
        shapes.add((str(message["Subject"]), body.replace(token.group(1), "TOKEN")))
    assert len(shapes) == 1
    # Only those who may open an account hold a link that is stored anywhere.
    assert AccountLink.objects.count() == 4


@pytest.mark.integration
def test_every_link_reads_the_same_up_to_the_code_and_only_a_real_one_opens_with_its_code(
    colleagues: dict[str, Participant], smtp_server: FakeSmtpServer
) -> None:
    mailboxes = ask_for_links(smtp_server)
    tokens = {}
    for status in STATUSES:
        (message,) = mailboxes[address_of(status)]
        found = _LINK.search(message.get_content())
        assert found
        tokens[status] = found.group(1)
    MemorySmsGateway.outbox.clear()

    walks = {status: walk(tokens[status]) for status in STATUSES}

    reference = walks["active"]
    for status in STATUSES:
        assert walks[status] == reference, status
    wrong = reference[4][2]
    assert "You can try 4 more times" in wrong
    assert "You can try 3 more times" in reference[5][2]
    assert reference[10][1] == reference[11][1] == "/me/link/code/"
    # Only the phones of people with a real link got codes (the first and one resend; the second waits).
    messaging.send_due_messages()
    reached = sorted({sms["to"] for sms in MemorySmsGateway.outbox})
    assert reached == sorted(
        mobile_of(STATUSES.index(s)) for s in ("active", "inactive", "invited", "paused")
    )


@pytest.mark.integration
def test_the_real_link_opens_with_the_real_code_and_a_decoy_never_opens(
    colleagues: dict[str, Participant], smtp_server: FakeSmtpServer
) -> None:
    mailboxes = ask_for_links(smtp_server)
    for status in STATUSES:
        (message,) = mailboxes[address_of(status)]
        found = _LINK.search(message.get_content())
        assert found
        visitor = Client()
        visitor.get(f"/me/link/{found.group(1)}/")
        visitor.post("/me/link/open/")
        messaging.send_due_messages()
        mobile = mobile_of(STATUSES.index(status))
        codes = [sms["body"] for sms in MemorySmsGateway.outbox if sms["to"] == mobile]
        if status in ("declined", "stopped", "anonymised"):
            assert codes == []
            # Every code there is, tried against the decoy: none opens anything.
            for sms in MemorySmsGateway.outbox:
                code = re.search(r"\b(\d{6})\b", sms["body"])
                assert code
                assert visitor.post("/me/link/code/", {"sms_code": code.group(1)}).status_code == 400
            assert visitor.get("/me/")["Location"] == "/me/link/code/"
        else:
            code = re.search(r"\b(\d{6})\b", codes[-1])
            assert code
            assert visitor.post("/me/link/code/", {"sms_code": code.group(1)})["Location"] == "/me/"
            assert visitor.get("/me/").status_code == 200


def test_a_decoy_is_stored_nowhere(colleagues: dict[str, Participant]) -> None:
    before = set(AccountLink.objects.values_list("token_hash", flat=True))
    sent = account.send_account_links(
        request_id="4f1c9b7e-0000-4000-8000-00000000d0c0", email="stopped@example.nl"
    )
    messaging.send_due_messages()

    assert sent == 1
    assert set(AccountLink.objects.values_list("token_hash", flat=True)) == before


def test_an_address_nobody_listed_gets_nothing(colleagues: dict[str, Participant]) -> None:
    # Never listed by any organisation: its silence says nothing about anyone the employer listed.
    assert (
        account.send_account_links(request_id="4f1c9b7e-0000-4000-8000-00000000d0c1", email="x@example.nl")
        == 0
    )


def test_an_address_listed_by_two_organisations_gets_one_e_mail_per_list_whatever_they_did_there(
    colleagues: dict[str, Participant],
) -> None:
    # Listed at a second employer too: there they stopped. The first employer still sees two e-mails, as it
    # would had they stayed (the count follows the lists, never what the person did on them).
    other = make_organisation("Other employer")
    twin = make_active(other, email=address_of("active"), mobile=mobile_of(0))
    request = "4f1c9b7e-0000-4000-8000-00000000d0c2"
    assert account.send_account_links(request_id=request, email=address_of("active")) == 2
    account.stop_participation(participant=twin)
    later = "4f1c9b7e-0000-4000-8000-00000000d0c3"
    assert account.send_account_links(request_id=later, email=address_of("active")) == 2
    assert crypto.blind_index_email(address_of("active")) == colleagues["active"].email_index


def test_made_up_link_lookups_are_limited_per_client_and_real_links_and_decoys_never(
    colleagues: dict[str, Participant], settings: Any
) -> None:
    # Real links and decoys are both tokens we made (crypto.is_issued_token): neither is counted, so the
    # limit answers alike for them and cannot tell a decoy (someone who stopped) from a real link.
    settings.UNKNOWN_LINKS_PER_HOUR = 2
    real = crypto.new_token()
    AccountLink.objects.create(
        participant_ref=str(colleagues["active"].pk),
        token_hash=crypto.hash_token(real),
        expires_at=timezone.now() + account.ACCOUNT_LINK_LIFETIME,
    )
    visitor = Client()
    assert visitor.get(f"/me/link/{'A' * 43}/").status_code == 302
    assert visitor.get(f"/me/link/{'B' * 43}/").status_code == 302

    refused = visitor.get(f"/me/link/{'C' * 43}/")
    # Within the window and at most one bucket more (preventicons.ratelimit).
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 3660
    assert "Too many attempts" in refused.content.decode()
    for token in (real, crypto.new_token()):
        assert visitor.get(f"/me/link/{token}/").status_code == 302
