"""Fill the development databases with demo data; a second run adds nothing. Refused in production."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from django.utils.module_loading import module_has_submodule

DEMO_MODULE = "demo"


def demo_modules() -> list[Any]:
    """Each installed app's ``<app>.management.demo`` module, in INSTALLED_APPS order.

    That order is the apps' layering (participants, scores, casefiles, notary), so an app's demo data can
    build on the data of the apps beneath it. Each app contributes through its own module and public
    operations, and none of them imports upward: the scores, casefiles and notary issues add their own
    ``management/demo.py`` with a ``seed(*, write)`` function, and this command picks it up.
    """
    found = []
    for app_config in apps.get_app_configs():
        if not module_has_submodule(app_config.module, "management"):
            continue
        management = import_module(f"{app_config.name}.management")
        if module_has_submodule(management, DEMO_MODULE):
            found.append(import_module(f"{app_config.name}.management.{DEMO_MODULE}"))
    return found


class Command(BaseCommand):
    help = "Add demo organisations, people and staff logins (development only; safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo refuses to run in production: demo logins have published passwords")
        for module in demo_modules():
            module.seed(write=self.stdout.write)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Preventicons: {settings.SITE_URL}/"))
        self.stdout.write(
            self.style.SUCCESS(f"Staff login:  {settings.SITE_URL}{reverse('two_factor:login')}")
        )
