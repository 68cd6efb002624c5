"""Weekly smiley submissions per second through gunicorn, next to a one-INSERT view on the same server.

    make bench                        (every benchmark)
    python -m bench.submissions       (this one; DATABASE_URL names the server, default 127.0.0.1)
    BENCH_SECONDS=20 BENCH_CLIENTS=8  (load duration per target and concurrent clients; these defaults)

gunicorn runs on 127.0.0.1 with 2 sync workers against the bench databases, with bench/trivial/settings.py:
the product's URLs plus /bench/insert/ (bench/trivial/views.py), which inserts one score row and nothing else.
Each submission is a real POST of the smiley form (CSRF token and cookie) with a fresh participant's link.
Clients are Python threads with http.client, a bounded number of requests in flight.
"""

from __future__ import annotations

import datetime as dt
import http.client
import itertools
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from bench import prepare

SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
WORKERS = 2
# More links than the submissions the run can make: each submission uses a participant of its own.
LINKS = int(os.environ.get("BENCH_LINKS", "20000"))
ROOT = Path(__file__).resolve().parents[1]
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_gunicorn(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.trivial.settings",
        "DJANGO_DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(WORKERS),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "preventicons.wsgi:application",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/w/stop/")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise SystemExit("gunicorn did not start")
    process.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def _request(
    port: int, method: str, path: str, body: str | None, headers: dict[str, str]
) -> tuple[int, bytes]:
    # Sync workers close every connection after the response: one connection per request, like the browser.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _load(send: Callable[[], bool], seconds: float) -> tuple[int, int, float]:
    """Run ``send`` from CLIENTS threads for ``seconds``; returns (ok, failed, elapsed)."""
    ok = itertools.count()
    failed = itertools.count()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop_at:
            try:
                good = send()
            except OSError:
                good = False
            next(ok if good else failed)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return next(ok), next(failed), elapsed


def main() -> None:
    # No worker runs during the bench: nothing is queued by a submission anyway.
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    prepare()
    from participants.agreements import record_agreement
    from participants.models import Department, Organisation, Participant, ProcessingAgreement
    from preventicons.crypto import hash_token, new_pseudonym, new_token
    from scores import rounds
    from scores.models import Score, WeeklyLink

    run = secrets.token_hex(4)
    organisation = Organisation.objects.create(name=f"Bench submissions {run}", sector="bench")
    department = Department.objects.create(organisation=organisation, name="Bench")
    record_agreement(
        organisation=organisation, signed_on=dt.date.today(), signer="Bench", document=run.encode()
    )
    week = rounds.week_of(dt.datetime.now(tz=dt.UTC))
    expires_at = rounds.week_closes_at(week)
    port = _free_port()
    gunicorn: subprocess.Popen[bytes] | None = None
    try:
        people = Participant.objects.bulk_create(
            [
                Participant(
                    organisation=organisation,
                    department=department,
                    status=Participant.Status.ACTIVE,
                    pseudonym=new_pseudonym(),
                )
                for _ in range(LINKS)
            ],
            batch_size=5000,
        )
        tokens = [new_token() for _ in people]
        WeeklyLink.objects.bulk_create(
            [
                WeeklyLink(participant=person, week=week, token_hash=hash_token(token), expires_at=expires_at)
                for person, token in zip(people, tokens, strict=True)
            ],
            batch_size=5000,
        )
        gunicorn = _start_gunicorn(port)
        # One GET gives both halves of the CSRF pair: the cookie and the (masked) form token.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", f"/w/{tokens[-1]}/")
        response = connection.getresponse()
        page = response.read().decode()
        cookie = (response.getheader("Set-Cookie") or "").split(";", 1)[0]
        connection.close()
        match = CSRF_FIELD.search(page)
        assert response.status == 200 and match and cookie.startswith("csrftoken="), response.status
        form_token = match.group(1)
        form_headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        unused = iter(tokens[:-1])
        lock = threading.Lock()

        def submit() -> bool:
            with lock:
                token = next(unused)
            body = urlencode({"value": "3", "csrfmiddlewaretoken": form_token})
            status, content = _request(port, "POST", f"/w/{token}/", body, form_headers)
            return status == 200 and b'data-outcome="recorded"' in content

        trivial_body = urlencode({"organisation": organisation.pk, "week": week.isoformat()})

        def insert() -> bool:
            status, _content = _request(port, "POST", "/bench/insert/", trivial_body, form_headers)
            return status == 200

        print(
            f"Submissions through gunicorn ({WORKERS} sync workers, 127.0.0.1:{port}), {CLIENTS} clients, "
            f"{SECONDS:.0f} s per target",
            flush=True,
        )
        _load(insert, 2)  # warm both workers' connections and imports
        Score.objects.filter(organisation=organisation).delete()
        real_ok, real_failed, real_seconds = _load(submit, SECONDS)
        recorded = Score.objects.filter(organisation=organisation, department=department).count()
        trivial_ok, trivial_failed, trivial_seconds = _load(insert, SECONDS)
        real_rate = real_ok / real_seconds
        trivial_rate = trivial_ok / trivial_seconds
        print(
            f"  weekly smiley POST /w/<token>/   {real_rate:8.1f} req/s  "
            f"({real_ok} recorded, {real_failed} failed)"
        )
        print(
            f"  trivial one-INSERT view         {trivial_rate:8.1f} req/s  "
            f"({trivial_ok} inserted, {trivial_failed} failed)"
        )
        assert recorded == real_ok, (recorded, real_ok)
        verdict = "met" if real_rate >= 0.5 * trivial_rate else "NOT MET"
        print(
            f"  ratio smiley / trivial: {real_rate / trivial_rate:.0%} (target at least 50%: {verdict})",
            flush=True,
        )
    finally:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=30)
        Score.objects.filter(organisation=organisation).delete()
        WeeklyLink.objects.filter(participant__organisation=organisation).delete()
        Participant.objects.filter(organisation=organisation).delete()
        ProcessingAgreement.objects.filter(organisation=organisation).delete()
        Department.objects.filter(organisation=organisation).delete()
        organisation.delete()
    print("  (bench rows removed)", flush=True)


if __name__ == "__main__":
    main()
