"""Write a fresh, complete key set to a file (owner-only permissions); refuses to overwrite one.

``--add-missing`` instead completes an existing file with a fresh key for each keyed-hash purpose added
since it was made (such as ``access_log``), leaving every key it holds as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from preventicons.keys import (
    add_missing_keyed_hash_keys,
    generate_key_document,
    write_key_document,
)


class Command(BaseCommand):
    help = "Generate a fresh set of purpose-bound keys."
    requires_system_checks: list[str] = []  # the checks would fail for want of the very keys we make

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", help="Key file to write (default: PREVENTICONS_KEY_FILE).")
        parser.add_argument(
            "--if-missing", action="store_true", help="Do nothing when the file exists (for `make run`)."
        )
        parser.add_argument(
            "--add-missing",
            action="store_true",
            help="Add a fresh key for each keyed-hash purpose an existing file lacks; change nothing else.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = options["output"] or settings.PREVENTICONS_KEY_FILE
        if not target:
            raise CommandError("name a file with --output or set PREVENTICONS_KEY_FILE")
        path = Path(target)
        if options["add_missing"]:
            self._add_missing(path)
            return
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

    def _add_missing(self, path: Path) -> None:
        if not path.exists():
            raise CommandError(f"{path} does not exist; run generate_keys without --add-missing first")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(doc, dict):
            raise CommandError(f"{path} must hold a JSON object")
        added = add_missing_keyed_hash_keys(doc)
        if not added:
            self.stdout.write(f"Key file {path} lacks no purpose; left as it is.")
            return
        write_key_document(path, doc, replace=True)
        self.stdout.write(self.style.SUCCESS(f"Added fresh keys for {', '.join(added)} to {path}."))
