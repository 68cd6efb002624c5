from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasefilesConfig(AppConfig):
    name = "casefiles"
    verbose_name = _("Casefiles")

    def ready(self) -> None:
        from casefiles import receivers
        from participants.signals import participant_stopped
        from scores.signals import casemanager_change_requested, help_requested

        participant_stopped.connect(
            receivers.close_stopped_participants_dossier,
            dispatch_uid="casefiles.close_stopped_participants_dossier",
        )
        help_requested.connect(
            receivers.open_dossier_on_help_request, dispatch_uid="casefiles.open_dossier_on_help_request"
        )
        casemanager_change_requested.connect(
            receivers.change_casemanager_on_request, dispatch_uid="casefiles.change_casemanager_on_request"
        )
