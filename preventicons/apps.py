from django.apps import AppConfig


class PreventiconsConfig(AppConfig):
    name = "preventicons"
    verbose_name = "Preventicons platform"

    def ready(self) -> None:
        from preventicons import checks  # noqa: F401  (registers the start-up checks)
