"""Rotate an encryption keyring: add, activate, reencrypt, retire; status shows which key seals how much.

Operator output, in English like Django's own commands. No key material is ever printed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from preventicons.dbrouter import ALIASES
from preventicons.keyrotation import (
    DEFAULT_BATCH_SIZE,
    BatchDone,
    KeyRotationError,
    activate_key,
    add_key,
    key_usage,
    reencrypt,
    retire_key,
)
from preventicons.keys import ENCRYPTION_PURPOSES
from preventicons.management.arguments import positive_int


class Command(BaseCommand):
    help = (
        "Rotate an encryption key: add (inactive), restart all processes, activate, restart all processes, "
        "reencrypt, retire. `status` shows how many values each key seals."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        add = actions.add_parser("add", help="Add a fresh key to a keyring without activating it.")
        add.add_argument("--purpose", required=True, choices=ENCRYPTION_PURPOSES)

        activate = actions.add_parser("activate", help="Seal new values under this key.")
        activate.add_argument("--purpose", required=True, choices=ENCRYPTION_PURPOSES)
        activate.add_argument("--key-id", required=True)

        again = actions.add_parser("reencrypt", help="Seal again every value not under its active key.")
        again.add_argument("--purpose", choices=ENCRYPTION_PURPOSES, help="Only this keyring (default: all).")
        again.add_argument(
            "--database",
            action="append",
            choices=ALIASES,
            help="Only this store (repeatable; default: all three).",
        )
        again.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE)
        again.add_argument(
            "--max-batches",
            type=positive_int,
            default=None,
            help="Stop after this many batches (resume later).",
        )

        retire = actions.add_parser("retire", help="Remove a key that no value uses any more.")
        retire.add_argument("--purpose", required=True, choices=ENCRYPTION_PURPOSES)
        retire.add_argument("--key-id", required=True)

        actions.add_parser("status", help="How many values each key id seals, per purpose.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "add":
                self._add(options["purpose"])
            elif action == "activate":
                self._activate(options["purpose"], options["key_id"])
            elif action == "reencrypt":
                purposes = [options["purpose"]] if options["purpose"] else None
                self._reencrypt(purposes, options["database"], options["batch_size"], options["max_batches"])
            elif action == "retire":
                retire_key(purpose=options["purpose"], key_id=options["key_id"])
                self.stdout.write(
                    self.style.SUCCESS(f"Retired {options['key_id']} from the {options['purpose']} keyring.")
                )
            else:
                self._status()
        except KeyRotationError as exc:
            raise CommandError(str(exc)) from None

    def _add(self, purpose: str) -> None:
        key_id = add_key(purpose=purpose)
        self.stdout.write(self.style.SUCCESS(f"Added key {key_id} to the {purpose} keyring (not active)."))
        self.stdout.write(
            "Next: restart every web, worker and beat process so each one can open values sealed under it, "
            f"then run `rotate_keys activate --purpose {purpose} --key-id {key_id}`."
        )

    def _activate(self, purpose: str, key_id: str) -> None:
        if not activate_key(purpose=purpose, key_id=key_id):
            self.stdout.write(f"{key_id} already is the active {purpose} key.")
            return
        self.stdout.write(self.style.SUCCESS(f"{key_id} is now the active {purpose} key."))
        self.stdout.write(
            "Next: restart every process so new values are sealed under it, "
            f"then run `rotate_keys reencrypt --purpose {purpose}`."
        )

    def _reencrypt(
        self,
        purposes: list[str] | None,
        databases: list[str] | None,
        batch_size: int,
        max_batches: int | None,
    ) -> None:
        def progress(done: BatchDone) -> None:
            self.stdout.write(
                f"{done.model_label} [{done.alias}]: batch {done.batch}, {done.resealed} values re-sealed "
                f"({done.resealed_so_far} so far)"
            )

        report = reencrypt(
            purposes=purposes,
            databases=databases,
            batch_size=batch_size,
            max_batches=max_batches,
            on_batch=progress,
        )
        self.stdout.write("Re-sealed per column:")
        for label, count in sorted(report.resealed.items()):
            self.stdout.write(f"  {label}: {count}")
        left = {label: count for label, count in report.remaining.items() if count}
        if left:
            self.stdout.write("Still under another key:")
            for label, count in sorted(left.items()):
                self.stdout.write(f"  {label}: {count}")
        if report.unreadable:
            for where in report.unreadable:
                self.stderr.write(f"  cannot open {where}")
            raise CommandError(
                f"{len(report.unreadable)} values could not be opened and were left as they are; "
                "inspect them before retiring any key"
            )
        if report.is_complete:
            self.stdout.write(self.style.SUCCESS("Every value is sealed under its active key."))
        elif report.stopped_early:
            self.stdout.write(
                f"Stopped early (--max-batches {max_batches}); run reencrypt again to continue."
            )
        else:
            self.stdout.write(
                self.style.WARNING(
                    "Some rows were locked or changed while this ran, or a process not yet restarted still "
                    "seals under an old key; run reencrypt again."
                )
            )

    def _status(self) -> None:
        for usage in key_usage():
            suffix = " (active)" if usage.is_active else ""
            if not usage.in_keyring:
                suffix = " (NOT IN THE KEY SET: these values cannot be opened)"
            self.stdout.write(f"{usage.purpose} {usage.key_id}: {usage.values} values{suffix}")
