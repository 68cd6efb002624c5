"""Pooled connections are handed out without a health-check round trip, and a restart costs no request.

preventicons.postgres gives Django's pool a check that looks at the connection's socket instead of sending
an empty query (preventicons.dbpool). The test runs a PostgreSQL server of its own (initdb in a temporary
folder, on a free port), so it can restart it without touching the suite's server: requests run through the
product's database settings from several threads, the server restarts while the pool holds the connections
they used, and every request after the server is back must succeed. Without the check (or with a check that
misses a closed connection) the pool hands out the dead connections and those requests fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.db.utils import load_backend

from preventicons.dbpool import check_without_round_trip

BIN = Path("/usr/lib/postgresql/15/bin")
ALIAS = "pool_restart_probe"
THREADS = 4

pytestmark = pytest.mark.skipif(
    connections["default"].vendor != "postgresql" or not (BIN / "initdb").exists(),
    reason="needs PostgreSQL's server programs to run a server of its own",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    folder: Path
    port: int
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.folder / "server.log"

    def pg_ctl(self, *arguments: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = [str(BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-l", str(self.log)]
        _run([*command, "-o", options, "-w", "-t", "60", *arguments])


def _run(command: list[str]) -> None:
    # initdb and pg_ctl refuse to run as root: as root, run them as the postgres user.
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=120)  # nosec B603


@pytest.fixture
def server() -> Iterator[Server]:
    folder = Path(tempfile.mkdtemp(prefix="pv-pool-restart-"))
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        running = Server(folder=folder, port=_free_port())
        _run([str(BIN / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync"])
        running.pg_ctl("start")
        try:
            yield running
        finally:
            running.pg_ctl("stop", "-m", "immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wrapper_class_and_settings(port: int) -> tuple[Any, dict[str, Any]]:
    """The product's database settings (engine, pool, binding) pointed at the private server."""
    product = settings.DATABASES["default"]
    configured = connections.configure_settings(
        {
            "default": product,
            ALIAS: {
                **{key: value for key, value in product.items() if key != "TEST"},
                "NAME": "postgres",
                "USER": "postgres",
                "PASSWORD": "",
                "HOST": "127.0.0.1",
                "PORT": str(port),
            },
        }
    )[ALIAS]
    return load_backend(configured["ENGINE"]).DatabaseWrapper, configured


@dataclass
class Load:
    """Threads that each run "requests" (take a pooled connection, query, give it back) until stopped."""

    wrapper_class: Any
    configured: dict[str, Any]
    outcomes: list[tuple[float, bool]] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    idle: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def request(self, connection: Any) -> None:
        started = time.monotonic()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_class")
                cursor.fetchone()
            ok = True
        except Exception:  # any failure is what the test counts
            ok = False
        finally:
            connection.close()  # back to the pool, as Django does at the end of a request
        self.outcomes.append((started, ok))
        time.sleep(0.002)  # load, not a busy loop: the main thread and the server need the cores too

    def worker(self) -> None:
        connection = self.wrapper_class(self.configured, alias=ALIAS)
        while not self.stopping.is_set():
            if not self.running.is_set():
                self.idle.release()
                self.running.wait()
                continue
            self.request(connection)

    def wait_for(self, requests: int, *, since: float) -> None:
        """Until ``requests`` requests started at ``since`` or later have ended (a minute at most)."""
        deadline = time.monotonic() + 60
        while sum(1 for at, _ok in self.outcomes[-requests:] if at >= since) < requests:
            assert time.monotonic() < deadline, "the load stalled"
            time.sleep(0.05)

    def pause(self) -> None:
        """Stop every thread between two requests: their connections are all back in the pool."""
        self.running.clear()
        for _ in range(THREADS):
            assert self.idle.acquire(timeout=60)


def test_a_restart_while_the_pool_holds_connections_fails_no_request_after_it(
    server: Server, django_db_blocker: Any
) -> None:
    # Not the test databases: a server of its own, which pytest-django's guard does not need to protect.
    with django_db_blocker.unblock():
        _restart_under_load(server)


def _restart_under_load(server: Server) -> None:
    wrapper_class, configured = _wrapper_class_and_settings(server.port)
    load = Load(wrapper_class, configured)
    threads = [threading.Thread(target=load.worker, daemon=True) for _ in range(THREADS)]
    try:
        load.running.set()
        for thread in threads:
            thread.start()
        load.wait_for(200, since=0.0)
        pool = wrapper_class(configured, alias=ALIAS).pool
        # The product's pool with the product's check, holding the connections the threads used.
        assert pool._check is check_without_round_trip
        load.pause()
        assert all(ok for _at, ok in load.outcomes), "requests failed before the restart"
        held = pool.get_stats()["pool_available"]
        assert held >= 2, "the load did not leave connections in the pool"

        server.pg_ctl("restart", "-m", "fast")
        back = time.monotonic()
        load.running.set()
        load.wait_for(200, since=back)
    finally:
        load.stopping.set()
        load.running.set()
        for thread in threads:
            thread.join(timeout=30)
        pool = wrapper_class(configured, alias=ALIAS).pool
        if pool is not None:
            pool.close()
            wrapper_class._connection_pools.pop(ALIAS, None)

    failed_after = [at for at, ok in load.outcomes if at >= back and not ok]
    assert failed_after == [], f"{len(failed_after)} requests failed after the restart ({held} pooled)"


def test_the_check_sends_nothing_to_a_healthy_connection(server: Server) -> None:
    import psycopg

    address = f"host=127.0.0.1 port={server.port} user=postgres"
    with psycopg.connect(address, autocommit=True) as conn:
        before = conn.execute("SELECT 1").fetchone()
        # A query on the connection would be seen by the server; here only the socket is looked at: the
        # connection's backend has run one statement and then nothing (its last query stays "SELECT 1").
        for _ in range(100):
            check_without_round_trip(conn)
        with psycopg.connect(address, autocommit=True) as observer:
            row = observer.execute(
                "SELECT query FROM pg_stat_activity WHERE pid = %s", [conn.info.backend_pid]
            ).fetchone()
        assert before == (1,) and row == ("SELECT 1",)
