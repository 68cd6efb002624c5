"""Check the notary's ledger against its seals and signed tree heads, as the auditor's page does."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from notary import ledger


class Command(BaseCommand):
    help = (
        "Verify every ledger entry against its leaf hash and seal and every signed tree head against the "
        "entries; exit status 1 and each problem named when anything no longer holds."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        check = ledger.check_ledger()
        for problem in check.problems:
            self.stdout.write(problem.sentence)
        if check.problems:
            raise CommandError(f"ledger not intact: {len(check.problems)} problem(s)")
        head = check.last_head
        signed = (
            f"last signed head at size {head.tree_size} (fingerprint {head.key_fingerprint})"
            if head is not None
            else "no signed head yet"
        )
        self.stdout.write(f"ledger intact: {check.entries} entries, {signed}")
