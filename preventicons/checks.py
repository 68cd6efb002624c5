"""Start-up checks: a mistake in keys, stores or gateways stops the process before the first request."""

from __future__ import annotations

import os
import stat
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from preventicons.dbrouter import ALIASES, database_for_model
from preventicons.keys import KeyConfigurationError, get_key_set, reset_key_cache


@checks.register(checks.Tags.security)
def check_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    reset_key_cache()
    try:
        get_key_set()
    except KeyConfigurationError as exc:
        return [
            checks.Critical(
                f"Encryption keys unusable: {exc}",
                hint="Generate a key set with `python manage.py generate_keys` and point "
                "PREVENTICONS_KEY_FILE at it (or put its JSON in PREVENTICONS_KEYS).",
                id="preventicons.E001",
            )
        ]
    return []


@checks.register(checks.Tags.security)
def check_key_file_permissions(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if getattr(settings, "PREVENTICONS_KEYS", "") or not getattr(settings, "PREVENTICONS_KEY_FILE", ""):
        return []
    try:
        mode = os.stat(settings.PREVENTICONS_KEY_FILE).st_mode
    except OSError:
        return []  # check_keys reports a missing file
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [
            checks.Warning(
                f"key file {settings.PREVENTICONS_KEY_FILE} is readable or writable by others "
                f"(mode {stat.S_IMODE(mode):o})",
                hint="chmod 600 it: whoever reads it can open every sealed value.",
                id="preventicons.W001",
            )
        ]
    return []


@checks.register(checks.Tags.models)
def check_no_relation_across_stores(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for model in apps.get_models():
        home = database_for_model(model)
        for field in model._meta.get_fields(include_hidden=True):
            related = getattr(field, "related_model", None)
            if related is None or isinstance(related, str):
                continue
            other = database_for_model(related)
            if other != home:
                errors.append(
                    checks.Error(
                        f"{model._meta.label}.{field.name} relates {home!r} "
                        f"to {related._meta.label} in {other!r}",
                        hint="Stores are unjoinable by design: use a keyed reference (preventicons.crypto).",
                        obj=model,
                        id="preventicons.E002",
                    )
                )
    return errors


@checks.register()
def check_three_stores(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    missing = [alias for alias in ALIASES if alias not in settings.DATABASES]
    if missing:
        return [checks.Error(f"DATABASES lacks the aliases {missing}", id="preventicons.E003")]
    return []


@checks.register()
def check_gateways(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for setting in ("SMS_GATEWAY",):
        path = getattr(settings, setting, "")
        try:
            import_string(path)
        except ImportError as exc:
            errors.append(
                checks.Error(f"{setting} {path!r} cannot be imported: {exc}", id="preventicons.E004")
            )
    if settings.PRODUCTION:
        # The development mailbox keeps every message, links and codes included, in clear on disk.
        for setting in ("EMAIL_BACKEND", "SMS_GATEWAY"):
            path = getattr(settings, setting, "")
            if path.startswith("preventicons.devmailbox."):
                errors.append(
                    checks.Error(
                        f"{setting} is the development mailbox, which keeps messages in clear on disk",
                        hint="Use SMTP and Twilio in production.",
                        id="preventicons.E005",
                    )
                )
    return errors


@checks.register()
def check_mobile_countries(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """MOBILE_COUNTRIES must name regions the phone-number library knows, or no number would ever pass."""
    import phonenumbers

    countries = [str(region).upper() for region in getattr(settings, "MOBILE_COUNTRIES", [])]
    unknown = [region for region in countries if region not in phonenumbers.SUPPORTED_REGIONS]
    if not countries or unknown:
        return [
            checks.Error(
                f"MOBILE_COUNTRIES must list ISO 3166 country codes; unknown: {unknown or 'none given'}",
                hint="For example MOBILE_COUNTRIES=NL,BE,DE.",
                id="preventicons.E020",
            )
        ]
    return []
