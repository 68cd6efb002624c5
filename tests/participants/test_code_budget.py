"""Wrong codes: at most VERIFICATION_FAILURES_PER_HOUR (10) in any 60 minutes per participant, counted by
when each guess was made; no new code while the budget is spent, and the pages say when to try again."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
import time_machine
from django.db import connections

from participants import verification
from participants.models import CodeFailure, Organisation, Participant, VerificationCode
from participants.references import hour_index, hour_indexes
from participants.verification import TooManyCodes, VerifyStatus, issue_codes, verify_code
from tests.conftest import ALL_DATABASES
from tests.participants.people import make_participant
from tests.participants.test_verification import delivered_codes, wrong

pytestmark = pytest.mark.usefixtures("english")

ENROL = VerificationCode.Purpose.ENROL
START = dt.datetime(2026, 11, 23, 8, 55, tzinfo=dt.UTC)


def failures_of(participant: Participant) -> int:
    """The wrong guesses counted against this participant now (by their hourly keyed hash)."""
    indexes = hour_indexes(participant.pk, dt.datetime.now(dt.UTC))
    return CodeFailure.objects.filter(participant_index__in=indexes).count()


@pytest.fixture
def participant(organisation: Organisation) -> Participant:
    return make_participant(organisation, weekly_channel=Participant.WeeklyChannel.WORK_EMAIL)


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def guess_wrong(participant: Participant, channel: str, code: str, times: int) -> list[VerifyStatus]:
    return [
        verify_code(participant=participant, purpose=ENROL, channel=channel, code=wrong(code)).status
        for _ in range(times)
    ]


def test_guesses_are_counted_by_when_they_were_made_not_by_their_codes_age(
    participant: Participant, clock: Any
) -> None:
    # 8:55 a code; at 9:04 (code nine minutes old) five wrong guesses on its e-mail half.
    issue_codes(participant=participant, purpose=ENROL)
    email_code, _sms = delivered_codes()
    clock.move_to(START + dt.timedelta(minutes=9))
    guess_wrong(participant, "email", email_code, 5)
    # 9:05 new codes; five more wrong guesses: the budget of ten is spent.
    clock.move_to(START + dt.timedelta(minutes=10))
    issue_codes(participant=participant, purpose=ENROL)
    email_code, sms_code = delivered_codes()
    assert guess_wrong(participant, "sms", sms_code, 5)[-1] is VerifyStatus.LOCKED

    # 9:58: the first code is 63 minutes old, but its guesses only 54: still within the hour. Counted by
    # the code's age, as before, this hour would have allowed five more guesses.
    clock.move_to(START + dt.timedelta(minutes=63))
    with pytest.raises(TooManyCodes) as refused:
        issue_codes(participant=participant, purpose=ENROL)
    assert 5 * 60 <= refused.value.wait_seconds <= 6 * 60 + 1
    assert verification.guesses_wait_seconds(participant) == refused.value.wait_seconds
    assert failures_of(participant) == 10

    # 10:05: the guesses of 9:04 have left the hour: a new code may be sent and entered.
    clock.move_to(START + dt.timedelta(minutes=70))
    issue_codes(participant=participant, purpose=ENROL)
    email_code, sms_code = delivered_codes()
    assert verify_code(participant=participant, purpose=ENROL, channel="email", code=email_code).ok


def test_no_resend_once_the_budget_is_spent(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    email_code, sms_code = delivered_codes()
    guess_wrong(participant, "email", email_code, 5)
    clock.shift(dt.timedelta(minutes=1))
    issue_codes(participant=participant, purpose=ENROL)
    email_code, sms_code = delivered_codes()
    guess_wrong(participant, "sms", sms_code, 5)
    clock.shift(dt.timedelta(minutes=20))  # long past any backoff

    wait = verification.request_resend(participant=participant, purpose=ENROL)

    assert 38 * 60 <= wait <= 40 * 60
    with pytest.raises(TooManyCodes):
        issue_codes(participant=participant, purpose=ENROL)
    with pytest.raises(TooManyCodes):
        verification.issue_sms_code(participant=participant, purpose=VerificationCode.Purpose.ACCOUNT)


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_parallel_wrong_guesses_never_exceed_the_budget(organisation: Organisation) -> None:
    participant = make_participant(organisation, weekly_channel=Participant.WeeklyChannel.WORK_EMAIL)
    codes = {}
    for channel in ("email", "sms"):
        made = dt.datetime.now(dt.UTC)
        row = VerificationCode(
            participant_ref=str(participant.pk),
            participant_index=hour_index(participant.pk, made),
            purpose=ENROL,
            channel=channel,
            created_at=made,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
        )
        row.code_hash = verification._code_hash(str(row.id), ENROL, channel, "123456")
        row.save(force_insert=True)
        codes[channel] = row
    start = threading.Barrier(16)

    def guess(channel: str) -> None:
        try:
            start.wait(timeout=10)
            verify_code(participant=participant, purpose=ENROL, channel=channel, code="654321")
        finally:
            for alias in connections:
                connections[alias].close()

    threads = [threading.Thread(target=guess, args=("email" if n % 2 else "sms",)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures_of(participant) == 10


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_wrong_guesses_are_kept_an_hour_and_not_past_a_stop(participant: Participant, clock: Any) -> None:
    from participants import account, retention

    issue_codes(participant=participant, purpose=ENROL)
    email_code, _sms = delivered_codes()
    guess_wrong(participant, "email", email_code, 2)
    other = make_participant(participant.organisation, email="piet@example.nl", mobile="+31687654321")
    CodeFailure.objects.create(participant_index=hour_index(other.pk, START), failed_at=START)

    clock.shift(dt.timedelta(minutes=59))
    retention.run_retention()
    assert CodeFailure.objects.count() == 3
    clock.shift(dt.timedelta(minutes=2))
    CodeFailure.objects.create(
        participant_index=hour_index(other.pk, START + dt.timedelta(minutes=61)),
        failed_at=START + dt.timedelta(minutes=61),
    )
    retention.run_retention()
    assert CodeFailure.objects.count() == 1

    account.stop_participation(participant=Participant.objects.get(pk=other.pk))
    assert not CodeFailure.objects.exists()
