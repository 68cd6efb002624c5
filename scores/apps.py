from django.apps import AppConfig


class ScoresConfig(AppConfig):
    name = "scores"

    def ready(self) -> None:
        from participants.exporting import register_export_section
        from participants.offers import register_account_offer
        from participants.signals import participant_stopped
        from preventicons.messaging import register_renderer
        from scores import queries, receivers, rounds, wellbeing

        participant_stopped.connect(
            receivers.strip_stopped_participant, dispatch_uid="scores.strip_stopped_participant"
        )
        register_export_section("weekly_scores", queries.weekly_values_for)
        register_account_offer("talk_to_someone", wellbeing.offer_help_on_account)
        register_renderer(rounds.RENDERER, rounds.render_weekly_message)
