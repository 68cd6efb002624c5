"""The day's delivery counts: one sealed row per day (DeliveryTally), its migration, and reading them back."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from preventicons import crypto, messaging
from preventicons.models import DeliveryTally

DAY = dt.date(2026, 11, 23)
BEFORE = [("preventicons", "0008_log_anchor")]
AFTER = [("preventicons", "0009_delivery_tally_sealed")]


def _sealed_lengths() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT counts FROM preventicons_deliverytally")
        return {len(counts) for (counts,) in cursor}


@pytest.mark.django_db
def test_every_days_counts_seal_to_one_length_whatever_they_are() -> None:
    messaging._write_counts(Counter({(DAY, "email", "sent"): 1}))
    messaging._write_counts(
        Counter(
            {(DAY + dt.timedelta(days=1), channel, "cancelled"): 123_456_789 for channel in ("email", "sms")}
        )
    )
    assert len(_sealed_lengths()) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT counts FROM preventicons_deliverytally")
        assert all(value.startswith(f"{crypto.FORMAT}.") for (value,) in cursor)
    assert messaging.delivery_counts(day=DAY) == {("email", "sent"): 1}
    assert messaging.delivery_counts(day=DAY + dt.timedelta(days=1)) == {
        ("email", "cancelled"): 123_456_789,
        ("sms", "cancelled"): 123_456_789,
    }
    assert messaging.delivery_counts(day=DAY - dt.timedelta(days=1)) == {}


@pytest.mark.django_db
def test_a_run_adds_to_the_days_counts_and_an_unknown_channel_is_refused() -> None:
    messaging._write_counts(Counter({(DAY, "sms", "failed"): 2, (DAY, "email", "sent"): 3}))
    messaging._write_counts(Counter({(DAY, "sms", "failed"): 1}))
    assert messaging.delivery_counts(day=DAY) == {("sms", "failed"): 3, ("email", "sent"): 3}
    assert DeliveryTally.objects.count() == 1
    with pytest.raises(ValueError, match="no such channel"):
        messaging._write_counts(Counter({(DAY, "pigeon", "sent"): 1}))
    assert messaging.delivery_counts(day=DAY) == {("sms", "failed"): 3, ("email", "sent"): 3}


@pytest.mark.django_db(transaction=True)
def test_two_runs_counting_the_first_messages_of_a_day_at_once_lose_neither() -> None:
    """The first run to count on a day makes its row. A second run stopping while the first has made it but
    not committed waits for it, makes no second row and adds to the first's, instead of failing on the day's
    unique row or writing over it."""
    if connection.vendor != "postgresql":
        pytest.skip("two writers at once")
    made, go_on = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def first() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                messaging._write_counts(Counter({(DAY, "email", "sent"): 1}))
                made.set()
                go_on.wait(30)
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)
            made.set()
        finally:
            connections.close_all()

    def second() -> None:
        try:
            messaging._write_counts(Counter({(DAY, "email", "sent"): 2, (DAY, "sms", "cancelled"): 1}))
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)
        finally:
            connections.close_all()

    one, two = threading.Thread(target=first), threading.Thread(target=second)
    one.start()
    assert made.wait(30)
    two.start()
    two.join(0.5)
    waited = two.is_alive()
    go_on.set()
    one.join(30)
    two.join(30)
    assert not failed, failed
    assert waited, "the second run did not wait for the first's row"
    assert messaging.delivery_counts(day=DAY) == {("email", "sent"): 3, ("sms", "cancelled"): 1}
    assert DeliveryTally.objects.count() == 1


@pytest.mark.django_db
def test_the_command_prints_each_days_counts_per_channel() -> None:
    from django.utils import timezone

    today = timezone.localdate()
    messaging._write_counts(Counter({(today, "sms", "sent"): 4, (today, "email", "cancelled"): 7}))
    out = io.StringIO()
    call_command("delivery_counts", "--days", "2", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["day", "channel", "sent", "failed", "cancelled"]
    assert lines[1:] == [
        f"{today - dt.timedelta(days=1)}  email            0          0          0",
        f"{today - dt.timedelta(days=1)}  sms              0          0          0",
        f"{today}  email            0          0          7",
        f"{today}  sms              4          0          0",
    ]


def _migrate(targets: list[tuple[str, str]] | None = None) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_the_clear_counts_into_sealed_days_and_back() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps.get_model("preventicons", "DeliveryCount")
        clear = {
            (DAY, "email", "sent"): 5,
            (DAY, "sms", "cancelled"): 2,
            (DAY + dt.timedelta(days=1), "sms", "failed"): 1,
        }
        for (day, channel, outcome), count in clear.items():
            old.objects.create(day=day, channel=channel, outcome=outcome, count=count)
        _migrate(AFTER)

        assert "preventicons_deliverycount" not in connection.introspection.table_names()
        assert messaging.delivery_counts(day=DAY) == {("email", "sent"): 5, ("sms", "cancelled"): 2}
        assert messaging.delivery_counts(day=DAY + dt.timedelta(days=1)) == {("sms", "failed"): 1}
        assert DeliveryTally.objects.count() == 2 and len(_sealed_lengths()) == 1

        _migrate(BEFORE)
        back = {(row.day, row.channel, row.outcome): row.count for row in old.objects.all()}
        assert back == clear
    finally:
        _migrate()
