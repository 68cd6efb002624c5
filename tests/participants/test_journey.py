"""The whole participant journey through the pages, with real e-mail (SMTP) and real SMS (the twilio SDK).

The employer uploads the address list and sends invitations → the link → consent → both codes → active →
a correction verified again by both factors → the data export → stop. Codes and links are read from what
the local SMTP server and the fake Twilio endpoint received. Afterwards the three databases are dumped with
pg_dump, as a DBA would, and no participant's name, e-mail address or phone number (in any notation) may
appear in them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client

from casefiles.models import Dossier
from participants.models import Participant, index_salt
from preventicons import crypto
from preventicons.roles import Role
from preventicons.sessions import SessionStore
from scores import wellbeing
from scores.models import Score
from scores.submission import record_score
from tests.casefiles.world import close_stopped_dossiers
from tests.conftest import ALL_DATABASES, login_verified, make_organisation, make_staff
from tests.fakes.smtp import FakeSmtpServer
from tests.fakes.twilio import FakeTwilio

pytestmark = [
    pytest.mark.integration,
    # Committed for real, so that pg_dump (another connection) sees what a DBA would see.
    pytest.mark.django_db(transaction=True, databases=ALL_DATABASES),
    pytest.mark.usefixtures("english"),
]

# (name, e-mail address, mobile as the employer's list writes it, E.164, department)
PEOPLE = [
    ("Jan Oosterhuis", "jan.oosterhuis@example.nl", "06 12345678", "+31612345678", "Care"),
    ("Petra Zandvoort", "petra.zandvoort@example.nl", "+31 6 23456789", "+31623456789", "Finance"),
    ("Mohammed Achterberg", "m.achterberg@example.nl", "06-34567890", "+31634567890", "IT"),
]
JAN_NEW_EMAIL = "jan.nieuwadres@voorbeeld.nl"
CODE = re.compile(r"\b(\d{6})\b")


def mail_body(smtp: FakeSmtpServer, to: str) -> str:
    """The text of the last e-mail the SMTP server received for this address."""
    received = [mail for mail in smtp.wait_for(1, timeout=10) if to in mail.rcpt_tos]
    assert received, f"no e-mail reached {to}"
    message = received[-1].message
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def sms_body(twilio: FakeTwilio, to: str) -> str:
    received = [message for message in twilio.messages if message["To"] == to]
    assert received, f"no SMS reached {to}"
    return received[-1]["Body"]


def codes_for(smtp: FakeSmtpServer, twilio: FakeTwilio, *, email: str, mobile: str) -> dict[str, str]:
    email_code = CODE.search(mail_body(smtp, email))
    sms_code = CODE.search(sms_body(twilio, mobile))
    assert email_code and sms_code
    return {"email_code": email_code.group(1), "sms_code": sms_code.group(1)}


def enrol(client: Client, smtp: FakeSmtpServer, twilio: FakeTwilio, *, email: str, mobile: str) -> None:
    """From the invitation in the mailbox to an active participant, through the pages: the link, the SMS
    code to the number on file, consent, and the weekly messages by SMS (nothing new to prove)."""
    token = re.search(r"/i/([A-Za-z0-9_-]{43})/", mail_body(smtp, email))
    assert token, "the invitation carries its link"
    response = client.get(f"/i/{token.group(1)}/")
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200
    response = client.post("/enrol/")
    assert response.status_code == 302 and response["Location"] == "/enrol/open/"
    sms_code = CODE.search(sms_body(twilio, mobile))
    assert sms_code
    response = client.post("/enrol/open/", {"code": sms_code.group(1)})
    assert response.status_code == 302 and response["Location"] == "/enrol/next/"
    assert client.get("/enrol/next/")["Location"] == "/enrol/consent/"
    response = client.post("/enrol/consent/")
    assert response.status_code == 302 and response["Location"] == "/enrol/details/"
    response = client.post(
        "/enrol/details/", {"name": "", "email": "", "mobile": "", "weekly_channel": "sms"}
    )
    assert response.status_code == 302 and response["Location"] == "/enrol/welcome/"


def database_dump(alias: str) -> str:
    """pg_dump of a test database's data, as its DBA would take it."""
    config = connections[alias].settings_dict
    command = [
        "pg_dump",
        "-h",
        config["HOST"] or "127.0.0.1",
        "-p",
        str(config["PORT"] or 5432),
        "-U",
        config["USER"] or "postgres",
        "--data-only",
        "--no-owner",
        config["NAME"],
    ]
    environment = {**os.environ, "PGPASSWORD": config["PASSWORD"] or ""}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=environment, timeout=60)
    return done.stdout


def phone_pattern(e164: str) -> re.Pattern[str]:
    """The national number with any separators in between: finds +31 6…, 0031…, 06…, 6 12 34 56 78."""
    national = e164.removeprefix("+31")
    return re.compile(r"[\s\-.()/]*".join(national))


def test_the_whole_journey_leaves_no_contact_data_in_any_database(
    smtp_server: FakeSmtpServer, fake_twilio: FakeTwilio, settings: Any
) -> None:
    # An earlier transactional test may have flushed the groups the migration made.
    Group.objects.get_or_create(name=Role.EMPLOYER.value)
    organisation = make_organisation("Zorggroep Noord", "zorg")
    employer = make_staff("hr-noord", Role.EMPLOYER, organisation)
    address_list = "naam;e-mail;mobiel;afdeling\r\n" + "".join(
        f"{name};{email};{mobile};{department}\r\n" for name, email, mobile, _e164, department in PEOPLE
    )
    jan_name, jan_email, _written, jan_mobile, _department = PEOPLE[0]
    petra_email, petra_mobile = PEOPLE[1][1], PEOPLE[1][3]

    # A Monday morning in Amsterdam: invitations go out at once on a weekday within the sending hours.
    with time_machine.travel(dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC), tick=True) as clock:
        # The employer uploads the list and sends the invitations (by e-mail and by SMS).
        hr = login_verified(Client(), employer)
        upload = SimpleUploadedFile("medewerkers.csv", address_list.encode(), content_type="text/csv")
        previewed = hr.post("/staff/import/", {"address_list": upload, "full_list": "on"})
        assert "3 new rows" in previewed.content.decode() or "3 nieuwe rijen" in previewed.content.decode()
        payload = re.search(r'name="payload" value="([^"]*)"', previewed.content.decode())
        assert payload is not None
        response = hr.post("/staff/import/", {"step": "confirm", "payload": payload[1]})
        assert response.status_code == 302 and response["Location"] == "/staff/import/"
        assert Participant.objects.filter(organisation=organisation).count() == 3
        assert hr.post("/staff/invitations/send/").status_code == 302
        assert len(smtp_server.wait_for(3, timeout=10)) == 3
        assert sorted(message["To"] for message in fake_twilio.messages) == sorted(p[3] for p in PEOPLE)

        # Jan and Petra join: consent, then both codes.
        jan = Client()
        enrol(jan, smtp_server, fake_twilio, email=jan_email, mobile=jan_mobile)
        enrol(Client(), smtp_server, fake_twilio, email=petra_email, mobile=petra_mobile)
        # The request batch makes them participants (participants.requestqueue.confirm_enrolment).
        assert wellbeing.take_up_help_requests().enrolments == 2
        page = jan.get("/me/")
        assert page.status_code == 200 and jan_email in page.content.decode()

        # Jan answers a week and asks for help (written directly: those pages belong to other apps).
        salt = index_salt(organisation.pk)  # renewed by the batch (participants.rewrite)
        participant = Participant.objects.get(email_index=crypto.blind_index_email(jan_email, salt))
        pseudonym = participant.pseudonym
        assert pseudonym and participant.status == Participant.Status.ACTIVE
        record_score(
            pseudonym=pseudonym,
            week=dt.date(2026, 11, 16),
            value=2,
            organisation_id=organisation.pk,
            department_id=participant.department_id,
        )
        Dossier(
            number="D-7001",
            pseudonym=pseudonym,
            pseudonym_index=crypto.casefiles_index(pseudonym),
            opened_on=dt.date(2026, 11, 17),
        ).save()

        # A new e-mail address: its code goes there, the SMS to the number on file; both are needed.
        clock.shift(dt.timedelta(minutes=2))
        response = jan.post("/me/change/", {"name": jan_name, "email": JAN_NEW_EMAIL, "mobile": jan_mobile})
        assert response.status_code == 302 and response["Location"] == "/me/change/confirm/"
        codes = codes_for(smtp_server, fake_twilio, email=JAN_NEW_EMAIL, mobile=jan_mobile)
        wrong = {**codes, "email_code": f"{(int(codes['email_code']) + 1) % 10**6:06d}"}
        assert jan.post("/me/change/confirm/", wrong).status_code == 400
        participant.refresh_from_db()
        assert participant.email == jan_email
        response = jan.post("/me/change/confirm/", codes)
        assert response.status_code == 302 and response["Location"] == "/me/"
        wellbeing.take_up_help_requests()
        participant.refresh_from_db()
        assert participant.email == JAN_NEW_EMAIL
        # Jan chose SMS for the weekly messages: the notice goes there, never to the work address the
        # employer reads (issue #14).
        assert "changed" in sms_body(fake_twilio, jan_mobile)
        assert "changed" not in mail_body(smtp_server, jan_email)

        # The export holds Jan's data and Jan's score, nobody else's.
        response = jan.get("/me/export.json")
        assert response.status_code == 200 and "no-store" in response["Cache-Control"]
        assert response["Content-Disposition"].startswith("attachment;")
        exported = json.loads(response.content)
        assert exported["participant"]["email"] == JAN_NEW_EMAIL
        assert exported["participant"]["name"] == jan_name
        assert exported["weekly_scores"] == [{"week": "2026-11-16", "value": 2}]
        for other in PEOPLE[1:]:
            assert other[0] not in response.content.decode() and other[1] not in response.content.decode()

        # Jan stops, verified by both factors (to the new address and the number on file).
        clock.shift(dt.timedelta(minutes=3))
        response = jan.post("/me/stop/")
        assert response.status_code == 302 and response["Location"] == "/me/stop/confirm/"
        response = jan.post(
            "/me/stop/confirm/", codes_for(smtp_server, fake_twilio, email=JAN_NEW_EMAIL, mobile=jan_mobile)
        )
        assert response.status_code == 302 and response["Location"] == "/me/stopped/"
        wellbeing.take_up_help_requests()
    # The stop queued its dossier's close; the first request batch of the next day carries it out.
    close_stopped_dossiers()

    # The account is closed, the scores stay untouched but nobody can derive their per-week pseudonyms any
    # more (the department goes when the week closes), the dossier is closed and leads to nobody (random
    # look-alikes over its link, as a casemanager's close would leave it until retention unlinks it).
    assert jan.get("/me/").status_code == 302
    participant.refresh_from_db()
    assert participant.status == Participant.Status.STOPPED
    assert (participant.name, participant.email, participant.mobile, participant.pseudonym) == (None,) * 4
    score = Score.objects.get(week=dt.date(2026, 11, 16))
    assert score.value == 2 and score.pseudonym not in (pseudonym, None)
    dossier = Dossier.objects.get(number="D-7001")
    assert not dossier.is_open and dossier.pseudonym not in (None, pseudonym)
    assert dossier.pseudonym_index not in (None, crypto.casefiles_index(pseudonym))

    # Nothing in any database names anyone: not the stopped, not the active, not the still-invited.
    dumps = {alias: database_dump(alias) for alias in ALL_DATABASES}
    # Sessions are sealed in the dump; opened with the key (as the application does) they name nobody either.
    dumps["sessions, opened"] = "\n".join(
        json.dumps(SessionStore(s.session_key).load()) for s in Session.objects.all()
    )
    assert "participants_participant" in dumps["default"] and "casefiles_dossier" in dumps["casefiles"]
    assert pseudonym not in dumps["default"] + dumps["casefiles"] + dumps["notes"]
    found = []
    for name, email, _written, e164, _department in [*PEOPLE, (jan_name, JAN_NEW_EMAIL, "", jan_mobile, "")]:
        # Whole names and the longer name parts (short ones would match base64 by chance), case as written;
        # addresses and their local parts in any case; numbers in any notation.
        words = [name, *(part for part in name.split() if len(part) >= 5)]
        addresses = [email.lower(), email.split("@")[0].lower()]
        for where, text in dumps.items():
            found += [f"{word!r} in {where}" for word in words if word in text]
            found += [f"{address!r} in {where}" for address in addresses if address in text.lower()]
            if phone_pattern(e164).search(text):
                found.append(f"{e164!r} in {where}")
    assert not found, "contact data in a database dump: " + ", ".join(found)
