"""Stopping: contact data, blind indexes and the pseudonym link destroyed; scores kept and untouched."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core import mail
from django.db import connections
from django.test import Client
from django.utils import timezone

from casefiles import receivers as casefiles_receivers
from casefiles.models import AccessLogEntry, Dossier
from participants import account, enrolment, verification
from participants.importing import import_address_list
from participants.models import (
    AccountLink,
    ConsentRecord,
    Invitation,
    Organisation,
    Participant,
    QueuedRequest,
    StaffUser,
    VerificationCode,
)
from participants.signals import participant_stopped
from preventicons import crypto, messaging
from preventicons.crypto import blind_index_email, blind_index_phone
from preventicons.fields import EncryptedTextField
from preventicons.gateways import MemorySmsGateway
from preventicons.models import OutboundMessage
from scores import wellbeing
from scores.queries import weekly_values_for
from scores.submission import record_score
from tests.casefiles.world import close_stopped_dossiers
from tests.conftest import ALL_DATABASES, make_organisation
from tests.factories import ParticipantFactory

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]

WEEKS = [dt.date(2026, 10, 26), dt.date(2026, 11, 2), dt.date(2026, 11, 9)]


def make_active(
    organisation: Organisation,
    *,
    name: str = "Jan de Vries",
    email: str = "jan@example.nl",
    mobile: str = "+31612345678",
    weekly_channel: str | None = Participant.WeeklyChannel.WORK_EMAIL,
    private_email: str | None = None,
) -> Participant:
    """An active participant; by default one who chose the work address for the weekly messages, so both
    codes of a correction or a stop go to the address and number on file (see test_code_destinations.py
    for the other choices)."""
    participant: Participant = ParticipantFactory.create(
        organisation=organisation,
        department=organisation.departments.get(name="Care"),
        status=Participant.Status.ACTIVE,
        weekly_channel=weekly_channel,
        private_email=private_email,
        name=name,
        email_address=email,
        mobile_number=mobile,
    )
    ConsentRecord.objects.add(
        participant.pk,
        kind=ConsentRecord.Kind.GIVEN,
        text_version="2026-11",
        recorded_at=timezone.now(),
    )
    return participant


def add_scores(participant: Participant, values: list[int]) -> None:
    assert participant.pseudonym
    for week, value in zip(WEEKS, values, strict=False):
        record_score(
            pseudonym=participant.pseudonym,
            week=week,
            value=value,
            organisation_id=participant.organisation_id,
            department_id=participant.department_id,
        )


def open_dossier(participant: Participant, number: str) -> Dossier:
    assert participant.pseudonym
    dossier = Dossier(
        number=number,
        pseudonym=participant.pseudonym,
        pseudonym_index=crypto.casefiles_index(participant.pseudonym),
        opened_on=dt.date(2026, 11, 10),
    )
    dossier.participant_ref = str(participant.pk)
    dossier.save()
    return dossier


def delivered_codes() -> tuple[str, str]:
    """Send what is due; the last code from the last e-mail and from the last SMS."""
    messaging.send_due_messages()
    email_code = re.search(r"\b(\d{6})\b", str(mail.outbox[-1].body))
    sms_code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"])
    assert email_code and sms_code
    return email_code.group(1), sms_code.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def raw_participant_row(participant: Participant) -> tuple[Any, ...]:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT name, email, mobile, email_index, mobile_index, pseudonym, department_id, status "
            "FROM participants_participant WHERE id = %s",
            [participant.pk],
        )
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def erased(participant: Participant) -> bool:
    """Their name, contact data, indexes and P are gone: look-alikes in every column (none NULL, so a dump
    reads the row as before), which open to nothing and which no lookup by a blind index finds."""
    fresh = Participant.objects.get(pk=participant.pk)
    found = {blind_index_email(email) for email in ("jan@example.nl", "piet@example.nl", "kees@example.nl")}
    return (
        all(value is not None for value in raw_participant_row(participant)[:6])
        and (fresh.name, fresh.email, fresh.mobile, fresh.pseudonym) == (None,) * 4
        and fresh.email_index not in found
    )


def forgotten(number: str, pseudonym: str) -> bool:
    """The dossier is closed and leads to nobody: its sealed P is not theirs and their P finds it no more.
    A stop writes random look-alikes over its link (retention destroys them at the term), so the row reads
    as a casemanager's close would leave it."""
    dossier = Dossier.objects.get(number=number)
    return (
        not dossier.is_open
        and dossier.pseudonym not in (None, pseudonym)
        and dossier.participant_ref is not None
        and dossier.pseudonym_index not in (None, crypto.casefiles_index(pseudonym))
    )


def raw_dossier(number: str) -> tuple[Any, ...]:
    """P and the index as the casefiles store holds them, and whether the dossier is open (sealed: opened)."""
    with connections["casefiles"].cursor() as cursor:
        cursor.execute("SELECT pseudonym, pseudonym_index FROM casefiles_dossier WHERE number = %s", [number])
        row = cursor.fetchone()
    assert row is not None
    return (*row, Dossier.objects.get(number=number).is_open)


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
    add_scores(participant, [5, 5])
    return participant


def _shape(value: object) -> object:
    """What a dump tells of a value without the key: a ciphertext its length, a hash that it is one."""
    if isinstance(value, str) and value.startswith("v1."):
        return ("sealed", len(value))
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
        return "keyed hash"
    return value


def test_stop_destroys_contact_data_blind_indexes_and_sealed_pseudonym(jan: Participant) -> None:
    before = raw_participant_row(jan)
    assert all(value is not None for value in before)
    indexes = {blind_index_email("jan@example.nl"), blind_index_phone("+31612345678")}
    assert set(before[3:5]) == indexes

    account.stop_participation(participant=jan)

    row = raw_participant_row(jan)
    # Look-alikes of the same length in place of each value, never NULL: a dump reads the row as before.
    assert [_shape(value) for value in row] == [_shape(value) for value in before]
    assert all(new != old for new, old in zip(row[:6], before[:6], strict=True))
    assert not set(row[3:5]) & indexes
    # The department is the employer's own: a stop leaves it, so the row does not date the stop.
    assert row[6] == before[6] is not None
    # The status is sealed: the dump shows a ciphertext like anyone's, never "stopped".
    assert str(row[7]).startswith("v1.") and "stopped" not in str(row[7])
    jan.refresh_from_db()
    assert jan.status == Participant.Status.STOPPED
    assert jan.name is None and jan.email is None and jan.mobile is None and jan.pseudonym is None
    assert not Participant.objects.filter(email_index__in=indexes).exists()
    assert not Participant.objects.filter(mobile_index__in=indexes).exists()


def test_a_stop_leaves_a_look_alike_of_the_same_length_in_every_sealed_column(jan: Participant) -> None:
    # What a dump shows of someone who stopped: a ciphertext of the same length in every column, opening to
    # nothing, not even to the private address they chose for the weekly messages, nor to where those went.
    jan.private_email = "jan.prive@example.org"
    jan.weekly_channel = Participant.WeeklyChannel.PRIVATE_EMAIL
    jan.participation = '{"last": null}'
    jan.save()
    sealed = [
        str(field.column)
        for field in Participant._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
    assert {
        "name",
        "email",
        "mobile",
        "pseudonym",
        "private_email",
        "participation",
        "weekly_channel",
    } <= set(sealed)
    # Status and pause are written anew, sealed: a stopped row's state reads like anyone's.
    state = {"status", "messages_paused"}
    columns = [*(c for c in sealed if c not in state), "email_index", "mobile_index"]
    columns += ["listed_email_hash", "listed_mobile_hash", "department_id"]
    select = "SELECT " + ", ".join(f'"{column}"' for column in columns)
    # Column names from the model's own metadata, never from input.
    query = select + " FROM participants_participant WHERE id = %s"  # noqa: S608
    with connections["default"].cursor() as cursor:
        cursor.execute(query, [jan.pk])
        before = cursor.fetchone()
    assert before is not None and all(value is not None for value in before)

    account.stop_participation(participant=jan)

    with connections["default"].cursor() as cursor:
        cursor.execute(query, [jan.pk])
        after = cursor.fetchone()
    assert after is not None
    assert {c: _shape(v) for c, v in zip(columns, after, strict=True)} == {
        c: _shape(v) for c, v in zip(columns, before, strict=True)
    }
    changed = {c for c, old, new in zip(columns, before, after, strict=True) if old != new}
    # The department and the hashes the employer's list names them by stay (Participant.shredded).
    assert changed == set(columns) - {"department_id", "listed_email_hash", "listed_mobile_hash"}
    jan.refresh_from_db()
    assert all(getattr(jan, name) is None for name in sealed if name not in state)


def _raw_dossier_row(number: str) -> tuple[Any, ...]:
    with connections["casefiles"].cursor() as cursor:
        cursor.execute("SELECT xmin::text, * FROM casefiles_dossier WHERE number = %s", [number])
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def raw_scores() -> list[tuple[Any, ...]]:
    """The score table as a dump shows it: each row's place, writing transaction and every column."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT ctid::text, xmin::text, * FROM scores_score ORDER BY ctid")
        return cursor.fetchall()


def test_a_stop_touches_no_score_row(jan: Participant, piet: Participant) -> None:
    pseudonym = jan.pseudonym or ""
    before = raw_scores()
    assert len(weekly_values_for(pseudonym)) == 3

    account.stop_participation(participant=jan)

    # Not one tuple rewritten (same ctid, same xmin, same content): a dump cannot date the stop by its scores,
    # nor pick out the stopped person's rows. Their scores stay counted; their per-week pseudonyms could only
    # be derived from P, which no store holds any more.
    assert raw_scores() == before
    assert pseudonym not in str(raw_participant_row(jan)) and raw_dossier_holding(pseudonym) == 0
    assert len(weekly_values_for(piet.pseudonym or "")) == 2


def raw_dossier_holding(pseudonym: str) -> int:
    return Dossier.objects.filter(pseudonym_index=crypto.casefiles_index(pseudonym)).count()


def test_stop_closes_the_dossier_in_the_casefiles_store_and_it_leads_to_nobody(
    jan: Participant, piet: Participant
) -> None:
    open_dossier(jan, "D-1001")
    open_dossier(piet, "D-1002")
    pseudonym = jan.pseudonym or ""

    account.stop_participation(participant=jan)
    # The stop only queued the close: the first batch of a later day carries it out.
    assert raw_dossier("D-1001")[1:] == (crypto.casefiles_index(pseudonym), True)
    assert close_stopped_dossiers().stop_closes == 1

    assert forgotten("D-1001", pseudonym)
    kept = raw_dossier("D-1002")
    assert kept[0] is not None and kept[1] == crypto.casefiles_index(piet.pseudonym or "") and kept[2] is True


def test_stop_records_the_withdrawal_and_deletes_codes_links_and_invitations(jan: Participant) -> None:
    Invitation.objects.create(
        participant=jan,
        token_hash=crypto.hash_token("x" * 43),
        expires_at=timezone.now() + dt.timedelta(days=3),
    )
    AccountLink.objects.create(
        participant_ref=str(jan.pk),
        token_hash=crypto.hash_token("y" * 43),
        expires_at=timezone.now() + dt.timedelta(minutes=9),
    )
    verification.issue_codes(
        participant=jan, purpose=VerificationCode.Purpose.CHANGE, email_to="new@example.nl"
    )

    account.stop_participation(participant=jan)

    # The invitation keeps naming the (stopped) row, as everyone's does (tests/test_attacks_review5.py), and
    # opens nothing.
    assert enrolment.link_state(Invitation.objects.get(participant=jan)) is enrolment.LinkState.STOPPED
    assert not AccountLink.objects.naming([jan.pk]).exists()
    assert not VerificationCode.objects.naming([jan.pk]).all().exists()
    kinds = [(r.kind, r.text_version) for r in ConsentRecord.objects.of(jan.pk).opened()]
    assert kinds == [("given", "2026-11"), ("withdrawn", "2026-11")]


def test_pending_messages_to_them_are_cancelled_and_others_are_not(
    jan: Participant, piet: Participant
) -> None:
    messaging.queue_email(key=f"invite:{jan.pk}:weekly:email", to="jan@example.nl", subject="s", body="b")
    messaging.queue_sms(key=f"invite:{jan.pk}:weekly:sms", to="+31612345678", body="b")
    messaging.queue_email(key=f"invite:{piet.pk}:weekly:email", to="piet@example.nl", subject="s", body="b")
    # Code messages are keyed by the code, not the participant: they go too.
    verification.issue_codes(
        participant=jan, purpose=VerificationCode.Purpose.CHANGE, email_to="new@example.nl"
    )

    account.stop_participation(participant=jan)

    pending = list(OutboundMessage.objects.filter(status="pending").values_list("key_hash", flat=True))
    assert pending == [messaging.outbox_key_hash(f"invite:{piet.pk}:weekly:email")]
    messaging.send_due_messages()
    assert [message.to for message in mail.outbox] == [["piet@example.nl"]]
    assert MemorySmsGateway.outbox == []


def test_the_signal_carries_the_pseudonym_from_the_next_days_batch_not_from_the_stop(
    jan: Participant,
) -> None:
    heard: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs)

    participant_stopped.connect(listen, weak=False)
    try:
        pseudonym = jan.pseudonym
        account.stop_participation(participant=jan)
        assert heard == []
        assert (
            wellbeing.take_up_help_requests().stop_closes == 0
        )  # the same day: held with the day's other stops
        assert heard == []
        close_stopped_dossiers()
    finally:
        participant_stopped.disconnect(listen)

    assert heard == [{"signal": participant_stopped, "pseudonym": pseudonym}]
    assert not QueuedRequest.objects.exists()


def test_a_failing_receiver_rolls_back_the_batch_and_the_close_stays_queued(jan: Participant) -> None:
    open_dossier(jan, "D-2001")
    pseudonym = jan.pseudonym or ""
    account.stop_participation(participant=jan)

    def explode(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver down")

    participant_stopped.connect(explode, weak=False)
    try:
        with pytest.raises(RuntimeError):
            close_stopped_dossiers()
    finally:
        participant_stopped.disconnect(explode)

    assert raw_dossier("D-2001")[1:] == (crypto.casefiles_index(pseudonym), True)
    assert QueuedRequest.objects.count() == 1
    assert not AccessLogEntry.objects.exists()
    # Nothing is lost: the next batch, with the receivers well, completes.
    close_stopped_dossiers()
    assert forgotten("D-2001", pseudonym)
    assert not QueuedRequest.objects.exists()


def test_receivers_are_idempotent(jan: Participant) -> None:
    open_dossier(jan, "D-3001")
    pseudonym = jan.pseudonym or ""
    organisation_id = jan.organisation_id

    scores = raw_scores()
    rows = []
    for _ in range(2):
        casefiles_receivers.close_stopped_participants_dossier(
            None, pseudonym=pseudonym, organisation_id=organisation_id
        )
        rows.append(_raw_dossier_row("D-3001"))
    # One entry for the close, the participant's: a second run logs nothing.
    assert list(AccessLogEntry.objects.values_list("dossier_number", "action", "staff_user_id")) == [
        ("D-3001", "close", 0)
    ]

    assert raw_scores() == scores  # the scores app receives nothing: a stop touches no score
    assert forgotten("D-3001", pseudonym)
    assert rows[1] == rows[0]  # the second time wrote nothing: its index no longer answers to P
    # An empty pseudonym must never match the rows already stripped.
    casefiles_receivers.close_stopped_participants_dossier(
        None, pseudonym="", organisation_id=organisation_id
    )


def test_stopping_twice_changes_nothing_the_second_time(jan: Participant) -> None:
    account.stop_participation(participant=jan)
    withdrawn = len(ConsentRecord.objects.of(jan.pk).opened(ConsentRecord.Kind.WITHDRAWN))

    account.stop_participation(participant=jan)

    assert len(ConsentRecord.objects.of(jan.pk).opened(ConsentRecord.Kind.WITHDRAWN)) == withdrawn == 1
    assert str(raw_participant_row(jan)[-1]).startswith("v1.")
    assert Participant.objects.get(pk=jan.pk).status == Participant.Status.STOPPED


def test_an_invited_participant_without_a_pseudonym_can_stop(organisation: Organisation) -> None:
    invited = make_active(organisation, email="kees@example.nl", mobile="+31611112222")
    invited.status = Participant.Status.INVITED
    invited.pseudonym = None
    invited.save()
    heard: list[Any] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs)

    participant_stopped.connect(listen, weak=False)
    try:
        account.stop_participation(participant=invited)
    finally:
        participant_stopped.disconnect(listen)

    assert erased(invited)
    assert not QueuedRequest.objects.exists()  # no P, nothing to unlink
    close_stopped_dossiers()
    assert heard == []


# --- through the pages --------------------------------------------------------------------------


def open_account(client: Client, email: str) -> None:
    """The e-mailed account link and then the SMS code (both factors), as a participant uses them."""
    response = client.post("/me/link/", {"email": email})
    assert response.status_code == 200
    messaging.send_due_messages()
    link = re.search(r"https?://\S+/me/link/(\S+)/", str(mail.outbox[-1].body))
    assert link
    assert client.get(f"/me/link/{link.group(1)}/").status_code == 302
    assert client.post("/me/link/open/").status_code == 302
    messaging.send_due_messages()
    code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"])
    assert code
    assert client.post("/me/link/code/", {"sms_code": code.group(1)}).status_code == 302


def test_stop_through_the_pages_needs_both_codes(client: Client, jan: Participant) -> None:
    open_dossier(jan, "D-4001")
    open_account(client, "jan@example.nl")

    response = client.post("/me/stop/")
    assert response.status_code == 302 and response["Location"] == "/me/stop/confirm/"
    email_code, sms_code = delivered_codes()
    assert mail.outbox[-1].to == ["jan@example.nl"]
    assert MemorySmsGateway.outbox[-1]["to"] == "+31612345678"

    response = client.post("/me/stop/confirm/", {"email_code": email_code, "sms_code": wrong(sms_code)})
    assert response.status_code == 400
    assert "not right" in response.content.decode()
    jan.refresh_from_db()
    assert jan.status == Participant.Status.ACTIVE and jan.email == "jan@example.nl"

    pseudonym = jan.pseudonym or ""
    response = client.post("/me/stop/confirm/", {"email_code": "", "sms_code": sms_code})
    assert response.status_code == 302 and response["Location"] == "/me/stopped/"
    assert "Within 15 minutes we delete" in client.get("/me/stopped/").content.decode()
    # Queued, not written in the minute of the confirmation: the next batch stops them.
    jan.refresh_from_db()
    assert jan.status == Participant.Status.ACTIVE
    assert wellbeing.take_up_help_requests().stops == 1
    assert erased(jan)
    close_stopped_dossiers()
    assert forgotten("D-4001", pseudonym)
    assert "no-store" in client.get("/me/stopped/")["Cache-Control"]


def test_after_stopping_the_old_session_and_links_no_longer_work(client: Client, jan: Participant) -> None:
    open_account(client, "jan@example.nl")
    assert client.get("/me/").status_code == 200
    # A second link, asked for earlier and not used yet.
    other = Client()
    other.post("/me/link/", {"email": "jan@example.nl"})
    messaging.send_due_messages()
    link = re.search(r"/me/link/(\S+)/", str(mail.outbox[-1].body))
    assert link

    account.stop_participation(participant=jan)

    response = client.get("/me/")
    assert response.status_code == 302 and response["Location"] == "/me/link/"
    assert client.get("/me/export.json").status_code == 302
    # The earlier link leads to the code step like any link, but no code comes and none opens anything.
    sms_before = len(MemorySmsGateway.outbox)
    assert other.get(f"/me/link/{link.group(1)}/")["Location"] == "/me/link/open/"
    assert other.post("/me/link/open/")["Location"] == "/me/link/code/"
    messaging.send_due_messages()
    assert len(MemorySmsGateway.outbox) == sms_before
    assert other.post("/me/link/code/", {"sms_code": "123456"}).status_code == 400
    assert other.get("/me/")["Location"] == "/me/link/code/"
    # A new link for the old address: one e-mail as before (the employer must not see a difference), but
    # its link is a decoy stored nowhere.
    sent = len(mail.outbox)
    assert other.post("/me/link/", {"email": "jan@example.nl"}).status_code == 200
    messaging.send_due_messages()
    assert len(mail.outbox) == sent + 1
    assert not AccountLink.objects.exists()


def test_a_later_import_of_the_same_address_adds_nobody_and_links_nothing(
    jan: Participant, employer: StaffUser
) -> None:
    account.stop_participation(participant=jan)
    data = b"naam;e-mail;mobiel;afdeling\r\nJan de Vries;jan@example.nl;06 12345678;Care\r\n"

    result = import_address_list(organisation=jan.organisation, data=data, full_list=False, by=employer)

    # Recognised by the keyed hash the stop left: already on the list, so never invited again.
    assert (result.created, result.unchanged) == (0, 1)
    assert not Participant.objects.exclude(pk=jan.pk).exists()
    assert erased(jan)


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_with_real_commits_a_failing_receiver_leaves_both_stores_as_they_were() -> None:
    # Outside a test transaction: the batch's atomic blocks are real transactions, not savepoints.
    jan = make_active(make_organisation("Zorggroep Oost", "zorg"))
    open_dossier(jan, "D-5001")
    pseudonym = jan.pseudonym or ""
    account.stop_participation(participant=jan)
    assert erased(jan)

    def explode(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver down")

    participant_stopped.connect(explode, weak=False)
    try:
        with pytest.raises(RuntimeError):
            close_stopped_dossiers()
    finally:
        participant_stopped.disconnect(explode)

    assert raw_dossier("D-5001")[1:] == (crypto.casefiles_index(pseudonym), True)
    assert QueuedRequest.objects.count() == 1

    close_stopped_dossiers()

    assert erased(jan)
    assert forgotten("D-5001", pseudonym)
    assert not QueuedRequest.objects.exists()
