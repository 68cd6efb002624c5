from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScoresConfig(AppConfig):
    name = "scores"
    verbose_name = _("Scores")

    def ready(self) -> None:
        from participants.exporting import register_answer_faces, register_export_section
        from participants.offers import register_account_offer
        from preventicons.messaging import register_renderer
        from scores import queries, rounds, views, wellbeing

        # No receiver of participant_stopped: a stop touches no score row. Its scores carry per-week
        # pseudonyms derived from P, and once the stop destroys P nobody can derive them again
        # (scores/sealing.py); the open week's row loses its department at the week close like every other.
        register_export_section("weekly_scores", queries.weekly_values_for)
        register_answer_faces({value: (label, image) for value, label, image in views.SMILEYS})
        register_account_offer("talk_to_someone", wellbeing.offer_help_on_account)
        register_renderer(rounds.RENDERER, rounds.render_weekly_message)
