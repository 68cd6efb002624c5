from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotaryConfig(AppConfig):
    name = "notary"
    verbose_name = _("Notary (Anoniem Garant)")

    def ready(self) -> None:
        from casefiles.signals import dossiers_unlinked
        from notary import receivers, signoffs
        from participants.offers import register_account_offer
        from preventicons.signals import keys_rotated

        keys_rotated.connect(receivers.record_key_rotation, dispatch_uid="notary.record_key_rotation")
        dossiers_unlinked.connect(
            receivers.forget_unlinked_trajectories, dispatch_uid="notary.forget_unlinked_trajectories"
        )
        # Only on the account page, behind both factors: never a message to an address the employer reads.
        register_account_offer("sign_off", signoffs.offer_sign_off)
