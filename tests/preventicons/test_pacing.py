"""Sends are spaced to the providers' rates, per channel; time is a fake clock, never the wall clock."""

from __future__ import annotations

from typing import Any

import pytest

from preventicons import gateways, messaging
from preventicons.messaging import Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_back_to_back_sends_are_spaced_to_the_rate() -> None:
    time = FakeTime()
    pacer = Pacer({"sms": 4.0}, clock=time.clock, sleep=time.sleep)

    for _ in range(3):
        pacer.wait_for("sms")

    assert time.slept == [0.25, 0.25]


def test_time_already_spent_elsewhere_is_not_waited_again() -> None:
    time = FakeTime()
    pacer = Pacer({"sms": 4.0}, clock=time.clock, sleep=time.sleep)
    pacer.wait_for("sms")
    time.now += 0.1  # the provider call itself took a while

    pacer.wait_for("sms")
    time.now += 1.0
    pacer.wait_for("sms")

    assert time.slept == [0.15]


def test_channels_are_paced_apart_and_zero_means_unpaced() -> None:
    time = FakeTime()
    pacer = Pacer({"sms": 2.0, "email": 0.0}, clock=time.clock, sleep=time.sleep)

    for channel in ("sms", "email", "email", "email", "sms"):
        pacer.wait_for(channel)

    assert time.slept == [0.5]


@pytest.mark.django_db
def test_a_run_paces_its_sms_by_the_configured_rate(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.MESSAGE_RATE_SMS_PER_SECOND = 5.0
    settings.MESSAGE_RATE_EMAIL_PER_SECOND = 0.0
    time = FakeTime()
    # The run builds its pacer from the settings; only its clock is the fake one.
    monkeypatch.setattr(messaging, "Pacer", lambda: Pacer(clock=time.clock, sleep=time.sleep))
    for number in range(3):
        messaging.queue_sms(key=f"pace:{number}:sms", to=f"+3161234567{number}", body="hallo")
        messaging.queue_email(key=f"pace:{number}:email", to=f"p{number}@example.nl", subject="s", body="b")

    report = messaging.send_due_messages()

    assert report.sent == 6
    assert time.slept == [0.2, 0.2]
    assert len(gateways.MemorySmsGateway.outbox) == 3
