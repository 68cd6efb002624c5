"""How the outbox's messages ended, per day, channel and outcome: what is left to diagnose delivery.

The counts are sealed in the database (preventicons.models.DeliveryTally), so an operator reads them here,
with the key file, and not with SQL. Operator output, in English like Django's own commands.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from preventicons.management.arguments import positive_int
from preventicons.messaging import delivery_counts
from preventicons.models import DeliveryTally


class Command(BaseCommand):
    help = "Print how many e-mails and text messages were sent, failed or had nobody to go to, per day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=positive_int,
            default=7,
            help="how many days back from today (default 7, today included)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        today = timezone.localdate()
        self.stdout.write(
            "day         channel  " + "  ".join(f"{o:>9}" for o in DeliveryTally.Outcome.values)
        )
        for back in range(options["days"] - 1, -1, -1):
            day = today - dt.timedelta(days=back)
            counts = delivery_counts(day=day)
            for channel in ("email", "sms"):
                numbers = "  ".join(f"{counts.get((channel, o), 0):>9}" for o in DeliveryTally.Outcome.values)
                self.stdout.write(f"{day.isoformat()}  {channel:<7}  {numbers}")
