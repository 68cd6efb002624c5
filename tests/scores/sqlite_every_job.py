"""Run by test_embedded_default.py in a process of its own, on the embedded SQLite default that `make run`
uses, after `migrate` and `seed_demo`: every beat job as the beat runs it (the Celery task, applied in this
process), a week later than the demo's (the clock travels), with what it did printed as JSON.

The round, a tap with the token read from the development mailbox, a help request and its batch, a resend
of codes, the invitation schedule, the week close and the nightly run.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import django
import time_machine


def at(day: dt.date, hour: int) -> dt.datetime:
    from django.utils import timezone

    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour=hour)))


def run(task: Any, *args: Any) -> Any:
    """The job as the worker runs it, in this process; its error is raised here."""
    return task.apply(args=args, throw=True).get()


def send_everything_due() -> int:
    """What the worker does with send_due_messages: batch after batch until nothing is due; how many sent."""
    from preventicons import messaging

    sent = 0
    while True:
        report = messaging.send_due_messages(limit=100)
        sent += report.sent
        if not report.claimed:
            return sent


def main() -> None:
    django.setup()
    from django.test import Client
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from casefiles import notes as casenotes
    from casefiles.models import Dossier
    from casefiles.tasks import assign_waiting_dossiers, take_up_queued_notes
    from participants import enrolment, queries, requestqueue
    from participants.models import AnonymisationRun, Invitation, Organisation, Participant, StaffUser
    from participants.tasks import resend_codes, run_retention, send_due_invitations
    from preventicons.devmailbox import read_mailbox
    from preventicons.tasks import send_due_messages
    from scores import submission, wellbeing
    from scores.models import ClosedWeek, WeeklyAggregate, WeeklyLink
    from scores.tasks import close_ended_weeks, run_due_rounds, take_up_help_requests
    from scores.weekclose import monday_of

    next_week = monday_of(timezone.localdate()) + dt.timedelta(days=7)
    printed: dict[str, Any] = {}
    # Tuesday noon of next week: every organisation's round is due (Monday morning by default).
    with time_machine.travel(at(next_week + dt.timedelta(days=1), 12), tick=True):
        printed["round_links"] = run(run_due_rounds)
        printed["round_again"] = run(run_due_rounds)
        run(send_due_messages)  # the task once, as the beat runs it; then the rest, as the worker carries on
        printed["sent"] = send_everything_due()
        # Links are made for everyone listed; only those who take part, and have an address on the channel
        # they chose, get their message.
        linked = WeeklyLink.objects.filter(week=next_week).values_list("participant_id", flat=True)
        printed["reachable"] = sum(
            any(queries.weekly_address(participant, channel) for channel in ("email", "sms"))
            for participant in Participant.objects.filter(pk__in=list(linked))
        )
        # The first weekly text message of next week in the development mailbox, and its link tapped.
        weekly = [m for m in read_mailbox() if m.channel == "sms" and "/w/" in m.body]
        token = re.search(r"/w/([A-Za-z0-9_-]{43})/", weekly[0].body).group(1)  # type: ignore[union-attr]
        link = submission.find_weekly_link(token=token)
        assert link is not None
        participant = Participant.objects.get(pk=link.participant_id)
        printed["tap"] = submission.submit_score(token=token, value=1).recorded
        printed["tap_again"] = submission.submit_score(token=token, value=1).recorded
        printed["offer_help"] = wellbeing.should_offer_help(
            pseudonym=participant.pseudonym or "", week=next_week
        )
        wellbeing.request_help(
            participant=participant, channel="phone", consent_text_version=wellbeing.CONTACT_CONSENT_VERSION
        )
        dossiers = Dossier.objects.count()
        printed["help_taken_up"] = run(take_up_help_requests)
        printed["help_again"] = run(take_up_help_requests)
        printed["dossiers_added"] = Dossier.objects.count() - dossiers
        # The casemanager's pages on SQLite: the new dossier went to the demo casemanager, who opens the
        # dashboard and the dossier (a verified session, as the login would leave it), and the hourly job.
        printed["waiting_assigned"] = run(assign_waiting_dossiers)
        # The day is sealed: the latest is found in Python (the first number among the latest days).
        newest = max(
            Dossier.objects.order_by("number"),
            key=lambda dossier: dossier.awaiting_contact_since or dt.date.min,
            default=None,
        )
        assert newest is not None
        casemanager = StaffUser.objects.get(username="demo-casemanager")
        staff = Client()
        staff.force_login(casemanager)
        session = staff.session
        session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=casemanager).persistent_id
        session.save()
        printed["dashboard"] = staff.get("/dossiers/", HTTP_HOST="127.0.0.1").status_code
        printed["dossier_page"] = staff.get(f"/dossiers/{newest.number}/", HTTP_HOST="127.0.0.1").status_code
        printed["contact"] = staff.post(
            f"/dossiers/{newest.number}/contact/", HTTP_HOST="127.0.0.1"
        ).status_code
        # A note, queued and shown at once; with a note of another dossier the note batch writes both.
        staff.post(
            f"/dossiers/{newest.number}/notes/",
            {"note-kind": "session", "note-text": "Gebeld: afspraak gemaakt."},
            HTTP_HOST="127.0.0.1",
        )
        page = staff.get(f"/dossiers/{newest.number}/", HTTP_HOST="127.0.0.1").content.decode()
        printed["queued_note_shown"] = "Gebeld: afspraak gemaakt." in page
        other = next(
            dossier
            for dossier in Dossier.objects.filter(casemanager_id=casemanager.pk).exclude(pk=newest.pk)
            if dossier.is_open
        )
        casenotes.add_note(other, kind="session", text="Gesprek gehad.", user=casemanager)
        printed["notes_written"] = run(take_up_queued_notes)
        printed["notes_again"] = run(take_up_queued_notes)
        # A code round for an invited person, and the resend job after its backoff.
        invited = Participant.objects.with_status(Participant.Status.INVITED).order_by("pk").first()
        assert invited is not None
        invitation = Invitation.objects.filter(participant=invited).order_by("-expires_at").first()
        printed["link_code"] = enrolment.request_link_code(invitation=invitation)
        from participants.verification import codes_of

        marker = str(
            codes_of(invited)
            .filter(purpose=enrolment.OPEN_LINK)
            .order_by("-created_at")
            .values_list("pk", flat=True)
            .first()
        )
    with time_machine.travel(at(next_week + dt.timedelta(days=1), 12) + dt.timedelta(minutes=5), tick=True):
        printed["resent"] = run(resend_codes, str(invited.pk), enrolment.OPEN_LINK.value, marker)
        printed["resent_again"] = run(resend_codes, str(invited.pk), enrolment.OPEN_LINK.value, marker)
        printed["invitations"] = run(send_due_invitations)
        send_everything_due()
        printed["code_texts"] = sum(
            1
            for m in read_mailbox()
            if m.channel == "sms" and re.search(r"\b\d{6}\b", m.body) and m.to == invited.mobile
        )
    # A day later they open the link with a new code, consent and join: queued, made so by the request batch.
    with time_machine.travel(at(next_week + dt.timedelta(days=2), 12), tick=True):
        assert invitation is not None and enrolment.request_link_code(invitation=invitation)
        send_everything_due()
        # The newest first (read_mailbox): the code just sent.
        code = re.search(r"\b(\d{6})\b", next(m.body for m in read_mailbox() if m.to == invitation.mobile))
        assert code and enrolment.verify_link_code(invitation=invitation, code=code.group(1))
        enrolment.record_consent(participant=invited)
        requestqueue.confirm_enrolment(invitation=invitation)
        printed["enrolments"] = wellbeing.take_up_help_requests().enrolments
        printed["enrolled"] = Participant.objects.get(pk=invited.pk).status == Participant.Status.ACTIVE
    # Monday 00:30 after next week, and 02:30: the week close and the nightly run, as the beat runs them.
    after = next_week + dt.timedelta(days=7)
    with time_machine.travel(at(after, 0) + dt.timedelta(minutes=30), tick=True):
        printed["closed"] = run(close_ended_weeks)
        printed["closed_again"] = run(close_ended_weeks)
    # One participant the employer's list dropped long enough ago: the night erases them in its one pass
    # over every row (participants.retention), renewing every organisation's index salt.
    dropped = Participant.objects.with_status(Participant.Status.ACTIVE).order_by("pk").first()
    assert dropped is not None
    Participant.objects.filter(pk=dropped.pk).update(
        is_listed=False, unlisted_on=after - dt.timedelta(days=400)
    )
    salts = dict(Organisation.objects.values_list("pk", "index_salt"))
    with time_machine.travel(at(after, 2) + dt.timedelta(minutes=30), tick=True):
        run(run_retention)
        run(run_retention)
        printed["nightly_runs"] = AnonymisationRun.objects.filter(run_on=after).count()
        printed["night_unlisted"] = AnonymisationRun.objects.get(run_on=after).unlisted_anonymised
    printed["dropped_stopped"] = Participant.objects.get(pk=dropped.pk).status == Participant.Status.STOPPED
    printed["salts_renewed"] = all(
        salt != salts[pk] for pk, salt in Organisation.objects.values_list("pk", "index_salt")
    )
    organisations = Organisation.objects.count()
    printed["closed_weeks"] = ClosedWeek.objects.filter(week=next_week).count() == organisations
    printed["frozen"] = WeeklyAggregate.objects.filter(week=next_week, department__isnull=True).count()
    printed["links_left"] = WeeklyLink.objects.filter(week__lte=next_week).count()
    print(json.dumps(printed))


if __name__ == "__main__":
    main()
