from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

# Dutch names in the admin for the second-factor apps and models that django-otp and two-factor name in
# English only (plain strings, not translatable). Set on the running app registry, not in the models' Meta:
# migrations read a model's declared Meta (``_meta.original_attrs``), so no migration of theirs changes.
THIRD_PARTY_APP_NAMES = {
    "otp_totp": _("Authenticator apps"),
    "otp_static": _("Backup codes"),
    "two_factor": _("Two-step login"),
    "phonenumber": _("Backup phones"),
}
THIRD_PARTY_MODEL_NAMES = {
    ("otp_totp", "totpdevice"): (_("authenticator app"), _("authenticator apps")),
    ("otp_static", "staticdevice"): (_("set of backup codes"), _("sets of backup codes")),
    ("otp_static", "statictoken"): (_("backup code"), _("backup codes")),
    ("phonenumber", "phonedevice"): (_("backup phone"), _("backup phones")),
}


class PreventiconsConfig(AppConfig):
    name = "preventicons"
    verbose_name = _("Preventicons platform")

    def ready(self) -> None:
        from preventicons import checks  # noqa: F401  (registers the start-up checks)

        name_third_party_models_in_dutch(self.apps)


def name_third_party_models_in_dutch(registry: object) -> None:
    from django.apps.registry import Apps

    assert isinstance(registry, Apps)
    for label, app_name in THIRD_PARTY_APP_NAMES.items():
        if label in registry.app_configs:
            registry.app_configs[label].verbose_name = app_name
    for (label, model_name), (singular, plural) in THIRD_PARTY_MODEL_NAMES.items():
        try:
            model = registry.get_model(label, model_name)
        except LookupError:
            continue
        model._meta.verbose_name = singular
        model._meta.verbose_name_plural = plural
