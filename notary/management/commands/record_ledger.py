"""Feed the ledger by hand: the job the nightly beat runs (notary.tasks.record_ledger), with its counts."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from notary.tasks import record_ledger


class Command(BaseCommand):
    help = "Append to the notary's ledger every fact it does not hold yet; a second run appends nothing."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = record_ledger.apply(throw=True).get()
        for kind, count in counts.items():
            self.stdout.write(f"{kind}: {count}")
        self.stdout.write(f"appended: {sum(counts.values())}")
