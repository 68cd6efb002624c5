"""Participant-facing and employer-import URLs. Each area adds its patterns in its own block."""

from django.urls import path  # noqa: F401

app_name = "participants"

urlpatterns: list = [
    # --- enrolment (invitation link, consent, codes, decline) ---
    # --- account (corrections, data, export, pause, stop) ---
    # --- address-list import (employer/admin) ---
]
