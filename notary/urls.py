"""The auditor's pages under /notary/, the employer's attestations and feedback, the participant's sign-off,
and the public verification of attestations at /verify/."""

from __future__ import annotations

from django.urls import path

from notary import views

app_name = "notary"

urlpatterns = [
    path("notary/", views.dashboard, name="dashboard"),
    path("notary/organisations/<int:organisation_id>/", views.organisation_page, name="organisation"),
    path(
        "notary/organisations/<int:organisation_id>/references/<str:reference>/",
        views.spot_check,
        name="spot-check",
    ),
]
