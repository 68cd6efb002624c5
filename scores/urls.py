"""Scores URLs: the weekly smiley page, asking for contact, the employer's reports; each in its own block."""

from django.urls import path

from scores import views, views_help, views_reports

app_name = "scores"

urlpatterns: list = [
    # --- weekly smiley page (scores/views.py) ---
    path("w/stop/", views.stop, name="stop"),
    path("w/<str:token>/", views.week, name="week"),
    path("w/<str:token>/thanks/", views.thanks, name="thanks"),
    # --- asking for contact (scores/views_help.py) ---
    path("w/<str:token>/help/", views_help.help_request, name="help"),
    path("me/help/", views_help.account_help, name="account-help"),
    # --- the employer's reports (scores/views_reports.py) ---
    path("reports/", views_reports.index, name="reports"),
    path("reports/<int:organisation_id>/settings/", views_reports.report_settings, name="report-settings"),
    path("reports/<int:organisation_id>/<str:level>/", views_reports.dashboard, name="report"),
    path("reports/<int:organisation_id>/<str:level>/print/", views_reports.printable, name="report-print"),
    path("reports/<int:organisation_id>/<str:level>/report.csv", views_reports.export_csv, name="report-csv"),
]
