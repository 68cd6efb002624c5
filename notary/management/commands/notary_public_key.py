"""Print Anoniem Garant's public key and its fingerprint, for whoever verifies attestations offline."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from notary import attestations, signing


class Command(BaseCommand):
    help = "Print the notary's Ed25519 public key (base64) and its fingerprint (SHA-256 of the key, hex)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"public key:  {attestations.public_key_base64()}")
        self.stdout.write(f"fingerprint: {signing.fingerprint()}")
