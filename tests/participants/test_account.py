"""The participant's account: corrections verified by both factors, export, pause, and the e-mailed link."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from participants import account, requestqueue, verification
from participants.models import (
    AccountLink,
    ConsentRecord,
    Organisation,
    Participant,
    VerificationCode,
    index_salt,
)
from preventicons import crypto, messaging
from preventicons.gateways import MemorySmsGateway
from preventicons.models import OutboundMessage
from preventicons.sessions import SessionStore
from scores import wellbeing
from tests.conftest import ALL_DATABASES, make_organisation
from tests.participants.test_stop import add_scores, delivered_codes, make_active, open_account, wrong
from tests.test_pages import foreign_urls, parse

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]

CHANGE = VerificationCode.Purpose.CHANGE
START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def jan(organisation: Organisation) -> Participant:
    participant = make_active(organisation)
    add_scores(participant, [2, 4, 3])
    return participant


@pytest.fixture
def piet(organisation: Organisation) -> Participant:
    participant = make_active(
        organisation, name="Piet Bakker", email="piet@example.nl", mobile="+31687654321"
    )
    add_scores(participant, [5, 1])
    return participant


@pytest.fixture
def jan_client(client: Client, jan: Participant) -> Client:
    open_account(client, "jan@example.nl")
    mail.outbox.clear()
    return client


def delivered_sms_code() -> str:
    """Send what is due; the code in the last SMS."""
    messaging.send_due_messages()
    code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"])
    assert code
    return code.group(1)


def link_step(client: Client, participant: Participant) -> None:
    """Use a fresh account link of this participant in ``client``: the first factor, no code entered yet."""
    token = crypto.new_token()
    AccountLink.objects.create(
        participant_ref=str(participant.pk),
        token_hash=crypto.hash_token(token),
        expires_at=dt.datetime.now(dt.UTC) + account.ACCOUNT_LINK_LIFETIME,
    )
    assert client.get(f"/me/link/{token}/")["Location"] == "/me/link/open/"
    assert client.post("/me/link/open/")["Location"] == "/me/link/code/"


def identity_dump_text() -> str:
    """Every text column of every identity table, as a DBA would see it."""
    found: list[str] = []
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying')"
        )
        for table, column in cursor.fetchall():
            cursor.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')  # noqa: S608
            found.extend(str(value) for (value,) in cursor.fetchall())
    return "\n".join(found)


# --- corrections ----------------------------------------------------------------------------------


def test_a_new_address_replaces_the_old_only_after_both_codes(jan: Participant, clock: Any) -> None:
    pending = account.request_change(participant=jan, email="Jan.Nieuw@Example.nl")
    assert pending.email_to_new_address and not pending.sms_to_new_number
    email_code, sms_code = delivered_codes()

    # The e-mail code goes to the new address, the SMS to the number on file.
    assert mail.outbox[-1].to == ["jan.nieuw@example.nl"]
    assert MemorySmsGateway.outbox[-1]["to"] == "+31612345678"
    # Until both codes are in, the old address stands and the new one exists only sealed.
    jan.refresh_from_db()
    assert jan.email == "jan@example.nl"
    assert "jan.nieuw@example.nl" not in identity_dump_text().lower()

    first = requestqueue.confirm_change(participant=jan, email_code=email_code, sms_code="")
    assert not first.done
    jan.refresh_from_db()
    assert jan.email == "jan@example.nl"

    done = requestqueue.confirm_change(participant=jan, email_code="", sms_code=sms_code)
    assert done.done
    # Queued, not written in the minute of the confirmation: the next batch applies it.
    jan.refresh_from_db()
    assert jan.email == "jan@example.nl"
    assert wellbeing.take_up_help_requests().changes == 1
    jan.refresh_from_db()
    assert jan.email == "jan.nieuw@example.nl"
    # Under the salt the batch drew when it rewrote every row (participants.rewrite).
    salt = index_salt(jan.organisation_id)
    assert jan.email_index == crypto.blind_index_email("jan.nieuw@example.nl", salt)
    old_index = crypto.blind_index_email("jan@example.nl", salt)
    assert not Participant.objects.filter(email_index=old_index).exists()
    # The old address hears of it.
    messaging.send_due_messages()
    assert mail.outbox[-1].to == ["jan@example.nl"]
    assert "changed" in mail.outbox[-1].subject


def test_a_wrong_code_leaves_the_old_address(jan: Participant, clock: Any) -> None:
    account.request_change(participant=jan, email="nieuw@example.nl")
    email_code, sms_code = delivered_codes()

    result = requestqueue.confirm_change(participant=jan, email_code=wrong(email_code), sms_code=sms_code)

    assert not result.done
    assert result.failed["email"].status is verification.VerifyStatus.WRONG
    assert result.failed["email"].tries_left == 4
    jan.refresh_from_db()
    assert jan.email == "jan@example.nl"
    assert jan.email_index == crypto.blind_index_email("jan@example.nl")


def test_a_new_mobile_gets_its_sms_there_and_the_email_goes_to_the_address_on_file(
    jan: Participant, clock: Any
) -> None:
    pending = account.request_change(participant=jan, mobile="06 1122 3344")
    assert pending.sms_to_new_number
    email_code, sms_code = delivered_codes()

    assert MemorySmsGateway.outbox[-1]["to"] == "+31611223344"
    assert mail.outbox[-1].to == ["jan@example.nl"]
    assert requestqueue.confirm_change(participant=jan, email_code=email_code, sms_code=sms_code).done
    wellbeing.take_up_help_requests()
    jan.refresh_from_db()
    assert jan.mobile == "+31611223344"
    assert jan.mobile_index == crypto.blind_index_phone("+31611223344", index_salt(jan.organisation_id))


@pytest.mark.parametrize(
    ("change", "field"),
    [({"email": "PIET@example.nl"}, "email"), ({"mobile": "0687654321"}, "mobile")],
)
def test_an_address_or_number_of_a_colleague_is_refused_without_naming_them(
    jan: Participant, piet: Participant, change: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        account.request_change(participant=jan, **change)

    words = " ".join(refused.value.message_dict[field])
    assert "cannot be used" in words
    assert "Piet" not in words and "piet" not in words.lower().replace("piet@", "")
    assert not VerificationCode.objects.naming([jan.pk]).all().exists()
    assert mail.outbox == [] and MemorySmsGateway.outbox == []


def test_the_same_address_at_another_organisation_is_no_obstacle(jan: Participant, clock: Any) -> None:
    elsewhere = make_organisation("Bouwbedrijf Zuid", "bouw")
    make_active(elsewhere, name="Kees", email="kees@example.nl", mobile="+31611998888")

    assert account.request_change(participant=jan, email="kees@example.nl").email_to_new_address


def test_a_colleague_taking_the_address_before_confirmation_is_refused(
    jan: Participant, organisation: Organisation, clock: Any
) -> None:
    account.request_change(participant=jan, email="gedeeld@example.nl")
    email_code, sms_code = delivered_codes()
    make_active(organisation, name="Kees", email="gedeeld@example.nl", mobile="+31611998888")

    result = requestqueue.confirm_change(participant=jan, email_code=email_code, sms_code=sms_code)

    assert not result.done and "cannot be used" in result.refusal
    jan.refresh_from_db()
    assert jan.email == "jan@example.nl"


def test_a_colleague_taking_the_address_before_the_batch_leaves_it_unchanged_and_says_so(
    jan: Participant, organisation: Organisation, clock: Any
) -> None:
    account.request_change(participant=jan, email="gedeeld@example.nl")
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_change(participant=jan, email_code=email_code, sms_code=sms_code).done
    make_active(organisation, name="Kees", email="gedeeld@example.nl", mobile="+31611998888")
    mail.outbox.clear()

    batch = wellbeing.take_up_help_requests()

    assert batch.changes == 0 and batch.dropped == 1
    jan.refresh_from_db()
    assert jan.email == "jan@example.nl"
    messaging.send_due_messages()
    told = [m.body for m in mail.outbox] + [m["body"] for m in MemorySmsGateway.outbox]
    assert any("could not be made" in body for body in told)


def test_two_corrections_before_the_batch_are_both_applied(jan: Participant, clock: Any) -> None:
    pending = account.request_change(participant=jan, name="Jan van Dijk")
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_change(
        participant=jan, email_code=email_code, sms_code=sms_code, sealed_name=pending.sealed_name
    ).done
    clock.shift(dt.timedelta(minutes=2))
    account.request_change(participant=jan, mobile="0611223344")
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_change(participant=jan, email_code=email_code, sms_code=sms_code).done

    assert wellbeing.take_up_help_requests().changes == 1

    jan.refresh_from_db()
    assert (jan.name, jan.mobile) == ("Jan van Dijk", "+31611223344")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"email": "jan@example.nl"}, "Nothing to change"),
        ({"name": "Jan de Vries", "mobile": "+31 6 12345678"}, "Nothing to change"),
        ({"email": "nieuw@example.nl", "mobile": "0611223344"}, "one at a time"),
        ({"email": "not-an-address"}, "valid e-mail"),
        # One normaliser for the import, enrolment and the account (participants.contact).
        ({"mobile": "020 1234567"}, "landline"),
        ({"mobile": "0612ABCDEF"}, "valid mobile"),
        ({"mobile": "+33 6 12 34 56 78"}, "only to mobile numbers of these countries"),
        ({"name": "   "}, "Enter your name"),
        # The same text checks as the employer's list: formulas, control characters, bidi overrides.
        ({"name": "=HYPERLINK(1)"}, "cannot start with"),
        ({"name": "Jan\u202eseirV"}, "control characters"),
        ({"name": "Jan\tde Vries"}, "control characters"),
    ],
)
def test_bad_or_empty_corrections_are_refused_and_send_nothing(
    jan: Participant, change: dict[str, str], words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        account.request_change(participant=jan, **change)

    assert words in " ".join(refused.value.messages)
    assert mail.outbox == [] and MemorySmsGateway.outbox == []


def test_a_proven_change_applies_once(jan: Participant, clock: Any) -> None:
    account.request_change(participant=jan, email="nieuw@example.nl")
    email_code, sms_code = delivered_codes()
    assert requestqueue.confirm_change(participant=jan, email_code=email_code, sms_code=sms_code).done
    wellbeing.take_up_help_requests()
    jan.refresh_from_db()
    assert jan.email == "nieuw@example.nl"
    jan.email = "jan@example.nl"
    jan.email_index = crypto.blind_index_email("jan@example.nl")
    jan.save()

    again = requestqueue.confirm_change(participant=jan, email_code=email_code, sms_code=sms_code)

    assert not again.done
    jan.refresh_from_db()
    assert jan.email == "jan@example.nl"


def test_a_name_change_through_the_pages_needs_both_codes_and_is_never_stored_in_clear(
    jan_client: Client, jan: Participant
) -> None:
    response = jan_client.post(
        "/me/change/", {"name": "Jan van Dijk", "email": "jan@example.nl", "mobile": "+31612345678"}
    )
    assert response.status_code == 302 and response["Location"] == "/me/change/confirm/"
    email_code, sms_code = delivered_codes()
    assert mail.outbox[-1].to == ["jan@example.nl"]
    page = jan_client.get("/me/change/confirm/")
    assert "Jan van Dijk" in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    # The pending name waits sealed in the session; the session store holds no plaintext of it, not even
    # inside the sealed session row (opened here with the key, as the application does).
    for session in Session.objects.all():
        assert "Jan van Dijk" not in json.dumps(SessionStore(session.session_key).load())
    assert "Jan van Dijk" not in identity_dump_text()

    response = jan_client.post("/me/change/confirm/", {"email_code": wrong(email_code), "sms_code": sms_code})
    assert response.status_code == 400
    jan.refresh_from_db()
    assert jan.name == "Jan de Vries"

    response = jan_client.post("/me/change/confirm/", {"email_code": email_code, "sms_code": ""})
    assert response.status_code == 302 and response["Location"] == "/me/"
    assert "Within 15 minutes your details are changed" in jan_client.get("/me/").content.decode()
    jan.refresh_from_db()
    assert jan.name == "Jan de Vries"
    wellbeing.take_up_help_requests()
    jan.refresh_from_db()
    assert jan.name == "Jan van Dijk"


def test_a_duplicate_through_the_pages_gets_a_clear_message(
    jan_client: Client, jan: Participant, piet: Participant
) -> None:
    response = jan_client.post(
        "/me/change/", {"name": "Jan de Vries", "email": "piet@example.nl", "mobile": "+31612345678"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "This e-mail address cannot be used. Please enter another one." in page
    assert "Piet" not in page


def test_a_name_change_whose_new_name_was_lost_is_refused_not_applied(jan: Participant, clock: Any) -> None:
    account.request_change(participant=jan, name="Jan van Dijk")
    email_code, sms_code = delivered_codes()

    result = requestqueue.confirm_change(
        participant=jan, email_code=email_code, sms_code=sms_code, sealed_name=None
    )

    assert not result.done and "expired" in result.refusal
    jan.refresh_from_db()
    assert jan.name == "Jan de Vries"
    assert not VerificationCode.objects.naming([jan.pk]).filter(purpose=CHANGE).exists()


def test_a_sealed_name_does_not_open_for_another_participant(jan: Participant, piet: Participant) -> None:
    pending = account.request_change(participant=piet, name="Mallory")
    assert pending.sealed_name

    assert account.pending_change(participant=jan, sealed_name=pending.sealed_name)["name"] is None


# --- seeing everything and exporting --------------------------------------------------------------


def test_the_export_holds_exactly_their_data_and_scores(jan: Participant, piet: Participant) -> None:
    data = account.export_data(participant=jan)

    assert data["participant"] == {
        "id": str(jan.pk),
        "organisation": "Zorggroep Noord",
        "department": "Care",
        "status": "active",
        "is_listed": True,
        "name": "Jan de Vries",
        "email": "jan@example.nl",
        "mobile": "+31612345678",
    }
    assert data["preferences"] == {"messages_paused": False, "prefers_email": True, "prefers_sms": True}
    assert [record["kind"] for record in data["consent_history"]] == ["given"]
    assert data["weekly_scores"] == [
        {"week": "2026-10-26", "value": 2},
        {"week": "2026-11-02", "value": 4},
        {"week": "2026-11-09", "value": 3},
    ]
    text = json.dumps(data)
    for other in ("Piet", "piet@example.nl", "+31687654321", str(piet.pk), piet.pseudonym or "-"):
        assert other not in text
    # Not even their own pseudonym: the file could end up on a shared work computer.
    assert jan.pseudonym and jan.pseudonym not in text


def test_the_export_downloads_as_an_uncached_json_attachment(jan_client: Client) -> None:
    response = jan_client.get("/me/export.json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response["Cache-Control"]
    assert json.loads(response.content)["participant"]["email"] == "jan@example.nl"


def test_the_account_page_shows_everything_held(jan_client: Client) -> None:
    response = jan_client.get("/me/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    for shown in (
        "Jan de Vries",
        "jan@example.nl",
        "+31612345678",
        "Care",
        "text version 2026-11",
    ):
        assert shown in page


def test_the_account_page_shows_each_answer_as_the_smiley_tapped_and_dates_in_one_dutch_format(
    jan_client: Client,
) -> None:
    jan_client.cookies["django_language"] = "nl"
    page = jan_client.get("/me/", HTTP_ACCEPT_LANGUAGE="nl").content.decode()
    table = re.search(r"<table.*?</table>", page, flags=re.DOTALL)

    assert table is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", table.group(0), flags=re.DOTALL)
    # Jan tapped 2, 4 and 3 in the weeks starting 26 October, 2 and 9 November.
    assert [cell.strip() for cell in cells[0::2]] == ["26 oktober 2026", "2 november 2026", "9 november 2026"]
    assert re.findall(r"smiley-\d\.svg", table.group(0)) == ["smiley-2.svg", "smiley-4.svg", "smiley-3.svg"]
    assert "Slecht" in cells[1] and "Goed" in cells[3]
    # The consents read their day in the same format, not as 2026-11-02.
    assert not re.search(r"\b2026-\d\d-\d\d\b", page)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/me/"),
        ("get", "/me/export.json"),
        ("post", "/me/pause/"),
        ("post", "/me/change/"),
        ("get", "/me/change/confirm/"),
        ("get", "/me/stop/"),
        ("post", "/me/stop/"),
        ("get", "/me/stop/confirm/"),
    ],
)
def test_account_pages_without_a_session_offer_the_email_link(client: Client, method: str, path: str) -> None:
    response = getattr(client, method)(path)

    assert response.status_code == 302 and response["Location"] == "/me/link/"
    assert "no-store" in response["Cache-Control"]


def test_the_session_is_short(jan_client: Client) -> None:
    assert jan_client.session.get_expiry_age() <= settings.PARTICIPANT_SESSION_SECONDS

    with time_machine.travel(dt.timedelta(seconds=settings.PARTICIPANT_SESSION_SECONDS + 5)):
        response = jan_client.get("/me/")

    assert response.status_code == 302 and response["Location"] == "/me/link/"


# --- pausing --------------------------------------------------------------------------------------


def test_pausing_stops_pending_messages_and_leaves_a_trace(jan: Participant, piet: Participant) -> None:
    from scores import rounds

    # The week's messages are queued (deferred) for both; the pause ends nothing at once (ended in the batch,
    # the message would name whose row the batch paused, review 8): the sender finds Jan paused and sends
    # him nothing, as it sends a stand-in nothing.
    rounds.run_weekly_round(organisation=jan.organisation, week=rounds.week_of(timezone.now()))
    pending = OutboundMessage.objects.filter(status="pending").count()

    assert account.pause_messages(participant=jan, paused=True)
    assert not account.pause_messages(participant=jan, paused=True)

    jan.refresh_from_db()
    assert jan.messages_paused
    assert OutboundMessage.objects.filter(status="pending").count() == pending
    mail.outbox.clear()
    messaging.send_due_messages()
    assert [message.to for message in mail.outbox] == [["piet@example.nl"]]
    assert account.pause_messages(participant=jan, paused=False)
    kinds = [record.kind for record in ConsentRecord.objects.of(jan.pk).opened()]
    assert kinds.count("paused") == 1 and kinds.count("resumed") == 1
    assert account.export_data(participant=jan)["preferences"]["messages_paused"] is False


def test_the_pause_toggle_on_the_page(jan_client: Client, jan: Participant) -> None:
    from scores.wellbeing import take_up_help_requests as run_the_batch

    response = jan_client.post("/me/pause/", {"paused": "1"})
    assert response.status_code == 302
    # Queued, applied by the next batch (participants.requestqueue): not written in the second of a tap.
    jan.refresh_from_db()
    assert not jan.messages_paused
    run_the_batch()
    jan.refresh_from_db()
    assert jan.messages_paused
    assert "Switch messages on again" in jan_client.get("/me/").content.decode()

    jan_client.post("/me/pause/", {"paused": "0"})
    run_the_batch()
    jan.refresh_from_db()
    assert not jan.messages_paused
    assert bool(ConsentRecord.objects.of(jan.pk).opened(ConsentRecord.Kind.PAUSED))


# --- the e-mailed account link --------------------------------------------------------------------

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def test_the_answer_is_the_same_for_an_unknown_address(client: Client, jan: Participant) -> None:
    known = client.post("/me/link/", {"email": "jan@example.nl"})
    unknown = Client().post("/me/link/", {"email": "nobody@example.nl"})

    assert known.status_code == unknown.status_code == 200
    assert _CSRF.sub("", known.content.decode()) == _CSRF.sub("", unknown.content.decode())
    messaging.send_due_messages()
    assert [message.to for message in mail.outbox] == [["jan@example.nl"]]
    assert AccountLink.objects.count() == 1


def test_a_request_does_the_same_work_for_a_known_and_an_unknown_address(
    jan: Participant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # How long the answer takes must not tell whether an address declined, stopped or takes part: the
    # request itself touches no table, and hands the rest to a task that carries the address sealed.
    from participants import tasks

    handed_over: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.send_account_links_task, "delay", lambda *args: handed_over.append(args))
    work = {}
    for address in ("jan@example.nl", "nobody@example.nl"):
        contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in ALL_DATABASES}
        with contextlib.ExitStack() as stack:
            for context in contexts.values():
                stack.enter_context(context)
            assert account.request_account_link(email=address, requester="192.0.2.1")
        work[address] = {
            alias: [query["sql"] for query in c.captured_queries] for alias, c in contexts.items()
        }

    assert work["jan@example.nl"] == work["nobody@example.nl"] == {alias: [] for alias in ALL_DATABASES}
    assert len(handed_over) == 2
    for (request_id, sealed, _language), address in zip(
        handed_over, ("jan@example.nl", "nobody@example.nl"), strict=True
    ):
        assert address not in sealed and "@" not in sealed
        assert account.open_link_request(request_id=request_id, sealed=sealed) == address
    assert not AccountLink.objects.exists() and not OutboundMessage.objects.exists()


def test_with_the_task_queue_down_the_request_says_to_try_again(
    client: Client, jan: Participant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kombu.exceptions import OperationalError

    from participants import tasks

    def broker_down(*args: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.send_account_links_task, "delay", broker_down)

    response = client.post("/me/link/", {"email": "jan@example.nl"})

    assert response.status_code == 503
    assert "try again in a few minutes" in response.content.decode()
    assert "jan@example.nl" in response.content.decode()  # the form keeps what they typed
    assert not AccountLink.objects.exists() and not OutboundMessage.objects.exists()


def test_a_redelivered_link_task_sends_one_link(jan: Participant) -> None:
    from participants.tasks import send_account_links_task

    request_id = "0b3f7c8e-0000-4000-8000-00000000c0de"
    sealed = crypto.seal(
        "jan@example.nl", crypto.Binding("field", "celery_task", "send_account_links", request_id)
    )

    first = send_account_links_task(request_id, sealed, "en")
    again = send_account_links_task(request_id, sealed, "en")
    messaging.send_due_messages()

    assert (first, again) == (1, 0)
    assert AccountLink.objects.count() == 1
    assert [message.to for message in mail.outbox] == [["jan@example.nl"]]
    assert "Open your Preventicons account" in str(mail.outbox[0].body)


def test_the_link_e_mail_speaks_the_language_of_the_request(
    client: Client, jan: Participant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from participants import tasks

    handed_over: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.send_account_links_task, "delay", lambda *args: handed_over.append(args))
    client.post("/me/link/", {"email": "jan@example.nl"}, HTTP_ACCEPT_LANGUAGE="nl")
    # The worker runs outside any request, in whatever language is active there (English in the tests).
    (request_id, sealed, language), *_ = handed_over
    tasks.send_account_links_task(request_id, sealed, language)
    messaging.send_due_messages()

    assert language == "nl"
    assert "Open je Preventicons-account met deze link" in str(mail.outbox[-1].body)


def test_the_link_is_single_use_and_leaves_the_token_behind(client: Client, jan: Participant) -> None:
    client.post("/me/link/", {"email": "JAN@example.nl "})
    messaging.send_due_messages()
    token = re.search(r"/me/link/(\S+)/", str(mail.outbox[-1].body))
    assert token
    stored = AccountLink.objects.get()
    assert stored.token_hash == crypto.hash_token(token.group(1))
    assert token.group(1) not in identity_dump_text()

    # Opening the link (a mail scanner does too) does not use it up and starts no session.
    opened = client.get(f"/me/link/{token.group(1)}/")
    assert opened.status_code == 302 and opened["Location"] == "/me/link/open/"
    assert "no-store" in opened["Cache-Control"]
    assert client.get("/me/").status_code == 302
    assert client.get(f"/me/link/{token.group(1)}/").status_code == 302

    confirmed = client.post("/me/link/open/")
    assert confirmed.status_code == 302 and confirmed["Location"] == "/me/link/code/"
    # One factor is not enough: the account waits for the SMS code.
    assert client.get("/me/")["Location"] == "/me/link/code/"
    sms_code = delivered_sms_code()
    assert client.post("/me/link/code/", {"sms_code": sms_code})["Location"] == "/me/"
    assert client.get("/me/").status_code == 200

    # Used: opened again it reads like any link, but no code comes and no code opens it.
    # (A minute later: codes are paced per link, used or not.)
    again = Client()
    sms_before = len(MemorySmsGateway.outbox)
    with time_machine.travel(dt.timedelta(minutes=1)):
        assert again.get(f"/me/link/{token.group(1)}/")["Location"] == "/me/link/open/"
        assert again.post("/me/link/open/")["Location"] == "/me/link/code/"
        messaging.send_due_messages()
        assert len(MemorySmsGateway.outbox) == sms_before
        assert again.post("/me/link/code/", {"sms_code": sms_code}).status_code == 400
        assert again.get("/me/")["Location"] == "/me/link/code/"


def test_the_link_expires_after_thirty_minutes(client: Client, jan: Participant) -> None:
    with time_machine.travel(START, tick=False) as traveller:
        client.post("/me/link/", {"email": "jan@example.nl"})
        messaging.send_due_messages()
        token = re.search(r"/me/link/(\S+)/", str(mail.outbox[-1].body))
        assert token
        traveller.shift(dt.timedelta(minutes=29))
        assert client.get(f"/me/link/{token.group(1)}/").status_code == 302
        traveller.shift(dt.timedelta(minutes=2))
        sms_before = len(MemorySmsGateway.outbox)
        # Opened in time but confirmed too late: the same code step, but no code comes.
        assert client.post("/me/link/open/")["Location"] == "/me/link/code/"
        messaging.send_due_messages()
        assert len(MemorySmsGateway.outbox) == sms_before
        page = client.get("/me/link/code/")
        # The code step says, to everyone, why a code may not come.
        assert "Send me a new link" in page.content.decode()
        response = Client().get(f"/me/link/{token.group(1)}/")
    assert response.status_code == 302
    assert not AccountLink.objects.filter(used=True).exists()


def test_malformed_tokens_are_refused_and_unknown_ones_read_like_any_link(client: Client) -> None:
    # A token of the wrong shape was never sent by us; one of the right shape may be a decoy or expired.
    assert client.get("/me/link/" + "A" * 42 + "/").status_code == 404
    assert client.get("/me/link/" + "A" * 500 + "/").status_code == 404
    assert client.get("/me/link/" + "A" * 42 + "*/").status_code == 404
    assert Client().get("/me/link/open/")["Location"] == "/me/link/"
    assert client.get("/me/link/" + "A" * 43 + "/")["Location"] == "/me/link/open/"


@pytest.mark.parametrize("address", ["jan@example.nl", "nobody@example.nl"])
def test_link_requests_are_limited_per_address_known_or_not(
    client: Client, jan: Participant, address: str
) -> None:
    for _ in range(account.ACCOUNT_LINKS_PER_ADDRESS_PER_HOUR):
        assert client.post("/me/link/", {"email": address}).status_code == 200

    response = client.post("/me/link/", {"email": address})

    assert response.status_code == 429
    assert AccountLink.objects.count() == (3 if address == "jan@example.nl" else 0)


def test_link_requests_are_limited_per_client(client: Client, jan: Participant) -> None:
    for number in range(account.ACCOUNT_LINKS_PER_REQUESTER_PER_HOUR):
        assert client.post("/me/link/", {"email": f"someone{number}@example.nl"}).status_code == 200

    assert client.post("/me/link/", {"email": "jan@example.nl"}).status_code == 429
    assert AccountLink.objects.count() == 0


def test_no_link_for_a_participant_who_declined(client: Client, jan: Participant) -> None:
    jan.status = Participant.Status.DECLINED
    jan.save()

    assert client.post("/me/link/", {"email": "jan@example.nl"}).status_code == 200
    assert AccountLink.objects.count() == 0


# --- the pages themselves -----------------------------------------------------------------------------


def test_every_account_page_is_accessible_and_self_contained(jan_client: Client, jan: Participant) -> None:
    pages = {"account": jan_client.get("/me/"), "stop": jan_client.get("/me/stop/")}
    jan_client.post("/me/change/", {"name": "Jan van Dijk", "email": "", "mobile": ""})
    pages["change confirm"] = jan_client.get("/me/change/confirm/")
    with time_machine.travel(dt.timedelta(minutes=5)):
        jan_client.post("/me/stop/")
        pages["stop confirm"] = jan_client.get("/me/stop/confirm/")
    visitor = Client()
    pages["stopped"] = visitor.get("/me/stopped/")
    pages["link request"] = visitor.get("/me/link/")
    pages["link sent"] = visitor.post("/me/link/", {"email": "nobody@example.nl"})
    pages["link malformed"] = visitor.get("/me/link/" + "A" * 42 + "/")
    link = AccountLink.objects.create(
        participant_ref=str(jan.pk),
        token_hash=crypto.hash_token("B" * 43),
        expires_at=START + dt.timedelta(days=3650),
    )
    visitor.get("/me/link/" + "B" * 43 + "/")
    pages["link confirm"] = visitor.get("/me/link/open/")
    assert AccountLink.objects.get(pk=link.pk).used is False
    with time_machine.travel(dt.timedelta(minutes=20)):
        visitor.post("/me/link/open/")
        pages["link code"] = visitor.get("/me/link/code/")

    for name, response in pages.items():
        assert response.status_code in (200, 404), name
        assert "no-store" in response["Cache-Control"], name
        html = response.content.decode()
        page = parse(html)
        assert page.h1_count == 1, name
        assert page.inline_scripts == page.inline_styles == 0 and not page.event_handlers, name
        assert foreign_urls(page) == [], name
        for attributes in page.inputs:
            assert attributes.get("id") in page.label_targets or attributes.get("aria-label"), (
                name,
                attributes,
            )


# --- both factors: the e-mailed link and then the SMS code ---------------------------------------------

ACCOUNT_PAGES = [
    ("get", "/me/"),
    ("get", "/me/export.json"),
    ("get", "/me/help/"),
    ("post", "/me/pause/"),
    ("post", "/me/change/"),
    ("get", "/me/stop/"),
    ("post", "/me/stop/"),
]


@pytest.mark.parametrize(("method", "path"), ACCOUNT_PAGES)
def test_a_mailbox_reader_with_the_link_alone_gets_no_data_only_the_code_step(
    client: Client, jan: Participant, method: str, path: str
) -> None:
    # The employer reads the work mailbox: it opens the e-mailed link, but never sees the SMS.
    link_step(client, jan)

    response = getattr(client, method)(path, {"paused": "1", "name": "X"})

    assert response.status_code == 302 and response["Location"] == "/me/link/code/"
    assert "no-store" in response["Cache-Control"]
    assert b"jan@example.nl" not in response.content and b"Jan" not in response.content
    jan.refresh_from_db()
    assert not jan.messages_paused and jan.name == "Jan de Vries"
    assert not VerificationCode.objects.exclude(purpose=VerificationCode.Purpose.ACCOUNT).exists()


def test_the_sms_code_opens_the_account_and_a_wrong_one_says_how_many_tries_remain(
    client: Client, jan: Participant
) -> None:
    link_step(client, jan)
    code = delivered_sms_code()
    assert MemorySmsGateway.outbox[-1]["to"] == "+31612345678"

    response = client.post("/me/link/code/", {"sms_code": wrong(code)})

    assert response.status_code == 400
    assert "You can try 4 more times" in response.content.decode()
    assert client.get("/me/export.json")["Location"] == "/me/link/code/"
    response = client.post("/me/link/code/", {"sms_code": code})
    assert response.status_code == 302 and response["Location"] == "/me/"
    assert json.loads(client.get("/me/export.json").content)["participant"]["email"] == "jan@example.nl"
    # Used once: the same code does not open a second session.
    other = Client()
    with time_machine.travel(dt.timedelta(minutes=1)):
        link_step(other, jan)
        assert other.post("/me/link/code/", {"sms_code": code}).status_code == 400


def test_a_code_entered_in_another_browser_opens_nothing_there(client: Client, jan: Participant) -> None:
    # The second factor counts only in the session that used the link.
    link_step(client, jan)
    code = delivered_sms_code()

    stranger = Client()
    assert stranger.post("/me/link/code/", {"sms_code": code})["Location"] == "/me/link/"
    assert stranger.get("/me/")["Location"] == "/me/link/"


def _normalised(response: Any) -> tuple[int, str, str]:
    body = _CSRF.sub("", response.content.decode())
    return response.status_code, response.get("Location", ""), body


@pytest.mark.parametrize("status", ["invited", "active", "paused", "inactive", "without a mobile"])
def test_the_pages_after_the_link_read_the_same_whatever_the_person_did(
    organisation: Organisation, status: str
) -> None:
    """Every page between the link and the code, and a wrong code, read alike for every status."""

    def walk(participant: Participant) -> list[tuple[int, str, str]]:
        visitor = Client()
        token = crypto.new_token()
        AccountLink.objects.create(
            participant_ref=str(participant.pk),
            token_hash=crypto.hash_token(token),
            expires_at=dt.datetime.now(dt.UTC) + account.ACCOUNT_LINK_LIFETIME,
        )
        seen = [_normalised(visitor.get(f"/me/link/{token}/"))]
        seen.append(_normalised(visitor.get("/me/link/open/")))
        seen.append(_normalised(visitor.post("/me/link/open/")))
        seen.append(_normalised(visitor.get("/me/link/code/")))
        seen.append(_normalised(visitor.post("/me/link/code/", {"sms_code": "000000"})))
        seen.append(_normalised(visitor.get("/me/")))
        seen.append(_normalised(visitor.get("/me/export.json")))
        return seen

    reference = make_active(organisation, name="Ref", email="ref@example.nl", mobile="+31611111111")
    person = make_active(organisation, name="Other", email="other@example.nl", mobile="+31622222222")
    if status == "paused":
        person.messages_paused = True
    elif status == "without a mobile":
        person.mobile = None
        person.mobile_index = None
        person.status = Participant.Status.INVITED
    elif status != "active":
        person.status = status
    person.save()
    sent_before = len(MemorySmsGateway.outbox)

    assert walk(person) == walk(reference)
    messaging.send_due_messages()
    # Only the reference holds a number: nobody else's SMS went anywhere.
    expected_sms = 1 if status == "without a mobile" else 2
    assert len(MemorySmsGateway.outbox) - sent_before == expected_sms


def test_the_account_closes_after_fifteen_idle_minutes_and_activity_keeps_it_open(jan_client: Client) -> None:
    idle = settings.PARTICIPANT_SESSION_SECONDS
    with time_machine.travel(dt.timedelta(seconds=idle - 60)):
        assert jan_client.get("/me/").status_code == 200
    with time_machine.travel(dt.timedelta(seconds=2 * idle - 120)):
        assert jan_client.get("/me/").status_code == 200
    with time_machine.travel(dt.timedelta(seconds=3 * idle)):
        response = jan_client.get("/me/export.json")
    assert response.status_code == 302 and response["Location"] == "/me/link/"


def test_the_account_offers_contact_from_a_low_recent_answer_behind_both_factors(
    client: Client, piet: Participant
) -> None:
    # Piet's last two answers were 5 then 1: the signal reaches him on his account only, never on a link page.
    with time_machine.travel(dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        open_account(client, "piet@example.nl")
        page = client.get("/me/").content.decode()
        assert "Your recent answers suggest that things may be hard" in page
        assert 'href="/me/help/"' in page
        help_page = client.get("/me/help/")
        assert help_page.status_code == 200 and 'name="csrfmiddlewaretoken"' in help_page.content.decode()
        asked = client.post("/me/help/", {"consent": "yes", "channel": "email"})
    assert asked.status_code == 200 and 'id="help-requested"' in asked.content.decode()
    # Queued, not written beside anything: the consent comes with the next batch.
    assert not bool(ConsentRecord.objects.of(piet.pk).opened(ConsentRecord.Kind.CONTACT))
    wellbeing.take_up_help_requests()
    assert len(ConsentRecord.objects.of(piet.pk).opened(ConsentRecord.Kind.CONTACT)) == 1


def test_the_account_offers_nothing_without_a_signal(jan_client: Client) -> None:
    assert "Your recent answers suggest" not in jan_client.get("/me/").content.decode()


def test_a_code_held_back_by_the_persons_budget_answers_like_a_code_sent(
    client: Client, jan: Participant
) -> None:
    # The person's own backoff holds the second link's code back. Saying so (as a 429) would tell a real link
    # from a decoy, so the step reads as always; the code just does not come, and can be asked for again.
    link_step(client, jan)  # one SMS code just now: the next waits for the backoff
    token = crypto.new_token()
    AccountLink.objects.create(
        participant_ref=str(jan.pk),
        token_hash=crypto.hash_token(token),
        expires_at=dt.datetime.now(dt.UTC) + account.ACCOUNT_LINK_LIFETIME,
    )
    other = Client()
    other.get(f"/me/link/{token}/")
    messaging.send_due_messages()
    sms_before = len(MemorySmsGateway.outbox)

    held_back = other.post("/me/link/open/")

    assert held_back.status_code == 302 and held_back["Location"] == "/me/link/code/"
    messaging.send_due_messages()
    assert len(MemorySmsGateway.outbox) == sms_before
    with time_machine.travel(dt.timedelta(minutes=1)):
        assert other.post("/me/link/code/resend/")["Location"] == "/me/link/code/"
        code = delivered_sms_code()
        assert other.post("/me/link/code/", {"sms_code": code})["Location"] == "/me/"


def test_the_code_step_does_not_wait_forever(client: Client, jan: Participant) -> None:
    link_step(client, jan)

    with time_machine.travel(dt.timedelta(minutes=31)):
        response = client.post("/me/link/code/", {"sms_code": "123456"})
        assert response.status_code == 302 and response["Location"] == "/me/link/"
        assert client.get("/me/")["Location"] == "/me/link/"
