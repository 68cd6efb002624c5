"""A request batch's hold on every organisation, for tests that show what waits for a running batch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connections, transaction

from participants import rewrite
from preventicons.dbrouter import every_store


@contextmanager
def held_in_a_thread(hold: Callable[[], object]) -> Iterator[None]:
    """Run ``hold`` in a thread of its own, inside one transaction on every store, and keep that transaction
    open (with whatever ``hold`` locked) for the body of the ``with``; it commits after. What ``hold`` raises
    is raised in the test's thread."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL's row locks")
    holding, done = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def holder() -> None:
        try:
            with every_store():
                hold()
                holding.set()
                done.wait(30)
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)
            holding.set()
        finally:
            for connection in connections.all():
                connection.close()

    runner = threading.Thread(target=holder)
    runner.start()
    try:
        assert holding.wait(30) and not failed, failed
        yield
    finally:
        done.set()
        runner.join(30)
    assert not failed, failed


def waits_for_a_running_batch(action: Callable[[], object]) -> None:
    """Fail unless ``action`` has to wait while a batch holds every organisation (FOR NO KEY UPDATE), as
    participants.rewrite does from its start: the hold is taken in a thread of its own, and ``action`` runs
    under a short lock timeout, so a wait shows as a timeout at once instead of after the batch. Not a clock.
    """
    with (
        held_in_a_thread(rewrite.hold_every_organisation),
        pytest.raises(OperationalError, match="lock timeout"),
        transaction.atomic(),
    ):
        with connections["default"].cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '300ms'")
        action()
