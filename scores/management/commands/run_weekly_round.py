"""Run one organisation's weekly round by hand (or resume it): the same operation the hourly beat runs, and
then this week's message for whoever joined since the round ran (rounds.queue_for_newcomers)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from participants.agreements import AgreementMissing
from participants.models import Organisation
from scores import rounds


class Command(BaseCommand):
    help = "Send this week's links to one organisation's participants; a second run sends nothing twice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organisation", type=int, help="The organisation's id.")
        parser.add_argument("--week", help="The Monday of the week (YYYY-MM-DD). Default: the current week.")
        parser.add_argument("--batch-size", type=int, default=None, help="Participants per transaction.")
        parser.add_argument(
            "--pause-after-batch",
            type=float,
            default=0.0,
            help="Seconds to wait after each committed batch (for testing a restart mid-round).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        organisation = Organisation.objects.filter(pk=options["organisation"]).first()
        if organisation is None:
            raise CommandError("no such organisation")
        week = rounds.week_of(timezone.now())
        if options["week"]:
            week = dt.date.fromisoformat(options["week"])
            if week.weekday() != 0:
                raise CommandError("--week must be a Monday")
        pause = options["pause_after_batch"]

        def after_batch(number: int) -> None:
            self.stdout.write(f"batch {number} committed", ending="\n")
            self.stdout.flush()
            if pause:
                time.sleep(pause)

        try:
            report = rounds.run_weekly_round(
                organisation=organisation,
                week=week,
                batch_size=options["batch_size"],
                after_batch=after_batch,
            )
        except AgreementMissing as exc:
            raise CommandError(str(exc)) from None
        # By hand the round also reaches whoever joined since it ran (the beat leaves them to next week's).
        rounds.queue_for_newcomers(organisation=organisation, week=week)
        self.stdout.write(
            f"week {week}: {report.links} links, {report.emails} e-mails and {report.sms} SMS queued"
        )
