"""The platform admin reviews the access log (NEN 7513) here: read only, filtered by action and date only."""

from __future__ import annotations

from django.contrib import admin

from casefiles.models import AccessLogEntry
from preventicons.adminguard import ReadOnlyMixin, StrictLookupsMixin


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyMixin, StrictLookupsMixin, admin.ModelAdmin):
    """Nobody adds, changes or deletes an entry here: only casefiles.accesslog.record writes the log."""

    list_display = ("at", "action", "dossier_number", "staff_username", "client_address", "detail")
    # Exactly these: the strict lookups refuse every other URL parameter (preventicons/adminguard.py).
    list_filter = ("action", "at")
    fields = (
        "sequence",
        "at",
        "action",
        "dossier_number",
        "staff_user_id",
        "staff_username",
        "client_address",
        "detail",
        "chain",
    )
    readonly_fields = fields
    ordering = ("-sequence",)
    actions = None
    # The full count is one more query over a table that only grows.
    show_full_result_count = False
