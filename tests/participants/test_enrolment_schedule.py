"""The same traffic for everyone the employer listed: what its mailboxes see over four weeks, as an attack.

The employer reads every mailbox it supplied and knows when each message arrived. Four colleagues are
invited together: one joins (weekly messages to a private address), one declines, one joins and stops,
one never answers. Driven by the real jobs (the beat's tasks and the outbox sender, over a real SMTP server
and the Twilio SDK against a local endpoint) hour by hour through four weeks, their work mailboxes must
receive the same sequence: the same number of messages at the same moments with the same subjects, and
bodies that differ only in their link tokens.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from participants import account, invitations, retention
from participants import tasks as participant_tasks
from participants.models import DepartedContact, InvitationSchedule, Organisation, Participant
from preventicons import tasks as preventicons_tasks
from scores import tasks as score_tasks
from tests.conftest import ALL_DATABASES
from tests.fakes.smtp import FakeSmtpServer
from tests.fakes.twilio import FakeTwilio
from tests.participants.people import make_participant

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("empty_cache")]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=AMSTERDAM)  # a Monday, within the invitation hours
TOKEN = re.compile(r"/i/[A-Za-z0-9_-]{43}/")
CODE = re.compile(r"\b(\d{6})\b")
PEOPLE = {
    "anna": ("anna@werk.example", "+31611000001"),  # joins, weekly messages to a private address
    "bram": ("bram@werk.example", "+31611000002"),  # declines
    "cees": ("cees@werk.example", "+31611000003"),  # joins by SMS, then stops
    "dirk": ("dirk@werk.example", "+31611000004"),  # never answers
}
PRIVATE = "anna@thuis.example"


class Observer:
    """What reached each address, and when (the clock of the hour the sender ran)."""

    def __init__(self, smtp: FakeSmtpServer, twilio: FakeTwilio) -> None:
        self.smtp, self.twilio = smtp, twilio
        self.mails: list[tuple[dt.datetime, str, str, str]] = []
        self.sms: list[tuple[dt.datetime, str, str]] = []
        self._mail_seen = self._sms_seen = 0

    def collect(self) -> None:
        now = timezone.now()
        for received in self.smtp.messages[self._mail_seen :]:
            message = received.message
            body = message.get_body(preferencelist=("plain",))
            assert body is not None
            for address in received.rcpt_tos:
                self.mails.append((now, address, str(message["Subject"]), str(body.get_content())))
        self._mail_seen = len(self.smtp.messages)
        for sent in self.twilio.messages[self._sms_seen :]:
            self.sms.append((now, sent["To"], sent["Body"]))
        self._sms_seen = len(self.twilio.messages)

    def mailbox(self, address: str) -> list[tuple[dt.datetime, str, str]]:
        return [
            (at, subject, TOKEN.sub("/i/TOKEN/", body))
            for at, to, subject, body in self.mails
            if to == address
        ]

    def invitation_sms(self, number: str) -> list[tuple[dt.datetime, str]]:
        # The phone also gets the codes its holder asks for; the schedule's messages are those with a link.
        return [
            (at, TOKEN.sub("/i/TOKEN/", body)) for at, to, body in self.sms if to == number and "/i/" in body
        ]

    def last_code_to(self, *, number: str | None = None, address: str | None = None) -> str:
        preventicons_tasks.send_due_messages()
        self.collect()
        if number:
            texts = [body for _at, to, body in self.sms if to == number]
        else:
            texts = [body for _at, to, _subject, body in self.mails if to == address]
        match = CODE.search(texts[-1])
        assert match
        return match.group(1)

    def link_of(self, address: str) -> str:
        links = [TOKEN.search(body) for _at, to, _subject, body in self.mails if to == address]
        match = [link for link in links if link][-1]
        return match.group(0)


def run_the_beat(observer: Observer, clock: Any, *, until: dt.datetime) -> None:
    """Hour by hour, what beat and worker do: the invitation schedule, the weekly rounds, the week close
    (just after midnight), the request batch (every 15 minutes in the beat) and the outbox sender."""
    while timezone.now() < until:
        if timezone.localtime().hour == 0:
            score_tasks.close_ended_weeks()
        score_tasks.take_up_help_requests()
        participant_tasks.send_due_invitations()
        score_tasks.run_due_rounds()
        while preventicons_tasks.send_due_messages():
            pass
        observer.collect()
        clock.move_to(timezone.now() + dt.timedelta(hours=1))


def open_with_code(client: Client, observer: Observer, link: str, mobile: str) -> None:
    client.get(link)
    client.post(reverse("participants:enrol"))
    response = client.post(reverse("participants:enrol-open"), {"code": observer.last_code_to(number=mobile)})
    assert response["Location"] == reverse("participants:enrol-next"), response.content.decode()


@pytest.mark.integration
def test_four_weeks_of_work_mailboxes_read_the_same_for_a_participant_a_decliner_a_stopper_and_the_silent(
    organisation: Organisation,
    smtp_server: FakeSmtpServer,
    fake_twilio: FakeTwilio,
    settings: Any,
    english: None,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the beat, not a nudge, sends: one clock for everyone
    people = {
        name: make_participant(organisation, email=email, mobile=mobile)
        for name, (email, mobile) in PEOPLE.items()
    }
    observer = Observer(smtp_server, fake_twilio)
    with time_machine.travel(START, tick=False) as clock:
        invitations.send_invitations(organisation=organisation)
        run_the_beat(observer, clock, until=START + dt.timedelta(days=1, hours=1))  # Tuesday 11:00

        # Anna joins and chooses a private address, proven by its code.
        anna = Client()
        open_with_code(anna, observer, observer.link_of("anna@werk.example"), PEOPLE["anna"][1])
        anna.post(reverse("participants:enrol-consent"))
        anna.post(
            reverse("participants:enrol-details"),
            {"name": "", "weekly_channel": "private_email", "private_email": PRIVATE},
        )
        done = anna.post(
            reverse("participants:enrol-codes"), {"email_code": observer.last_code_to(address=PRIVATE)}
        )
        assert done["Location"] == reverse("participants:enrol-welcome")

        # Bram says no, with the SMS code.
        bram = Client()
        open_with_code(bram, observer, observer.link_of("bram@werk.example") + "decline/", PEOPLE["bram"][1])
        bram.post(reverse("participants:enrol-decline"))

        # Cees joins by text message, and stops the next day.
        cees = Client()
        open_with_code(cees, observer, observer.link_of("cees@werk.example"), PEOPLE["cees"][1])
        cees.post(reverse("participants:enrol-consent"))
        cees.post(reverse("participants:enrol-details"), {"name": "", "weekly_channel": "sms"})
        run_the_beat(observer, clock, until=START + dt.timedelta(days=2, hours=1))
        account.stop_participation(participant=Participant.objects.get(pk=people["cees"].pk))

        run_the_beat(observer, clock, until=START + dt.timedelta(days=28))

    statuses = {name: Participant.objects.get(pk=person.pk).status for name, person in people.items()}
    # Anna never tapped a smiley, so after four silent weeks she is inactive: her mailbox cannot tell.
    assert statuses == {"anna": "inactive", "bram": "declined", "cees": "stopped", "dirk": "invited"}

    mailboxes = {name: observer.mailbox(email) for name, (email, _mobile) in PEOPLE.items()}
    # The invitation and three reminders, a week apart, on weekdays, at the same hour.
    assert [at.astimezone(AMSTERDAM) for at, _subject, _body in mailboxes["dirk"]] == [
        START + dt.timedelta(weeks=week) for week in range(4)
    ]
    assert all(at.astimezone(AMSTERDAM).weekday() < 5 for at, _subject, _body in mailboxes["dirk"])
    assert mailboxes["anna"] == mailboxes["bram"] == mailboxes["cees"] == mailboxes["dirk"]
    phones = {name: observer.invitation_sms(mobile) for name, (_email, mobile) in PEOPLE.items()}
    assert len(phones["dirk"]) == 4
    assert phones["anna"] == phones["bram"] == phones["cees"] == phones["dirk"]

    # Anna's weekly messages went where she chose, and only there.
    weekly = [subject for _at, to, subject, _body in observer.mails if to == PRIVATE and "week" in subject]
    assert len(weekly) >= 3
    # The schedules are over: no sealed copy of an address remains.
    assert not InvitationSchedule.objects.exists()
    # Bram and Cees keep, on their rows, the keyed hashes of their listed address and number (after Cees's
    # stop, and after the night that erases Bram): no departed record, before the night or after.
    retention.run_retention()
    assert not DepartedContact.objects.exists()
    for name in ("bram", "cees"):
        email, mobile = PEOPLE[name]
        assert Participant.objects.filter(
            listed_email_hash=invitations.listed_hashes(
                organisation_id=organisation.pk, email=email, mobile=mobile
            )[0]
        ).exists()


@pytest.mark.parametrize(
    ("pressed", "first"),
    [
        (dt.datetime(2026, 11, 23, 10, 30), dt.datetime(2026, 11, 23, 10, 30)),  # Monday morning: at once
        (dt.datetime(2026, 11, 23, 8, 0), dt.datetime(2026, 11, 23, 9, 0)),  # before the hours: at nine
        (dt.datetime(2026, 11, 27, 18, 0), dt.datetime(2026, 11, 30, 9, 0)),  # Friday evening: Monday
        (dt.datetime(2026, 11, 28, 11, 0), dt.datetime(2026, 11, 30, 9, 0)),  # Saturday: Monday
    ],
)
def test_invitations_go_out_on_weekdays_within_the_hours(pressed: dt.datetime, first: dt.datetime) -> None:
    slot = invitations.first_slot(now=pressed.replace(tzinfo=AMSTERDAM))

    assert slot == first.replace(tzinfo=AMSTERDAM)
    reminders = [slot]
    for _ in range(3):
        reminders.append(invitations.following_slot(reminders[-1]))
    assert [moment.astimezone(AMSTERDAM).weekday() for moment in reminders] == [slot.weekday()] * 4


def test_nothing_goes_out_at_a_weekend_even_when_a_step_is_overdue(organisation: Organisation) -> None:
    make_participant(organisation)
    with time_machine.travel(START, tick=False):
        invitations.send_invitations(organisation=organisation)
    saturday = dt.datetime(2026, 11, 28, 12, 0, tzinfo=AMSTERDAM)

    assert invitations.send_due_invitations(now=saturday).sent == 0
    assert invitations.send_due_invitations(now=saturday + dt.timedelta(days=2)).sent == 1


def test_a_schedule_ends_when_the_employer_takes_the_person_off_the_list(organisation: Organisation) -> None:
    person = make_participant(organisation)
    with time_machine.travel(START, tick=False):
        invitations.send_invitations(organisation=organisation)
        invitations.send_due_invitations()
    Participant.objects.filter(pk=person.pk).update(is_listed=False)

    report = invitations.send_due_invitations(now=START + dt.timedelta(weeks=1))

    assert (report.sent, report.ended) == (0, 1)
    assert not InvitationSchedule.objects.exists()


def test_a_full_list_without_someone_who_stopped_ends_their_schedule_like_anyone_elses(
    organisation: Organisation, employer: Any
) -> None:
    from participants.importing import import_address_list

    stays = make_participant(organisation, email="blijft@example.nl", mobile="+31611000011")
    leaves = make_participant(organisation, email="gaat@example.nl", mobile="+31611000012")
    also_leaves = make_participant(organisation, email="ook@example.nl", mobile="+31611000013")
    with time_machine.travel(START, tick=False):
        invitations.send_invitations(organisation=organisation)
        invitations.send_due_invitations()
    Participant.objects.filter(pk=leaves.pk).set_state(status="active")
    account.stop_participation(participant=Participant.objects.get(pk=leaves.pk))
    assert InvitationSchedule.objects.count() == 3  # the stop does not end the reminders

    data = b"naam;e-mail;mobiel;afdeling\r\nBlijft;blijft@example.nl;0611000011;Care\r\n"
    import_address_list(organisation=organisation, data=data, full_list=True, by=employer)
    # Both leavers' schedules end at their next step, not the stopper's in the import (review 7).
    assert InvitationSchedule.objects.count() == 3
    report = invitations.send_due_invitations(now=START + dt.timedelta(weeks=1))

    assert (report.sent, report.ended) == (1, 2)
    assert not Participant.objects.get(pk=also_leaves.pk).is_listed
    assert list(InvitationSchedule.objects.values_list("participant", flat=True)) == [stays.pk]
