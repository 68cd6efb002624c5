from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotaryConfig(AppConfig):
    name = "notary"
    verbose_name = _("Notary (Anoniem Garant)")
