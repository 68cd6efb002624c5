from django.apps import AppConfig


class ScoresConfig(AppConfig):
    name = "scores"

    def ready(self) -> None:
        from participants.exporting import register_export_section
        from participants.signals import participant_stopped
        from preventicons.messaging import register_renderer
        from scores import queries, receivers, rounds

        participant_stopped.connect(
            receivers.strip_stopped_participant, dispatch_uid="scores.strip_stopped_participant"
        )
        register_export_section("weekly_scores", queries.weekly_values_for)
        register_renderer(rounds.RENDERER, rounds.render_weekly_message)
