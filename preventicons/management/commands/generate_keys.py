"""Write a fresh, complete key set to a file (owner-only permissions); refuses to overwrite one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from preventicons.keys import generate_key_document, write_key_document


class Command(BaseCommand):
    help = "Generate a fresh set of purpose-bound keys."
    requires_system_checks: list[str] = []  # the checks would fail for want of the very keys we make

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", help="Key file to write (default: PREVENTICONS_KEY_FILE).")
        parser.add_argument(
            "--if-missing", action="store_true", help="Do nothing when the file exists (for `make run`)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = options["output"] or settings.PREVENTICONS_KEY_FILE
        if not target:
            raise CommandError("name a file with --output or set PREVENTICONS_KEY_FILE")
        path = Path(target)
        if path.exists():
            if options["if_missing"]:
                self.stdout.write(f"Key file {path} exists; left as it is.")
                return
            raise CommandError(
                f"{path} exists; refusing to overwrite keys (data sealed with them would be lost)"
            )
        try:
            write_key_document(path, generate_key_document(), replace=False)
        except FileExistsError:
            raise CommandError(f"{path} appeared while writing; refusing to overwrite keys") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote a fresh key set to {path} (mode 600). Keep it out of backups of the databases."
            )
        )
