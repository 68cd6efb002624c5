"""The session table, read as an operator with database dumps but no key file reads it (issue 14, attacker 2).

Django's database engine only signs session_data: base64 (perhaps zlib) JSON that names every open
participant account and staff login, with when each was last seen. Ours seals it (preventicons/sessions.py).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import zlib
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as SignedSessionStore
from django.db import connections
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from participants.models import Organisation, Participant, StaffUser
from participants.session import bind_participant_session
from preventicons.sessions import EXPIRY_GRAIN, SessionStore
from tests.conftest import ALL_DATABASES, run_on_embedded_default
from tests.participants.test_stop import make_active, open_account
from tests.test_staff_login import current_code, submit_code, submit_password

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]

ACCOUNT = "/me/"


def session_rows() -> list[tuple[str, str, dt.datetime]]:
    """The session table as a dump shows it."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT session_key, session_data, expire_date FROM django_session")
        return list(cursor.fetchall())


def write_session_data(session_key: str, session_data: str) -> None:
    """What an operator with write access does to a row: raw SQL, past the application."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "UPDATE django_session SET session_data = %s WHERE session_key = %s", [session_data, session_key]
        )


def read_without_key(session_data: str) -> str | None:
    """What Django's signed format gives up in one line: the JSON before the signature, or None."""
    payload = session_data.split(":")[0]
    body = payload.lstrip(".")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        text = (zlib.decompress(raw) if payload.startswith(".") else raw).decode()
        json.loads(text)
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError):
        return None
    return text


@pytest.fixture
def jan(organisation: Organisation) -> Participant:
    return make_active(organisation, email="jan@werk.example")


@pytest.fixture
def jan_client(jan: Participant) -> Client:
    """Jan's browser with the account open, through the e-mailed link and the SMS code."""
    client = Client()
    open_account(client, "jan@werk.example")
    assert client.get(ACCOUNT).status_code == 200
    return client


def test_a_dump_of_the_session_table_names_no_participant_and_no_staff_user(
    jan: Participant, jan_client: Client, employer: StaffUser
) -> None:
    staff_client = Client()
    assert submit_password(staff_client, employer.username).status_code == 200  # wizard state in the session
    assert submit_code(staff_client, current_code(TOTPDevice.objects.get(user=employer))).status_code == 302
    assert staff_client.get(reverse("staff-home")).status_code == 200

    rows = session_rows()
    # With the key the application still finds both: the protection is not an empty table.
    opened = [SessionStore(key).load() for key, _data, _expires in rows]
    assert str(jan.pk) in {data.get("participant_id") for data in opened}
    assert str(employer.pk) in {data.get("_auth_user_id") for data in opened}
    dump = "\n".join(f"{key} {data} {expires.isoformat()}" for key, data, expires in rows)
    assert str(jan.pk) not in dump and jan.pk.hex not in dump
    assert "participant" not in dump.lower() and "_auth_user" not in dump
    readable = [text for _key, data, _expires in rows if (text := read_without_key(data)) is not None]
    assert readable == []
    assert all(data.startswith("v1.") for _key, data, _expires in rows)


def test_the_expiry_column_dates_no_save_finer_than_the_grain_and_sessions_still_end_on_time() -> None:
    grain = int(EXPIRY_GRAIN.total_seconds())
    with time_machine.travel(dt.datetime(2026, 11, 17, 12, 0, 10, tzinfo=dt.UTC), tick=False) as clock:
        store = SessionStore()
        store["participant_id"] = "someone"
        store.set_expiry(60)
        store.save()
        ((_key, _data, expires),) = session_rows()
        # The exact expiry (12:01:10) would date the save to the second; the column shows only the grain.
        assert int(expires.timestamp()) % grain == 0
        assert expires >= dt.datetime(2026, 11, 17, 12, 1, 10, tzinfo=dt.UTC)

        clock.move_to(dt.datetime(2026, 11, 17, 12, 1, 9, tzinfo=dt.UTC))
        assert SessionStore(store.session_key).load() == {"participant_id": "someone", "_session_expiry": 60}
        # Past the exact expiry the row is still in the table (the coarse column), but the session is over.
        clock.move_to(dt.datetime(2026, 11, 17, 12, 1, 11, tzinfo=dt.UTC))
        assert len(session_rows()) == 1
        late = SessionStore(store.session_key)
        assert late.load() == {} and late.session_key is None


def test_a_session_row_copied_to_another_key_does_not_open(jan_client: Client) -> None:
    jans_key = jan_client.cookies[settings.SESSION_COOKIE_NAME].value
    (jans_data,) = [data for key, data, _expires in session_rows() if key == jans_key]
    intruder = Client()
    planted = SessionStore()
    planted["anything"] = 1
    planted.create()
    assert planted.session_key is not None
    intruder.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key

    write_session_data(planted.session_key, jans_data)

    assert intruder.get(ACCOUNT).status_code == 302
    assert SessionStore(planted.session_key).load() == {}
    assert jan_client.get(ACCOUNT).status_code == 200  # the original still opens where it is


def test_a_tampered_row_is_an_empty_session_logged_without_data(
    jan: Participant, jan_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    jans_key = jan_client.cookies[settings.SESSION_COOKIE_NAME].value
    (jans_data,) = [data for key, data, _expires in session_rows() if key == jans_key]
    flipped = jans_data[:-5] + ("A" if jans_data[-5] != "A" else "B") + jans_data[-4:]
    write_session_data(jans_key, flipped)

    with caplog.at_level(logging.WARNING, logger="preventicons.sessions"):
        response = jan_client.get(ACCOUNT)

    assert response.status_code == 302  # not the account, and not an error page
    assert jan_client.session.session_key != jans_key
    assert [record.name for record in caplog.records] == ["preventicons.sessions"]
    logged = caplog.text
    assert jans_key not in logged and str(jan.pk) not in logged and jans_data[5:20] not in logged


@pytest.mark.parametrize("kind", ["retired key", "signed before sealing", "not base64"])
def test_rows_that_cannot_open_start_an_empty_session(kind: str) -> None:
    store = SessionStore()
    store["participant_id"] = "someone"
    store.create()
    assert store.session_key is not None
    (data,) = [data for key, data, _expires in session_rows() if key == store.session_key]
    if kind == "retired key":
        # A key that has left the keyring: the session simply ends, as a short-lived session may.
        data = "v1.fld-retired." + data.split(".", 2)[2]
    elif kind == "signed before sealing":
        old = SignedSessionStore()
        data = old.encode({"participant_id": "someone"})
    else:
        data = "v1." + data.split(".", 2)[1] + ".!!!"
    write_session_data(store.session_key, data)

    reopened = SessionStore(store.session_key)
    assert reopened.load() == {} and reopened.session_key is None


def test_on_the_embedded_sqlite_default_the_session_file_holds_ciphertext(tmp_path: Path) -> None:
    printed = run_on_embedded_default(str(Path(__file__).with_name("sqlite_sessions.py")), var_dir=tmp_path)
    seen: dict[str, Any] = json.loads(printed.strip().splitlines()[-1])

    assert seen["vendor"] == "sqlite"
    assert seen["opened"]["participant_id"] == seen["participant_id"]
    assert seen["stored"].startswith("v1.") and seen["participant_id"] not in seen["stored"]
    assert "participant" not in seen["stored"] and read_without_key(seen["stored"]) is None
    assert seen["copied"] == {}


def test_a_participant_session_bound_directly_opens_through_the_engine(jan: Participant) -> None:
    store = SessionStore()
    bind_participant_session(store, jan)
    store.save()
    assert SessionStore(store.session_key).load()["participant_id"] == str(jan.pk)
