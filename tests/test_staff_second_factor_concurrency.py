"""One staff code, one login: parallel requests from threads against a live server on PostgreSQL.

The attack from the issue: someone who has the password and one valid code (read over a shoulder, a text
message on a shared phone, a backup code on paper) opens many sessions at once and sends the code in all
of them, hoping more than one gets in; or fires wrong codes in parallel so the failure count loses updates.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import requests
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Model
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from two_factor.plugins.phonenumber.models import PhoneDevice

from participants.models import StaffUser
from preventicons.gateways import MemorySmsGateway
from preventicons.models import StaffLoginGuard
from preventicons.roles import Role
from tests.conftest import STAFF_PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PARALLEL = 12
PARALLEL_WRONG = 20


@pytest.fixture
def server(live_server: Any, empty_cache: None) -> str:
    return str(live_server.url)


def make_user(username: str) -> StaffUser:
    user = StaffUser.objects.create_user(username=username, password=STAFF_PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=Role.CASEMANAGER.value)[0])
    return user


class Browser:
    """One browser session against the live server, up to the code step of the login."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.get(f"{server}/account/login/", timeout=30).raise_for_status()

    def post(self, data: dict[str, str]) -> requests.Response:
        data = {**data, "csrfmiddlewaretoken": self.session.cookies.get("csrftoken") or ""}
        return self.session.post(
            f"{self.server}/account/login/",
            data=data,
            headers={"Referer": f"{self.server}/account/login/"},
            allow_redirects=False,
            timeout=60,
        )

    def pass_password(self, username: str) -> requests.Response:
        response = self.post(
            {"login_view-current_step": "auth", "auth-username": username, "auth-password": STAFF_PASSWORD}
        )
        assert response.status_code == 200 and 'name="token-otp_token"' in response.text
        return response

    def logged_in(self, response: requests.Response) -> bool:
        return response.status_code == 302 and response.headers["Location"] == "/staff/"


@contextmanager
def row_locked(model: type[Model], pk: int) -> Iterator[Callable[[int], None]]:
    """Hold one row locked from another connection, as a slow moment of the database would.

    Yields a function that waits until that many other backends wait for a lock, then releases the row:
    every request is then past its reads and queued at its first write or lock, the widest race window.
    """
    params = connection.settings_dict
    conninfo = {
        "host": params["HOST"],
        "port": params["PORT"],
        "user": params["USER"],
        "password": params["PASSWORD"],
        "dbname": params["NAME"],
    }
    holder = psycopg.connect(**{k: v for k, v in conninfo.items() if v})
    watcher = psycopg.connect(**{k: v for k, v in conninfo.items() if v}, autocommit=True)
    table = model._meta.db_table
    holder.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR UPDATE', [pk])  # noqa: S608

    def release_when_waiting(waiting: int) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] >= waiting:
                break
            time.sleep(0.05)
        holder.commit()

    try:
        yield release_when_waiting
    finally:
        holder.close()
        watcher.close()


def in_parallel(
    browsers: list[Browser],
    send: Callable[[Browser], requests.Response],
    *,
    hold: tuple[type[Model], int] | None = None,
) -> list[bool]:
    """Send from every browser at once; whether each one ended up logged in.

    With ``hold``, that row stays locked until every request waits for a lock, so all of them have read
    the device before any of them writes: a race that a protection must win every time, not by luck.
    """
    barrier = threading.Barrier(len(browsers))
    results: list[bool] = [False] * len(browsers)
    errors: list[BaseException] = []

    def run(index: int, browser: Browser) -> None:
        try:
            barrier.wait(timeout=60)
            results[index] = browser.logged_in(send(browser))
        except BaseException as error:  # reported by the test below, not swallowed
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(browsers)]
    with contextlib.ExitStack() as stack:
        release = stack.enter_context(row_locked(*hold)) if hold else None
        for thread in threads:
            thread.start()
        if release is not None:
            # As many as the server has database connections for queue up (the pool, which it shares with
            # this test's own connection); the rest come later.
            pool = (connection.settings_dict.get("OPTIONS") or {}).get("pool")
            free = pool.get("max_size", len(browsers)) - 1 if isinstance(pool, dict) else len(browsers)
            release(min(len(browsers), free))
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def totp_code(device: TOTPDevice) -> str:
    return str(totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)).zfill(
        device.digits
    )


@pytest.fixture
def totp_user(transactional_db: None) -> Iterator[StaffUser]:
    user = make_user("cm-totp")
    TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    yield user


def test_one_totp_code_logs_in_once_among_twelve_parallel_logins(server: str, totp_user: StaffUser) -> None:
    browsers = [Browser(server) for _ in range(PARALLEL)]
    for browser in browsers:
        browser.pass_password(totp_user.username)
    device = TOTPDevice.objects.get(user=totp_user)
    code = totp_code(device)

    results = in_parallel(
        browsers,
        lambda b: b.post({"login_view-current_step": "token", "token-otp_token": code}),
        hold=(TOTPDevice, device.pk),
    )

    assert sum(results) == 1, f"{sum(results)} of {PARALLEL} parallel logins got in with one TOTP code"


def test_one_sms_code_logs_in_once_among_twelve_parallel_logins(server: str, transactional_db: None) -> None:
    user = make_user("cm-sms")
    phone = PhoneDevice.objects.create(
        user=user, name="default", number="+31612345678", method="sms", confirmed=True
    )
    browsers = [Browser(server) for _ in range(PARALLEL)]
    for browser in browsers:
        browser.pass_password(user.username)
    # The code as the staff member reads it in the text message (the test gateway keeps what it sent).
    code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"]).group(1)  # type: ignore[union-attr]

    results = in_parallel(
        browsers,
        lambda b: b.post({"login_view-current_step": "token", "token-otp_token": code}),
        hold=(PhoneDevice, phone.pk),
    )

    assert sum(results) == 1, f"{sum(results)} of {PARALLEL} parallel logins got in with one SMS code"


def test_one_sms_code_logs_in_once_even_one_after_another(server: str, transactional_db: None) -> None:
    # The replay: one text message logged in three sessions over 95 seconds.
    user = make_user("cm-sms-replay")
    PhoneDevice.objects.create(user=user, name="default", number="+31612345678", method="sms", confirmed=True)
    first = Browser(server)
    first.pass_password(user.username)
    code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"]).group(1)  # type: ignore[union-attr]
    assert first.logged_in(first.post({"login_view-current_step": "token", "token-otp_token": code}))

    second = Browser(server)
    second.pass_password(user.username)

    assert not second.logged_in(second.post({"login_view-current_step": "token", "token-otp_token": code}))


def test_one_backup_code_logs_in_once_among_twelve_parallel_logins(server: str, totp_user: StaffUser) -> None:
    backup = StaticDevice.objects.create(user=totp_user, name="backup")
    backup.token_set.create(token="k3yc0d3x")
    backup.token_set.create(token="0th3rc0d")
    browsers = [Browser(server) for _ in range(PARALLEL)]
    for browser in browsers:
        browser.pass_password(totp_user.username)
        response = browser.post({"login_view-current_step": "token", "wizard_goto_step": "backup"})
        assert 'name="backup-otp_token"' in response.text

    results = in_parallel(
        browsers,
        lambda b: b.post({"login_view-current_step": "backup", "backup-otp_token": "k3yc0d3x"}),
        hold=(StaticDevice, backup.pk),
    )

    assert sum(results) == 1, f"{sum(results)} of {PARALLEL} parallel logins got in with one backup code"
    assert list(backup.token_set.values_list("token", flat=True)) == ["0th3rc0d"]


def test_twenty_parallel_wrong_codes_count_twenty_failures_and_lock(
    server: str, totp_user: StaffUser
) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    wrong = str((int(totp_code(device)) + 500_000) % 1_000_000).zfill(6)
    browsers = [Browser(server) for _ in range(PARALLEL_WRONG)]
    for browser in browsers:
        browser.pass_password(totp_user.username)

    results = in_parallel(
        browsers,
        lambda b: b.post({"login_view-current_step": "token", "token-otp_token": wrong}),
        hold=(TOTPDevice, device.pk),
    )

    assert not any(results)
    assert StaffLoginGuard.objects.get(user=totp_user).failures == PARALLEL_WRONG
    device.refresh_from_db()
    assert device.throttling_failure_count == PARALLEL_WRONG
    # Past the limit the account is locked: even the right code gets nobody in now.
    late = Browser(server)
    late.pass_password(totp_user.username)
    response = late.post({"login_view-current_step": "token", "token-otp_token": totp_code(device)})
    assert not late.logged_in(response)
    assert "locked" in response.text
