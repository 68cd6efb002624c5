"""Verify an attestation file offline: the public /verify/ page's signature check, exit status 0 or 1.

Offline means without the ledger: whether the ledger still holds the head the attestation rests on, as the
page also checks, is ``verify_ledger --attestation FILE``'s to say.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notary import attestations, signing


class Command(BaseCommand):
    help = (
        "Check that an attestation file was signed by Anoniem Garant and not changed since. Without "
        "--public-key it uses this installation's key; exit status 0 when valid, 1 when not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The attestation file (JSON), or - to read it from standard input.")
        parser.add_argument(
            "--public-key",
            help="The Ed25519 public key to verify with, base64 (as /verify/ and notary_public_key show it).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        key = None
        if options["public_key"]:
            try:
                key = signing.public_key_from_base64(options["public_key"])
            except ValueError as error:
                raise CommandError(str(error)) from None
        try:
            if options["file"] == "-":
                data = sys.stdin.buffer.read(attestations.MAX_FILE_BYTES + 1)
            else:
                with Path(options["file"]).open("rb") as handle:
                    data = handle.read(attestations.MAX_FILE_BYTES + 1)
        except OSError as error:
            raise CommandError(f"cannot read {options['file']}: {error.strerror}") from None
        verdict = attestations.verify_file(data, key)
        self.stdout.write(verdict.reason)
        if not verdict.valid:
            sys.exit(1)
        assert verdict.statement is not None
        self.stdout.write(json.dumps(verdict.statement, indent=2, sort_keys=True, ensure_ascii=False))
