"""Print a staff login's current TOTP code, so a demo needs no authenticator app. Refused in production."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Print the current TOTP code of a staff login (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            # In production this would be a second factor handed to whoever can run a command.
            raise CommandError("demo_code refuses to run in production")
        device = TOTPDevice.objects.filter(user__username=options["username"], confirmed=True).first()
        if device is None:
            raise CommandError(f"{options['username']!r} has no confirmed TOTP device (run seed_demo first)")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = time.time()
        remaining = device.step - int(totp.time - device.t0) % device.step
        code = str(totp.token()).zfill(device.digits)
        if totp.t() <= device.last_t:
            # django-otp accepts each time step once: this code has been used already.
            self.stdout.write(f"{code} (already used; the next code comes in {remaining} seconds)")
        else:
            self.stdout.write(f"{code} (valid for {remaining} more seconds)")
