"""Two-factor verification codes: hashed, expiring, single use, counted atomically, capped per hour."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection, connections
from django.utils import timezone

from participants import verification
from participants.models import Organisation, Participant, VerificationCode
from participants.tasks import resend_codes
from participants.verification import TooManyCodes, VerifyStatus, issue_codes, verify_code
from preventicons import messaging
from preventicons.crypto import keyed_hash
from preventicons.gateways import MemorySmsGateway
from tests.participants.people import make_participant

ENROL = VerificationCode.Purpose.ENROL
START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def delivered_codes() -> tuple[str, str]:
    """Send what is due and read the last code from the last e-mail and the last SMS."""
    messaging.send_due_messages()
    email_code = re.search(r"\b(\d{6})\b", str(mail.outbox[-1].body))
    sms_code = re.search(r"\b(\d{6})\b", MemorySmsGateway.outbox[-1]["body"])
    assert email_code and sms_code
    return email_code.group(1), sms_code.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
def participant(organisation: Organisation) -> Participant:
    # Jan chose his work address for the weekly messages, so e-mail codes may go there
    # (verification.code_email_address); where they go otherwise is tested in test_code_destinations.py.
    return make_participant(organisation, weekly_channel=Participant.WeeklyChannel.WORK_EMAIL)


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_codes_go_by_email_and_sms_to_the_addresses_on_file(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    email_code, sms_code = delivered_codes()

    assert mail.outbox[-1].to == ["jan@example.nl"]
    assert MemorySmsGateway.outbox[-1]["to"] == "+31612345678"
    assert verify_code(participant=participant, purpose=ENROL, channel="email", code=email_code).ok
    assert verify_code(participant=participant, purpose=ENROL, channel="sms", code=sms_code).ok
    proven = verification.proven_targets(participant=participant, purpose=ENROL)
    assert proven == verification.ProvenTargets(email=None, mobile=None)


def test_one_verified_factor_does_not_prove_the_round(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    email_code, _sms = delivered_codes()

    assert verify_code(participant=participant, purpose=ENROL, channel="email", code=email_code).ok
    assert verification.proven_targets(participant=participant, purpose=ENROL) is None


def test_wrong_code_says_how_many_tries_remain(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    email_code, _sms = delivered_codes()

    first = verify_code(participant=participant, purpose=ENROL, channel="email", code=wrong(email_code))
    second = verify_code(participant=participant, purpose=ENROL, channel="email", code=wrong(email_code))

    assert (first.status, first.tries_left) == (VerifyStatus.WRONG, 4)
    assert (second.status, second.tries_left) == (VerifyStatus.WRONG, 3)


def test_wrong_code_five_times_locks_the_code(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    email_code, _sms = delivered_codes()

    outcomes = [
        verify_code(participant=participant, purpose=ENROL, channel="email", code=wrong(email_code)).status
        for _ in range(5)
    ]
    after = verify_code(participant=participant, purpose=ENROL, channel="email", code=email_code)

    assert outcomes == [VerifyStatus.WRONG] * 4 + [VerifyStatus.LOCKED]
    assert after.status is VerifyStatus.LOCKED
    assert VerificationCode.objects.naming([participant.pk]).get(channel="email").failed_attempts == 5


def test_malformed_guess_counts_as_a_wrong_try(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    delivered_codes()

    outcome = verify_code(participant=participant, purpose=ENROL, channel="sms", code="12ab")

    assert (outcome.status, outcome.tries_left) == (VerifyStatus.WRONG, 4)


def test_code_expires_after_ten_minutes(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    email_code, sms_code = delivered_codes()

    clock.shift(dt.timedelta(minutes=9, seconds=59))
    assert verify_code(participant=participant, purpose=ENROL, channel="email", code=email_code).ok
    clock.shift(dt.timedelta(seconds=1))
    late = verify_code(participant=participant, purpose=ENROL, channel="sms", code=sms_code)

    assert late.status is VerifyStatus.EXPIRED


def test_code_is_single_use(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    email_code, _sms = delivered_codes()

    assert verify_code(participant=participant, purpose=ENROL, channel="email", code=email_code).ok
    again = verify_code(participant=participant, purpose=ENROL, channel="email", code=email_code)

    assert again.status is VerifyStatus.NONE


def test_codes_are_stored_as_keyed_hashes_bound_to_their_row(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    email_code, sms_code = delivered_codes()

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM participants_verificationcode")
        dump = repr(cursor.fetchall())
    assert email_code not in dump and sms_code not in dump
    row = VerificationCode.objects.naming([participant.pk]).get(channel="email")
    # Not a plain hash of the code, and the same code would hash differently on another row.
    import hashlib

    assert row.code_hash != hashlib.sha256(email_code.encode()).hexdigest()
    other_row = keyed_hash("blind_index", f"verification-code:{row.pk}x:{ENROL}:email", email_code)
    assert row.code_hash != other_row


def test_new_codes_invalidate_older_unverified_codes(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    old_email, _old_sms = delivered_codes()
    clock.shift(dt.timedelta(seconds=30))
    issue_codes(participant=participant, purpose=ENROL)
    new_email, _new_sms = delivered_codes()

    if old_email != new_email:
        stale = verify_code(participant=participant, purpose=ENROL, channel="email", code=old_email)
        assert stale.status is VerifyStatus.WRONG
    assert verify_code(participant=participant, purpose=ENROL, channel="email", code=new_email).ok
    assert (
        VerificationCode.objects.naming([participant.pk]).filter(expires_at__gt=timezone.now()).count() == 2
    )


def test_each_further_round_within_the_hour_waits_longer(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    waits = []
    for expected in (30, 60, 120, 240):
        with pytest.raises(TooManyCodes) as refused:
            issue_codes(participant=participant, purpose=ENROL)
        waits.append(refused.value.wait_seconds)
        assert verification.resend_wait_seconds(participant=participant) == expected
        clock.shift(dt.timedelta(seconds=expected - 1))
        with pytest.raises(TooManyCodes):
            issue_codes(participant=participant, purpose=ENROL)
        clock.shift(dt.timedelta(seconds=1))
        issue_codes(participant=participant, purpose=ENROL)

    assert waits == [30, 60, 120, 240]


def test_codes_per_hour_are_capped_until_the_first_round_is_an_hour_old(
    participant: Participant, clock: Any
) -> None:
    for _ in range(5):
        clock.shift(dt.timedelta(seconds=verification.resend_wait_seconds(participant=participant)))
        issue_codes(participant=participant, purpose=ENROL)
    rounds_until_now = VerificationCode.objects.naming([participant.pk]).filter(channel="email").count()

    clock.shift(dt.timedelta(minutes=20))
    with pytest.raises(TooManyCodes) as refused:
        issue_codes(participant=participant, purpose=ENROL)

    assert rounds_until_now == 5
    first = VerificationCode.objects.naming([participant.pk]).all().order_by("created_at").first()
    assert first is not None
    assert refused.value.wait_seconds == int(
        (first.created_at + dt.timedelta(hours=1) - timezone.now()).total_seconds()
    )
    clock.move_to(first.created_at + dt.timedelta(hours=1, seconds=1))
    issue_codes(participant=participant, purpose=ENROL)


def test_the_hourly_budget_of_wrong_tries_is_not_reset_by_new_codes(
    participant: Participant, clock: Any
) -> None:
    issue_codes(participant=participant, purpose=ENROL)
    email_code, sms_code = delivered_codes()
    for _ in range(5):
        verify_code(participant=participant, purpose=ENROL, channel="email", code=wrong(email_code))
    for _ in range(4):
        verify_code(participant=participant, purpose=ENROL, channel="sms", code=wrong(sms_code))

    clock.shift(dt.timedelta(seconds=30))
    issue_codes(participant=participant, purpose=ENROL)
    email_code, sms_code = delivered_codes()
    tenth = verify_code(participant=participant, purpose=ENROL, channel="email", code=wrong(email_code))
    right_but_too_late = verify_code(participant=participant, purpose=ENROL, channel="sms", code=sms_code)

    assert tenth.status is VerifyStatus.LOCKED
    assert right_but_too_late.status is VerifyStatus.LOCKED
    states = verification.channel_states(participant=participant, purpose=ENROL)
    assert {state.status for state in states.values()} == {VerifyStatus.LOCKED}


def test_a_new_address_is_kept_sealed_on_the_code_and_returned_once_proven(
    participant: Participant, clock: Any
) -> None:
    issue_codes(participant=participant, purpose=ENROL, sms_to="+31687654321")
    email_code, sms_code = delivered_codes()

    assert MemorySmsGateway.outbox[-1]["to"] == "+31687654321"
    with connection.cursor() as cursor:
        cursor.execute("SELECT target FROM participants_verificationcode WHERE channel = 'sms'")
        (stored,) = cursor.fetchone()
    assert stored.startswith("v1.") and "687654321" not in stored
    participant.refresh_from_db()
    assert participant.mobile == "+31612345678"  # not replaced before it is proven
    assert (
        verify_code(participant=participant, purpose=ENROL, channel="email", code=email_code).target is None
    )
    assert (
        verify_code(participant=participant, purpose=ENROL, channel="sms", code=sms_code).target
        == "+31687654321"
    )
    assert verification.proven_targets(participant=participant, purpose=ENROL) == verification.ProvenTargets(
        email=None, mobile="+31687654321"
    )


def test_the_resend_task_is_idempotent(participant: Participant, clock: Any) -> None:
    issue_codes(participant=participant, purpose=ENROL, email_to="jan.nieuw@example.nl")
    first = VerificationCode.objects.naming([participant.pk]).get(channel="email")
    clock.shift(dt.timedelta(seconds=30))

    assert resend_codes(str(participant.pk), ENROL, str(first.pk)) is True
    assert resend_codes(str(participant.pk), ENROL, str(first.pk)) is False  # redelivered: nothing more
    clock.shift(dt.timedelta(minutes=5))
    assert resend_codes(str(participant.pk), ENROL, str(first.pk)) is False

    assert VerificationCode.objects.naming([participant.pk]).filter(channel="email").count() == 2
    messaging.send_due_messages()
    assert [message.to for message in mail.outbox] == [["jan.nieuw@example.nl"]] * 2  # same corrected target


def test_request_resend_queues_after_commit_or_says_how_long_to_wait(
    participant: Participant, clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    issue_codes(participant=participant, purpose=ENROL)

    assert verification.request_resend(participant=participant, purpose=ENROL) == 30
    clock.shift(dt.timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert verification.request_resend(participant=participant, purpose=ENROL) == 0
    assert callbacks  # the task is queued only once the request's transaction commits

    assert VerificationCode.objects.naming([participant.pk]).filter(channel="sms").count() == 2
    assert verification.request_resend(participant=participant, purpose=ENROL) == 60


@pytest.mark.parametrize("status", [Participant.Status.DECLINED, Participant.Status.STOPPED])
def test_no_codes_for_someone_who_declined_or_stopped(organisation: Organisation, status: str) -> None:
    participant = make_participant(organisation, status=status)

    with pytest.raises(ValueError):
        issue_codes(participant=participant, purpose=ENROL)
    assert not VerificationCode.objects.exists()


def test_no_code_to_check(participant: Participant) -> None:
    outcome = verify_code(participant=participant, purpose=ENROL, channel="email", code="123456")

    assert outcome.status is VerifyStatus.NONE


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_guesses_are_all_counted() -> None:
    organisation = Organisation.objects.create(name="Parallel BV", sector="zorg")
    participant = make_participant(organisation, weekly_channel=Participant.WeeklyChannel.WORK_EMAIL)
    issue_codes(participant=participant, purpose=ENROL)
    email_code, _sms = delivered_codes()
    guessers = 4
    barrier = threading.Barrier(guessers)
    outcomes: list[verification.VerifyOutcome] = []
    errors: list[BaseException] = []

    def guess() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(
                verify_code(participant=participant, purpose=ENROL, channel="email", code=wrong(email_code))
            )
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess) for _ in range(guessers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    row = VerificationCode.objects.naming([participant.pk]).get(channel="email")
    assert row.failed_attempts == guessers
    # Each guess saw the count left by the one before it: no two read the same number.
    assert sorted(outcome.tries_left for outcome in outcomes) == [1, 2, 3, 4]
