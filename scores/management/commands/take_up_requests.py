"""Run the request batch by hand: the same operation the beat runs every HELP_REQUEST_BATCH_MINUTES
(scores.wellbeing.take_up_help_requests). Enrolments, help requests, pauses, corrections, declines and stops
wait for it; in the demo this makes them so at once instead of at the next quarter of an hour."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand

from scores import wellbeing


class Command(BaseCommand):
    help = "Take up every queued request now; a second run finds nothing to do."

    def handle(self, *args: Any, **options: Any) -> None:
        batch = wellbeing.take_up_help_requests()
        # Counts only, as the batch itself reports them: never who.
        self.stdout.write(
            ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in asdict(batch).items())
        )
