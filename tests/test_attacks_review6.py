"""Review 6 (adversary): the week's link for every listed row (stand-ins), and the expired link that goes on.

Attacked: d4274b2 (every listed row, enrolled or not, gets the week's link and one deferred message, on the
chosen channel or a stand-in one) and 8a2b40a (an expired invitation opened with its SMS code goes on in that
browser through a session flag instead of a new link row). Attackers: whoever holds a weekly link made for
someone who never took part (the employer reads the work mailbox), the operator (dumps of the identity store
and the outbox, the delivery counts), and the employer holding an expired invitation link. A strict xfail is
a leak still open; its reason says what and a direction for the fix.

1. A stand-in's weekly link (never enrolled, declined, stopped) answers like an active person's on every
   token page and records nothing: no score, no help request, no account session. Closed.
2. The worker never sends a stand-in, nor anything to the work address the employer supplied of someone who
   does not take part. Closed.
3. Operator, one dump taken while a provider fails (SMTP greylisting, a Twilio 5xx, an outage): the worker
   ends every stand-in and every non-participant's message at its first claim (the renderer finds nobody),
   but a participant's stays pending with attempts, last_error and its reference, which names its weekly
   link, whose row names the participant in clear. So the pending rows list exactly who takes part this
   week, what the stand-ins were made to hide. Closed: a message with nobody to send to ends or is deferred
   as a real message on its channel is at that moment (preventicons.messaging._Verdicts), so while a
   provider fails every row of its channel stays pending alike, attempt after attempt, and when it is back
   all end; tested with a participant and a non-participant on each channel.
4. Someone who enrols while their stand-in is still pending (no worker ran since the round, as in the demo
   walk) gets this week's message twice once ``run_weekly_round`` runs again by hand, when their stand-in
   channel is the one they chose: the renderer sends the stand-in too. Closed here (queue_for_newcomers skips
   whoever still has a pending stand-in on that channel).
5. The go-on flag of an expired link: not without the SMS code, not carried to another link opened in the
   same browser, and gone after a decline. Closed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from participants.models import Organisation, Participant, QueuedRequest, StaffUser
from participants.views.enrolment import SESSION_GO_ON
from preventicons import messaging
from preventicons.gateways import MemorySmsGateway
from preventicons.models import OutboundMessage
from scores import rounds
from scores.models import Score, WeeklyLink
from tests.conftest import ALL_DATABASES
from tests.fakes.celery import unused_tcp_port
from tests.fakes.twilio import FakeTwilio
from tests.test_attacks_rowshape import CODE, START, _people, _token_of

pytestmark = [pytest.mark.usefixtures("english", "empty_cache")]

WEEK = dt.date(2026, 11, 23)
# Those whose rows have no channel (or none any more): their messages are stand-ins.
STAND_INS = ("silent", "declined", "stopped", "anonymised")


def _tokens(ids: dict[str, uuid.UUID]) -> dict[str, str]:
    link_of = dict(WeeklyLink.objects.filter(week=WEEK).values_list("participant_id", "pk"))
    return {state: rounds.link_token(link_of[pk]) for state, pk in ids.items()}


def _clear_outboxes() -> None:
    mail.outbox.clear()
    MemorySmsGateway.outbox.clear()


def _sent_to() -> list[str]:
    mailed = [to for message in mail.outbox for to in message.to]
    return mailed + [sms["to"] for sms in MemorySmsGateway.outbox]


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_a_stand_in_link_records_nothing_and_answers_like_an_active_ones(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    rounds.run_weekly_round(organisation=organisation, week=WEEK)
    tokens = _tokens(ids)
    scores_before = Score.objects.filter(week=WEEK).count()
    queued_before = QueuedRequest.objects.count()
    answers: dict[str, tuple[int, ...]] = {}
    for state in ("active", *STAND_INS):
        client = Client()
        page = client.get(f"/w/{tokens[state]}/")
        tap = client.post(f"/w/{tokens[state]}/", {"value": "1"})
        thanks = client.get(tap["Location"])
        help_page = client.post(f"/w/{tokens[state]}/help/", {"consent": "yes", "channel": "email"})
        account = client.get(reverse("participants:account"))
        answers[state] = (
            page.status_code,
            tap.status_code,
            thanks.status_code,
            "casemanager" in thanks.content.decode(),
            help_page.status_code,
            account.status_code,
        )
    assert len(set(answers.values())) == 1, answers
    assert answers["active"][5] != 200  # a weekly link opens no account page, for anyone
    # Only the active person's tap and help request were taken.
    assert Score.objects.filter(week=WEEK).count() == scores_before + 1
    assert QueuedRequest.objects.count() == queued_before + 1


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_the_worker_sends_no_stand_in_and_nothing_to_an_employer_address_of_someone_not_taking_part(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    _clear_outboxes()
    report = rounds.run_weekly_round(organisation=organisation, week=WEEK)
    assert report.links == len(ids)
    messaging.send_due_messages()
    # The active person chose a private address; nobody else takes part (paused, inactive, stopped, never).
    assert _sent_to() == ["prive.adres@example.org"]
    assert not OutboundMessage.objects.filter(status=OutboundMessage.Status.PENDING).exists()


def _weekly_rows() -> dict[str, tuple[uuid.UUID, str]]:
    """This week's outbox rows, read while all are pending: reference -> (owner, channel)."""
    link_owner = {
        str(pk): owner
        for pk, owner in WeeklyLink.objects.filter(week=WEEK).values_list("pk", "participant_id")
    }
    return {
        reference: (link_owner[reference], channel)
        for reference, channel in OutboundMessage.objects.filter(reference__in=list(link_owner)).values_list(
            "reference", "channel"
        )
    }


def _row_states(weekly: dict[str, tuple[uuid.UUID, str]]) -> dict[uuid.UUID, tuple[object, ...]]:
    """What the operator's dump shows of each owner's weekly row: still pending, with its attempts, error and
    how far off its next attempt is, or gone (a finished row keeps no reference)."""
    now = timezone.now()
    found = {
        reference: (status, attempts, last_error, due)
        for reference, status, attempts, last_error, due in OutboundMessage.objects.filter(
            reference__in=list(weekly)
        ).values_list("reference", "status", "attempts", "last_error", "next_attempt_at")
    }
    states: dict[uuid.UUID, tuple[object, ...]] = {}
    for reference, (owner, channel) in weekly.items():
        if reference not in found:
            states[owner] = (channel, "ended")
            continue
        status, attempts, last_error, due = found[reference]
        # The backoff is jittered: a row tells only whether its next attempt lies within the first backoff.
        base = dt.timedelta(seconds=django_settings.MESSAGE_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
        assert due is not None
        states[owner] = (channel, status, attempts, last_error, now + base / 2 <= due <= now + base)
    return states


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_a_dump_while_a_provider_fails_does_not_tell_who_takes_part(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    from participants import account

    ids = _people(organisation, employer, settings)
    # A second participant, on SMS: then each channel holds someone who takes part and someone who does not
    # (paused and inactive chose SMS; the stand-ins' channels depend on their random ids).
    account.pause_messages(participant=Participant.objects.get(pk=ids["paused"]), paused=False)
    taking_part = {ids["active"], ids["paused"]}
    rounds.run_weekly_round(organisation=organisation, week=WEEK)
    weekly = _weekly_rows()
    assert len(weekly) == len(ids)
    channel_of = dict(weekly.values())
    assert {channel_of[owner] for owner in taking_part} == {"email", "sms"}
    assert channel_of[ids["inactive"]] == "sms"
    _clear_outboxes()
    counted_before = messaging.delivery_counts(day=timezone.localdate())
    # Both providers fail: the SMTP server is unreachable, Twilio answers 500 to everything.
    email_backend, sms_gateway = settings.EMAIL_BACKEND, settings.SMS_GATEWAY
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", unused_tcp_port()
    with FakeTwilio() as twilio:
        settings.SMS_GATEWAY = "preventicons.gateways.TwilioSmsGateway"
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = twilio.account_sid, twilio.auth_token
        settings.TWILIO_FROM_NUMBER, settings.TWILIO_API_BASE_URL = twilio.from_number, twilio.url
        twilio.fail_next(100, status=500)
        for attempt in (1, 2):
            # The second run an hour later, when every first backoff has passed.
            with time_machine.travel(START + dt.timedelta(hours=attempt - 1), tick=False):
                messaging.send_due_messages()
                # The operator's dump, now: every row of a channel looks the same, whoever it was made for.
                states = _row_states(weekly)
            for channel in ("email", "sms"):
                seen = {state for owner, state in states.items() if channel_of[owner] == channel}
                assert len(seen) == 1, (channel, states)
                _channel, status, attempts, error, in_backoff = next(iter(seen))
                assert (status, attempts, bool(error), in_backoff) == ("pending", attempt, True, True)
        assert not mail.outbox and not twilio.messages
    # The providers are back: each participant gets this week's message once, nobody else anything, and the
    # day's counts say how many were sent and how many had nobody to go to.
    settings.EMAIL_BACKEND, settings.SMS_GATEWAY = email_backend, sms_gateway
    with time_machine.travel(START + dt.timedelta(hours=2), tick=False):
        messaging.send_due_messages()
        counts = {
            outcome: count - counted_before.get(outcome, 0)
            for outcome, count in messaging.delivery_counts(day=timezone.localdate()).items()
        }
    mobile = Participant.objects.get(pk=ids["paused"]).mobile
    assert mobile
    assert sorted(_sent_to()) == sorted(["prive.adres@example.org", mobile])
    assert not OutboundMessage.objects.filter(status=OutboundMessage.Status.PENDING).exists()
    assert counts.get(("email", "sent")) == counts.get(("sms", "sent")) == 1
    assert counts.get(("email", "cancelled"), 0) + counts.get(("sms", "cancelled"), 0) == len(ids) - 2
    assert not counts.get(("email", "failed")) and not counts.get(("sms", "failed"))


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_a_newcomer_whose_stand_in_is_still_pending_gets_this_weeks_message_once(
    organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    from participants import enrolment
    from tests.participants.people import enrol_through_the_batch
    from tests.test_attacks_rowshape import _open_link

    ids = _people(organisation, employer, settings)
    invitation = _open_link("silent")  # the SMS code sent and entered before the round
    rounds.run_weekly_round(organisation=organisation, week=WEEK)
    link = WeeklyLink.objects.get(week=WEEK, participant_id=ids["silent"])
    stand_in = OutboundMessage.objects.get(reference=str(link.pk))
    # No worker run since: the stand-in is pending when they enrol, on the channel it was queued on (half of
    # the newcomers choose that one).
    enrolment.record_consent(participant=invitation.invitee)
    newcomer = enrol_through_the_batch(
        invitation, weekly_channel="sms" if stand_in.channel == OutboundMessage.Channel.SMS else "work_email"
    )
    assert newcomer.status == Participant.Status.ACTIVE
    _clear_outboxes()
    rounds.queue_for_newcomers(organisation=organisation, week=WEEK)  # manage.py run_weekly_round again
    messaging.send_due_messages()
    address = newcomer.mobile if stand_in.channel == OutboundMessage.Channel.SMS else newcomer.email
    assert address
    assert _sent_to().count(address) == 1, _sent_to()


# --- the expired invitation that goes on ------------------------------------------------------------------

EXPIRED = START + dt.timedelta(days=django_settings.INVITATION_DAYS, hours=1)


def _open_expired(client: Client, state: str, *, code: bool = True, path: str = "/i/{}/") -> None:
    client.get(path.format(_token_of(state)))
    if not code:
        return
    client.post(reverse("participants:enrol"))
    messaging.send_due_messages()
    sent = CODE.search(MemorySmsGateway.outbox[-1]["body"])
    assert sent
    client.post(reverse("participants:enrol-open"), {"code": sent.group(1)})


def _consent_page_open(client: Client) -> bool:
    page = client.get(reverse("participants:enrol-consent"))
    return page.status_code == 200 and "This link has expired" not in page.content.decode()


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_an_expired_link_does_not_go_on_without_its_sms_code(
    client: Client, organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    _people(organisation, employer, settings)
    with time_machine.travel(EXPIRED, tick=False):
        # The employer, with the link from the work mailbox and no phone.
        _open_expired(client, "silent", code=False)
        client.post(reverse("participants:enrol"))
        client.post(reverse("participants:enrol-open"), {"code": "000000"})
        going_on = client.post(reverse("participants:enrol-new-link"))
        assert going_on.status_code in (302, 404) and going_on.get("Location") != reverse(
            "participants:enrol-consent"
        )
        assert SESSION_GO_ON not in client.session
        assert not _consent_page_open(client)


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_the_go_on_flag_goes_with_no_other_link_opened_in_the_same_browser(
    client: Client, organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    _people(organisation, employer, settings)
    with time_machine.travel(EXPIRED, tick=False):
        _open_expired(client, "silent")
        client.post(reverse("participants:enrol-new-link"))
        assert client.session.get(SESSION_GO_ON) and _consent_page_open(client)
        # Another person's link, opened in this browser (the flag named the first link only).
        _open_expired(client, "declined", code=False)
        assert SESSION_GO_ON not in client.session
        assert not _consent_page_open(client)
        # The same link again, through its decline address: the flag is gone, so is the opened code.
        _open_expired(client, "silent")
        client.post(reverse("participants:enrol-new-link"))
        _open_expired(client, "silent", code=False, path="/i/{}/decline/")
        assert SESSION_GO_ON not in client.session
        assert not _consent_page_open(client)


@pytest.mark.django_db(databases=ALL_DATABASES)
@time_machine.travel(START, tick=False)
def test_after_declining_an_expired_link_the_browser_cannot_join_with_it(
    client: Client, organisation: Organisation, employer: StaffUser, settings: Any
) -> None:
    ids = _people(organisation, employer, settings)
    with time_machine.travel(EXPIRED, tick=False):
        _open_expired(client, "silent")
        client.post(reverse("participants:enrol-new-link"))
        declined = client.post(reverse("participants:enrol-decline"))
        assert declined.status_code == 200
        assert SESSION_GO_ON not in client.session
        assert not _consent_page_open(client)
        details = client.post(reverse("participants:enrol-details"), {"weekly_channel": "sms"})
        assert details.status_code != 302
    assert Participant.objects.get(pk=ids["silent"]).status != Participant.Status.ACTIVE
