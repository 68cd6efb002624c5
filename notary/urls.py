"""The auditor's pages under /notary/, the employer's attestations and feedback, the participant's sign-off,
and the public verification of attestations at /verify/."""

from __future__ import annotations

from django.urls import path

from notary import views_attestations

app_name = "notary"

urlpatterns: list = [
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
