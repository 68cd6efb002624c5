"""What `make test` needs, checked before it runs anything: PostgreSQL, Redis, Chromium and gettext.

Run by `make test` (and so by `.ci/run`) with the project's virtualenv. Each missing piece is named with the
exact command that installs or starts it; any missing piece ends the run at once, with exit status 1, instead
of minutes later in a wall of connection errors. The same variables as the suite: DATABASE_URL,
NOTES_DATABASE_URL, CASEFILES_DATABASE_URL, REDIS_URL.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from urllib.parse import urlsplit, urlunsplit

CHROMIUM = "/usr/bin/chromium"  # tests/browser/conftest.py launches this one
DATABASE_VARIABLES = ("DATABASE_URL", "NOTES_DATABASE_URL", "CASEFILES_DATABASE_URL")
SUDO = "" if os.geteuid() == 0 else "sudo "


def _apt(package: str) -> str:
    return f"{SUDO}apt-get install -y {package}"


def _maintenance_url(url: str) -> str:
    # pytest-django creates and drops its test_* databases through the server's "postgres" database.
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))


def check_postgresql() -> list[str]:
    import psycopg

    problems = []
    seen = set()
    for variable in DATABASE_VARIABLES:
        url = os.environ.get(variable, "")
        if not url:
            problems.append(f"{variable} is not set: `make test` sets it; run the suite through make.")
            continue
        parts = urlsplit(url)
        server = (parts.hostname, parts.port or 5432, parts.username)
        if server in seen:
            continue
        seen.add(server)
        where = f"{parts.hostname}:{parts.port or 5432} as {parts.username or 'the current user'}"
        try:
            psycopg.connect(_maintenance_url(url), connect_timeout=3).close()
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if shutil.which("pg_ctlcluster") and glob.glob("/etc/postgresql/*"):
                version = sorted(os.listdir("/etc/postgresql"))[-1]
                fix = f"start it: {SUDO}pg_ctlcluster {version} main start"
            else:
                fix = f"install and start it: {_apt('postgresql')}"
            problems.append(
                f"PostgreSQL does not answer at {where} ({variable}): {reason}\n"
                f"    -> {fix}\n"
                "    (the suite logs in as the postgres role without a password, as a local cluster with "
                f"trust authentication has it; or point {', '.join(DATABASE_VARIABLES)} at another server)"
            )
    return problems


def check_redis() -> list[str]:
    import redis

    url = os.environ.get("REDIS_URL", "")
    if not url:
        return ["REDIS_URL is not set: `make test` sets it; run the suite through make."]
    parts = urlsplit(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        fix = (
            f"start it: redis-server --daemonize yes --bind 127.0.0.1 --port {parts.port or 6379} --save ''"
            if shutil.which("redis-server")
            else f"install and start it: {_apt('redis-server')}"
        )
        return [
            f"Redis does not answer at {parts.hostname}:{parts.port or 6379} (REDIS_URL): {exc}\n    -> {fix}"
        ]
    return []


def check_chromium() -> list[str]:
    if os.access(CHROMIUM, os.X_OK):
        return []
    return [
        f"Chromium is missing at {CHROMIUM} (the browser tests drive it)\n"
        f"    -> install it: {_apt('chromium')}"
    ]


def check_gettext() -> list[str]:
    if shutil.which("msgfmt"):
        return []
    return [
        "gettext's msgfmt is missing (the translation tests compile the catalogue)\n"
        f"    -> install it: {_apt('gettext')}"
    ]


def main() -> int:
    problems = check_postgresql() + check_redis() + check_chromium() + check_gettext()
    if problems:
        print("make test needs what is missing here:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print("Then run make test again.", file=sys.stderr)
        return 1
    print("make test: PostgreSQL, Redis, Chromium and gettext are there.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
