"""Participant-facing scores URLs: the weekly smiley page. Each area adds its patterns in its own block."""

from django.urls import path

from scores import views, views_help

app_name = "scores"

urlpatterns: list = [
    # --- weekly smiley page (scores/views.py) ---
    path("w/stop/", views.stop, name="stop"),
    path("w/<str:token>/", views.week, name="week"),
    path("w/<str:token>/thanks/", views.thanks, name="thanks"),
    # --- asking for contact (scores/views_help.py) ---
    path("w/<str:token>/help/", views_help.help_request, name="help"),
    path("me/help/", views_help.account_help, name="account-help"),
]
