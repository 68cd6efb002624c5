"""Check the notary's ledger against its seals and signed tree heads, as the auditor's page does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notary import attestations, ledger


class Command(BaseCommand):
    help = (
        "Verify every ledger entry against its leaf hash and seal and every signed tree head against the "
        "entries, and that the ledger still holds every head named elsewhere (the identity store's copies, "
        "the issued attestations, and the attestation files given); exit status 1 and each problem named "
        "when anything no longer holds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--attestation",
            action="append",
            default=[],
            metavar="FILE",
            help=(
                "An attestation file as the employer received it (may be given more than once): the ledger "
                "must still hold the signed head it rests on, even if its row was removed here."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        named = [self._head_of(name) for name in options["attestation"]]
        check = ledger.check_ledger([head for head in named if head is not None])
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

    def _head_of(self, name: str) -> ledger.NamedHead | None:
        """The head a valid attestation file rests on; a file that is not valid is refused, never skipped."""
        try:
            with Path(name).open("rb") as handle:
                data = handle.read(attestations.MAX_FILE_BYTES + 1)
        except OSError as error:
            raise CommandError(f"cannot read {name}: {error.strerror}") from None
        verdict = attestations.verify_file(data)
        if not verdict.valid or verdict.statement is None:
            raise CommandError(f"{name}: {verdict.reason}")
        return ledger.attested_head(verdict.statement)
