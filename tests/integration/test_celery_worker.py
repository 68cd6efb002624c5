"""A real Celery worker process sends a queued e-mail: the production path, broker to SMTP.

The worker imports ``preventicons.settings`` (not the test settings) with the test's key set, the test's
PostgreSQL databases and the local SMTP server in its environment. Two brokers: Redis (production) and
the file-system transport of the embedded default (no server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connections, transaction

from preventicons.messaging import outbox_key_hash, queue_email
from preventicons.models import OutboundMessage
from preventicons.tasks import send_due_messages
from tests.conftest import ALL_DATABASES
from tests.fakes.celery import celery_on_broker
from tests.fakes.smtp import FakeSmtpServer

pytestmark = pytest.mark.integration

ADDRESS = "e.devries@bouwbedrijf-zuid.example"
BODY = "Beste Eva,\n\nhttps://preventicons.example/i/Qm8x2LwT5vZ9nR4kP7cY1hJ3sD6fG0aB/\n"
# Bounds on waiting for another process; generous because the machine is shared. Not a timing assertion.
WAIT_SECONDS = 60
# Environment variables the worker must not inherit from the test process.
INHERITED_OUT = {
    "DJANGO_SETTINGS_MODULE",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "SMS_GATEWAY",
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "PREVENTICONS_KEY_FILE",
    "PREVENTICONS_VAR_DIR",
}


def database_url(alias: str) -> str:
    """The URL of the test database behind an alias, as the worker's settings read it."""
    conf = connections[alias].settings_dict
    credentials = quote(conf["USER"] or "", safe="")
    if conf["PASSWORD"]:
        credentials += ":" + quote(conf["PASSWORD"], safe="")
    host = conf["HOST"] or "127.0.0.1"
    port = conf["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{quote(conf['NAME'], safe='')}"


@dataclass
class Broker:
    url: str
    transport_options: dict[str, Any]
    worker_env: dict[str, str]
    # A queue of this test's own, so a worker of a parallel run on the same broker takes none of its tasks.
    queue: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["redis", "filesystem"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    if request.param == "redis":
        redis_url = os.environ.get("REDIS_URL", "")
        if not redis_url:
            pytest.skip("REDIS_URL is not set")
        on_redis = Broker(redis_url, {}, {"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url})
        yield on_redis
        # kombu leaves the queue and its bindings behind in Redis; this test's queue is used once.
        client = redis.Redis.from_url(redis_url)
        queue = on_redis.queue
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        client.close()
        return
    # The embedded default: no REDIS_URL, no CELERY_BROKER_URL, so settings pick filesystem:// under var/.
    queue_folder = tmp_path / "var" / "celery" / "queue"
    processed = tmp_path / "var" / "celery" / "processed"
    queue_folder.mkdir(parents=True)
    processed.mkdir(parents=True)
    options = {
        "data_folder_in": str(queue_folder),
        "data_folder_out": str(queue_folder),
        "processed_folder": str(processed),
        "store_processed": False,
    }
    yield Broker("filesystem://", options, {})


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, *, count: int = 1) -> bool:
        """Wait for ``count`` occurrences of ``text`` in the log; False if the worker exits or time is up."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.1)
        return False


@pytest.fixture
def worker_factory(tmp_path: Path, smtp_server: FakeSmtpServer) -> Iterator[Any]:
    started: list[Worker] = []

    def start(broker: Broker) -> Worker:
        if connections["default"].vendor != "postgresql":
            pytest.skip("the worker process needs the test databases on PostgreSQL")
        env = {name: value for name, value in os.environ.items() if name not in INHERITED_OUT}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "preventicons.settings",
                "PREVENTICONS_ENV": "development",
                "PREVENTICONS_KEYS": os.environ["PREVENTICONS_KEYS"],
                "PREVENTICONS_VAR_DIR": str(tmp_path / "var"),
                "DATABASE_URL": database_url("default"),
                "NOTES_DATABASE_URL": database_url("notes"),
                "CASEFILES_DATABASE_URL": database_url("casefiles"),
                "DB_POOL": "false",
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": smtp_server.host,
                "EMAIL_PORT": str(smtp_server.port),
                "LOG_LEVEL": "INFO",
                **broker.worker_env,
            }
        )
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "preventicons",
                    "worker",
                    "--pool=solo",
                    "--queues",
                    broker.queue,
                    "--hostname",
                    f"{broker.queue}@localhost",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel=INFO",
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log_path)
        started.append(worker)
        return worker

    yield start

    for worker in started:
        if worker.process.poll() is None:
            worker.process.terminate()  # warm shutdown
            try:
                worker.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(timeout=10)


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_real_worker_sends_a_queued_email(
    broker: Broker, worker_factory: Any, smtp_server: FakeSmtpServer
) -> None:
    with celery_on_broker(broker.url, broker.transport_options, queue=broker.queue):
        worker = worker_factory(broker)
        with transaction.atomic():
            assert queue_email(key="enrol:worker-test:email:1", to=ADDRESS, subject="Welkom", body=BODY)
        # The commit already published one run; a second, doubled run must not send the e-mail again.
        doubled = send_due_messages.delay()

        ran_twice = worker.wait_for_log(" succeeded", count=2)
        received = smtp_server.wait_for(1, timeout=5)

    log = worker.log()
    assert ran_twice, f"the worker did not run both tasks:\n{log}"
    assert len(received) == 1, log
    assert received[0].rcpt_tos == [ADDRESS]
    assert received[0].message["Subject"] == "Welkom"
    message = OutboundMessage.objects.get(key_hash=outbox_key_hash("enrol:worker-test:email:1"))
    assert message.status == OutboundMessage.Status.FINISHED
    assert message.recipient is None and message.body is None
    # The worker logs through the production LOGGING and its redacting filter: no address, no token.
    assert ADDRESS not in log and "Qm8x2LwT5vZ9" not in log and "Beste Eva" not in log
    assert doubled.id not in log
