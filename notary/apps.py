from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotaryConfig(AppConfig):
    name = "notary"
    verbose_name = _("Notary (Anoniem Garant)")

    def ready(self) -> None:
        from notary import signoffs
        from participants.offers import register_account_offer

        # Only on the account page, behind both factors: never a message to an address the employer reads.
        register_account_offer("sign_off", signoffs.offer_sign_off)
