"""The auditor's pages under /notary/, the employer's attestations and feedback, the participant's sign-off,
and the public verification of attestations at /verify/."""

from __future__ import annotations

from django.urls import path

from notary import views, views_attestations, views_feedback, views_signoff

app_name = "notary"

urlpatterns = [
    path("notary/", views.dashboard, name="dashboard"),
    path("notary/organisations/<int:organisation_id>/", views.organisation_page, name="organisation"),
    path(
        "notary/organisations/<int:organisation_id>/references/<str:reference>/",
        views.spot_check,
        name="spot-check",
    ),
    # --- the participant's sign-off (notary/views_signoff.py): behind both factors, like /me/ ---
    path("me/sign-off/", views_signoff.sign_off, name="sign-off"),
    # --- the employer's feedback (notary/views_feedback.py): its own organisation, five at a time ---
    path("notary/feedback/", views_feedback.releases, name="feedback"),
    path("notary/feedback/<uuid:release_id>/", views_feedback.release, name="feedback-release"),
    # --- attestations (notary/views_attestations.py) ---
    path(
        "notary/organisations/<int:organisation_id>/attestations/",
        views_attestations.auditor_attestations,
        name="attestations",
    ),
    path(
        "notary/organisations/<int:organisation_id>/attestations/issue/",
        views_attestations.issue_attestation,
        name="issue-attestation",
    ),
    path("attestations/", views_attestations.employer_attestations, name="employer-attestations"),
    path(
        "attestations/<uuid:attestation_id>/download/",
        views_attestations.download,
        name="attestation-download",
    ),
    path("verify/", views_attestations.verify, name="verify"),
]
