"""The platform admin reviews the access log (NEN 7513) here: read only, filtered by action and date only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from casefiles.models import AccessLogEntry
from preventicons.adminguard import StrictLookupsMixin


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(StrictLookupsMixin, admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
