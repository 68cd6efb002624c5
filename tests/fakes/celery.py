"""Point the project's Celery app at a real broker for one test (the test settings run tasks eagerly)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

from kombu import pools

from preventicons.celery import app as celery_app


def _drop_connection_pools() -> None:
    # Publishing goes through kombu's process-wide pools, keyed by broker: close and forget them all.
    pools.reset()
    celery_app._pool = None
    # The app's AMQP helper caches queues and producers from the configuration it first saw: rebuild it.
    celery_app.__dict__.pop("amqp", None)


@contextlib.contextmanager
def celery_on_broker(
    url: str, transport_options: dict[str, Any] | None = None, *, queue: str = "celery"
) -> Iterator[None]:
    """While inside, ``task.delay()`` publishes to ``queue`` at ``url`` instead of running in-process."""
    conf = celery_app.conf
    saved = {
        "task_always_eager": conf.task_always_eager,
        "broker_url": conf.broker_url,
        "broker_transport_options": conf.broker_transport_options,
        "task_default_queue": conf.task_default_queue,
    }
    _drop_connection_pools()
    conf.task_always_eager = False
    conf.broker_url = url
    conf.broker_transport_options = transport_options or {}
    conf.task_default_queue = queue
    try:
        yield
    finally:
        _drop_connection_pools()
        for name, value in saved.items():
            setattr(conf, name, value)


def unused_tcp_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
