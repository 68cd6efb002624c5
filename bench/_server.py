"""What the HTTP benchmarks share: gunicorn on a free port with the bench URLconf, and weekly links to tap.

Used by bench/submissions.py and bench/load.py. The leading underscore keeps ``python -m bench`` from
running this module as a benchmark of its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# How long gunicorn may take to import Django and answer its first request.
START_SECONDS = 60


def free_port() -> int:
    """A port nobody listens on now (the kernel's choice), for a server the benchmark starts itself."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_answering(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/w/stop/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise SystemExit("gunicorn did not start")
    process.terminate()
    raise SystemExit(f"gunicorn did not answer within {START_SECONDS} s")


@contextlib.contextmanager
def gunicorn(port: int, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn with ``workers`` sync workers on 127.0.0.1:``port``, serving the product's URLs plus
    /bench/insert/ (bench/trivial/settings.py) against the bench databases; stopped on leaving."""
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
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "preventicons.wsgi:application",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        _wait_until_answering(process, port)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def this_week() -> dt.date:
    """The week whose links the benchmarks tap: the current one, so the links answer as open."""
    from scores import rounds

    return rounds.week_of(dt.datetime.now(tz=dt.UTC))


def weekly_links(organisation: Any, count: int) -> list[str]:
    """Tokens of ``count`` fresh active participants' links for this week, in one department of
    ``organisation``; bench_organisation removes the rows afterwards.

    One participant per tap: a second tap on a link is an answered week, a different (cheaper) path.
    """
    from participants.models import Department, Participant
    from preventicons.crypto import hash_token, new_pseudonym, new_token
    from scores import rounds
    from scores.models import WeeklyLink

    week = this_week()
    expires_at = rounds.week_closes_at(week)
    department = Department.objects.create(organisation=organisation, name="Bench")
    people = Participant.objects.bulk_create(
        [
            Participant(
                organisation=organisation,
                department=department,
                status=Participant.Status.ACTIVE,
                pseudonym=new_pseudonym(),
            )
            for _ in range(count)
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
    return tokens
